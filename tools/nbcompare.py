"""Compare a freshly executed notebook with its stored outputs, allowing numbers
to differ within a tolerance: the test command's *tolerant* mode, for CPUs on
which outputs cannot be bit-identical (see labkit/numerics.py).

What is compared, cell by cell: every text output (stdout and stderr streams,
``text/plain``, ``text/html``, ``text/markdown``) after the test suite's own
sanitizing rules (tests/sanitize.cfg) and cells tagged ``nbval-ignore-output``
are skipped, as nbval does. Each text is split into numbers and the words
between them:

* the words must be identical (runs of white space count as one space, since a
  table's column widths follow its numbers);
* each number must agree with the stored one within ``max(RTOL * |stored|,
  UNITS * 10**-d, ATOL)``, where ``d`` is the number of digits the stored
  number shows after its decimal point. So 0.807 and 0.809 agree (2 units of
  the third decimal), 0.807 and 0.815 do not, an integer count may move by 2,
  and a residual of 5.8e-16 may become 1.1e-14.

Images and widget views are not compared (nbval does not compare them either).
An error output in the fresh run is always a difference.
"""
from __future__ import annotations

import configparser
import re
from dataclasses import dataclass
from pathlib import Path

RTOL = 0.005  # relative tolerance for every number
UNITS = 2     # ... or this many units of the stored number's last shown digit
ATOL = 1e-9   # ... or this much: residuals near zero (1e-16 against 1e-14) are rounding noise
TEXT_KEYS = ("text/plain", "text/html", "text/markdown")
SANITIZE = Path(__file__).resolve().parents[1] / "tests" / "sanitize.cfg"

# Bounded quantifiers only: linear on any input.
_NUMBER = re.compile(r"(?<![A-Za-z_])[-+]?(?:\d{1,64}\.\d{0,64}|\.\d{1,64}|\d{1,64})(?:[eE][-+]?\d{1,4})?")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Difference:
    cell: int
    what: str

    def __str__(self) -> str:
        return f"cell {self.cell}: {self.what}"


def load_sanitizers(path: Path = SANITIZE) -> list[tuple[re.Pattern, str]]:
    """The (regex, replacement) pairs of an nbval sanitize file."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(path, encoding="utf-8")
    return [(re.compile(parser[s]["regex"]), parser[s]["replace"]) for s in parser.sections()]


def split_numbers(text: str) -> tuple[list[str], list[str]]:
    """``text`` as (words between numbers, numbers as written)."""
    words, numbers, last = [], [], 0
    for m in _NUMBER.finditer(text):
        words.append(text[last:m.start()])
        numbers.append(m.group())
        last = m.end()
    words.append(text[last:])
    return [_SPACE.sub(" ", w).strip() for w in words], numbers


def numbers_agree(stored: str, fresh: str, rtol: float = RTOL, units: int = UNITS) -> bool:
    """Whether ``fresh`` is within tolerance of ``stored`` (both as written)."""
    a, b = float(stored), float(fresh)
    mantissa = stored.lower().split("e")[0]
    decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
    scale = 10 ** int(stored.lower().split("e")[1]) if "e" in stored.lower() else 1
    return abs(a - b) <= max(rtol * abs(a), units * 10.0 ** -decimals * scale, ATOL)


def compare_text(stored: str, fresh: str) -> str | None:
    """None when the texts agree; else a short description of the first difference."""
    w1, n1 = split_numbers(stored)
    w2, n2 = split_numbers(fresh)
    if w1 != w2 or len(n1) != len(n2):
        for i, (a, b) in enumerate(zip(w1, w2)):
            if a != b:
                return f"text differs: stored {a[:80]!r}, got {b[:80]!r}"
        return f"text differs in length: stored {len(n1)} numbers, got {len(n2)}"
    for a, b in zip(n1, n2):
        if not numbers_agree(a, b):
            return f"number out of tolerance: stored {a}, got {b}"
    return None


def _texts(cell, sanitizers) -> list[str]:
    out = []
    for o in cell.get("outputs", []):
        if o.get("output_type") == "stream":
            out.append(o.get("text", ""))
        elif o.get("output_type") in ("execute_result", "display_data"):
            data = o.get("data", {})
            out.extend(data[k] if isinstance(data[k], str) else "".join(data[k]) for k in TEXT_KEYS if k in data)
        elif o.get("output_type") == "error":
            out.append(f"ERROR {o.get('ename')}: {o.get('evalue')}")
    texts = []
    for t in out:
        t = "".join(t) if isinstance(t, list) else t
        for regex, replace in sanitizers:
            t = regex.sub(replace, t)
        texts.append(t)
    return texts


def compare_notebooks(stored, fresh, sanitizers=None) -> list[Difference]:
    """Every difference between two notebooks' code-cell outputs (nbformat dicts)."""
    sanitizers = load_sanitizers() if sanitizers is None else sanitizers
    diffs = []
    code = [(c, f) for c, f in zip(stored["cells"], fresh["cells"]) if c["cell_type"] == "code"]
    for i, (c, f) in enumerate(code, start=1):
        tags = set(c.get("metadata", {}).get("tags", []))
        if "nbval-ignore-output" in tags or "nbval-skip" in tags:
            continue
        if any(o.get("output_type") == "error" for o in f.get("outputs", [])):
            err = next(o for o in f["outputs"] if o.get("output_type") == "error")
            diffs.append(Difference(i, f"raised {err.get('ename')}: {err.get('evalue')}"))
            continue
        a, b = _texts(c, sanitizers), _texts(f, sanitizers)
        joined_a, joined_b = "\n".join(a), "\n".join(b)
        problem = compare_text(joined_a, joined_b)
        if problem:
            diffs.append(Difference(i, problem))
    return diffs


def execute(path: Path, cwd: Path | None = None):
    """Run a notebook top to bottom in a fresh kernel (bounded, a stall retried:
    tools/notebook_run.py); an error in a cell is kept as its output."""
    import nbformat

    import notebook_run

    nb = nbformat.read(path, as_version=4)
    run, _ = notebook_run.execute(nb, Path(cwd or Path(path).parent), name=str(path), allow_errors=True)
    return run


__all__ = ["RTOL", "UNITS", "Difference", "load_sanitizers", "split_numbers", "numbers_agree", "compare_text",
           "compare_notebooks", "execute"]
