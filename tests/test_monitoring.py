import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from scipy import stats

from labkit import monitoring as mo
from widget_driver import draw_and_check, values_strategy

STREAM = mo.simulate_stream(n=800, drift_start=500, n_bursts=2, seed=1)


def test_cusum_hand_values_and_restart():
    stat, alarm = mo.cusum(np.array([1.5] * 6), h=2.5)
    np.testing.assert_allclose(stat, [1, 2, 3, 1, 2, 3])
    assert alarm.tolist() == [False, False, True, False, False, True]
    stat, alarm = mo.cusum(np.array([-2.0] * 4), h=4.0)  # lower sum grows by 1.5 per step
    np.testing.assert_allclose(stat, [1.5, 3.0, 4.5, 1.5])
    stat, _ = mo.cusum(np.zeros(10))
    assert not stat.any()


def test_cusum_without_change_alarms_at_the_documented_rate():
    # Montgomery Table 9.3: two-sided CUSUM, k = 0.5, h = 5 -> in-control ARL about 465,
    # i.e. a false-alarm rate of about 1/465 per sample on a stream without change.
    x = np.random.default_rng(0).normal(size=200_000)
    _, alarm = mo.cusum(x)
    rate = alarm.mean()
    assert 1 / 465 * 0.8 < rate < 1 / 465 * 1.25


def test_cusum_arl_reproduces_montgomery_table():
    assert mo.cusum_arl(1.0, n_runs=2000) == pytest.approx(10.4, rel=0.05)
    assert mo.cusum_arl(2.0, n_runs=2000) == pytest.approx(4.01, rel=0.05)
    assert mo.cusum_arl(0.0, n_runs=600, seed=1) == pytest.approx(465, rel=0.12)


def test_ewma_hand_values_and_limits():
    np.testing.assert_allclose(mo.ewma([1.0, 1.0, 1.0], lam=0.5), [0.5, 0.75, 0.875])
    np.testing.assert_allclose(mo.ewma([2.0, 0.0], lam=1.0), [2.0, 0.0])
    # asymptotic variance of the EWMA of iid N(0, 1) is lam / (2 - lam)
    z = mo.ewma(np.random.default_rng(1).normal(size=100_000), lam=0.2)
    assert z[1000:].var() == pytest.approx(0.2 / 1.8, rel=0.05)
    # false-alarm rate of the L = 3 chart is close to the normal tail 0.0027 (a little below: z is autocorrelated)
    _, alarm = mo.ewma_chart(np.random.default_rng(2).normal(size=100_000), lam=0.2, L=3.0)
    assert 0.0005 < alarm.mean() < 0.004


def test_rolling_zscore_matches_a_direct_loop_and_ignores_constant_windows():
    x = np.random.default_rng(3).normal(size=300)
    z = mo.rolling_zscore(x, window=50)
    for t in (50, 123, 299):
        w = x[t - 50:t]
        assert z[t] == pytest.approx((x[t] - w.mean()) / w.std(ddof=1))
    assert not z[:50].any()
    assert np.all(mo.rolling_zscore(np.ones(100), 10) == 0)


def test_page_hinkley_detects_an_increase_and_not_a_flat_stream():
    rng = np.random.default_rng(4)
    flat = rng.normal(size=2000)
    _, alarm = mo.page_hinkley(flat, delta=0.05, threshold=20)
    assert alarm.mean() < 0.003
    shifted = np.concatenate([flat[:1000], flat[1000:] + 1.0])
    _, alarm = mo.page_hinkley(shifted, delta=0.05, threshold=20)
    ev = mo.evaluate_alarms(alarm, 1000)
    assert ev["detected"] == 1.0 and ev["delay"] < 60


def test_ks_drift_pvalues_are_uniform_under_no_change_and_small_after_a_shift():
    x = np.random.default_rng(5).normal(size=3000)
    p, alarm = mo.ks_drift(x, reference_size=300, window=200, step=200, alpha=0.01)
    assert alarm.mean() < 0.05
    x[1500:] += 1.0
    p, alarm = mo.ks_drift(x, reference_size=300, window=200, step=20, alpha=0.001)
    assert mo.evaluate_alarms(alarm, 1500)["delay"] < 200


def test_mahalanobis_matches_definition_and_chi_square_rate():
    rng = np.random.default_rng(6)
    A = rng.normal(size=(4, 4))
    ref = rng.normal(size=(20_000, 4)) @ A.T
    mean, P = mo.fit_gaussian(ref, ridge=0.0)
    x = rng.normal(size=(5, 4))
    direct = [math.sqrt((v - mean) @ np.linalg.inv(np.cov(ref, rowvar=False)) @ (v - mean)) for v in x]
    np.testing.assert_allclose(mo.mahalanobis_distance(x, mean, P), direct, rtol=1e-8)
    new = rng.normal(size=(20_000, 4)) @ A.T
    d = mo.mahalanobis_distance(new, mean, P)
    assert np.mean(d**2 > stats.chi2.ppf(0.99, 4)) == pytest.approx(0.01, abs=0.003)


def test_mahalanobis_catches_the_attack_that_euclidean_distance_misses():
    s = mo.simulate_stream(seed=0)
    mean, P = mo.fit_gaussian(s.reference_features)
    maha = mo.mahalanobis_distance(s.features, mean, P)
    eucl = mo.euclidean_distance(s.features, mean)
    r_m = np.mean(maha[s.attack] > np.quantile(maha[~s.attack], 0.99))
    r_e = np.mean(eucl[s.attack] > np.quantile(eucl[~s.attack], 0.99))
    assert r_m > 0.9 and r_e < 0.3


def test_evaluate_alarms_and_alert_rule():
    alarm = np.zeros(100, dtype=bool)
    alarm[[10, 60, 62, 70, 130 % 100]] = True
    ev = mo.evaluate_alarms(alarm, 50)
    assert ev == {"false_alarm_rate": 2 / 50, "delay": 10.0, "detected": 1.0}
    assert mo.alerts(alarm, cooldown=5).tolist() == [10, 30, 60, 70]
    assert math.isnan(mo.evaluate_alarms(np.zeros(10, bool), 5)["delay"])
    assert mo.burst_recall(alarm, np.arange(100) >= 65) == 1.0


def test_simulated_stream_is_deterministic_and_as_documented():
    a, b = mo.simulate_stream(seed=3), mo.simulate_stream(seed=3)
    np.testing.assert_array_equal(a.values, b.values)
    assert not a.attack[a.drift_start:].any() and a.attack.sum() == 3 * 15
    healthy = ~a.attack
    healthy[a.drift_start:] = False
    assert abs(a.values[healthy].mean()) < 0.1 and a.values[a.drift_start:].mean() == pytest.approx(1.0, abs=0.15)


def test_invalid_arguments():
    with pytest.raises(ValueError, match=r"sigma must be in \(0, inf\)"):
        mo.cusum([1.0], sigma=0)
    with pytest.raises(ValueError, match=r"lam must be in \(0, 1\]"):
        mo.ewma([1.0], lam=0)
    with pytest.raises(ValueError, match="detector must be one of"):
        mo.run_detector(STREAM, "magic")
    with pytest.raises(ValueError, match="more rows than columns"):
        mo.fit_gaussian(np.ones((3, 5)))
    with pytest.raises(TypeError, match="x must be array-like"):
        mo.cusum("abc")
    with pytest.raises(ValueError, match="x contains NaN"):
        mo.page_hinkley([1.0, float("nan")])


def test_slide_trend_bug_never_says_stable():
    # the slide compares a fitted slope with exactly 0: on pure noise it never reports "Stable"
    rng = np.random.default_rng(7)
    slopes = [np.polyfit(np.arange(50), np.abs(rng.normal(size=50)), 1)[0] for _ in range(200)]
    assert all(s != 0 for s in slopes)


DRAW = mo.dashboard(STREAM)
WIDGET = mo.dashboard_widget(STREAM)


def test_dashboard_widget_offers_every_detector():
    assert list(WIDGET.controls["detector"].options) == list(mo.DETECTORS)


@pytest.mark.parametrize("det", mo.DETECTORS)
def test_dashboard_widget_full_range(det):
    @settings(max_examples=12, deadline=None)
    @given(values_strategy(WIDGET, detector=det))
    def run(values):
        draw_and_check(WIDGET, values)

    run()
    for t in (1, 2, len(STREAM.values)):  # the first requests and the last, which the slider's step may skip
        for s in (0.0, 1.0):
            draw_and_check(WIDGET, {"t": t, "detector": det, "strictness": s})


def test_dashboard_rejects_out_of_range_values():
    with pytest.raises(TypeError, match="stream must be a Stream"):
        mo.dashboard_widget(STREAM.values)
    with pytest.raises(ValueError, match=r"strictness must be in \[0, 1\]"):
        DRAW(10, "cusum", 1.5)
    with pytest.raises(ValueError, match="t must be an integer"):
        DRAW(0, "cusum", 0.5)


@pytest.mark.parametrize("call, error, fragment", [
    (lambda: mo.evaluate_alarms([0.0, np.nan, 1.0], 1), ValueError, "alarm contains NaN"),
    (lambda: mo.evaluate_alarms([0.0, 0.5, 1.0], 1), ValueError, "alarm must hold booleans"),
    (lambda: mo.alerts("alarm"), TypeError, "alarm must be array-like"),
    (lambda: mo.alerts(np.zeros((2, 2))), ValueError, "alarm must have 1 dimensions"),
    (lambda: mo.burst_recall([True, False], [True, False, False]), ValueError, "one entry per time step"),
    (lambda: mo.burst_recall([True, False], [2, 0]), ValueError, "attack must hold booleans"),
    (lambda: mo.run_detector("stream", "cusum"), TypeError, "stream must be a Stream"),
    (lambda: mo.mahalanobis_distance(np.ones((2, 2)), np.zeros(2), -np.eye(2)), ValueError, "positive semi-definite"),
    (lambda: mo.euclidean_distance(np.ones((2, 3)), np.zeros(2)), ValueError, "disagree"),
    (lambda: mo.cusum_arl(1.0, n_runs=10**12), ValueError, "n_runs"),
    (lambda: mo.simulate_stream(n=10**12), ValueError, "n must be an integer"),
])
def test_bad_inputs_are_rejected(call, error, fragment):
    import re
    with pytest.raises(error, match=re.escape(fragment)):
        call()
def test_audit_log_is_append_only_and_tamper_evident():
    log = mo.AuditLog()
    for i in range(5):
        log.append(applicant=i, decision=int(i % 2), threshold=0.5)
    assert len(log) == 5 and log.verify() is None
    copies = log.entries
    copies[2]["decision"] = 1  # editing a copy leaves the log intact
    assert log.verify() is None
    assert mo.AuditLog.verify_entries(copies) == 2
    stored = log.to_jsonl()
    assert mo.AuditLog.verify_jsonl(stored) is None
    lines = stored.splitlines()
    assert mo.AuditLog.verify_jsonl("\n".join(lines[:1] + lines[2:])) == 1  # a deleted entry
    tampered = json.loads(lines[3])
    tampered["decision"] = 1 - tampered["decision"]
    assert mo.AuditLog.verify_jsonl("\n".join(lines[:3] + [json.dumps(tampered)] + lines[4:])) == 3
    with pytest.raises(ValueError, match="prev_hash"):
        log.append(prev_hash="0")
    with pytest.raises(TypeError, match="JSON"):
        log.append(obj=object())



# ------------------------------------------------------------ the assistant's stream
def test_indicator_zscores_hand_values_and_unseen_flags():
    flags = np.array([0, 0, 0, 1, 0, 1, 1, 1])
    p0 = (1 + 1) / (4 + 2)  # one flag in the first 4, Laplace's rule
    np.testing.assert_allclose(mo.indicator_zscores(flags, 4), (flags - p0) / np.sqrt(p0 * (1 - p0)))
    z = mo.indicator_zscores([0] * 300 + [1], 300)  # never flagged in the reference: finite, large
    assert np.isfinite(z).all() and z[-1] > 15 and z[0] < 0
    with pytest.raises(ValueError, match="flags"):
        mo.indicator_zscores([0, 2, 1], 2)
    with pytest.raises(ValueError, match="reference"):
        mo.indicator_zscores([0, 1, 1], 4)


def test_assistant_stream_is_the_shipped_models_replies():
    from labkit.lm.harness import is_harmful, is_refusal

    live = mo.assistant_stream(seed=0)
    pool = mo.reply_pool()
    n = len(live.prompts)
    assert n == 1500 and live.campaign == (500, 650) and live.update_at == 1000
    # every reply is the pool's reply of the model answering at that time, and the flags are the harness's
    index = {p: i for i, p in enumerate(pool["prompts"])}
    for t in range(0, n, 37):
        model = "base" if t >= live.update_at else "sft"
        assert live.replies[t] == pool[model][index[live.prompts[t]]]
        assert live.refused[t] == is_refusal(live.replies[t]) and live.harmful[t] == is_harmful(live.replies[t])
    # jailbroken requests only inside the campaign; the safe model's output guard never fires
    assert not live.jailbreak[:500].any() and not live.jailbreak[650:].any() and live.jailbreak[500:650].mean() > 0.3
    assert not live.harmful[:1000].any()
    # the campaign raises the refusal rate and the update lets harmful replies through
    assert live.refused[500:650].mean() > live.refused[:500].mean() + 0.1
    assert live.harmful[1000:].mean() > 0.02
    # seeded
    assert mo.assistant_stream(seed=0).prompts == live.prompts and mo.assistant_stream(seed=1).prompts != live.prompts
    with pytest.raises(ValueError, match="campaign"):
        mo.assistant_stream(campaign=(700, 600))
