"""Shared test setup: the reproducible environment, devices, widget driving."""
from __future__ import annotations

import matplotlib  # noqa: E402  (the root conftest.py has applied tools/repro_env.py)

matplotlib.use("Agg")  # for plotting callbacks tested in this process only

import pytest  # noqa: E402
import torch  # noqa: E402


def available_devices() -> list[str]:
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices.append("cuda")
    if hasattr(torch.backends, "mps") and torch.backends.mps.is_available():
        devices.append("mps")
    return devices


@pytest.fixture(params=available_devices())
def device(request) -> torch.device:
    """Parametrizes a test over every device this machine has."""
    return torch.device(request.param)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")
