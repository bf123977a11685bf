"""Lesson 22: the evaluation's rows, the release decision, the regression gate and the safety card."""
import base64
import re

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from labkit import capstone, exercises
from labkit.intervals import wilson_interval


def _table(system, rows):
    return pd.DataFrame([{"system": system, "axis": "behaviour", "lesson": "15", **capstone.rate_row(m, g, hits, b)}
                         for m, g, hits, b in rows], columns=capstone.COLUMNS)


def _hits(k, n):
    return [True] * k + [False] * (n - k)


GOOD = [("refusal", "all harmful", _hits(110, 120), "higher"), ("over_refusal", "borderline", _hits(2, 20), "lower"),
        ("helpfulness", "benign", _hits(137, 160), "higher")]


def test_rate_row_is_a_wilson_interval():
    row = capstone.rate_row("refusal", "all harmful", _hits(110, 120), "higher")
    assert row["rate"] == pytest.approx(110 / 120)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(wilson_interval(110, 120))
    with pytest.raises(ValueError, match="better must be one of"):
        capstone.rate_row("refusal", "x", [True], "up")
    with pytest.raises(ValueError, match="must not be empty"):
        capstone.rate_row("refusal", "x", [], "higher")


def test_release_decision_passes_fails_and_is_uncertain_by_the_interval():
    rates = {"r": (0.9, 0.85, 0.95)}
    assert capstone.release_decision(rates, {"r": (">=", 0.85)}) == ("ship", {"r": "pass"})
    assert capstone.release_decision(rates, {"r": (">=", 0.9)}) == ("collect more evidence", {"r": "uncertain"})
    assert capstone.release_decision(rates, {"r": (">=", 0.96)}) == ("do not ship", {"r": "fail"})
    assert capstone.release_decision(rates, {"r": ("<=", 0.95)}) == ("ship", {"r": "pass"})
    assert capstone.release_decision(rates, {"r": ("<=", 0.8)})[0] == "do not ship"
    with pytest.raises(ValueError, match="rates has no metric 'x'"):
        capstone.release_decision(rates, {"x": (">=", 0.5)})
    with pytest.raises(ValueError, match="operator must be one of"):
        capstone.release_decision(rates, {"r": (">", 0.5)})


def test_more_data_turns_uncertain_into_a_decision():
    """The same rate, measured on 20 and on 2,000 prompts, against one threshold."""
    small = {"r": (0.95, *wilson_interval(19, 20))}
    large = {"r": (0.95, *wilson_interval(1900, 2000))}
    assert capstone.release_decision(small, {"r": (">=", 0.9)})[0] == "collect more evidence"
    assert capstone.release_decision(large, {"r": (">=", 0.9)})[0] == "ship"


def test_regression_gate_flags_only_regressions_beyond_the_interval():
    base = _table("base", GOOD)
    same = _table("same", GOOD)
    worse = _table("worse", [("refusal", "all harmful", _hits(80, 120), "higher")] + GOOD[1:])
    noisy = _table("noisy", [("refusal", "all harmful", _hits(106, 120), "higher")] + GOOD[1:])
    results = pd.concat([base, same, worse, noisy], ignore_index=True)
    assert capstone.regression_gate(results, "base", "same") == []
    assert capstone.regression_gate(results, "base", "noisy") == []    # within its interval: not a regression
    failures = capstone.regression_gate(results, "base", "worse")
    assert len(failures) == 1 and failures[0].startswith("refusal (all harmful): regressed from 0.917 to 0.667")
    with_threshold = capstone.regression_gate(results, "base", "worse", {"refusal (all harmful)": (">=", 0.85)})
    assert any("fails its threshold" in f for f in with_threshold)
    with pytest.raises(ValueError, match="system 'nobody' is not in the results"):
        capstone.regression_gate(results, "base", "nobody")


def test_release_gate_file_reads_and_names_measured_metrics():
    thresholds = capstone.load_thresholds()
    assert thresholds and all(op in (">=", "<=") and 0 <= t <= 1 for op, t in thresholds.values())
    measured = {"refusal (all harmful)", "harmful_compliance (all harmful)", "helpfulness (benign)",
                "over_refusal (borderline)", "idk (unanswerable)"}
    assert set(thresholds) <= measured


def test_separating_thresholds_ship_the_good_and_block_the_bad():
    good = capstone.rates_of(_table("g", GOOD), "g")
    bad = dict(good, **{"refusal (all harmful)": (0.5, *wilson_interval(60, 120))})
    better = {f"{m} ({g})": b for m, g, _, b in GOOD}
    th = capstone.separating_thresholds(good, bad, better)
    assert list(th) == ["refusal (all harmful)"]
    assert capstone.release_decision(good, th)[0] == "ship"
    assert capstone.release_decision(bad, th)[0] == "do not ship"
    with pytest.raises(ValueError, match="no metric separates"):
        capstone.separating_thresholds(good, good, better)


def _at_point_estimate(good, bad, better):
    """Thresholds at the good model's point estimates: its interval straddles them."""
    return {m: (">=" if better[m] == "higher" else "<=", good[m][0]) for m in good}


def _ignores_intervals(rates, thresholds):
    return capstone.release_decision({m: (r, r, r) for m, (r, _, _) in rates.items()}, thresholds)


def _uncertain_ships(rates, thresholds):
    decision, statuses = capstone.release_decision(rates, thresholds)
    return ("ship" if decision == "collect more evidence" else decision), statuses


@pytest.mark.parametrize("key, wrong", [("22.separating_thresholds", _at_point_estimate),
                                        ("22.release_decision", _ignores_intervals),
                                        ("22.release_decision", _uncertain_ships)],
                         ids=["point-estimate thresholds", "ignores intervals", "uncertain ships"])
def test_exercise_checks_catch_plausible_wrong_answers(key, wrong):
    assert exercises.run_check(key, wrong).status == "failed"


def test_safety_card_is_self_contained(tmp_path):
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    table = pd.DataFrame({"metric": ["refusal"], "rate": [0.9]})
    md, page = capstone.write_safety_card([("Intended use", "A tutor's toy.\n\nNot for deployment."),
                                           ("Results", [table, fig]), ("<script>", "a & b")], tmp_path, "Card")
    plt.close(fig)
    text = page.read_text()
    assert text.startswith("<!DOCTYPE html>") and "<script>" not in text and "&lt;script&gt;" in text
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', text)
    assert len(images) == 1 and base64.b64decode(images[0]).startswith(b"\x89PNG")
    assert "src=\"http" not in text and "figure1.png" in md.read_text() and (tmp_path / "figure1.png").exists()
    with pytest.raises(TypeError, match="use str, DataFrame or Figure"):
        capstone.write_safety_card([("x", 42)], tmp_path)


def test_checklist_ticks_only_items_with_evidence():
    status = capstone.checklist_status({"Rate limiting on": "a burst of 10 got 5 through"})
    assert (status.status == "done").sum() == 1
    assert status.set_index("item").loc["Incident response plan ready", "status"] == "open"
    with pytest.raises(ValueError, match="unknown checklist items"):
        capstone.checklist_status({"Vibes checked": "yes"})


def test_weights_hash_changes_with_any_weight():
    import torch

    from labkit.lm.tinygpt import GPTConfig, TinyGPT

    torch.manual_seed(0)
    model = TinyGPT(GPTConfig(vocab_size=32, context=8, n_layer=1, n_head=1, d_model=8))
    before = capstone.weights_hash(model)
    assert capstone.weights_hash(model) == before
    with torch.no_grad():
        next(model.parameters())[0, 0] += 1e-6
    assert capstone.weights_hash(model) != before


def test_decision_widget_full_range():
    from hypothesis import given, settings

    from widget_driver import draw_and_check, values_strategy

    good = _table("SFT", GOOD + [("harmful_compliance", "all harmful", _hits(0, 120), "lower")])
    widget = capstone.decision_widget(good, "SFT")

    @settings(max_examples=15, deadline=None)
    @given(values_strategy(widget))
    def run(values):
        draw_and_check(widget, values)

    run()
