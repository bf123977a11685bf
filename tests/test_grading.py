"""labkit grade: a solved, an unsolved, a broken and a runaway notebook, each in its own kernel."""
from __future__ import annotations

import csv
import io

import nbformat
import pytest

from labkit import grading

IMPORTS = "from labkit.exercises import check\nfrom labkit import basics, intervals"
SOLVED = {
    "softmax": "def softmax(logits, temperature=1.0):\n    return basics.softmax(logits, temperature)",
    "wilson_interval": "def wilson_interval(successes, n, confidence=0.95):\n"
                       "    return intervals.wilson_interval(successes, n, confidence)",
}
UNSOLVED = {name: f"def {name}(*args, **kwargs):\n    # YOUR CODE HERE\n    raise NotImplementedError()"
            for name in SOLVED}
WRONG_SOFTMAX = "def softmax(logits, temperature=1.0):\n    import numpy as np\n    return np.exp(logits) / np.exp(logits).sum()"


def _notebook(definitions: dict[str, str], first: str = IMPORTS) -> nbformat.NotebookNode:
    """A lesson-00-shaped notebook: imports, then per exercise a code cell and its check cell."""
    cells = [nbformat.v4.new_code_cell(first)]
    for name, code in definitions.items():
        cells += [nbformat.v4.new_code_cell(code), nbformat.v4.new_code_cell(f'check("00.{name}", {name})')]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


@pytest.fixture(scope="module")
def submissions(tmp_path_factory):
    root = tmp_path_factory.mktemp("submissions")
    notebooks = {
        "alice": _notebook(SOLVED),
        "bob": _notebook(UNSOLVED),
        # carol's softmax cell does not even parse, and her second exercise is wrong
        "carol": _notebook({"softmax": "def softmax(logits:\n    return logits",
                            "wilson_interval": SOLVED["wilson_interval"].replace("confidence)", "0.5)")}),
        "dave": _notebook({"softmax": WRONG_SOFTMAX}),  # and no wilson_interval check cell at all
    }
    for student, nb in notebooks.items():
        (root / student).mkdir()
        nbformat.write(nb, root / student / "00_welcome.ipynb")
    (root / "erin__00_welcome.ipynb").write_text("{not json")
    return root


@pytest.fixture(scope="module")
def graded(submissions):
    return grading.grade([submissions], timeout=180, jobs=2, progress_bar=False)


def _status(rows, student, exercise):
    return next(r.status for r in rows if r.student == student and r.exercise == exercise)


def test_solved_unsolved_and_broken_notebooks(graded):
    assert _status(graded, "alice", "00.softmax") == _status(graded, "alice", "00.wilson_interval") == "passed"
    assert _status(graded, "bob", "00.softmax") == _status(graded, "bob", "00.wilson_interval") == "not attempted"
    assert _status(graded, "carol", "00.softmax") == "error"  # the check cell raised NameError
    carol = next(r for r in graded if r.student == "carol" and r.exercise == "00.softmax")
    assert "NameError" in carol.detail
    assert _status(graded, "carol", "00.wilson_interval") == "failed"
    assert _status(graded, "dave", "00.softmax") == "failed"
    dave = next(r for r in graded if r.student == "dave" and r.exercise == "00.wilson_interval")
    assert dave.status == "error" and "no check cell" in dave.detail
    assert [r.status for r in graded if r.student == "erin"] == ["error"]


def test_csv_and_summary(graded):
    rows = list(csv.DictReader(io.StringIO(grading.csv_text(graded))))
    assert {r["student"] for r in rows} == {"alice", "bob", "carol", "dave", "erin"}
    assert {r["status"] for r in rows} == set(grading.STATUSES)
    alice = [r for r in rows if r["student"] == "alice"]
    assert [r["exercise"] for r in alice] == ["00.softmax", "00.wilson_interval"]
    assert all(r["notebook"] == "00_welcome.ipynb" and float(r["seconds"]) > 0 for r in alice)
    table = grading.summary(graded)
    softmax = next(line for line in table.splitlines() if line.startswith("00.softmax"))
    assert softmax.split()[1:] == ["1", "1", "1", "1"]  # passed (alice), failed (dave), not attempted (bob), error (carol)
    assert any(line.split()[:3] == ["alice", "2", "2"] for line in table.splitlines())


def test_a_runaway_notebook_is_stopped_at_its_time_limit(tmp_path):
    nb = _notebook({"softmax": "import time\ntime.sleep(600)"})
    path = tmp_path / "00_welcome.ipynb"
    nbformat.write(nb, path)
    rows = grading.grade_notebook(path, "mallory", timeout=20)
    assert [(r.exercise, r.status) for r in rows] == [("00.softmax", "error"), ("00.wilson_interval", "error")]
    assert "20 s limit" in rows[0].detail and rows[0].seconds < 60


def test_students_are_named_by_folder_or_prefix(tmp_path):
    (tmp_path / "zoe").mkdir()
    for path in (tmp_path / "zoe" / "05_reward_modeling.ipynb", tmp_path / "yan__05_reward_modeling.ipynb"):
        nbformat.write(_notebook({}), path)
    assert [s for s, _ in grading.find_submissions([tmp_path])] == ["yan", "zoe"]
    with pytest.raises(ValueError, match="does not exist"):
        grading.find_submissions([tmp_path / "missing"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no notebook"):
        grading.find_submissions([tmp_path / "empty"])


def test_check_lines_are_read_only_from_check_cells():
    nb = _notebook(SOLVED)
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="[passed] 00.softmax: fake\n")]
    nb.cells[2].outputs = [nbformat.v4.new_output("stream", name="stdout", text="[failed] 00.softmax, case 1 of 9\n")]
    nb.cells[2].execution_count = 3
    assert grading.read_results(nb)["00.softmax"] == ("failed", "[failed] 00.softmax, case 1 of 9")
    assert grading.read_results(nb)["00.wilson_interval"][0] == "error"  # never ran
