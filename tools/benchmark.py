"""Benchmarks for the closing notes: notebooks, attacks, attributions, moderation, TinyGPT.

    make bench                      # everything
    python tools/benchmark.py notebooks pgd ig moderation tinygpt

Optional comparisons (torchattacks, Captum) are imported from
``.cache/bench-extras``, where ``make bench`` installs them with ``--no-deps``
(torchattacks declares torchvision, whose PyPI wheel does not load beside the
CPU torch pinned here; neither library needs it for what is measured).
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import repro_env

ROOT = repro_env.ROOT
EXTRAS = ROOT / ".cache" / "bench-extras"


def _timeit(fn, repeat: int = 5, warmup: int = 1) -> float:
    """Median wall time in seconds over ``repeat`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def execute_one(path: str) -> None:
    """Child mode: execute one notebook, print wall time and peak RSS (self or kernel)."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    t0 = time.perf_counter()
    NotebookClient(nb, kernel_name="python3", timeout=600, resources={"metadata": {"path": str(Path(path).parent)}}).execute()
    wall = time.perf_counter() - t0
    peak_kb = max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    print(json.dumps({"wall_s": wall, "peak_mb": peak_kb / 1024}))


def bench_notebooks() -> None:
    print("\n## Notebooks (executed one at a time, repro environment: CPU, 1 thread)\n")
    print("| notebook | wall (s) | peak memory (MB) |\n|---|---:|---:|")
    worst = 0.0
    for folder in ("notebooks", "solutions"):
        for path in sorted((ROOT / folder).glob("*.ipynb")):
            out = subprocess.run([sys.executable, __file__, "--execute-one", str(path)], capture_output=True, text=True, cwd=ROOT)
            if out.returncode != 0:
                print(f"| {folder}/{path.name} | FAILED | |")
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            worst = max(worst, r["wall_s"])
            print(f"| {folder}/{path.name} | {r['wall_s']:.1f} | {r['peak_mb']:.0f} |", flush=True)
    print(f"\nslowest notebook: {worst:.1f} s")


def _digits_model():
    import torch
    from sklearn.datasets import load_digits

    torch.manual_seed(0)
    digits = load_digits()
    x = torch.tensor(digits.images[:512] / 16.0, dtype=torch.float32).unsqueeze(1)
    y = torch.tensor(digits.target[:512])
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10)).eval()
    return model, x, y


def bench_pgd() -> None:
    import torch

    from labkit import robustness

    print("\n## PGD, 512 digits, L-inf eps=0.1, alpha=0.02, 10 steps, random start (median of 5)\n")
    model, x, y = _digits_model()
    labkit_s = _timeit(lambda: robustness.pgd(model, x, y, eps=0.1, alpha=0.02, steps=10, generator=torch.Generator().manual_seed(0)))
    print(f"labkit.robustness.pgd : {labkit_s * 1000:.1f} ms")
    try:
        sys.path.insert(0, str(EXTRAS))
        import torchattacks
    except ImportError:
        print("torchattacks          : not installed (make bench installs it)")
        return
    attack = torchattacks.PGD(model, eps=0.1, alpha=0.02, steps=10, random_start=True)
    ta_s = _timeit(lambda: attack(x, y))
    print(f"torchattacks.PGD {torchattacks.__version__}: {ta_s * 1000:.1f} ms  (labkit / torchattacks = {labkit_s / ta_s:.2f})")


def bench_ig() -> None:
    import torch

    from labkit import interpret

    print("\n## Integrated gradients, 64 inputs x 30 features, MLP, 50 steps, Gauss-Legendre (median of 5)\n")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(30, 64), torch.nn.Tanh(), torch.nn.Linear(64, 2)).eval()
    x = torch.randn(64, 30)
    target = torch.zeros(64, dtype=torch.long)
    for method in ("gausslegendre", "riemann_trapezoid"):
        ours = _timeit(lambda: interpret.integrated_gradients(model, x, target=target, steps=50, method=method))
        line = f"{method:<18} labkit {ours * 1000:.1f} ms"
        try:
            sys.path.insert(0, str(EXTRAS))
            from captum.attr import IntegratedGradients

            ig = IntegratedGradients(model)
            theirs = _timeit(lambda: ig.attribute(x, target=target, n_steps=50, method=method))
            line += f", captum {theirs * 1000:.1f} ms (labkit / captum = {ours / theirs:.2f})"
        except ImportError:
            line += ", captum not installed"
        print(line)


def bench_moderation() -> None:
    from labkit import moderation

    print("\n## Moderation pipeline\n")
    bench = getattr(moderation, "benchmark", None)
    if bench is None:
        print("labkit.moderation.benchmark not available")
        return
    for key, value in bench().items():
        print(f"{key}: {value}")


def bench_tinygpt() -> None:
    print("\n## TinyGPT\n")
    try:
        from labkit import train
    except ImportError:
        print("labkit.train not available")
        return
    bench = getattr(train, "benchmark", None)
    if bench is None:
        print("labkit.train.benchmark not available")
        return
    for key, value in bench().items():
        print(f"{key}: {value}")


SECTIONS = {"notebooks": bench_notebooks, "pgd": bench_pgd, "ig": bench_ig, "moderation": bench_moderation, "tinygpt": bench_tinygpt}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sections", nargs="*", help=f"any of {', '.join(SECTIONS)} (default: all)")
    parser.add_argument("--execute-one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    repro_env.apply()
    if args.execute_one:
        execute_one(args.execute_one)
        return 0
    unknown = set(args.sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    import torch

    torch.set_num_threads(1)
    for name in args.sections or SECTIONS:
        SECTIONS[name]()
    return 0


if __name__ == "__main__":
    sys.exit(main())
