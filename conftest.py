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
