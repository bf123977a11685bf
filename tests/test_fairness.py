import numpy as np
import pytest
from hypothesis import given, settings

from labkit import fairness as fair
from widget_driver import draw_and_check, values_strategy

# Hand-checked table. Group 0: y=(1,1,0,0), yhat=(1,1,1,0): TPR 1, FPR 1/2, PPV 2/3, selection 3/4.
# Group 1: y=(1,1,0,0), yhat=(1,0,0,0): TPR 1/2, FPR 0, PPV 1, selection 1/4.
Y_TRUE = np.array([1, 1, 0, 0, 1, 1, 0, 0])
Y_PRED = np.array([1, 1, 1, 0, 1, 0, 0, 0])
GROUP = np.array([0, 0, 0, 0, 1, 1, 1, 1])


def test_group_rates_hand_values():
    r = fair.group_rates(Y_TRUE, Y_PRED, GROUP)
    assert r[0]["tpr"] == 1.0 and r[0]["fpr"] == 0.5 and r[0]["ppv"] == pytest.approx(2 / 3)
    assert r[1]["tpr"] == 0.5 and r[1]["fpr"] == 0.0 and r[1]["ppv"] == 1.0
    assert r[0]["selection_rate"] == 0.75 and r[1]["selection_rate"] == 0.25
    assert r[0]["accuracy"] == 0.75 and r[1]["accuracy"] == 0.75


def test_fairness_metrics_hand_values():
    assert fair.demographic_parity_difference(Y_PRED, GROUP) == pytest.approx(0.5)
    assert fair.equalized_odds_difference(Y_TRUE, Y_PRED, GROUP) == pytest.approx(0.5)
    assert fair.equalized_odds_difference(Y_TRUE, Y_TRUE, GROUP) == 0.0


def test_metrics_invariant_to_group_relabelling_and_order():
    rng = np.random.default_rng(0)
    y, p, g = rng.integers(0, 2, 200), rng.integers(0, 2, 200), rng.integers(0, 3, 200)
    perm = rng.permutation(200)
    relabel = np.array([7, 3, 11])[g]
    assert fair.demographic_parity_difference(p[perm], relabel[perm]) == pytest.approx(fair.demographic_parity_difference(p, g))
    assert fair.equalized_odds_difference(y[perm], p[perm], relabel[perm]) == pytest.approx(fair.equalized_odds_difference(y, p, g))


def test_metrics_match_brute_force_on_random_tables():
    rng = np.random.default_rng(1)
    for _ in range(20):
        y, p, g = rng.integers(0, 2, 80), rng.integers(0, 2, 80), rng.integers(0, 2, 80)
        sel = [np.mean([p[i] for i in range(80) if g[i] == k]) for k in (0, 1)]
        tpr = [np.mean([p[i] for i in range(80) if g[i] == k and y[i] == 1]) for k in (0, 1)]
        fpr = [np.mean([p[i] for i in range(80) if g[i] == k and y[i] == 0]) for k in (0, 1)]
        assert fair.demographic_parity_difference(p, g) == pytest.approx(abs(sel[0] - sel[1]))
        assert fair.equalized_odds_difference(y, p, g) == pytest.approx(max(abs(tpr[0] - tpr[1]), abs(fpr[0] - fpr[1])))


def test_chouldechova_identity_holds_on_every_confusion_matrix():
    rng = np.random.default_rng(2)
    for _ in range(20):
        y, p, g = rng.integers(0, 2, 300), rng.integers(0, 2, 300), rng.integers(0, 2, 300)
        for r in fair.group_rates(y, p, g).values():
            assert fair.chouldechova_fpr(r["base_rate"], r["ppv"], r["fnr"]) == pytest.approx(r["fpr"])


def test_calibration_by_group_zero_for_calibrated_scores_and_balance_gaps():
    # scores equal to each bin's observed rate in each group: perfectly calibrated within groups
    scores = np.array([0.25] * 4 + [0.75] * 4 + [0.25] * 4 + [0.75] * 4)
    y = np.array([1, 0, 0, 0, 1, 1, 1, 0] * 2)
    g = np.repeat([0, 1], 8)
    cal = fair.calibration_by_group(y, scores, g, n_bins=4)
    assert cal[0]["gap"] == pytest.approx(0.0) and cal[1]["gap"] == pytest.approx(0.0)
    gaps = fair.balance_gaps(y, scores, g)
    assert gaps == {"positive_class": pytest.approx(0.0), "negative_class": pytest.approx(0.0)}


def test_kleinberg_tension_on_generated_data():
    # A group-aware model is nearly calibrated within groups, yet with unequal base rates
    # it cannot be balanced for the positive class (Kleinberg et al. 2016, thm 1.1).
    demo = fair.run_demo()
    test = demo["test"]
    base = [test.y[test.group == k].mean() for k in (0, 1)]
    assert base[0] - base[1] > 0.1
    cal = fair.calibration_by_group(test.y, demo["scores_aware"], test.group)
    assert max(cal[0]["gap"], cal[1]["gap"]) < 0.05
    assert fair.balance_gaps(test.y, demo["scores_aware"], test.group)["positive_class"] > 0.05


def test_reweighing_makes_group_and_label_independent():
    rng = np.random.default_rng(3)
    g = rng.integers(0, 3, 500)
    y = (rng.uniform(size=500) < np.array([0.2, 0.5, 0.8])[g]).astype(int)
    w = fair.reweighing_weights(y, g)
    assert w.sum() == pytest.approx(500)
    overall = np.average(y, weights=w)
    for k in range(3):
        assert np.average(y[g == k], weights=w[g == k]) == pytest.approx(overall)
    # already independent data gets weight 1 everywhere
    np.testing.assert_allclose(fair.reweighing_weights(np.array([1, 0, 1, 0]), np.array([0, 0, 1, 1])), 1.0)


def test_group_thresholds_reach_their_targets():
    demo = fair.run_demo()
    test, s = demo["test"], demo["scores"]
    th = fair.group_thresholds(s, test.group, "parity", 0.4)
    pred = fair.decide(s, test.group, th)
    for k in (0, 1):
        assert pred[test.group == k].mean() == pytest.approx(0.4, abs=2 / (test.group == k).sum())
    th = fair.group_thresholds(s, test.group, "equal_opportunity", 0.8, y_true=test.y)
    rates = fair.group_rates(test.y, fair.decide(s, test.group, th), test.group)
    assert abs(rates[0]["tpr"] - rates[1]["tpr"]) < 0.01


def test_threshold_grid_matches_decide_brute_force():
    d = fair.make_lending_data(300, seed=4)
    s = 1 / (1 + np.exp(-d.x[:, 0]))
    grid = np.array([0.2, 0.45, 0.5, 0.8])
    out = fair.threshold_grid(d.y, s, d.group, grid)
    for i, a in enumerate(grid):
        for j, b in enumerate(grid):
            pred = fair.decide(s, d.group, {0: a, 1: b})
            assert out["accuracy"][i, j] == pytest.approx((pred == d.y).mean())
            assert out["dp_diff"][i, j] == pytest.approx(fair.demographic_parity_difference(pred, d.group))
            assert out["eo_diff"][i, j] == pytest.approx(fair.equalized_odds_difference(d.y, pred, d.group))


def test_bias_mechanism_is_what_the_docstring_says():
    d = fair.make_lending_data(20_000, seed=5, score_bias=0.8, ability_gap=0.0)
    # equal ability distribution: equal base rates, but group 1's recorded score is ~0.8 lower
    assert abs(d.y[d.group == 0].mean() - d.y[d.group == 1].mean()) < 0.03
    assert d.x[d.group == 0, 0].mean() - d.x[d.group == 1, 0].mean() == pytest.approx(0.8, abs=0.05)


def test_model_card_reports_the_numbers():
    card = fair.model_card("m", "demo", "generated", {"a": {"accuracy": 0.75, "dp": 0.1}}, ["c1"])
    assert "| a | 0.750 | 0.100 |" in card and "- c1" in card
    with pytest.raises(ValueError, match="metrics_by_variant"):
        fair.model_card("m", "demo", "generated", {"a": {"x": 1.0}, "b": {"y": 1.0}}, [])


def test_invalid_arguments_name_the_argument():
    with pytest.raises(ValueError, match="group"):
        fair.demographic_parity_difference([1, 0], [0, 0])
    with pytest.raises(ValueError, match="y_pred"):
        fair.demographic_parity_difference([2, 0], [0, 1])
    with pytest.raises(ValueError, match="group must have"):
        fair.demographic_parity_difference([1, 0], [0, 1, 1])
    with pytest.raises(ValueError, match="y_true must contain both"):
        fair.equalized_odds_difference([1, 1, 0, 1], [1, 0, 0, 1], [0, 0, 1, 1])
    with pytest.raises(ValueError, match="criterion"):
        fair.group_thresholds([0.5, 0.6], [0, 1], criterion="magic")
    with pytest.raises(ValueError, match="y_true is required"):
        fair.group_thresholds([0.5, 0.6], [0, 1], criterion="equal_opportunity")
    with pytest.raises(ValueError, match="scores"):
        fair.calibration_by_group([0, 1], [0.5, 1.5], [0, 1])
    with pytest.raises(ValueError, match="score_bias"):
        fair.make_lending_data(100, score_bias=-1)


WIDGET = fair.group_thresholds_widget()


@settings(max_examples=25, deadline=None)
@given(values_strategy(WIDGET))
def test_group_threshold_widget_full_range(values):
    draw_and_check(WIDGET, values)


@pytest.mark.parametrize("call, error, fragment", [
    (lambda: fair.decide([0.1, 0.9], [0, 0.5], {0: 0.5}), ValueError, "group must hold integers"),
    (lambda: fair.decide([0.1, 0.9, 0.3], [0, 1], {0: 0.5, 1: 0.5}), ValueError, "one per applicant"),
    (lambda: fair.decide([0.1, 0.9], [0, 1], {0: float("nan"), 1: 0.5}), ValueError, "thresholds[0] must be finite"),
    (lambda: fair.decide([0.1, 0.9], [0, 1], [0.5, 0.5]), TypeError, "thresholds must be a dict"),
    (lambda: fair.model_card("m", "use", "data", "acc 0.9", ["c"]), TypeError, "metrics_by_variant must be a dict"),
    (lambda: fair.model_card("m", "use", "data", {"v": {"acc": "high"}}, ["c"]), TypeError, "metrics_by_variant['v']['acc']"),
    (lambda: fair.model_card("m", "use", "data", {"v": {"acc": 0.9}}, "one caveat"), TypeError, "not a single string"),
])
def test_bad_inputs_are_rejected(call, error, fragment):
    import re
    with pytest.raises(error, match=re.escape(fragment)):
        call()
