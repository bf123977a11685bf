"""The whole test suite: labkit's pytest tests and every notebook.

Called by ``make test`` (the README's test command) and so by ``.ci/run``:

1. says whether this CPU can reproduce the stored outputs bit for bit
   (labkit/numerics.py) and pins kernel dispatch when it can;
2. fetches the registered real datasets (cache, ``$LABKIT_DATA_MIRROR``, then
   the canonical URL); a notebook that needs one that cannot be had is skipped
   with one line naming it;
3. makes sure the course's models are cached (verified, or trained once before
   parallel workers want them);
4. runs pytest: in exact mode nbval compares every notebook cell bit for bit;
   in tolerant mode tests/test_notebooks_tolerant.py executes every notebook
   and compares it with numbers allowed to differ within a stated tolerance.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import notebook_run
import repro_env

ROOT = repro_env.ROOT


def pytest_command(jobs: str, mode: str, extra: list[str]) -> list[str]:
    cmd = [sys.executable, "-m", "pytest", "-n", str(jobs), "--dist", "loadfile", "-rs"]
    if mode == "exact":
        # nbval's blocking client cannot lose a reply the way nbclient did
        # (tools/notebook_run.py), but no cell may hold the suite for long either.
        cmd += ["--nbval", "--nbval-current-env", "--nbval-sanitize-with", "tests/sanitize.cfg",
                "--nbval-cell-timeout", str(notebook_run.CELL_TIMEOUT), "tests", "notebooks", "solutions"]
    else:
        cmd += ["tests"]
    return cmd + extra


def fetch_datasets() -> None:
    """Fetch every registered dataset; downloads are allowed in this one step."""
    env = {k: v for k, v in os.environ.items() if k != "LABKIT_OFFLINE"}
    subprocess.run([sys.executable, "-m", "labkit.datasets", "fetch", "--allow-missing"], cwd=ROOT, env=env,
                   check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--jobs", default="2", help="pytest-xdist workers")
    parser.add_argument("--dry-run", action="store_true", help="print the mode and the pytest command, run nothing")
    args, extra = parser.parse_known_args()  # anything else goes to pytest
    repro_env.apply()
    mode = repro_env.numerics.mode()
    print(repro_env.numerics.describe(), flush=True)
    cmd = pytest_command(args.jobs, mode, extra)
    if args.dry_run:
        print("would run:", " ".join(cmd[1:]), flush=True)
        return 0
    start = time.monotonic()
    fetch_datasets()
    # Verify (or train) the course's models once, before parallel workers want them.
    notebook_run.train_course_models(ROOT)
    print("running:", " ".join(cmd[1:]), flush=True)
    rc = subprocess.call(cmd, cwd=ROOT)
    print(f"test suite finished in {time.monotonic() - start:.0f} s with exit code {rc}", flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
