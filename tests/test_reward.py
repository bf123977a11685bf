import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from scipy import integrate

from labkit import reward as rw
from widget_driver import draw_and_check, values_strategy


def test_bradley_terry_loss_hand_values(device):
    zeros = torch.zeros(5, device=device)
    assert rw.bradley_terry_loss(zeros, zeros).item() == pytest.approx(math.log(2))
    # softplus(-2) = 0.126928, softplus(2) = 2.126928; mean 1.126928
    loss = rw.bradley_terry_loss(torch.tensor([2.0, -1.0], device=device), torch.tensor([0.0, 1.0], device=device))
    assert loss.item() == pytest.approx(1.126928, abs=1e-5)
    # a margin m shifts the gap: winning by exactly m costs log 2
    r = torch.tensor([0.3, -4.0, 7.0], device=device)
    assert rw.bradley_terry_loss(r + 1.5, r, margin=1.5).item() == pytest.approx(math.log(2), abs=1e-6)
    # stable where log(sigmoid(.)) is -inf in float32
    assert rw.bradley_terry_loss(torch.tensor([-200.0], device=device), torch.tensor([0.0], device=device)).item() == pytest.approx(200.0)


def test_bradley_terry_loss_is_the_negative_log_likelihood_and_its_gradient(device):
    gen = torch.Generator().manual_seed(0)
    chosen = torch.randn(50, generator=gen, dtype=torch.float64).to(device).requires_grad_(True)
    rejected = torch.randn(50, generator=gen, dtype=torch.float64).to(device)
    loss = rw.bradley_terry_loss(chosen, rejected)
    expected = -torch.log(torch.sigmoid(chosen - rejected)).mean()
    torch.testing.assert_close(loss, expected)
    loss.backward()
    # d/dr_chosen of -mean log σ(Δ) is -(1 - σ(Δ)) / N
    torch.testing.assert_close(chosen.grad, -(1 - torch.sigmoid(chosen - rejected)).detach() / 50)


def test_bradley_terry_loss_rejects_bad_input():
    with pytest.raises(ValueError, match="same shape"):
        rw.bradley_terry_loss(torch.zeros(3), torch.zeros(2))
    with pytest.raises(TypeError, match="r_chosen must be a torch.Tensor"):
        rw.bradley_terry_loss([1.0], torch.zeros(1))
    with pytest.raises(ValueError, match="at least one pair"):
        rw.bradley_terry_loss(torch.zeros(0), torch.zeros(0))
    with pytest.raises(ValueError, match="margin must be finite"):
        rw.bradley_terry_loss(torch.zeros(1), torch.zeros(1), margin=float("inf"))


def test_preference_probability_axioms():
    a, b = np.array([0.0, 3.0, -1000.0, 1000.0]), np.array([0.0, 1.0, 1000.0, -1000.0])
    p = rw.preference_probability(a, b)
    np.testing.assert_allclose(p + rw.preference_probability(b, a), 1.0)
    assert p[0] == 0.5 and p[1] == pytest.approx(1 / (1 + math.exp(-2)))
    assert np.isfinite(p).all() and p[2] == 0.0 and p[3] == 1.0


def test_simulated_labels_follow_the_noise_model():
    clean = rw.simulate_preferences(20000, 0.0, seed=0)
    agree_clean = np.mean(clean.prefers_a == clean.gold_prefers_a)
    for noise in (0.1, 0.3, 0.5):
        noisy = rw.simulate_preferences(20000, noise, seed=0)
        # same pairs and draws, labels flipped independently with probability `noise`
        np.testing.assert_array_equal(noisy.features_a, clean.features_a)
        expected = (1 - noise) * agree_clean + noise * (1 - agree_clean)
        assert np.mean(noisy.prefers_a == noisy.gold_prefers_a) == pytest.approx(expected, abs=0.015)
    a, b = rw.simulate_preferences(50, 0.2, seed=7), rw.simulate_preferences(50, 0.2, seed=7)
    np.testing.assert_array_equal(a.prefers_a, b.prefers_a)
    with pytest.raises(ValueError, match=r"label_noise must be in \[0, 0.5\]"):
        rw.simulate_preferences(10, 0.6)


def test_fit_is_the_minimiser_of_the_bradley_terry_loss():
    data = rw.simulate_preferences(3000, 0.1, seed=1)
    lam = 1e-3
    theta = rw.fit_bradley_terry(data, weight_decay=lam)
    # zero gradient of the torch loss at the numpy fit
    chosen, rejected = (torch.tensor(a) for a in data.chosen_rejected())
    t = torch.tensor(theta, requires_grad=True)
    obj = rw.bradley_terry_loss(chosen @ t, rejected @ t) + 0.5 * lam * t.pow(2).sum()
    obj.backward()
    assert t.grad.abs().max().item() < 1e-8
    assert obj.item() == pytest.approx(rw.bradley_terry_objective(theta, data, lam))
    # and any nearby point is worse (convexity)
    rng = np.random.default_rng(0)
    for _ in range(10):
        assert rw.bradley_terry_objective(theta + 0.05 * rng.normal(size=theta.shape), data, lam) > obj.item()


def test_fit_recovers_the_gold_direction():
    theta = rw.fit_bradley_terry(rw.simulate_preferences(5000, 0.0, seed=1))
    cosine = theta @ rw.GOLD_WEIGHTS / np.linalg.norm(theta) / np.linalg.norm(rw.GOLD_WEIGHTS)
    assert cosine > 0.98
    test = rw.simulate_preferences(4000, 0.0, seed=2)
    assert rw.pairwise_accuracy(theta, test, "gold") > 0.95
    assert rw.held_out_report(theta, test)["ece"] < 0.05


def test_best_of_n_kl_matches_the_integral():
    assert rw.best_of_n_kl(1) == 0.0
    assert rw.best_of_n_kl(2) == pytest.approx(math.log(2) - 0.5)
    for n in (2, 5, 40):
        # best-of-n of a continuous base has density n F^(n-1) f: KL = ∫ n u^(n-1) log(n u^(n-1)) du
        value, _ = integrate.quad(lambda u: n * u ** (n - 1) * math.log(n * u ** (n - 1)) if u > 0 else 0.0, 0, 1)
        assert rw.best_of_n_kl(n) == pytest.approx(value, abs=1e-7)
    ns = np.array([1, 2, 4, 1024])
    np.testing.assert_allclose(rw.best_of_n_kl(ns), [rw.best_of_n_kl(int(n)) for n in ns])
    assert np.all(np.diff(rw.best_of_n_kl(np.arange(1, 100))) > 0)
    with pytest.raises(ValueError, match="n must be an integer"):
        rw.best_of_n_kl(0)


def test_best_of_n_curve_matches_a_loop_and_its_standard_error():
    rng = np.random.default_rng(0)
    proxy, gold = rng.normal(size=(5, 8)), rng.normal(size=(5, 8))
    curve = rw.best_of_n_curve(proxy, gold, [1, 2, 8])
    for i, n in enumerate([1, 2, 8]):
        picks = np.array([g[np.argmax(p)] for prow, grow in zip(proxy, gold)
                          for p, g in zip(prow.reshape(-1, n), grow.reshape(-1, n))])
        assert curve["gold"][i] == pytest.approx(picks.mean() - gold.mean())
        assert curve["gold_se"][i] == pytest.approx(picks.std() / math.sqrt(len(picks)))
        assert curve["proxy"][i] == pytest.approx(rw.best_of_n_select(proxy, gold, n)[0] - proxy.mean())
    assert curve["gold"][0] == pytest.approx(0.0, abs=1e-12)     # n = 1 is the base policy
    np.testing.assert_allclose(curve["kl"], rw.best_of_n_kl(np.array([1, 2, 8])))
    with pytest.raises(ValueError, match="divide the number of draws"):
        rw.best_of_n_curve(proxy, gold, [3])
    with pytest.raises(ValueError, match="shape of proxy_scores"):
        rw.best_of_n_curve(proxy, gold[:, :4], [1])


def test_response_world_correlates_surface_features_without_rewarding_them():
    for dof in (None, 3.0, 2.5):
        x = rw.draw_responses(200_000, seed=1, spurious_dof=dof)
        assert x.shape == (200_000, rw.N_RESPONSE_FEATURES)
        gold = rw.quality_gold(x)
        for j in range(rw.N_QUALITY, rw.N_RESPONSE_FEATURES):
            assert np.corrcoef(x[:, j], gold)[0, 1] == pytest.approx(rw.SPURIOUS_CORRELATION, abs=0.03)
            if dof != 2.5:   # unit variance; at 2.5 dof the sample sd converges too slowly to test (no fourth moment)
                assert x[:, j].std() == pytest.approx(1.0, abs=0.05)
        np.testing.assert_allclose(x[:, :rw.N_QUALITY].std(axis=0), 1.0, atol=0.01)
    # the same seed gives the same responses; heavier tails give more extreme surface values
    np.testing.assert_array_equal(rw.draw_responses(10, seed=4), rw.draw_responses(10, seed=4))
    extreme = {dof: np.abs(rw.draw_responses(100_000, seed=2, spurious_dof=dof)[:, rw.N_QUALITY:]).max() for dof in (None, 2.5)}
    assert extreme[None] < 6 < extreme[2.5]
    # gold: blind to surface features, increasing in every quality feature, no turning point
    x = rw.draw_responses(50, seed=3)
    moved = x.copy()
    moved[:, rw.N_QUALITY:] += 100.0
    np.testing.assert_array_equal(rw.quality_gold(moved), rw.quality_gold(x))
    assert (rw.QUALITY_WEIGHTS > 0).all()
    for j in range(rw.N_QUALITY):
        far = x.copy()
        far[:, j] += 1000.0
        assert (rw.quality_gold(far) > rw.quality_gold(x)).all()
    with pytest.raises(ValueError, match=r"spurious_dof must be in \(2"):
        rw.draw_responses(5, spurious_dof=2.0)
    with pytest.raises(ValueError, match="8 features"):
        rw.quality_gold(np.zeros((3, 6)))


def test_response_preferences_follow_the_gold_reward():
    data = rw.simulate_response_preferences(20_000, 0.0, seed=5)
    np.testing.assert_array_equal(data.gold_prefers_a, rw.quality_gold(data.features_a) > rw.quality_gold(data.features_b))
    p = rw.preference_probability(rw.quality_gold(data.features_a), rw.quality_gold(data.features_b))
    assert np.mean(data.prefers_a) == pytest.approx(np.mean(p), abs=0.01)   # labelled through Bradley-Terry
    noisy = rw.simulate_response_preferences(20_000, 0.3, seed=5)
    np.testing.assert_array_equal(noisy.features_a, data.features_a)
    agree = np.mean(data.prefers_a == data.gold_prefers_a)
    assert np.mean(noisy.prefers_a == noisy.gold_prefers_a) == pytest.approx(0.7 * agree + 0.3 * (1 - agree), abs=0.015)


def test_reward_model_capacity_decides_its_weight_on_surface_features():
    data = rw.simulate_response_preferences(20_000, 0.0, seed=6)
    full = rw.fit_reward_model(data, rw.N_QUALITY)
    small = rw.fit_reward_model(data, 2)
    # a model that reads every quality feature learns the gold direction and ignores the surface
    cosine = full[:rw.N_QUALITY] @ rw.QUALITY_WEIGHTS / np.linalg.norm(full[:rw.N_QUALITY]) / np.linalg.norm(rw.QUALITY_WEIGHTS)
    assert cosine > 0.99
    assert np.abs(full[rw.N_QUALITY:]).max() < 0.05 * np.linalg.norm(full)
    # one that cannot read the content leans on its correlates
    np.testing.assert_array_equal(small[2:rw.N_QUALITY], 0.0)
    assert (small[rw.N_QUALITY:] > 0.1 * np.linalg.norm(small)).all()
    # and it is the Bradley-Terry fit on the columns it reads
    seen = [0, 1, rw.N_QUALITY, rw.N_QUALITY + 1]
    visible = rw.Preferences(data.features_a[:, seen], data.features_b[:, seen], data.prefers_a, data.gold_prefers_a)
    np.testing.assert_allclose(small[seen], rw.fit_bradley_terry(visible))
    with pytest.raises(ValueError, match="n_quality_seen"):
        rw.fit_reward_model(data, rw.N_QUALITY + 1)
    with pytest.raises(ValueError, match="8 features"):
        rw.fit_reward_model(_PREFS_SHORT, 2)


_PREFS_SHORT = rw.Preferences(np.zeros((3, 4)), np.ones((3, 4)), np.array([True, False, True]), np.array([True, True, True]))


def test_best_of_n_overoptimizes_a_surface_proxy_only_with_heavy_tails():
    gold_weights = np.r_[rw.QUALITY_WEIGHTS, np.zeros(rw.N_SPURIOUS)]
    exact = rw.best_of_n(gold_weights, rw.N_CHOICES, n_trials=100, seed=0)
    np.testing.assert_allclose(exact["proxy"], exact["gold"])      # the proxy is the gold reward
    assert np.all(np.diff(exact["gold"]) > 0)
    # a proxy that reads only the surface features: jointly Gaussian, its gold reward only rises ...
    surface = np.r_[np.zeros(rw.N_QUALITY), 1.0, 1.0]
    gaussian = rw.best_of_n(surface, rw.N_CHOICES, n_trials=300, seed=0, spurious_dof=None)
    assert np.all(np.diff(gaussian["proxy"]) > 0) and not rw.gold_peak(gaussian)["turned"]
    assert np.all(np.diff(gaussian["gold"]) > 0)
    # ... with heavy-tailed surface noise the extremes are picked for their noise, and it falls
    heavy = rw.best_of_n(surface, rw.N_CHOICES, n_trials=300, seed=0, spurious_dof=2.5)
    peak = rw.gold_peak(heavy)
    assert peak["turned"] and peak["n"] < rw.N_CHOICES[-1] and peak["fall"] > 5 * peak["fall_se"]
    with pytest.raises(ValueError, match="divide the largest"):
        rw.best_of_n(surface, [3, 4])
    with pytest.raises(ValueError, match="proxy_weights must have 8 entries"):
        rw.best_of_n(np.zeros(3), [1, 2])


def test_gold_peak_needs_a_fall_beyond_its_standard_error():
    curve = {"n": np.array([1, 2, 4, 8]), "kl": rw.best_of_n_kl(np.array([1, 2, 4, 8])),
             "gold": np.array([0.0, 1.0, 2.0, 1.5]), "gold_se": np.array([0.0, 0.1, 0.1, 0.1])}
    peak = rw.gold_peak(curve)
    assert (peak["n"], peak["gold"], peak["fall"]) == (4, 2.0, 0.5)
    assert peak["fall_se"] == pytest.approx(math.sqrt(0.02)) and peak["turned"]
    noisy = dict(curve, gold_se=np.array([0.0, 0.3, 0.3, 0.3]))   # a fall of 0.5 is within 2 × 0.42
    assert not rw.gold_peak(noisy)["turned"]
    rising = dict(curve, gold=np.array([0.0, 1.0, 2.0, 3.0]))
    assert rw.gold_peak(rising) == pytest.approx({"n": 8, "kl": curve["kl"][3], "gold": 3.0, "fall": 0.0,
                                                  "fall_se": math.sqrt(0.02), "turned": False})
    with pytest.raises(ValueError, match="one entry per n"):
        rw.gold_peak(dict(curve, gold_se=np.array([0.1])))
    with pytest.raises(TypeError, match="curve must be a dict"):
        rw.gold_peak([1, 2])


def test_overoptimization_sweep_rows_are_the_models_best_of_n():
    rows = rw.overoptimization_sweep([50, 200], [1, 6], [10, 11], n_values=[1, 4, 16], n_trials=40, draw_seed=3)
    assert [(r["pairs"], r["seen"], r["seed"]) for r in rows] == [
        (p, k, s) for p in (50, 200) for k in (1, 6) for s in (10, 11)]
    held_out = rw.simulate_response_preferences(4000, 0.0, seed=2)
    for row in rows[::3]:
        weights = rw.fit_reward_model(rw.simulate_response_preferences(row["pairs"], 0.1, seed=row["seed"]), row["seen"])
        np.testing.assert_array_equal(row["weights"], weights)
        curve = rw.best_of_n(weights, [1, 4, 16], n_trials=40, seed=3)   # the same draws: common random numbers
        np.testing.assert_allclose(row["curve"]["gold"], curve["gold"])
        assert row["peak"] == rw.gold_peak(curve)
        assert row["accuracy_vs_gold"] == rw.pairwise_accuracy(weights, held_out, "gold")
    with pytest.raises(ValueError, match="held-out seed 2"):
        rw.overoptimization_sweep([50], [2], [2])
    with pytest.raises(ValueError, match="quality_seen"):
        rw.overoptimization_sweep([50], [7], [10])
    with pytest.raises(ValueError, match="pair_counts"):
        rw.overoptimization_sweep([0], [2], [10])


def test_gao_fit_recovers_known_coefficients():
    kl = rw.best_of_n_kl(np.array(rw.N_CHOICES))
    d = np.sqrt(kl)
    alpha, beta, r2 = rw.fit_gao_bon(kl, d * (2.0 - 0.5 * d))
    assert (alpha, beta, r2) == pytest.approx((2.0, 0.5, 1.0))


WIDGET = rw.reward_model_widget()


@settings(max_examples=15, deadline=None)
@given(values_strategy(WIDGET))
def test_reward_widget_full_range(values):
    draw_and_check(WIDGET, values)


_PREFS = rw.simulate_preferences(20, seed=0)


@pytest.mark.parametrize("call, error, fragment", [
    (lambda: rw.bradley_terry_objective(np.zeros(rw.N_FEATURES), _PREFS, weight_decay=float("nan")), ValueError,
     "weight_decay must be finite"),
    (lambda: rw.bradley_terry_objective(np.zeros(rw.N_FEATURES), _PREFS, weight_decay=-1.0), ValueError, "weight_decay"),
    (lambda: rw.bradley_terry_objective(np.zeros(3), _PREFS), ValueError, "theta must have one entry per feature"),
    (lambda: rw.bradley_terry_objective(np.zeros(rw.N_FEATURES), None), TypeError, "data must be a Preferences"),
    (lambda: rw.pairwise_accuracy(np.zeros(rw.N_FEATURES), "pairs"), TypeError, "data must be a Preferences"),
    (lambda: rw.held_out_report(np.zeros(rw.N_FEATURES), {}), TypeError, "data must be a Preferences"),
    (lambda: rw.held_out_report(np.zeros(rw.N_FEATURES), _PREFS, n_bins=0), ValueError, "n_bins"),
    (lambda: rw.fit_bradley_terry(_PREFS, max_steps=0), ValueError, "max_steps"),
])
def test_bad_inputs_are_rejected(call, error, fragment):
    import re
    with pytest.raises(error, match=re.escape(fragment)):
        call()
