"""Bit-identical numerics: pin every library's CPU kernel dispatch.

PyTorch, MKL, oneDNN, OpenBLAS, NumPy and numba each look at the processor
when they start and choose the widest kernels it supports. An AVX-512 kernel
sums in another order than an AVX2 one, so the same notebook prints 0.807 on
one laptop and 0.809 on the next, and the same training run ends in another
model. Pinning each library to one code path that every x86-64 CPU with AVX2
has (with or without AVX-512, Intel or AMD) makes outputs bit-identical:

=============================  ============  ==========================================
variable                       value         what it pins
=============================  ============  ==========================================
``ATEN_CPU_CAPABILITY``        ``avx2``      PyTorch's vectorised ATen kernels
``MKL_CBWR``                   COMPATIBLE    MKL (PyTorch's BLAS and vector maths). Its
                                             AVX2 branch still differs between Intel and
                                             AMD (``torch.exp`` does, measured); the
                                             compatible branch is one code path everywhere
``ONEDNN_MAX_CPU_ISA``         ``AVX2``      oneDNN, which some PyTorch ops call
``OPENBLAS_CORETYPE``          ``Haswell``   NumPy's and SciPy's OpenBLAS
``NPY_DISABLE_CPU_FEATURES``   AVX-512 sets  NumPy's own SIMD loops
``NUMBA_CPU_NAME``             ``haswell``   numba's JIT (used by SHAP)
=============================  ============  ==========================================

Each variable is read once, when its library loads, so it must be in the
environment before the process imports NumPy or PyTorch: the build, the test
command and the training command set it for the processes they start
(:func:`pinned_environment`, :func:`reexec_pinned`).

Other CPUs (arm64, Apple silicon, x86-64 without AVX2) have none of these code
paths: there the outputs cannot be bit-identical, and the test command runs in
*tolerant* mode (see :func:`mode`). ``LABKIT_NUMERICS=tolerant`` forces that
mode on any machine.

This module imports nothing heavy, so tools can load it before NumPy.
"""
from __future__ import annotations

import os
import platform
import sys

MODE_ENV = "LABKIT_NUMERICS"  # "exact" or "tolerant"; unset: exact where the CPU allows
MODES = ("exact", "tolerant")

DISPATCH_PINS = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "MKL_CBWR": "COMPATIBLE",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "OPENBLAS_CORETYPE": "Haswell",
    "NPY_DISABLE_CPU_FEATURES": "X86_V4,AVX512_ICL,AVX512_SPR",
    "NUMBA_CPU_NAME": "haswell",
}
# CPU features the pinned code paths need.
REQUIRED_FLAGS = ("avx2", "fma")


def cpu_flags() -> set[str]:
    """The processor's feature flags (Linux ``/proc/cpuinfo``); empty if unknown."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def exact_supported() -> tuple[bool, str]:
    """Whether this CPU can reproduce the stored outputs bit for bit, and why.

    Returns
    -------
    (bool, str)
        ``True`` on x86-64 with AVX2 and FMA; the reason names the CPU otherwise.
    """
    machine = platform.machine().lower()
    if machine not in ("x86_64", "amd64"):
        return False, f"this is a {machine or 'unknown'} CPU, not x86-64"
    flags = cpu_flags()
    if not flags:
        return False, "this system does not report CPU features (no /proc/cpuinfo)"
    missing = [f for f in REQUIRED_FLAGS if f not in flags]
    if missing:
        return False, f"this x86-64 CPU lacks {', '.join(missing).upper()}"
    return True, "x86-64 with AVX2" + (" and AVX-512" if "avx512f" in flags else "")


def mode() -> str:
    """``"exact"`` or ``"tolerant"``: ``$LABKIT_NUMERICS`` if set, else what the CPU allows.

    Raises
    ------
    ValueError
        ``$LABKIT_NUMERICS`` holds something other than ``exact`` or ``tolerant``,
        or asks for ``exact`` on a CPU that cannot give it.
    """
    asked = os.environ.get(MODE_ENV, "").strip().lower()
    if asked and asked not in MODES:
        raise ValueError(f"{MODE_ENV} must be one of {MODES}, got {asked!r}")
    ok, why = exact_supported()
    if asked == "exact" and not ok:
        raise ValueError(f"{MODE_ENV}=exact, but {why}: stored outputs cannot be bit-identical here")
    if asked:
        return asked
    return "exact" if ok else "tolerant"


def pinned_environment() -> dict[str, str]:
    """The variables to add to a child process's environment (empty in tolerant mode)."""
    return dict(DISPATCH_PINS) if mode() == "exact" else {}


def is_pinned(environ=None) -> bool:
    """Whether ``environ`` (default: this process's) already holds every pin."""
    environ = os.environ if environ is None else environ
    return all(environ.get(k) == v for k, v in DISPATCH_PINS.items())


def describe() -> str:
    """One line for the top of a test or build log."""
    ok, why = exact_supported()
    if mode() == "exact":
        return f"numerics: exact ({why}; kernel dispatch pinned to AVX2)"
    forced = os.environ.get(MODE_ENV, "").strip().lower() == "tolerant" and ok
    reason = f"{MODE_ENV}=tolerant" if forced else why
    return (f"numerics: tolerant ({reason}): stored outputs cannot be bit-identical here; every notebook still "
            "runs top to bottom and is compared with numbers allowed to differ within a tolerance")


def reexec_pinned(module: str, argv: list[str]) -> None:
    """Restart ``python -m module argv...`` with the pins if this process lacks them.

    A training command calls this first thing, before NumPy or PyTorch are
    imported, so that what it trains does not depend on which CPU ran it.
    Does nothing in tolerant mode or when the pins are already set.
    """
    pins = pinned_environment()
    if not pins or is_pinned():
        return
    env = {**os.environ, **pins}
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable, "-m", module, *argv], env)


def main(argv: list[str] | None = None) -> int:
    """``python -m labkit.numerics`` says the mode; ``... env`` prints the pins as
    ``NAME=value`` words for ``env`` (the Makefile starts JupyterLab with them)."""
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["env"]:
        print(" ".join(f"{k}={v}" for k, v in pinned_environment().items()))
        return 0
    if argv:
        print("usage: python -m labkit.numerics [env]", file=sys.stderr)
        return 2
    print(describe())
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["MODE_ENV", "MODES", "DISPATCH_PINS", "cpu_flags", "exact_supported", "mode", "pinned_environment",
           "is_pinned", "describe", "reexec_pinned"]
