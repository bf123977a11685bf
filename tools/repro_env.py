"""The environment under which stored notebook outputs are produced and checked.

`tools/build_lessons.py` executes notebooks under it and `tests/conftest.py`
applies it before nbval starts kernels, so the two always agree.
"""
import importlib.util
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _load_numerics():
    # By path: importing the labkit package would import NumPy and PyTorch
    # before the dispatch pins are in the environment.
    spec = importlib.util.spec_from_file_location("_labkit_numerics", ROOT / "labkit" / "numerics.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


numerics = _load_numerics()

REPRO_ENV = {
    "PYTHONHASHSEED": "0",
    "LABKIT_DEVICE": "cpu",
    "LABKIT_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "LABKIT_PROGRESS": "0",
    "LABKIT_OFFLINE": "1",
    "TQDM_DISABLE": "1",
    "CUDA_VISIBLE_DEVICES": "",
    "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    "JUPYTER_PLATFORM_DIRS": "1",
}
# Inherited by the kernel, MPLBACKEND=Agg would silently drop every figure.
UNSET = ("MPLBACKEND",)


# tools/gpu_smoke.py sets this to run the device-parametrized tests on the GPU.
KEEP_GPU_ENV = "LABKIT_KEEP_GPU"


def apply() -> None:
    """Apply the reproducible environment to this process (and its kernels)."""
    keep_gpu = os.environ.get(KEEP_GPU_ENV) == "1"
    os.environ.update({k: v for k, v in REPRO_ENV.items()
                       if not (keep_gpu and k in ("CUDA_VISIBLE_DEVICES", "LABKIT_DEVICE"))})
    # Kernel dispatch pinned to AVX2 (labkit/numerics.py): outputs and trained
    # checkpoints are then bit-identical on every x86-64 CPU with AVX2.
    # In tolerant mode (another CPU, or LABKIT_NUMERICS=tolerant) no pin applies.
    pins = numerics.pinned_environment()
    for name in numerics.DISPATCH_PINS:
        os.environ.pop(name, None)
    os.environ.update(pins)
    for name in UNSET:
        os.environ.pop(name, None)
    os.environ.setdefault("LABKIT_CACHE_DIR", str(ROOT / ".cache" / "labkit"))
    mirror = ROOT.parent / "shared" / "data"
    if mirror.is_dir():
        os.environ.setdefault("LABKIT_DATA_MIRROR", str(mirror))
