"""A real browser: JupyterLab + Debian's chromium, driven by Playwright.

Opens a copy of a lesson, runs all cells, checks every widget renders, moves
a slider, checks the plot changed, and saves a screenshot under build/browser/.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
LESSONS = ["00_welcome", "09_adversarial_robustness"]

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make test installs it as root)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def jupyterlab(tmp_path_factory):
    """A JupyterLab server on localhost over a temporary copy of the notebooks."""
    work = tmp_path_factory.mktemp("lab")
    settings = work / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    # No news or update prompts over the notebook.
    (settings / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    # Render every cell: with windowing, off-screen cells have no layout and
    # cannot be scrolled to or clicked.
    tracker = work / "settings" / "@jupyterlab" / "notebook-extension"
    tracker.mkdir(parents=True)
    (tracker / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    root = work / "root"
    root.mkdir()
    for name in LESSONS:
        src = ROOT / "notebooks" / f"{name}.ipynb"
        if src.exists():
            shutil.copy(src, root / src.name)
    port, token = _free_port(), "labkit-browser-test"
    env = dict(os.environ, JUPYTERLAB_SETTINGS_DIR=str(work / "settings"), JUPYTER_RUNTIME_DIR=str(work / "runtime"))
    env.pop("MPLBACKEND", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
         f"--ServerApp.token={token}", f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
         "--ServerApp.open_browser=False", "--allow-root"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
            break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("JupyterLab did not start within 60 s")
    yield url, token, root
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


WAIT_IDLE = """() => {
  const nb = window.jupyterapp.shell.currentWidget;
  const kernel = nb.sessionContext.session && nb.sessionContext.session.kernel;
  if (!kernel || kernel.status !== 'idle') return false;
  const cells = nb.content.model.cells;
  for (let i = 0; i < cells.length; i++) {
    const c = cells.get(i);
    if (c.type === 'code' && c.sharedModel.getSource().trim() && c.executionCount === null) return false;
  }
  return true;
}"""


@pytest.mark.parametrize("lesson", LESSONS)
def test_lesson_widgets_render_and_respond(jupyterlab, browser, lesson):
    url, token, root = jupyterlab
    if not (root / f"{lesson}.ipynb").exists():
        pytest.skip(f"{lesson} is not built yet")
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{url}/lab/tree/{lesson}.ipynb?reset&token={token}")  # reset: no tabs restored from an earlier test
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget && window.jupyterapp.shell.currentWidget.sessionContext", timeout=60_000)
    page.wait_for_function("() => { const s = window.jupyterapp.shell.currentWidget.sessionContext; return s.session && s.session.kernel && s.session.kernel.status === 'idle'; }", timeout=60_000)
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:clear-all-cell-outputs')")
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    page.wait_for_timeout(1000)
    shots = ROOT / "build" / "browser"
    shots.mkdir(parents=True, exist_ok=True)
    try:
        page.wait_for_function(WAIT_IDLE, timeout=180_000, polling=500)
    except Exception:
        page.screenshot(path=str(shots / f"{lesson}_timeout.png"))
        raise

    # Only the notebook in the visible tab: a restored workspace may hold others.
    notebook = page.locator(".jp-NotebookPanel:visible .jp-Notebook").first
    text = notebook.inner_text()
    assert "Error displaying widget" not in text
    assert "Traceback" not in text, "a cell raised in the browser"
    sliders = notebook.locator(".widget-slider")
    assert sliders.count() >= 1, "no slider widget rendered"

    # The first interactive figure: a widget box holding a slider and an image.
    box = notebook.locator(".widget-vbox", has=page.locator(".widget-slider")).filter(has=page.locator("img")).first
    box.wait_for(state="attached", timeout=60_000)
    box.evaluate("el => el.scrollIntoView({block: 'center'})")
    before = box.locator("img").first.get_attribute("src")
    # Drag the first slider's handle to the right, as a person would. Widgets
    # lay out asynchronously after the kernel is idle, and a loaded machine can
    # drop the first drag, so try a few times before calling it a failure.
    handle = box.locator(".widget-slider .noUi-handle").first
    changed = "([el, old]) => { const img = el.querySelector('img'); return img && img.getAttribute('src') !== old; }"
    for attempt in range(3):
        try:
            handle.wait_for(state="visible", timeout=60_000)
            handle.scroll_into_view_if_needed(timeout=30_000)
            hb = handle.bounding_box()
            page.mouse.move(hb["x"] + hb["width"] / 2, hb["y"] + hb["height"] / 2)
            page.mouse.down()
            page.mouse.move(hb["x"] + hb["width"] / 2 + 40 * (attempt + 1), hb["y"] + hb["height"] / 2, steps=5)
            page.mouse.up()
            page.wait_for_function(changed, arg=[box.element_handle(), before], timeout=60_000)
            break
        except Exception:
            page.screenshot(path=str(shots / f"{lesson}_attempt{attempt}.png"), full_page=False)
            if attempt == 2:
                raise
    after = box.locator("img").first.get_attribute("src")
    assert after != before, "moving the slider did not redraw the figure"

    page.wait_for_timeout(1500)  # let a queued redraw settle before the picture
    box.screenshot(path=str(shots / f"{lesson}_widget.png"))
    page.screenshot(path=str(shots / f"{lesson}.png"), full_page=False)
    page.close()
