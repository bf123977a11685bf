import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from sklearn.metrics import roc_auc_score

from labkit import calibration as cal
from labkit.basics import softmax
from widget_driver import draw_and_check, values_strategy


def test_ece_hand_computed():
    # bins of width 0.2: {0.6, 0.6} acc 0.5 -> gap 0.1; {0.8} acc 1 -> 0.2; {0.9} acc 1 -> 0.1
    probs = np.array([[0.6, 0.4], [0.6, 0.4], [0.9, 0.1], [0.2, 0.8]])
    labels = np.array([0, 1, 0, 1])
    assert cal.expected_calibration_error(probs, labels, n_bins=5) == pytest.approx(2 / 4 * 0.1 + 1 / 4 * 0.2 + 1 / 4 * 0.1)
    # one confident mistake out of four: ECE = 1/4
    assert cal.expected_calibration_error(np.eye(3)[[0, 1, 2, 0]], [1, 1, 2, 0]) == pytest.approx(0.25)


def test_ece_of_event_probabilities_hand_values_and_brute_force():
    # 1-D probs: probabilities of a binary event (lesson 05's preferences), labels 0/1.
    assert cal.expected_calibration_error([0.5, 0.5, 0.5, 0.5], [1, 0, 1, 0]) == 0.0
    assert cal.expected_calibration_error([1.0, 1.0], [1, 0]) == pytest.approx(0.5)
    # bins of width 0.5: {0.1, 0.2} -> |0.5 - 0.15| ; {0.85, 0.9} -> |1 - 0.875|; weights 1/2 each
    assert cal.expected_calibration_error([0.1, 0.2, 0.85, 0.9], [0, 1, 1, 1], n_bins=2) == pytest.approx(0.5 * 0.35 + 0.5 * 0.125)
    rng = np.random.default_rng(0)
    probs, labels = np.round(rng.uniform(size=300), 1), (rng.uniform(size=300) < 0.5).astype(float)  # many on bin edges
    brute = 0.0
    for m in range(1, 11):  # B_m = ((m - 1)/M, m/M], 0 in the first bin (Guo et al. 2017)
        in_bin = [(p, y) for p, y in zip(probs, labels) if (m - 1) / 10 < p <= m / 10 + 1e-12 or (m == 1 and p == 0)]
        if in_bin:
            ps, ys = zip(*in_bin)
            brute += len(in_bin) / 300 * abs(np.mean(ys) - np.mean(ps))
    assert cal.expected_calibration_error(probs, labels, 10) == pytest.approx(brute)
    # labels drawn from the probabilities themselves: calibrated up to sampling noise
    probs = rng.uniform(size=200_000)
    assert cal.expected_calibration_error(probs, (rng.uniform(size=200_000) < probs).astype(float)) < 0.01


def test_ece_bins_are_closed_on_the_right():
    # Guo et al.'s B_m = ((m-1)/M, m/M]: 0.5 sits in the first of two bins, 0.75 with 0.6 in the second.
    probs = np.array([[0.5, 0.5], [0.75, 0.25], [0.6, 0.4]])
    labels = np.array([0, 1, 0])
    # bins: {0.5} acc 1 -> 0.5; {0.75, 0.6} acc 1/2, conf 0.675 -> 0.175
    assert cal.expected_calibration_error(probs, labels, n_bins=2) == pytest.approx(1 / 3 * 0.5 + 2 / 3 * 0.175)
    assert cal.reliability_bins(probs, labels, n_bins=4)["count"].tolist() == [0, 1, 2, 0]


def test_ece_zero_for_perfectly_calibrated_predictor():
    # In each bin, the fraction correct equals the stated confidence exactly.
    rows, labels = [], []
    for conf, n_right, n in ((0.9, 9, 10), (0.7, 7, 10), (0.55, 11, 20)):
        for i in range(n):
            rows.append([conf, 1 - conf])
            labels.append(0 if i < n_right else 1)
    assert cal.expected_calibration_error(np.array(rows), np.array(labels), n_bins=10) == pytest.approx(0.0, abs=1e-12)


def test_ece_of_sampled_labels_shrinks_with_n():
    rng = np.random.default_rng(0)
    p = softmax(rng.normal(0, 2, size=(200_000, 4)))
    labels = (rng.uniform(size=(len(p), 1)) > p.cumsum(axis=1)).sum(axis=1)  # y ~ Categorical(p)
    assert cal.expected_calibration_error(p, labels) < 0.01


def test_reliability_bins_partition_the_data():
    rng = np.random.default_rng(1)
    p = softmax(rng.normal(0, 3, size=(500, 5)))
    y = rng.integers(0, 5, 500)
    bins = cal.reliability_bins(p, y, n_bins=7)
    assert bins["count"].sum() == 500
    weighted_acc = (bins["count"] * bins["accuracy"]).sum() / 500
    assert weighted_acc == pytest.approx((p.argmax(1) == y).mean())


def test_temperature_scaling_recovers_true_temperature_and_keeps_argmax():
    rng = np.random.default_rng(0)
    z = rng.normal(0, 3, size=(20_000, 5))
    true_t = 2.5
    p = softmax(z / true_t)
    y = (rng.uniform(size=(len(p), 1)) > p.cumsum(axis=1)).sum(axis=1)
    t = cal.fit_temperature(z, y)
    assert t == pytest.approx(true_t, rel=0.05)
    assert cal.negative_log_likelihood(z, y, t) <= cal.negative_log_likelihood(z, y, 1.0)
    assert np.array_equal(softmax(z / t).argmax(1), z.argmax(1))


def test_selective_risk_hand_values_and_monotone_coverage():
    conf = np.array([0.9, 0.8, 0.3])
    ok = np.array([True, False, True])
    assert cal.selective_risk(conf, ok, 0.5) == pytest.approx((2 / 3, 0.5))
    assert cal.selective_risk(conf, ok, 0.95) == (0.0, 0.0)
    assert cal.selective_risk(conf, ok, 0.0) == pytest.approx((1.0, 1 / 3))
    cov, risk = cal.risk_coverage_curve(conf, ok)
    np.testing.assert_allclose(cov, [1 / 3, 2 / 3, 1.0])
    np.testing.assert_allclose(risk, [0.0, 0.5, 1 / 3])


def test_risk_coverage_full_coverage_is_error_rate():
    rng = np.random.default_rng(2)
    conf, ok = rng.uniform(size=300), rng.uniform(size=300) < 0.8
    cov, risk = cal.risk_coverage_curve(conf, ok)
    assert cov[-1] == 1.0 and risk[-1] == pytest.approx(1 - ok.mean())
    assert np.all(np.diff(cov) > 0)


@pytest.mark.parametrize("seed", range(5))
def test_auroc_matches_brute_force_and_sklearn(seed):
    rng = np.random.default_rng(seed)
    pos = np.round(rng.normal(0.5, 1, int(rng.integers(1, 60))), 1)  # rounding creates ties
    neg = np.round(rng.normal(0, 1, int(rng.integers(1, 60))), 1)
    brute = np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg])
    assert cal.auroc(pos, neg) == pytest.approx(brute)
    labels = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
    assert cal.auroc(pos, neg) == pytest.approx(roc_auc_score(labels, np.r_[pos, neg]))


def test_auroc_symmetry_and_invariance():
    rng = np.random.default_rng(3)
    pos, neg = rng.normal(1, 1, 30), rng.normal(0, 1, 40)
    assert cal.auroc(pos, neg) + cal.auroc(neg, pos) == pytest.approx(1.0)
    assert cal.auroc(np.exp(pos), np.exp(neg)) == pytest.approx(cal.auroc(pos, neg))  # monotone transform


def test_answer_or_abstain():
    p = np.array([[0.9, 0.1], [0.55, 0.45]])
    assert cal.answer_or_abstain(p, 0.6) == [0, cal.FALLBACK]
    assert cal.answer_or_abstain(p, 0.0) == [0, 0]


def test_invalid_arguments_name_the_argument():
    with pytest.raises(ValueError, match="n_bins"):
        cal.expected_calibration_error([[0.5, 0.5]], [0], n_bins=0)
    with pytest.raises(ValueError, match="probs"):
        cal.expected_calibration_error([[0.5, 0.6]], [0])
    with pytest.raises(ValueError, match="labels"):
        cal.expected_calibration_error([[0.5, 0.5]], [2])
    with pytest.raises(ValueError, match="threshold"):
        cal.selective_risk([0.5], [True], 1.5)
    with pytest.raises(ValueError, match="correct"):
        cal.selective_risk([0.5], [2], 0.5)
    with pytest.raises(ValueError, match="positive_scores"):
        cal.auroc([], [0.1])
    with pytest.raises(TypeError, match="temperature"):
        cal.negative_log_likelihood([[0.0, 1.0]], [0], "hot")


def test_classifier_trains_on_any_device(device):
    task = cal.make_digits_task(seed=0)
    net = cal.train_task_classifier(task, epochs=30, hidden=32, device=device)
    z = cal.logits_of(net, task.x_test)
    assert z.dtype == np.float64 and np.isfinite(z).all()
    assert (z.argmax(1) == task.y_test).mean() > 0.5  # well above the 1/8 chance level


def test_demo_story_holds():
    demo = cal.run_demo()
    y = demo["task"].y_test
    before = cal.expected_calibration_error(demo["probs_test"], y)
    after = cal.expected_calibration_error(demo["cal_test"], y)
    assert demo["temperature"] > 1 and after < before  # over-confident, fixed by T > 1
    assert cal.auroc(demo["cal_test"].max(1), demo["cal_ood"].max(1)) > 0.6


WIDGET = cal.abstention_widget()


@settings(max_examples=20, deadline=None)
@given(values_strategy(WIDGET))
def test_abstention_widget_full_range(values):
    draw_and_check(WIDGET, values)


@pytest.mark.parametrize("call, error, fragment", [
    (lambda: cal.answer_or_abstain([[1.2, -0.2]], 0.5), ValueError, "probs must be non-negative with rows summing to 1"),
    (lambda: cal.answer_or_abstain([[0.3, 0.3]], 0.5), ValueError, "rows summing to 1"),
    (lambda: cal.answer_or_abstain([[1.0]], 0.5), ValueError, "at least 2 classes"),
    (lambda: cal.answer_or_abstain([[0.5, 0.5]], float("nan")), ValueError, "threshold must be finite"),
    (lambda: cal.expected_calibration_error([1.5], [1]), ValueError, "probs must hold probabilities in [0, 1]"),
    (lambda: cal.expected_calibration_error([0.5], [0.5]), ValueError, "labels must hold booleans (or 0/1)"),
    (lambda: cal.expected_calibration_error([0.5, 0.2], [1]), ValueError, "labels must have the same length as probs"),
    (lambda: cal.expected_calibration_error([[np.nan, 0.5]], [0]), ValueError, "NaN"),
    (lambda: cal.expected_calibration_error([], []), ValueError, "at least 1"),
    (lambda: cal.reliability_bins(np.ones((1, 2, 2)) / 2, [0]), ValueError, "1 or 2 dimensions"),
    (lambda: cal.selective_risk([1.5, 0.2], [True, False], 0.5), ValueError, "confidence must hold probabilities"),
    (lambda: cal.risk_coverage_curve([-0.1], [True]), ValueError, "confidence must hold probabilities"),
    (lambda: cal.selective_risk([0.5, 0.2], [True], 0.5), ValueError, "same length as confidence"),
    (lambda: cal.logits_of("net", [[0.0, 1.0]]), TypeError, "net must be a Module"),
    (lambda: cal.train_task_classifier("task"), TypeError, "task must be a DigitsTask"),
    (lambda: cal.make_digits_task(noise=-0.1), ValueError, "noise"),
    (lambda: cal.make_digits_task(val_fraction=0.6, test_fraction=0.5), ValueError, "val_fraction + test_fraction"),
])
def test_bad_inputs_are_rejected(call, error, fragment):
    with pytest.raises(error, match=re.escape(fragment)):
        call()


# --------------------------------------------------------------- the assistant's answers
def _answers_from_probs(token_probs):
    """Per-reply token logits whose softmax gives each chosen token the stated probability (vocab of 3)."""
    logits, tokens = [], []
    for probs in token_probs:
        z = np.log(np.array([[p, (1 - p) / 2, (1 - p) / 2] for p in probs]))
        logits.append(z)
        tokens.append(np.zeros(len(probs), dtype=int))
    return logits, tokens


def test_sequence_confidence_is_the_product_of_token_probabilities_and_tempers():
    logits, tokens = _answers_from_probs([[0.9, 0.5], [0.6], [0.99, 0.99, 0.99]])
    assert cal.sequence_confidence(logits, tokens) == pytest.approx([0.45, 0.6, 0.99 ** 3])
    # T scales logits: token probability p_T = p^(1/T) / sum_j p_j^(1/T)
    z = logits[0]
    expect = np.prod([np.exp(row[0] / 2) / np.exp(row / 2).sum() for row in z])
    assert cal.sequence_confidence(logits[:1], tokens[:1], 2.0)[0] == pytest.approx(expect)
    # softer (T > 1) lowers the confidence of an argmax reply, sharper raises it
    base = cal.sequence_confidence(logits, tokens)
    assert (cal.sequence_confidence(logits, tokens, 3.0) < base).all()
    assert (cal.sequence_confidence(logits, tokens, 0.5) > base).all()
    # the token chosen matters: scoring another token gives its probability
    assert cal.sequence_confidence([logits[1]], [np.array([1])])[0] == pytest.approx(0.2)


def test_fit_sequence_temperature_recovers_the_generating_temperature():
    # replies whose token logits are true logits times 2.5: correct with the probability that T = 2.5 gives
    rng = np.random.default_rng(0)
    true_t, logits, tokens = 2.5, [], []
    for _ in range(3000):
        z = rng.normal(0, 1.5, size=(int(rng.integers(1, 4)), 5)) * true_t
        logits.append(z)
        tokens.append(z.argmax(1))
    p = cal.sequence_confidence(logits, tokens, true_t)
    correct = rng.uniform(size=len(p)) < p
    t = cal.fit_sequence_temperature(logits, tokens, correct)
    assert t == pytest.approx(true_t, rel=0.1)
    assert cal.expected_calibration_error(cal.sequence_confidence(logits, tokens, t), correct.astype(float)) < 0.03
    # at T = 1 the same replies are over-confident
    assert cal.sequence_confidence(logits, tokens).mean() > correct.mean() + 0.1


def test_best_threshold_minimises_mistakes_and_breaks_ties_low():
    conf = [0.2, 0.3, 0.6, 0.7, 0.9]
    # wrong below 0.6, right from 0.6: answer from 0.6
    assert cal.best_threshold(conf, [0, 0, 1, 1, 1]) == 0.6
    # everything right: answer everything (threshold 0)
    assert cal.best_threshold(conf, [1, 1, 1, 1, 1]) == 0.0
    # everything wrong: answer nothing, a threshold above the highest confidence
    assert cal.best_threshold(conf, [0, 0, 0, 0, 0]) > 0.9
    assert cal.selective_risk(conf, [0, 0, 0, 0, 0], min(cal.best_threshold(conf, [0] * 5), 1.0))[0] == 0.0
    # brute force over a grid agrees on the number of mistakes
    rng = np.random.default_rng(1)
    c, ok = rng.uniform(size=60), rng.uniform(size=60) < 0.6
    best = cal.best_threshold(c, ok)
    mistakes = lambda t: int(((c >= t) & ~ok).sum() + ((c < t) & ok).sum())
    assert mistakes(best) == min(mistakes(t) for t in np.linspace(0, 1.001, 2001))


def test_plot_reliability_draws_a_histogram_under_the_diagram():
    import matplotlib.pyplot as plt

    probs = np.array([[0.95, 0.05], [0.95, 0.05], [0.55, 0.45], [0.9, 0.1]])
    ax, hist_ax = cal.plot_reliability(probs, [0, 1, 0, 0], n_bins=10)
    heights = [round(p.get_height(), 6) for p in hist_ax.patches]
    assert heights == [0, 0, 0, 0, 0, 0.25, 0, 0, 0.25, 0.5]  # shares of inputs per bin: (0.5, 0.6], (0.8, 0.9], (0.9, 1]
    ax.figure.canvas.draw()  # the divider places the axes at draw time
    assert hist_ax.get_position().y1 <= ax.get_position().y0 + 1e-9  # below the diagram
    plt.close("all")
