"""Shared test setup: the reproducible environment, devices, widget driving."""
from __future__ import annotations

import matplotlib  # noqa: E402  (the root conftest.py has applied tools/repro_env.py)

matplotlib.use("Agg")  # for plotting callbacks tested in this process only

import shutil  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

# Debian's chromium, driven by Playwright: tests/test_browser.py and the course site's test.
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


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


@pytest.fixture(scope="module")
def browser():
    """A headless chromium (skips the test when Debian's chromium is not installed)."""
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (make test installs it as root)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        )
        yield b
        b.close()


@pytest.fixture(scope="session")
def tiny_assistant():
    """The shipped default assistant (tests of lessons 08, 11, ... that need a real language model)."""
    from labkit.lm.cache import get_assistant

    return get_assistant("default")  # shipped: loads in a fraction of a second
