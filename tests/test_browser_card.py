"""The safety card of lesson 22 in a real browser: it renders, every image loads, a screenshot is saved."""
from __future__ import annotations

from pathlib import Path

import matplotlib
import pandas as pd
import pytest

from labkit import capstone
from conftest import CHROMIUM

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make test installs it as root)")
matplotlib.use("Agg")


def _synthetic_results() -> pd.DataFrame:
    rows = []
    for system, k in (("SFT", 110), ("guarded", 118)):
        for metric, group, hits, better in (("refusal", "all harmful", k, "higher"), ("over_refusal", "borderline", 3, "lower")):
            rows.append({"system": system, "axis": "behaviour", "lesson": "15",
                         **capstone.rate_row(metric, group, [True] * hits + [False] * (120 - hits), better)})
    return pd.DataFrame(rows, columns=capstone.COLUMNS)


def _check_page(browser, card: Path, shot: Path) -> None:
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    page.goto(card.resolve().as_uri())
    assert page.title().startswith("Safety card")
    images = page.eval_on_selector_all("img", "imgs => imgs.map(i => [i.complete, i.naturalWidth])")
    assert images and all(done and width > 0 for done, width in images), images
    assert page.locator("table").count() >= 1
    shot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shot), full_page=True)
    page.close()


def test_safety_card_renders_with_every_image(browser, tmp_path):
    results = _synthetic_results()
    thresholds = {"refusal (all harmful)": (">=", 0.85)}
    _, card = capstone.write_safety_card(
        [("Intended use", "A test card."), ("Results", [capstone.summary(results).reset_index(),
                                                       capstone.plot_results(results, thresholds)]),
         ("Decision", "ship")], tmp_path, "Safety card: test")
    _check_page(browser, card, ROOT / "build" / "browser" / "safety_card_test.png")


def test_lesson_22_card_renders_when_built(browser):
    card = capstone.default_card_dir() / "card.html"
    if not card.exists():
        pytest.skip("lesson 22 has not written build/safety_card/card.html in this checkout yet")
    _check_page(browser, card, ROOT / "build" / "browser" / "safety_card.png")
