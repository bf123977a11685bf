"""Build the course site: every lesson as a web page, from the committed notebooks.

Sphinx with MyST-NB, the engine and theme of Jupyter Book, renders each
notebook with its stored outputs; nothing is executed (``nb_execution_mode =
"off"``), so the site shows exactly what the repository holds. The pages are
laid out from :mod:`labkit.syllabus`: the home page carries the syllabus table
and the table of contents lists the lessons in order; the solved notebooks sit
in a separate *Solutions* section; lessons still planned appear in the table
without a link. A lesson added to the syllabus and built appears by itself.

Usage::

    python tools/build_site.py                 # into build/site  (make site)
    python tools/build_site.py --out DIR
"""
from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from labkit import syllabus  # noqa: E402

CONF = '''\
project = "labkit: safety alignment of language models"
author = "the labkit authors"
extensions = ["myst_nb"]
exclude_patterns = ["_build"]
html_theme = "sphinx_book_theme"
html_title = "labkit"
html_theme_options = {"show_toc_level": 2}
html_copy_source = False  # the notebooks are in the repository; no second copy on the site
# The stored outputs only: the site never runs a notebook.
nb_execution_mode = "off"
# A widget without its state draws nothing in a browser; show the figure the
# build stored beside it (tools/widget_snapshots.py) instead.
nb_mime_priority_overrides = [("html", "application/vnd.jupyter.widget-view+json", None)]
myst_enable_extensions = ["dollarmath", "amsmath"]
suppress_warnings = ["myst.header", "mystnb.unknown_mime_type", "misc.highlighting_failure"]
'''


def _page(lesson: syllabus.Lesson, section: str) -> str:
    return f"{section}/{lesson.name}"


def built_lessons(notebooks: Path = ROOT / "notebooks") -> list[syllabus.Lesson]:
    """The syllabus's lessons whose student notebook exists, in syllabus order."""
    return [lesson for lesson in syllabus.LESSONS if (notebooks / f"{lesson.name}.ipynb").exists()]


def home_page(lessons: list[syllabus.Lesson], extra_pages: list[str]) -> str:
    """index.md: what the course is, the syllabus (linked where built), and the table of contents."""
    built = {lesson.name for lesson in lessons}
    rows = ["| # | Lesson | labkit module | Minutes | Solution |", "|---|---|---|---|---|"]
    for lesson in syllabus.LESSONS:
        title = f"[{lesson.title}]({_page(lesson, 'lessons')}.ipynb)" if lesson.name in built else f"{lesson.title} (planned)"
        solution = f"[solved]({_page(lesson, 'solutions')}.ipynb)" if lesson.name in built else ""
        module = f"`{lesson.module}`" if lesson.module.startswith("labkit") else lesson.module
        rows.append(f"| {lesson.number:02d} | {title} | {module} | {lesson.minutes} | {solution} |")
    toc = "\n".join(_page(lesson, "lessons") for lesson in lessons)
    extra = "\n".join(extra_pages)
    return f"""# labkit: a hands-on course in safety alignment of language models

Each lesson takes one topic of the course's slide deck, reproduces the slide's
code in a few lines, shows exactly what is wrong with it, and then uses the
corrected, tested implementation from **labkit**. These pages show each
notebook as the repository stores it, outputs included; to run a lesson, open
it in JupyterLab (`make lab`), on Colab or on Binder with the badges at its top.

## Syllabus

{chr(10).join(rows)}

```{{toctree}}
:caption: Lessons
:maxdepth: 1
:hidden:

{toc}
```

```{{toctree}}
:caption: Solutions
:maxdepth: 1
:hidden:

solutions/index
```
""" + (f"""
```{{toctree}}
:caption: For instructors
:maxdepth: 1
:hidden:

{extra}
```
""" if extra else "")


def solutions_page(lessons: list[syllabus.Lesson]) -> str:
    toc = "\n".join(lesson.name for lesson in lessons)
    return f"""# Solutions

The solved version of each lesson, exercises filled in. Try the exercises first:
each check tells you what is wrong with your attempt.

```{{toctree}}
:maxdepth: 1

{toc}
```
"""


def stage(src: Path) -> list[syllabus.Lesson]:
    """Lay out the Sphinx source folder ``src``; return the lessons it holds."""
    if src.exists():
        shutil.rmtree(src)
    (src / "lessons").mkdir(parents=True)
    (src / "solutions").mkdir()
    lessons = built_lessons()
    for lesson in lessons:
        shutil.copy(ROOT / "notebooks" / f"{lesson.name}.ipynb", src / "lessons")
        solved = ROOT / "solutions" / f"{lesson.name}.ipynb"
        if solved.exists():
            shutil.copy(solved, src / "solutions")
    extra = []
    for doc in sorted((ROOT / "docs").glob("*.md")):
        shutil.copy(doc, src / doc.name)
        extra.append(doc.stem)
    (src / "conf.py").write_text(CONF)
    (src / "index.md").write_text(home_page(lessons, extra))
    (src / "solutions" / "index.md").write_text(solutions_page(lessons))
    return lessons


def build(out: Path, jobs: str = "auto") -> list[syllabus.Lesson]:
    """Stage the sources beside ``out`` and run Sphinx into ``out``; return the lessons built."""
    from sphinx.cmd.build import build_main

    src = out.parent / f"{out.name}-src"
    lessons = stage(src)
    code = build_main(["-b", "html", "-q", "-j", jobs, "-d", str(out.parent / f"{out.name}-doctrees"),
                       str(src), str(out)])
    if code:
        raise RuntimeError(f"sphinx-build failed with exit code {code}")
    return lessons


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "site", help="output folder")
    parser.add_argument("-j", "--jobs", default="auto", help="Sphinx's parallel readers")
    args = parser.parse_args(argv)
    start = time.monotonic()
    lessons = build(args.out.resolve(), args.jobs)
    print(f"site: {len(lessons)} lessons and their solutions in {args.out / 'index.html'} "
          f"({time.monotonic() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
