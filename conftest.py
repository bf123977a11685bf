"""Applies the reproducible environment to every pytest run from the repository
root (labkit's tests and nbval alike) before any kernel starts."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "tools"))

import repro_env  # noqa: E402

repro_env.apply()
