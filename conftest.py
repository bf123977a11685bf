"""Applies the reproducible environment to every pytest run from the repository
root (labkit's tests and nbval alike) before any kernel starts, and a time limit
to every test."""
import faulthandler
import os
import signal
import sys
import threading
from pathlib import Path

import pytest

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


# Seconds any one test (under nbval: one notebook cell) may run. nbval's own cell
# timeout (tools/notebook_run.py, 120 s) comes first for cells; this bounds every
# other test. LABKIT_TEST_TIME_LIMIT=0 lifts it; a test that trains a model
# declares its own, longer limit with @pytest.mark.time_limit(seconds).
TEST_TIME_LIMIT = int(os.environ.get("LABKIT_TEST_TIME_LIMIT", "300"))


def pytest_configure(config):
    config.addinivalue_line("markers", "time_limit(seconds): this test's own time limit (default 300 s)")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    usable = hasattr(signal, "SIGALRM") and threading.current_thread() is threading.main_thread()
    marker = item.get_closest_marker("time_limit")
    limit = int(marker.args[0]) if marker and TEST_TIME_LIMIT > 0 else TEST_TIME_LIMIT
    if limit <= 0 or not usable:
        yield
        return

    def over_time(signum, frame):
        raise TimeoutError(f"{item.nodeid} ran over its {limit} s time limit (LABKIT_TEST_TIME_LIMIT, time_limit marker)")

    previous = signal.signal(signal.SIGALRM, over_time)
    signal.alarm(limit)
    # A hang inside C code never returns to the alarm's Python handler: a minute
    # later, print every thread's stack and end this test process.
    faulthandler.dump_traceback_later(limit + 60, exit=True)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
