"""Every check fails on its stub, passes on its reference, catches wrong answers,
and the committed notebooks show exactly that."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from labkit import exercises
from labkit.syllabus import LESSONS

ROOT = Path(__file__).resolve().parents[1]
ALL = exercises.all_exercises()


def _perturb(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float, np.number)):
        return value + 0.5 + abs(value) * 0.1
    if isinstance(value, np.ndarray):
        return value + 0.5 if value.dtype != bool else ~value
    if isinstance(value, torch.Tensor):
        return value + 0.5 if value.dtype != torch.bool else ~value
    if isinstance(value, str):
        return value + " (wrong)"
    if isinstance(value, (list, tuple)):
        return type(value)(_perturb(v) for v in value) if value else type(value)(["wrong"])
    if isinstance(value, dict):
        return {k: _perturb(v) for k, v in value.items()}
    return "wrong"


def _stub(*args, **kwargs):
    raise NotImplementedError()


@pytest.mark.parametrize("key", sorted(ALL))
def test_check_rejects_stub_accepts_reference_and_catches_wrong_answers(key):
    ex = ALL[key]
    assert exercises.run_check(key, _stub).status == "not attempted"
    assert exercises.run_check(key, ex.reference).status == "passed"
    wrong = lambda *a, **k: _perturb(ex.reference(*a, **k))  # noqa: E731
    result = exercises.run_check(key, wrong)
    assert result.status == "failed", result.message
    assert "expected" in result.message and "got" in result.message


@pytest.mark.parametrize("key", sorted(ALL))
def test_check_never_raises(key):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    assert exercises.run_check(key, broken).status == "failed"
    assert exercises.run_check(key, 42).status == "failed"


def test_unknown_exercise_reports_instead_of_raising(capsys):
    exercises.check("99.nothing", lambda: None)
    assert "[failed]" in capsys.readouterr().out


def test_exercise_metadata_is_valid():
    with pytest.raises(ValueError, match="difficulty"):
        exercises.Exercise("00.x", "t", abs, lambda rng: [], difficulty=4, importance="core", minutes=5)


def _check_outputs(path: Path) -> list[str]:
    nb = json.loads(path.read_text())
    texts = []
    for cell in nb["cells"]:
        if cell["cell_type"] == "code" and "check(" in "".join(cell["source"]) and "".join(cell["source"]).lstrip().startswith("check("):
            texts.append("".join("".join(o.get("text", "")) for o in cell.get("outputs", [])))
    return texts


LESSON_FILES = sorted(p.stem for p in (ROOT / "lessons").glob("[0-9][0-9]_*.py"))


@pytest.mark.parametrize("name", LESSON_FILES)
def test_notebooks_show_stub_and_solution_check_results(name):
    student = _check_outputs(ROOT / "notebooks" / f"{name}.ipynb")
    solved = _check_outputs(ROOT / "solutions" / f"{name}.ipynb")
    if not name.startswith("23_"):
        assert len(student) >= 2, f"{name} needs at least two checked exercises"
    assert len(student) == len(solved)
    for text in student:
        assert text.startswith("[not attempted yet]"), text
    for text in solved:
        assert text.startswith("[passed]"), text


def test_every_lesson_with_exercises_is_in_the_syllabus():
    numbers = {f"{lesson.number:02d}" for lesson in LESSONS}
    assert {key.split(".")[0] for key in ALL} <= numbers
