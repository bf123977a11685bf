"""Device choice, determinism, progress bars and the environment doctor.

Every lesson starts with ``labkit.setup()``: it seeds python, numpy and torch,
fixes the CPU thread count (so stored notebook outputs reproduce), and returns
the device the lesson should use.
"""
from __future__ import annotations

import os
import platform
import random
import sys
from typing import Iterable, Iterator, TypeVar

import numpy as np
import torch

from labkit.validation import ensure_int

T = TypeVar("T")

DEVICE_ENV = "LABKIT_DEVICE"        # "cpu", "cuda", "cuda:1", "mps"
THREADS_ENV = "LABKIT_NUM_THREADS"  # CPU threads for torch (the test command sets 1)
PROGRESS_ENV = "LABKIT_PROGRESS"    # "0" silences progress bars


def get_device(preferred: str | None = None) -> torch.device:
    """Pick the device: ``preferred``, else ``$LABKIT_DEVICE``, else cuda, mps, cpu.

    Parameters
    ----------
    preferred : str or None
        A torch device string such as ``"cpu"`` or ``"cuda:0"``. ``None`` means
        "choose for me".

    Returns
    -------
    torch.device
    """
    choice = preferred if preferred is not None else os.environ.get(DEVICE_ENV, "").strip()
    if choice:
        if not isinstance(choice, str):
            raise TypeError(f"preferred must be a device string such as 'cpu' or 'cuda', got {type(choice).__name__}")
        try:
            device = torch.device(choice)
        except RuntimeError as exc:
            raise ValueError(f"device {choice!r} is not a torch device string (try 'cpu', 'cuda' or 'mps')") from exc
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {choice!r} was requested but CUDA is not available here")
        if device.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise ValueError(f"device {choice!r} was requested but MPS is not available here")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if hasattr(torch.backends, "mps") and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int = 0) -> None:
    """Seed python's ``random``, numpy's global RNG and torch (CPU and CUDA).

    Lessons should still prefer explicit ``np.random.default_rng(seed)`` and
    ``torch.Generator`` objects; this catches library code that uses the
    global generators.
    """
    seed = ensure_int("seed", seed, low=0, high=2**32 - 1)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def setup(seed: int = 0, threads: int | None = None) -> torch.device:
    """Prepare a lesson: seed everything, fix CPU threads, return the device.

    Parameters
    ----------
    seed : int
        Seed for python, numpy and torch.
    threads : int or None
        Torch CPU threads. ``None`` reads ``$LABKIT_NUM_THREADS`` and leaves
        torch's default when that is unset.

    Returns
    -------
    torch.device
        The device from :func:`get_device`.
    """
    if threads is None and os.environ.get(THREADS_ENV):
        threads = int(os.environ[THREADS_ENV])
    if threads is not None:
        threads = ensure_int("threads", threads, low=1, high=1024)
        torch.set_num_threads(threads)
    seed_everything(seed)
    torch.use_deterministic_algorithms(False)  # CPU kernels used here are deterministic already
    return get_device()


def progress_enabled() -> bool:
    """Progress bars show unless ``$LABKIT_PROGRESS=0``, ``$TQDM_DISABLE=1`` or we run under CI."""
    if os.environ.get(PROGRESS_ENV, "").strip() == "0":
        return False
    if os.environ.get("TQDM_DISABLE", "").strip().lower() in {"1", "true", "yes"}:
        return False  # tqdm's own switch: an explicit disable= argument would otherwise override it
    return os.environ.get("CI", "").strip().lower() not in {"1", "true", "yes"}


def progress(iterable: Iterable[T], desc: str | None = None, total: int | None = None, **kwargs) -> Iterator[T]:
    """Wrap ``iterable`` in a ``tqdm.auto`` bar that is silent under CI and nbval."""
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, disable=not progress_enabled(), leave=False, **kwargs)


def doctor() -> list[tuple[str, str, bool]]:
    """Check the environment a lesson needs.

    Returns
    -------
    list of (check, value, ok)
        One row per check: python and package versions, the device, CPU
        threads, and whether the machine is online (the course never needs to be).
    """
    import importlib.metadata as md

    rows: list[tuple[str, str, bool]] = []
    rows.append(("python", platform.python_version(), sys.version_info >= (3, 10)))
    for pkg in ["numpy", "scipy", "torch", "matplotlib", "ipywidgets", "scikit-learn", "shap", "lime", "tqdm", "jupyterlab"]:
        try:
            rows.append((pkg, md.version(pkg), True))
        except md.PackageNotFoundError:
            rows.append((pkg, "missing", False))
    device = get_device()
    rows.append(("device", str(device), True))
    if device.type == "cuda":
        rows.append(("gpu", torch.cuda.get_device_name(device), True))
    rows.append(("torch CPU threads", str(torch.get_num_threads()), True))
    rows.append(("progress bars", "on" if progress_enabled() else "off (CI)", True))
    rows.append(("downloads needed", "none: lessons generate their data offline", True))
    from labkit.datasets import MIRROR_ENV, cache_dir

    mirror = os.environ.get(MIRROR_ENV, "")
    rows.append(("real-data mirror", mirror or "not set (real-data cells download or explain)", True))
    rows.append(("dataset cache", str(cache_dir()), True))
    return rows


__all__ = ["get_device", "seed_everything", "setup", "progress", "progress_enabled", "doctor"]
