"""Applies the reproducible environment to every pytest run from the repository
root (labkit's tests and nbval alike) before any kernel starts."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "tools"))

import repro_env  # noqa: E402

repro_env.apply()

# Property-based tests draw the same examples on every run and machine (the
# suite must give the same result three times in a row), and never replay
# failures saved in a local .hypothesis database that a clean clone lacks.
from hypothesis import settings  # noqa: E402

settings.register_profile("labkit", derandomize=True, database=None)
settings.load_profile("labkit")


def pytest_collection_modifyitems(config, items):
    """Skip a notebook whose lesson needs real datasets that cannot be had here
    (offline, no mirror, not cached), with the one line that the lesson itself
    prints in that case, instead of reporting every cell as a diff."""
    from labkit import datasets, syllabus

    reasons: dict[Path, str | None] = {}
    for item in items:
        path = Path(str(item.fspath))
        if path.suffix != ".ipynb":
            continue
        if path not in reasons:
            lesson = syllabus.lesson_for_notebook(path)
            lacking = datasets.missing(lesson.datasets) if lesson else []
            reasons[path] = datasets.unavailable_message(lacking) if lacking else None
        if reasons[path]:
            item.add_marker(_skip_mark(reasons[path]))


def _skip_mark(reason: str):
    import pytest

    return pytest.mark.skip(reason=reason)
