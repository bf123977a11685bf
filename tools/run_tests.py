"""The whole test suite: labkit's pytest tests and nbval on every notebook.

Called by ``make test`` (the README's test command) and so by ``.ci/run``.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time

import repro_env

ROOT = repro_env.ROOT


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", "--jobs", default="2", help="pytest-xdist workers")
    args, extra = parser.parse_known_args()  # anything else goes to pytest
    repro_env.apply()
    start = time.monotonic()
    # Build (or load the shipped) course models once, before parallel workers want them.
    subprocess.run([sys.executable, "-m", "labkit.lm.cache", "prebuild"], cwd=ROOT, check=True)
    cmd = [
        sys.executable, "-m", "pytest", "-n", str(args.jobs), "--dist", "loadfile",
        "--nbval", "--nbval-current-env", "--nbval-sanitize-with", "tests/sanitize.cfg",
        "--nbval-cell-timeout", "600",
        "tests", "notebooks", "solutions", *extra,
    ]
    print("running:", " ".join(cmd[1:]), flush=True)
    rc = subprocess.call(cmd, cwd=ROOT)
    print(f"test suite finished in {time.monotonic() - start:.0f} s with exit code {rc}", flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
