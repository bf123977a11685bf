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


def test_best_of_n_matches_a_loop_and_shows_overoptimization():
    theta = rw.GOLD_WEIGHTS
    curve = rw.best_of_n(theta, [1, 4, 16], n_trials=20, seed=0)
    x = np.random.default_rng(0).normal(size=(20, 16, rw.N_FEATURES))
    picks = [g[int(np.argmax(g @ theta))] for trial in x for g in trial.reshape(4, 4, -1)]
    assert curve["gold"][1] == pytest.approx(np.mean(rw.gold_reward(np.array(picks))) - rw.gold_reward(x).mean())
    assert curve["proxy"][0] == pytest.approx(0.0, abs=1e-12) and curve["gold"][0] == pytest.approx(0.0, abs=1e-12)
    full = rw.best_of_n(theta, rw.N_CHOICES, n_trials=200, seed=1)
    assert np.all(np.diff(full["proxy"]) > 0)          # the proxy only goes up
    peak = int(np.argmax(full["gold"]))
    assert 0 < peak < len(rw.N_CHOICES) - 1            # gold rises, then falls
    assert full["gold"][-1] < full["gold"][peak] - 1.0
    with pytest.raises(ValueError, match="divide the largest"):
        rw.best_of_n(theta, [3, 4])


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
