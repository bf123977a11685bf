"""Tolerant mode: every notebook executed and compared with numbers allowed to
differ within tools/nbcompare.py's tolerance. The test command uses it on CPUs
where stored outputs cannot be bit-identical (labkit/numerics.py); on this
kind of machine nbval compares them bit for bit instead, and one test below
exercises the tolerant path anyway."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

import nbcompare
from labkit import datasets, numerics, syllabus

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted((ROOT / "solutions").glob("*.ipynb"))


@pytest.mark.skipif(numerics.mode() == "exact", reason="exact numerics: nbval compares the notebooks bit for bit")
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_notebook_within_tolerance(path):
    lesson = syllabus.lesson_for_notebook(path)
    lacking = datasets.missing(lesson.datasets) if lesson else []
    if lacking:
        pytest.skip(datasets.unavailable_message(lacking))
    stored = nbformat.read(path, as_version=4)
    fresh = nbcompare.execute(path)
    diffs = nbcompare.compare_notebooks(stored, fresh)
    assert not diffs, "\n".join(map(str, diffs))


# ---- the comparison itself ------------------------------------------------

def test_numbers_within_tolerance_agree_and_others_do_not():
    assert nbcompare.compare_text("EWC task A 0.807, task B 0.737", "EWC task A 0.809, task B 0.737") is None
    assert "out of tolerance" in nbcompare.compare_text("task A 0.807", "task A 0.815")
    assert "out of tolerance" in nbcompare.compare_text("flags 119 of 120", "flags 112 of 120")
    assert nbcompare.compare_text("loss 1.234e-05", "loss 1.236e-05") is None
    assert "out of tolerance" in nbcompare.compare_text("loss 1.234e-05", "loss 1.5e-05")
    assert nbcompare.compare_text("KKT residual 5.8e-16", "KKT residual 1.1e-14") is None


def test_words_must_match_exactly_but_not_spacing():
    assert nbcompare.compare_text("a    0.5\nb  0.25", "a 0.5 b 0.25") is None
    assert "text differs" in nbcompare.compare_text("refused: yes 0.5", "refused: no 0.5")
    assert "text differs" in nbcompare.compare_text("0.5 0.6", "0.5")


def _nb(*texts, tags=()):
    cells = [nbformat.v4.new_code_cell("x", outputs=[nbformat.v4.new_output("stream", text=t)]) for t in texts]
    for c in cells:
        c.metadata["tags"] = list(tags)
    return nbformat.v4.new_notebook(cells=cells)


def test_notebook_comparison_reports_cells_honours_tags_and_sanitizers():
    stored = _nb("accuracy 0.900", "model at 0x7f00aa")
    assert nbcompare.compare_notebooks(stored, _nb("accuracy 0.901", "model at 0x55bb01")) == []
    diffs = nbcompare.compare_notebooks(stored, _nb("accuracy 0.700", "model at 0x55bb01"))
    assert [d.cell for d in diffs] == [1]
    assert nbcompare.compare_notebooks(_nb("a 1", tags=["nbval-ignore-output"]), _nb("b 2")) == []
    fresh = _nb("accuracy 0.900", "x")
    fresh.cells[1].outputs = [nbformat.v4.new_output("error", ename="ValueError", evalue="boom", traceback=[])]
    assert "raised ValueError" in str(nbcompare.compare_notebooks(stored, fresh)[0])


def test_number_pattern_is_linear_on_hostile_input():
    import time

    hostile = "1" * 200_000 + "." + "9" * 200_000 + "e" * 1000
    start = time.perf_counter()
    nbcompare.split_numbers(hostile)
    assert time.perf_counter() - start < 2.0


# ---- the tolerant path on this machine -------------------------------------

SCRIPT = """
import json, sys
sys.path.insert(0, 'tools')
import repro_env
repro_env.apply()
import os, nbformat, nbcompare
from labkit import numerics
path = sys.argv[1]
stored = nbformat.read(path, as_version=4)
fresh = nbcompare.execute(nbcompare.Path(path))
exact = nbcompare.compare_notebooks(stored, fresh, sanitizers=nbcompare.load_sanitizers())
strict = [i for i, (a, b) in enumerate(zip(stored.cells, fresh.cells)) if a.cell_type == 'code'
          and nbcompare._texts(a, nbcompare.load_sanitizers()) != nbcompare._texts(b, nbcompare.load_sanitizers())]
print(json.dumps({"mode": numerics.mode(), "pins": numerics.is_pinned(), "tolerant_diffs": [str(d) for d in exact],
                  "cells_not_bit_identical": strict}))
"""


def test_forced_tolerant_mode_runs_a_notebook_unpinned_and_passes():
    """LABKIT_NUMERICS=tolerant on this machine: no dispatch pins, so an
    AVX-512 CPU computes lesson 07's optimisation in another order; the tolerant
    comparison must still pass. (On an AVX2-only CPU the run is identical.)"""
    env = {k: v for k, v in os.environ.items() if k not in numerics.DISPATCH_PINS}
    env[numerics.MODE_ENV] = "tolerant"
    path = "solutions/07_constrained_optimization.ipynb"
    out = subprocess.run([sys.executable, "-c", SCRIPT, path], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["mode"] == "tolerant" and not result["pins"]
    assert result["tolerant_diffs"] == [], result
    if "avx512f" in numerics.cpu_flags():
        assert result["cells_not_bit_identical"], "unpinned AVX-512 run should differ somewhere from the stored outputs"


def test_test_command_announces_the_mode():
    env = {**os.environ, numerics.MODE_ENV: "tolerant"}
    out = subprocess.run([sys.executable, "tools/run_tests.py", "--dry-run"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    first = out.stdout.splitlines()[0]
    assert first.startswith("numerics: tolerant") and "cannot be bit-identical" in first
    assert "--nbval" not in out.stdout and "tests" in out.stdout
