"""Flag numbers in a lesson's prose that none of its outputs print.

A lesson's markdown often quotes its results ("ranks 0.788", "about 84 %").
When the code changes and the lesson is rebuilt, the printed numbers move and
the prose does not. This check reads a built solution notebook and reports
every decimal number or percentage in a markdown cell that agrees with no
number in the notebook's code (settings typed there) or outputs (results
printed there). The test suite runs it on every built lesson
(``tests/test_prose_numbers.py``).

A prose number with d decimals agrees with a printed number y when y rounded
to d decimals equals it; a percentage may also agree with a printed
fraction (0.839 agrees with "84 %" and with "0.84"). Integers without a percent sign are not checked
(counts, sizes and years are rarely results), nor is anything inside LaTeX
math, inline code, links, or a citation locator (eq. 2.6, Table 9.3, fig. 1,
arXiv:2210.10760).

Numbers that are not results (a constant from a paper, a published figure
quoted for comparison) go in ``tools/prose_numbers_allow.txt``, one per line:
``NN number  # why``.

Usage::

    python tools/prose_numbers.py            # every solution notebook
    python tools/prose_numbers.py 00 05      # these lessons
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "solutions"
ALLOW = Path(__file__).resolve().parent / "prose_numbers_allow.txt"

# Parts of the prose whose numbers are not claims about this notebook's results.
_MASKS = [
    re.compile(r"\$\$.*?\$\$", re.S),                # display math
    re.compile(r"\$[^$\n]*\$"),                       # inline math
    re.compile(r"`[^`\n]*`"),                         # inline code
    re.compile(r"\]\([^)\s]*\)"),                     # link targets
    re.compile(r"https?://\S+"),
    re.compile(r"arXiv:\s?\d{4}\.\d{4,5}(?:v\d+)?", re.I),
    # A locator and the number(s) it names: "eq. 2.6", "eqs. 6.1-6.2", "Table 9.3", "§2.1".
    re.compile(r"(?:\beqs?\.|\bequations?\b|\bTheorem\b|\bTable\b|\bfig(?:ure)?s?\.?|\bFig\.|\bSection\b|"
               r"\bAlgorithm\b|\bchapter\b|\bLemma\b|\bProposition\b|\bDefinition\b|\bdef\.|\bThm\b|\bappendix\b|§)"
               r"\s?[A-Z]?\d+(?:\.\d+)*(?:\s?[-–]\s?\d+(?:\.\d+)*)?", re.I),
]
# A number: optional sign, digits with optional thousands commas, optional decimals, optional percent.
_NUMBER = re.compile(r"(?<![\w.])([-−]?)(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?![\w.]\d)(\s?%)?")
_ANY_NUMBER = re.compile(r"[-−]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


def _cell_text(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _output_text(cell: dict) -> str:
    parts = []
    for out in cell.get("outputs", []):
        if "text" in out:
            parts.append("".join(out["text"]) if isinstance(out["text"], list) else out["text"])
        for key in ("text/plain", "text/markdown", "text/html"):
            value = out.get("data", {}).get(key)
            if value is not None:
                parts.append("".join(value) if isinstance(value, list) else value)
    return "\n".join(parts)


def prose_numbers(markdown: str) -> list[tuple[str, float, int, bool]]:
    """The checked numbers of one markdown text: (as written, value, decimals, is_percent)."""
    text = markdown
    for mask in _MASKS:
        text = mask.sub(" ", text)
    found = []
    for m in _NUMBER.finditer(text):
        sign, whole, frac, percent = m.groups()
        if not frac and not percent:
            continue  # a bare integer: a count, a size or a year
        value = float(whole.replace(",", "") + (frac or ""))
        found.append((m.group(0).strip(), -value if sign else value, len(frac) - 1 if frac else 0, bool(percent)))
    return found


def printed_numbers(text: str) -> list[float]:
    """Every number in code or output text, as floats."""
    values = []
    for token in _ANY_NUMBER.findall(text.replace("−", "-")):
        try:
            values.append(float(token))
        except ValueError:
            continue
    return values


def agrees(value: float, decimals: int, percent: bool, printed: list[float]) -> bool:
    """Whether some printed number rounds to ``value`` at ``decimals`` places (as is, or as a percentage)."""
    tol = 0.5 * 10.0 ** -decimals + 1e-9
    for y in printed:
        for scaled in ((y,) if not percent else (100 * y, y)):
            if abs(abs(scaled) - abs(value)) <= tol:
                return True
    return False


def load_allow_list(path: Path = ALLOW) -> dict[str, set[str]]:
    """{lesson number: {number as written}} from the allow-list file."""
    allowed: dict[str, set[str]] = {}
    if not path.exists():
        return allowed
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            lesson, number = line.split(None, 1)
            allowed.setdefault(lesson, set()).add(number.strip())
    return allowed


def check_notebook(path: Path, allowed: set[str] | None = None) -> list[str]:
    """Prose numbers of the notebook at ``path`` that no code or output of it prints."""
    nb = json.loads(Path(path).read_text())
    cells = nb["cells"]
    printed = printed_numbers("\n".join(_cell_text(c) + "\n" + _output_text(c) for c in cells if c["cell_type"] == "code"))
    allowed = allowed or set()
    problems = []
    for index, cell in enumerate(cells):
        if cell["cell_type"] != "markdown":
            continue
        for written, value, decimals, percent in prose_numbers(_cell_text(cell)):
            if written in allowed or written.replace(" ", "") in allowed:
                continue
            if not agrees(value, decimals, percent, printed):
                problems.append(f"{Path(path).name}, markdown cell {index}: {written!r} is printed by no cell")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lessons", nargs="*", help="lesson numbers (default: all)")
    args = parser.parse_args(argv)
    allow = load_allow_list()
    paths = sorted(SOLUTIONS.glob("[0-9][0-9]_*.ipynb"))
    if args.lessons:
        paths = [p for p in paths if p.name[:2] in args.lessons]
    problems = [msg for p in paths for msg in check_notebook(p, allow.get(p.name[:2]))]
    print("\n".join(problems) if problems else f"prose numbers: all printed ({len(paths)} notebooks)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
