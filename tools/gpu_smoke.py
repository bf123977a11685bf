"""GPU smoke test: labkit's device-parametrized tests on CUDA, training throughput
on the GPU beside the CPU, and the ``large`` assistant trained on the GPU.

The test suite never needs a GPU (the build hides it: tools/repro_env.py); run
this when one is there::

    python tools/gpu_smoke.py              # all three steps
    python tools/gpu_smoke.py --no-train   # skip training the large assistant

On a machine without CUDA it says so and exits 0.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KEEP_GPU = {"LABKIT_KEEP_GPU": "1"}  # tools/repro_env.py then leaves the GPU visible to the tests


def device_tests() -> int:
    """Every test that takes the ``device`` fixture, on CUDA only; return pytest's exit code."""
    env = {**os.environ, **KEEP_GPU}
    cmd = [sys.executable, "-m", "pytest", "-q", "-k", "cuda", "tests"]
    print("running:", " ".join(cmd[1:]), flush=True)
    return subprocess.call(cmd, cwd=ROOT, env=env)


def train_throughput(config: str, device: str, steps: int) -> float:
    """Tokens per second of TinyGPT training steps (forward, backward, AdamW) under ``config``'s model."""
    import torch

    from labkit.lm.tinygpt import TinyGPT
    from labkit.lm.train import get_config

    cfg = get_config(config)
    torch.manual_seed(0)
    model = TinyGPT(cfg.model).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    batch = torch.randint(0, cfg.model.vocab_size, (cfg.batch_size, cfg.model.context + 1), device=device)

    def step() -> None:
        _, loss = model(batch[:, :-1], batch[:, 1:])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()  # warm-up: kernels chosen, memory allocated
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return steps * cfg.batch_size * cfg.model.context / (time.perf_counter() - start)


def throughput_table(steps: int) -> None:
    from labkit.lm.train import CONFIGS

    print(f"{'config':<10}{'CPU tokens/s':>16}{'CUDA tokens/s':>16}{'speed-up':>10}", flush=True)
    for name in CONFIGS:
        cpu = train_throughput(name, "cpu", 3)  # a few steps: the CPU is the slow side
        gpu = train_throughput(name, "cuda", steps)
        print(f"{name:<10}{cpu:>16,.0f}{gpu:>16,.0f}{gpu / cpu:>9.1f}x", flush=True)


def train_large() -> int:
    """``labkit prebuild --config large --device cuda``, timed."""
    start = time.perf_counter()
    code = subprocess.call([sys.executable, "-m", "labkit.cli", "prebuild", "--config", "large", "--device", "cuda"],
                           cwd=ROOT, env={**os.environ, **KEEP_GPU})
    print(f"large assistant on CUDA: {time.perf_counter() - start:.0f} s (exit code {code})", flush=True)
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=50, help="timed training steps per config on the GPU")
    parser.add_argument("--no-tests", action="store_true", help="skip the device-parametrized tests")
    parser.add_argument("--no-train", action="store_true", help="skip training the large assistant")
    args = parser.parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        print("no GPU: CUDA is not available to this PyTorch "
              f"({torch.__version__}); nothing to smoke-test (the test suite never needs one)")
        return 0
    print(f"GPU: {torch.cuda.get_device_name(0)}; torch {torch.__version__}, CUDA {torch.version.cuda}", flush=True)
    failures = 0
    if not args.no_tests:
        failures += device_tests() != 0
    throughput_table(args.steps)
    if not args.no_train:
        failures += train_large() != 0
    print("GPU smoke test:", "passed" if not failures else f"{failures} step(s) failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
