"""Numbers a lesson's prose quotes must be numbers its cells print (tools/prose_numbers.py)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import prose_numbers as pn

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))


def _notebook(tmp_path: Path, markdown: str, code: str, output: str) -> Path:
    nb = {"cells": [
        {"cell_type": "code", "source": code, "outputs": [{"output_type": "stream", "name": "stdout", "text": output}]},
        {"cell_type": "markdown", "source": markdown},
    ]}
    path = tmp_path / "99_fake.ipynb"
    path.write_text(json.dumps(nb))
    return path


def test_a_typed_number_that_no_cell_prints_is_flagged(tmp_path):
    path = _notebook(tmp_path, "The model ranks 0.788 of pairs; Wilson covers about 84 %.",
                     "print(acc)", "accuracy 0.982\ncoverage 0.839\n")
    problems = pn.check_notebook(path)
    assert len(problems) == 1 and "'0.788'" in problems[0]  # 84 % agrees with 0.839; 0.788 agrees with nothing
    assert pn.check_notebook(path, allowed={"0.788"}) == []


def test_rounding_and_percentages_agree_with_printed_values():
    assert pn.agrees(0.84, 2, False, [0.8379])
    assert pn.agrees(84, 0, True, [0.8379])
    assert pn.agrees(4.6, 1, True, [4.6])
    assert not pn.agrees(0.84, 2, False, [0.8349])
    assert not pn.agrees(0.01, 2, False, [1.0])  # a plain 0.01 is not "1 %" printed as 1


@pytest.mark.parametrize("text", [
    "Gao et al. (2022, eq. 1) and Chouldechova (2017, eq. 2.6)", "Montgomery's Table 9.3", "arXiv:2210.10760",
    "$\\gamma = 0.99$", "$$x = 0.5$$", "`lr=1e-3, eps=0.1`", "Ziebart 2010, eqs. 6.1-6.2", "in 2019 and 1,797 images",
])
def test_locators_math_code_and_integers_are_not_checked(text):
    assert pn.prose_numbers(text) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name[:2] for p in NOTEBOOKS])
def test_every_lesson_prints_the_numbers_its_prose_quotes(path):
    problems = pn.check_notebook(path, pn.load_allow_list().get(path.name[:2]))
    assert not problems, "\n".join(problems) + "\nprint the number, fix the prose, or allow-list a non-result in tools/prose_numbers_allow.txt"
