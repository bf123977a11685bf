"""Regenerate the README's syllabus table from labkit.syllabus."""
from pathlib import Path

from labkit import syllabus

path = Path(__file__).resolve().parents[1] / "README.md"
text = path.read_text()
head, rest = text.split("<!-- syllabus:start -->")
_, tail = rest.split("<!-- syllabus:end -->")
path.write_text(f"{head}<!-- syllabus:start -->\n{syllabus.markdown_table()}\n<!-- syllabus:end -->{tail}")
print("README syllabus table updated")
