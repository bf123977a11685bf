"""Check that pinned training is bit-identical on other x86-64 CPUs, emulated.

Trains the ``tiny`` assistant (about 2 s natively) on this machine and under
QEMU's user-mode emulator with other CPU models (an Intel Haswell and
Broadwell without AVX-512, an AMD EPYC), all with the kernel-dispatch pins of
labkit/numerics.py, and compares a sha256 over every trained weight. Without
the pins the host (AVX-512) and the emulated AVX2 CPUs disagree.

Needs Debian's ``qemu-user`` (``apt-get install qemu-user``); each emulated run
takes a few minutes. Not part of the test suite: a developer's check after a
change to the pins or to a dependency::

    python tools/cross_cpu_check.py [--cpus Haswell EPYC] [--unpinned]
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import repro_env

ROOT = repro_env.ROOT
PROBE = """
import hashlib, sys
from labkit.lm.train import train_assistant
a = train_assistant("tiny")
h = hashlib.sha256()
for m in (a.base, a.sft):
    for v in m.state_dict().values():
        h.update(v.detach().cpu().numpy().tobytes())
print(h.hexdigest())
"""


def run(cpu: str | None, pinned: bool) -> str:
    repro_env.apply()
    env = {k: v for k, v in os.environ.items() if k not in repro_env.numerics.DISPATCH_PINS}
    if pinned:
        env.update(repro_env.numerics.DISPATCH_PINS)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), sysconfig.get_paths()["purelib"]])
    exe = os.path.realpath(sys.executable)
    cmd = [exe, "-c", PROBE] if cpu is None else ["qemu-x86_64", "-cpu", cpu, exe, "-c", PROBE]
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cpus", nargs="+", default=["Haswell", "Broadwell", "EPYC"], help="QEMU CPU models")
    parser.add_argument("--unpinned", action="store_true", help="also show the unpinned hashes")
    args = parser.parse_args()
    if shutil.which("qemu-x86_64") is None:
        print("qemu-x86_64 not found: apt-get install qemu-user", file=sys.stderr)
        return 2
    variants = [True, False] if args.unpinned else [True]
    ok = True
    for pinned in variants:
        host = run(None, pinned)
        print(f"{'pinned' if pinned else 'unpinned':<9} host        {host[:16]}", flush=True)
        for cpu in args.cpus:
            got = run(cpu, pinned)
            same = got == host
            ok &= same or not pinned
            print(f"{'pinned' if pinned else 'unpinned':<9} {cpu:<11} {got[:16]} {'same' if same else 'DIFFERENT'}",
                  flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
