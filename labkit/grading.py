"""Grade students' notebooks: run each one headlessly and read its exercise checks.

Every exercise's check cell prints exactly one of ``[passed] NN.name``,
``[failed] NN.name, ...`` or ``[not attempted yet] NN.name`` and never raises
(:mod:`labkit.exercises`). Grading runs each submitted notebook top to bottom
in its own process and its own fresh kernel, in a scratch folder, offline
(``LABKIT_OFFLINE=1``), with a time limit per notebook, then reads what each
check cell printed. A check cell that raised (the student's code broke the
cell) or never ran (an earlier cell hung until the time limit, the kernel
died) is an ``error``.

**Grading executes the students' code.** Run it in a container or under a
throwaway account with nothing worth stealing; the time limit bounds how long
a notebook runs, not what it does.

The exercises a notebook must contain come from the registry, by the lesson
its file name names (``05_reward_modeling.ipynb``); a notebook under another
name is graded on the check cells it contains. A student who deletes a check
cell gets ``error`` for that exercise, not a silent gap.
"""
from __future__ import annotations

import csv
import io
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from labkit.validation import ensure_int

STATUSES = ("passed", "failed", "not attempted", "error")
# What a check cell prints first (labkit.exercises.run_check), and how a check
# cell names its exercise. Both anchored and free of nested repetition, so they
# run in linear time on whatever a student's notebook holds.
_RESULT = re.compile(r"^\[(passed|failed|not attempted yet)\] (\d\d\.\w+)", re.M)
_CHECK_CALL = re.compile(r"""\bcheck\(\s*["'](\d\d\.\w+)["']""")
# The course checkout's notebook runner (nbclient with a stall fixed, every wait bounded).
NOTEBOOK_RUN = Path(__file__).resolve().parents[1] / "tools" / "notebook_run.py"


@dataclass(frozen=True)
class ExerciseResult:
    """One row of the grading CSV."""

    student: str
    notebook: str
    exercise: str
    status: str     # one of STATUSES
    detail: str     # the first line the check printed, or why it is an error
    seconds: float  # the whole notebook's run time


def expected_exercises(notebook, filename: str) -> list[str]:
    """The exercise keys a notebook must check: the registry's for the lesson its
    ``filename`` names (after an ``owner__`` prefix), in the order the notebook's
    check cells name them, then any it never names."""
    from labkit import exercises, syllabus

    named = [key for cell in notebook.cells if cell.cell_type == "code" for key in _CHECK_CALL.findall(cell.source)]
    lesson = syllabus.lesson_for_notebook(Path(filename).name.split("__")[-1])
    if lesson is None:
        return list(dict.fromkeys(named))
    registered = [k for k in exercises.all_exercises() if k.startswith(f"{lesson.number:02d}.")]
    return list(dict.fromkeys([k for k in named if k in registered] + registered))


def read_results(notebook) -> dict[str, tuple[str, str]]:
    """``{exercise: (status, detail)}`` from an executed notebook's check cells."""
    found: dict[str, tuple[str, str]] = {}
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        keys = _CHECK_CALL.findall(cell.source)
        if not keys:
            continue
        outputs = cell.get("outputs", [])
        text = "".join("".join(o.get("text", "")) for o in outputs if o.get("output_type") == "stream")
        printed = {key: (word, line) for word, key, line in
                   ((m[1], m[2], text[m.start():].split("\n", 1)[0]) for m in _RESULT.finditer(text))}
        error = next((o for o in outputs if o.get("output_type") == "error"), None)
        for key in keys:
            if key in printed:
                word, line = printed[key]
                found[key] = ("not attempted" if word == "not attempted yet" else word, line)
            elif error is not None:
                found[key] = ("error", f"the check cell raised {error.get('ename')}: {error.get('evalue', '')}"[:300])
            elif cell.get("execution_count") is None:
                found[key] = ("error", "the check cell never ran (an earlier cell timed out or the kernel died)")
            else:
                found[key] = ("error", "the check cell printed no result")
    return found


def _kernel_env() -> dict[str, str]:
    """Offline, one thread per kernel, no progress bars, figures not drawn to a screen."""
    env = {**os.environ, "LABKIT_OFFLINE": "1", "LABKIT_PROGRESS": "0", "TQDM_DISABLE": "1",
           "OMP_NUM_THREADS": "1", "LABKIT_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
    env.pop("MPLBACKEND", None)
    return env


def grade_notebook(path: Path, student: str, timeout: int = 600) -> list[ExerciseResult]:
    """Run one notebook in its own process and kernel; one result per exercise.

    Parameters
    ----------
    path : Path
        The submitted notebook.
    student : str
        Who submitted it (a CSV column).
    timeout : int
        Seconds the whole notebook may run; the process and its kernel are
        killed after that, and every check that had not run is an ``error``.

    Returns
    -------
    list of ExerciseResult
    """
    import nbformat

    timeout = ensure_int("timeout", timeout, low=1)
    path = Path(path)
    start = time.monotonic()
    try:
        submitted = nbformat.read(path, as_version=4)
    except Exception as exc:  # a student's file may be anything
        return [ExerciseResult(student, path.name, "*", "error", f"not a readable notebook: {exc}"[:300], 0.0)]
    wanted = expected_exercises(submitted, path.name)
    if not NOTEBOOK_RUN.exists():
        raise RuntimeError(f"grading needs the course repository's {NOTEBOOK_RUN}: install labkit with "
                           "`pip install -e .` from a checkout")
    with tempfile.TemporaryDirectory(prefix="labkit-grade-") as tmp:
        executed, scratch = Path(tmp) / "executed.ipynb", Path(tmp) / "cwd"
        scratch.mkdir()  # the kernel works here, not beside the submissions
        cmd = [sys.executable, str(NOTEBOOK_RUN), str(path), str(executed), "--cwd", str(scratch),
               "--cell-timeout", str(timeout)]
        # A session of its own, so that a timeout kills the kernel too.
        proc = subprocess.Popen(cmd, env=_kernel_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            log, _ = proc.communicate(timeout=timeout)
            last = log.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
            missing = ("the notebook has no check cell for this exercise" if proc.returncode == 0
                       else f"the notebook could not be run: {last[0]}"[:300])
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            missing = f"the notebook ran past its {timeout} s limit"
        seconds = round(time.monotonic() - start, 1)
        results = read_results(nbformat.read(executed, as_version=4)) if executed.exists() else {}
    return [ExerciseResult(student, path.name, key, *results.get(key, ("error", missing)), seconds) for key in wanted]


def find_submissions(paths) -> list[tuple[str, Path]]:
    """``(student, notebook)`` pairs under ``paths``.

    A folder's notebooks in sub-folders belong to the sub-folder's name
    (``submissions/alice/05_reward_modeling.ipynb`` is alice's); a notebook
    directly in a given folder, or given by itself, belongs to its file stem's
    owner as written before ``__`` (``alice__05_reward_modeling.ipynb``), else to
    its parent folder's name.

    Raises
    ------
    ValueError
        A path does not exist, or no notebook is found.
    """
    found: list[tuple[str, Path]] = []
    for given in map(Path, paths):
        if not given.exists():
            raise ValueError(f"paths: {given} does not exist")
        if given.is_file():
            found.append((_owner(given, given.parent), given))
            continue
        for nb in sorted(given.rglob("*.ipynb")):
            if ".ipynb_checkpoints" in nb.parts:
                continue
            rel = nb.relative_to(given)
            found.append((rel.parts[0] if len(rel.parts) > 1 else _owner(nb, given), nb))
    if not found:
        raise ValueError(f"paths: no notebook (*.ipynb) found under {', '.join(map(str, paths))}")
    return found


def _owner(nb: Path, folder: Path) -> str:
    if "__" in nb.stem:
        return nb.stem.split("__", 1)[0]
    return folder.resolve().name


def grade(paths, timeout: int = 600, jobs: int = 1, progress_bar: bool = True) -> list[ExerciseResult]:
    """Grade every notebook under ``paths`` (files or folders), ``jobs`` at a time.

    Returns
    -------
    list of ExerciseResult
        In the order :func:`find_submissions` lists the notebooks.
    """
    from concurrent.futures import ThreadPoolExecutor

    from labkit.core import progress

    jobs = ensure_int("jobs", jobs, low=1)
    submissions = find_submissions(paths)
    # The child processes do the work; threads only wait for them.
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        graded = pool.map(lambda item: grade_notebook(item[1], item[0], timeout), submissions)
        if progress_bar:
            graded = progress(graded, total=len(submissions), desc="grading", unit="notebook")
        return [row for rows in graded for row in rows]


def write_csv(rows: list[ExerciseResult], out) -> None:
    """One line per (student, notebook, exercise): the columns of :class:`ExerciseResult`."""
    writer = csv.writer(out)
    writer.writerow([f.name for f in fields(ExerciseResult)])
    for row in rows:
        writer.writerow(list(asdict(row).values()))


def summary(rows: list[ExerciseResult]) -> str:
    """Two plain-text tables: each exercise's counts by status, each student's passed count."""
    lines = [f"{'exercise':<28}" + "".join(f"{s:>15}" for s in STATUSES)]
    for key in dict.fromkeys(r.exercise for r in rows):
        counts = Counter(r.status for r in rows if r.exercise == key)
        lines.append(f"{key:<28}" + "".join(f"{counts[s]:>15}" for s in STATUSES))
    lines += ["", f"{'student':<28}{'passed':>10}{'of':>6}   notebooks"]
    for student in dict.fromkeys(r.student for r in rows):
        mine = [r for r in rows if r.student == student]
        notebooks = ", ".join(dict.fromkeys(r.notebook for r in mine))
        lines.append(f"{student:<28}{sum(r.status == 'passed' for r in mine):>10}{len(mine):>6}   {notebooks}")
    return "\n".join(lines)


def csv_text(rows: list[ExerciseResult]) -> str:
    buffer = io.StringIO()
    write_csv(rows, buffer)
    return buffer.getvalue()


__all__ = ["STATUSES", "ExerciseResult", "expected_exercises", "read_results", "grade_notebook",
           "find_submissions", "grade", "write_csv", "summary", "csv_text"]
