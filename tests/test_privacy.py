"""labkit.privacy: per-example gradients, clipping and noise, the RDP accountant, DP-SGD, FedAvg."""
from __future__ import annotations

import itertools
import math
import time
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from scipy.special import gammaln, logsumexp
from torch import nn
from widget_driver import draw_and_check, values_strategy

from labkit import privacy
from labkit.classifiers import accuracy, load_digits, make_mlp


def _tiny_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3))


def _one_at_a_time(model, x, y):
    grads = {name: [] for name, _ in model.named_parameters()}
    for i in range(len(x)):
        model.zero_grad()
        F.cross_entropy(model(x[i:i + 1]), y[i:i + 1]).backward()
        for name, p in model.named_parameters():
            grads[name].append(p.grad.detach().clone())
    return {name: torch.stack(g) for name, g in grads.items()}


# ------------------------------------------------------------------ per-example gradients
def test_per_example_gradients_equal_one_at_a_time_gradients():
    model = _tiny_model()
    x, y = torch.randn(9, 5, generator=torch.Generator().manual_seed(1)), torch.tensor([0, 1, 2, 0, 1, 2, 2, 1, 0])
    ours = privacy.per_example_gradients(model, F.cross_entropy, x, y)
    expected = _one_at_a_time(model, x, y)
    assert set(ours) == set(expected)
    for name in expected:
        assert ours[name].shape == (9, *dict(model.named_parameters())[name].shape)
        torch.testing.assert_close(ours[name], expected[name], rtol=1e-5, atol=1e-6)
    # They differ between examples (a batch-mean gradient copied B times would pass a shape test only).
    assert not torch.allclose(ours["0.weight"][0], ours["0.weight"][1])
    torch.testing.assert_close(ours["2.bias"].mean(0), _batch_grad(model, x, y)["2.bias"], rtol=1e-5, atol=1e-6)


def _batch_grad(model, x, y):
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    return {name: p.grad.detach().clone() for name, p in model.named_parameters()}


def test_per_example_gradients_skip_frozen_parameters_and_leave_model_unchanged():
    model = _tiny_model()
    model[0].weight.requires_grad_(False)
    before = [p.detach().clone() for p in model.parameters()]
    grads = privacy.per_example_gradients(model, F.cross_entropy, torch.randn(4, 5), torch.tensor([0, 1, 2, 0]))
    assert "0.weight" not in grads and "0.bias" in grads
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    empty = privacy.per_example_gradients(model, F.cross_entropy, torch.randn(0, 5), torch.zeros(0, dtype=torch.long))
    assert empty["2.weight"].shape == (0, 3, 7)


@pytest.mark.parametrize("bad, error", [
    (dict(model="mlp"), TypeError), (dict(loss_fn=3), TypeError), (dict(inputs=np.zeros((2, 5))), TypeError),
    (dict(targets=torch.tensor([0, 1, 2])), ValueError),
])
def test_per_example_gradients_reject_bad_arguments(bad, error):
    args = dict(model=_tiny_model(), loss_fn=F.cross_entropy, inputs=torch.randn(2, 5), targets=torch.tensor([0, 1]))
    with pytest.raises(error):
        privacy.per_example_gradients(**{**args, **bad})


# ------------------------------------------------------------------ clipping and noise
def _grads_with_norms(norms, generator=None):
    """Per-example gradients over two 'layers' whose flat norm per example is ``norms``."""
    g = torch.Generator().manual_seed(0) if generator is None else generator
    a, b = torch.randn(len(norms), 3, 4, generator=g), torch.randn(len(norms), 6, generator=g)
    scale = torch.tensor(norms) / torch.sqrt(a.flatten(1).pow(2).sum(1) + b.pow(2).sum(1))
    return {"a": a * scale[:, None, None], "b": b * scale[:, None]}


def test_clip_and_noise_without_noise_is_the_flat_clipped_sum_over_the_expected_batch_size():
    grads = _grads_with_norms([0.5, 2.0, 10.0])
    out = privacy.clip_and_noise(grads, max_grad_norm=1.0, noise_multiplier=0.0, expected_batch_size=4.0)
    factors = torch.tensor([1.0, 1.0 / (2.0 + 1e-6), 1.0 / (10.0 + 1e-6)])
    for name in grads:
        expected = (grads[name] * factors.view(-1, *[1] * (grads[name].ndim - 1))).sum(0) / 4.0
        torch.testing.assert_close(out[name], expected)
    # Deterministic, and a single huge example moves the sum by at most C (the sensitivity).
    again = privacy.clip_and_noise(grads, 1.0, 0.0, 4.0)
    assert all(torch.equal(out[k], again[k]) for k in out)
    one = privacy.clip_and_noise(_grads_with_norms([1e6]), 1.0, 0.0, 1.0)
    assert float(privacy.per_example_norms({k: v[None] for k, v in one.items()})) == pytest.approx(1.0, rel=1e-5)


def test_clipping_is_flat_over_all_parameters_not_per_layer():
    grads = {"a": torch.tensor([[3.0, 0.0]]), "b": torch.tensor([[4.0]])}  # flat norm 5: factor 1/5 on both
    out = privacy.clip_and_noise(grads, 1.0, 0.0, 1.0)
    torch.testing.assert_close(out["a"], torch.tensor([0.6, 0.0]), rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(out["b"], torch.tensor([0.8]), rtol=1e-5, atol=1e-7)


def test_noise_has_mean_zero_and_standard_deviation_sigma_c_over_expected_batch_size():
    grads = {"w": torch.zeros(2, 400, 500)}
    out = privacy.clip_and_noise(grads, max_grad_norm=0.5, noise_multiplier=3.0, expected_batch_size=10.0,
                                 generator=torch.Generator().manual_seed(0))["w"]
    assert float(out.mean()) == pytest.approx(0.0, abs=4 * 0.15 / math.sqrt(out.numel()))
    assert float(out.std()) == pytest.approx(3.0 * 0.5 / 10.0, rel=0.01)
    # Gaussian, not Laplace: the excess kurtosis is near 0 (Laplace's is 3).
    z = out / out.std()
    assert float(z.pow(4).mean()) - 3 == pytest.approx(0.0, abs=0.05)
    # The generator makes the noise reproducible; a different seed changes it.
    a = privacy.clip_and_noise(grads, 1.0, 1.0, 1.0, generator=torch.Generator().manual_seed(5))["w"]
    b = privacy.clip_and_noise(grads, 1.0, 1.0, 1.0, generator=torch.Generator().manual_seed(5))["w"]
    c = privacy.clip_and_noise(grads, 1.0, 1.0, 1.0, generator=torch.Generator().manual_seed(6))["w"]
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("bad, error", [
    (dict(per_example_grads={}), TypeError), (dict(per_example_grads={"w": torch.zeros(2, 3), "b": torch.zeros(3)}), ValueError),
    (dict(max_grad_norm=0.0), ValueError), (dict(noise_multiplier=-1.0), ValueError),
    (dict(expected_batch_size=0), ValueError), (dict(generator=0), TypeError),
    (dict(per_example_grads={"w": torch.tensor([[float("nan"), 0.0, 0.0], [0.0, 1.0, 0.0]])}), ValueError),
    (dict(per_example_grads={"w": torch.tensor([[0.0, float("inf"), 0.0], [0.0, 1.0, 0.0]])}), ValueError),
])
def test_clip_and_noise_rejects_bad_arguments(bad, error):
    args = dict(per_example_grads={"w": torch.zeros(2, 3)}, max_grad_norm=1.0, noise_multiplier=1.0, expected_batch_size=2.0)
    with pytest.raises(error):
        privacy.clip_and_noise(**{**args, **bad})


# ------------------------------------------------------------------ the accountant
def _integer_order_rdp(sigma, q, alpha):
    """Mironov et al. 2019's closed form for integer orders: a binomial sum."""
    k = np.arange(alpha + 1)
    log_terms = (gammaln(alpha + 1) - gammaln(k + 1) - gammaln(alpha - k + 1) + k * np.log(q)
                 + (alpha - k) * np.log1p(-q) + (k * k - k) / (2 * sigma**2))
    return logsumexp(log_terms) / (alpha - 1)


@pytest.mark.parametrize("sigma, q", [(0.5, 0.01), (1.0, 0.1), (5.0, 0.001), (0.7, 0.3)])
def test_rdp_matches_the_closed_form_at_integer_orders(sigma, q):
    orders = [2, 3, 5, 8, 16, 32, 63]
    ours = privacy.subsampled_gaussian_rdp(sigma, q, orders)
    expected = [_integer_order_rdp(sigma, q, a) for a in orders]
    np.testing.assert_allclose(ours, expected, rtol=1e-6)


def test_rdp_without_subsampling_is_the_gaussian_mechanisms():
    np.testing.assert_allclose(privacy.subsampled_gaussian_rdp(2.0, 1.0, [2, 10.5]), [2 / 8, 10.5 / 8])


def test_conversion_is_balle_et_al_and_beats_mironovs():
    eps, order = privacy.rdp_to_epsilon([0.1, 0.5], [2.0, 10.0], 1e-5)
    by_order = [r + math.log1p(-1 / a) - (math.log(1e-5) + math.log(a)) / (a - 1) for r, a in [(0.1, 2.0), (0.5, 10.0)]]
    assert eps == pytest.approx(min(by_order)) and order == 10.0
    mironov = min(r + math.log(1e5) / (a - 1) for r, a in [(0.1, 2.0), (0.5, 10.0)])
    assert eps < mironov


# The grid: noise multipliers 0.5-5, sampling rates 0.001-0.1, 10-10,000 steps.
GRID = list(itertools.product([0.5, 0.8, 1.0, 2.0, 5.0], [0.001, 0.01, 0.1], [10, 100, 1000, 10000]))


def test_epsilon_agrees_with_opacus_rdp_accountant_to_one_percent():
    accountants = pytest.importorskip("opacus.accountants")
    worst = 0.0
    for sigma, q, steps in GRID:
        accountant = accountants.RDPAccountant()
        accountant.history = [(sigma, q, steps)]  # what `steps` calls of accountant.step(...) build
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Opacus warns when the best order is at the grid's edge
            theirs = accountant.get_epsilon(delta=1e-5)
        ours = privacy.rdp_epsilon(sigma, q, steps, 1e-5)
        worst = max(worst, abs(ours - theirs) / theirs)
        assert ours == pytest.approx(theirs, rel=0.01), (sigma, q, steps)
    assert worst < 1e-6  # in fact they agree to rounding


def test_epsilon_grows_with_steps_and_sampling_rate_and_falls_with_noise():
    assert privacy.rdp_epsilon(1.0, 0.01, 0, 1e-5) == 0.0
    eps = [privacy.rdp_epsilon(1.0, 0.01, t, 1e-5) for t in (10, 100, 1000)]
    assert eps[0] < eps[1] < eps[2]
    assert privacy.rdp_epsilon(1.0, 0.02, 100, 1e-5) > eps[1] > privacy.rdp_epsilon(2.0, 0.01, 100, 1e-5)
    assert privacy.rdp_epsilon(1.0, 0.01, 100, 1e-3) < eps[1]


@pytest.mark.parametrize("target, q, steps", [(1.0, 0.05, 500), (3.0, 0.01, 2000), (8.0, 0.1, 100), (0.5, 0.001, 10000)])
def test_noise_multiplier_for_round_trips(target, q, steps):
    sigma = privacy.noise_multiplier_for(target, 1e-5, q, steps)
    eps = privacy.rdp_epsilon(sigma, q, steps, 1e-5)
    assert eps <= target and eps == pytest.approx(target, rel=1e-4)
    assert privacy.rdp_epsilon(sigma * 0.99, q, steps, 1e-5) > target  # the smallest such sigma


def test_accountant_is_fast_and_rejects_bad_arguments():
    start = time.perf_counter()
    privacy.rdp_epsilon(0.5, 0.1, 10_000, 1e-5)  # the slowest case of the grid (the widest quadrature)
    assert time.perf_counter() - start < 0.5  # the bar is 50 ms alone (tools/benchmark.py); loose for a busy CI
    for bad in [dict(noise_multiplier=0.0), dict(sample_rate=0.0), dict(sample_rate=1.5), dict(steps=-1),
                dict(delta=0.0), dict(delta=1.0), dict(orders=[1.0, 2.0])]:
        with pytest.raises(ValueError):
            privacy.rdp_epsilon(**{**dict(noise_multiplier=1.0, sample_rate=0.01, steps=10, delta=1e-5), **bad})
    with pytest.raises(ValueError, match="epsilon must exceed"):
        privacy.noise_multiplier_for(0.01, 1e-5, 0.01, 10)
    with pytest.raises(ValueError):
        privacy.rdp_to_epsilon([0.1], [2.0, 3.0], 1e-5)


# ------------------------------------------------------------------ DP-SGD
def test_train_dp_sgd_poisson_batches_accounting_and_learning():
    digits = load_digits(seed=0)
    model = make_mlp(seed=0)
    result = privacy.train_dp_sgd(model, digits.x_train, digits.y_train, noise_multiplier=1.0, max_grad_norm=1.0,
                                  sample_rate=0.05, steps=150, lr=0.5, seed=0)
    n = len(digits.x_train)
    assert result.epsilon == pytest.approx(privacy.rdp_epsilon(1.0, 0.05, 150, 1e-5))
    sizes = np.array(result.batch_sizes)  # Poisson sampling: binomial sizes, not a fixed batch
    assert sizes.mean() == pytest.approx(0.05 * n, rel=0.1) and sizes.std() > 2
    assert accuracy(model, digits.x_test, digits.y_test) > 0.7
    again = make_mlp(seed=0)
    privacy.train_dp_sgd(again, digits.x_train, digits.y_train, 1.0, 1.0, 0.05, 150, lr=0.5, seed=0)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), again.parameters()))
    assert math.isinf(privacy.train_dp_sgd(make_mlp(seed=0), digits.x_train[:50], digits.y_train[:50], 0.0,
                                           steps=2).epsilon)


# ------------------------------------------------------------------ federated averaging
def test_fedavg_is_the_size_weighted_mean():
    states = [{"w": torch.tensor([1.0, 2.0]), "n": torch.tensor(3)}, {"w": torch.tensor([4.0, 8.0]), "n": torch.tensor(3)}]
    out = privacy.fedavg(states, [1, 2])
    torch.testing.assert_close(out["w"], torch.tensor([3.0, 6.0]))
    assert int(out["n"]) == 3
    torch.testing.assert_close(privacy.fedavg(states[::-1], [2, 1])["w"], out["w"])
    torch.testing.assert_close(privacy.fedavg(states, [1, 1])["w"], torch.tensor([2.5, 5.0]))  # not the equal mean
    with pytest.raises(ValueError):
        privacy.fedavg(states, [1])
    with pytest.raises(ValueError):
        privacy.fedavg(states, [-1, 2])
    with pytest.raises(ValueError):
        privacy.fedavg([states[0], {"v": torch.zeros(2), "n": torch.tensor(3)}], [1, 1])
    with pytest.raises(ValueError):
        privacy.fedavg([states[0], {"w": torch.zeros(2), "n": torch.tensor(4)}], [1, 1])
    with pytest.raises(TypeError):
        privacy.fedavg([], [])


def test_split_non_iid_gives_each_client_two_or_three_classes_and_covers_the_data_once():
    y = torch.arange(10).repeat(30)
    parts = privacy.split_non_iid(y, n_clients=10, seed=0)
    assert sorted(torch.cat(parts).tolist()) == list(range(len(y)))
    assert all(len(set(y[p].tolist())) in (2, 3) for p in parts)
    assert len({len(p) for p in parts}) > 3  # unequal sizes, so the weighting matters


def test_federated_training_learns_and_client_dp_reports_its_epsilon():
    digits = load_digits(seed=0)
    parts = privacy.split_non_iid(digits.y_train, n_clients=10, seed=0)
    clients = [(digits.x_train[p], digits.y_train[p]) for p in parts]
    model = make_mlp(seed=0)
    result = privacy.federated_training(model, clients, rounds=8, local_epochs=2, lr=0.1,
                                        evaluate=lambda m: accuracy(m, digits.x_test, digits.y_test))
    assert result.metric[-1] > max(0.3, result.metric[0]) and math.isnan(result.epsilon) and result.clients_per_round == [10] * 8
    assert all(d > 0 for d in result.drift)
    dp = privacy.federated_training(make_mlp(seed=0), clients, rounds=3, client_fraction=0.5,
                                    client_dp=privacy.ClientDP(noise_multiplier=1.0, clip_norm=0.5))
    assert dp.epsilon == pytest.approx(privacy.rdp_epsilon(1.0, 0.5, 3, 1e-5))
    with pytest.raises(ValueError):
        privacy.ClientDP(noise_multiplier=-1.0)
    with pytest.raises(TypeError):
        privacy.federated_training(make_mlp(seed=0), [digits.x_train], rounds=1)


# ------------------------------------------------------------------ the widget
def test_clipping_tradeoff_clipping_only_biases_direction_and_noise_grows_with_c():
    curve = privacy.clipping_tradeoff([1e-3, 1e3], noise_multiplier=1.0)
    assert curve["clipped"][0] == 1.0 and curve["clipped"][1] == 0.0
    assert curve["cos_clipped"][1] == pytest.approx(1.0)  # nothing clipped: the true direction
    assert curve["cos_clipped"][0] < 0.999                # everything clipped to C: a biased direction
    assert curve["cos_noisy"][1] < curve["cos_noisy"][0]  # a huge C drowns the signal in noise
    quiet = privacy.clipping_tradeoff([1e-3, 1e3], noise_multiplier=0.0)
    np.testing.assert_allclose(quiet["cos_noisy"], quiet["cos_clipped"])
    with pytest.raises(ValueError):
        privacy.clipping_tradeoff([0.0], 1.0)


WIDGET = privacy.clipping_tradeoff_widget()


@settings(max_examples=6, deadline=None)
@given(values_strategy(WIDGET))
def test_clipping_tradeoff_widget_full_range(values):
    draw_and_check(WIDGET, values)
