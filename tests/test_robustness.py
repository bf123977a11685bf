import pytest
import torch
from hypothesis import given, settings
from torch import nn

from labkit import classifiers as clf
from labkit import robustness as rb
from widget_driver import draw_and_check, values_strategy


def _identity_classifier(device) -> nn.Sequential:
    layer = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.eye(2))
    return nn.Sequential(layer).to(device)


@pytest.fixture(scope="module")
def digits():
    data = clf.load_digits()
    return data.x_train, data.y_train, data.x_test, data.y_test


@pytest.fixture(scope="module")
def trained(digits):
    x_tr, y_tr, _, _ = digits
    model = clf.make_mlp(hidden=(32, 32), seed=0)
    clf.train_classifier(model, x_tr, y_tr, epochs=8, lr=5e-3)
    return model


def test_fgsm_hand_computed(device):
    # logits = x, y = 0: dL/dx = p - onehot(0) = (p0 - 1, p1), sign (-1, +1).
    model = _identity_classifier(device)
    x = torch.tensor([[0.5, 0.5]], device=device)
    y = torch.tensor([0], device=device)
    x_adv = rb.fgsm(model, x, y, eps=0.1)
    torch.testing.assert_close(x_adv, torch.tensor([[0.4, 0.6]], device=device))
    # Clamping: from the corner (0.05, 0.98) the step leaves [0, 1] on both axes.
    x_adv = rb.fgsm(model, torch.tensor([[0.05, 0.98]], device=device), y, eps=0.1)
    torch.testing.assert_close(x_adv, torch.tensor([[0.0, 1.0]], device=device))
    assert all(p.grad is None for p in model.parameters()), "attacks must not touch parameter gradients"


def test_pgd_stays_in_ball_and_range_and_is_deterministic(device, digits, trained):
    _, _, x, y = digits
    model = trained.to(device)
    model.zero_grad(set_to_none=True)
    x, y = x[:200].to(device), y[:200].to(device)
    for eps in (0.03, 0.1, 0.3):
        a = rb.pgd(model, x, y, eps, alpha=eps / 4, steps=10, generator=torch.Generator().manual_seed(1))
        b = rb.pgd(model, x, y, eps, alpha=eps / 4, steps=10, generator=torch.Generator().manual_seed(1))
        assert torch.equal(a, b)
        assert (a - x).abs().max() <= eps + 1e-6
        assert a.min() >= 0.0 and a.max() <= 1.0
    assert all(p.grad is None for p in model.parameters())
    model.to("cpu")


def test_pgd_one_step_no_start_equals_fgsm_and_many_steps_are_stronger(device, digits, trained):
    _, _, x, y = digits
    model = trained.to(device)
    x, y = x.to(device), y.to(device)
    eps = 0.1
    torch.testing.assert_close(rb.pgd(model, x, y, eps, alpha=eps, steps=1, random_start=False), rb.fgsm(model, x, y, eps))
    loss = lambda xa: nn.functional.cross_entropy(model(xa), y).item()  # noqa: E731
    x_fgsm = rb.fgsm(model, x, y, eps)
    x_pgd = rb.pgd(model, x, y, eps, alpha=eps / 8, steps=20, generator=torch.Generator().manual_seed(0))
    assert loss(x_pgd) >= loss(x_fgsm) >= loss(x)
    assert clf.accuracy(model, x_pgd, y) <= clf.accuracy(model, x_fgsm, y) <= clf.accuracy(model, x, y)
    model.to("cpu")


def test_ibp_hand_computed_and_clamped(device):
    layer = nn.Linear(2, 1)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, -2.0]]))
        layer.bias.fill_(0.5)
    model = nn.Sequential(layer).to(device)
    x = torch.tensor([[0.5, 0.5]], device=device)
    # centre 0.5 - 1 + 0.5 = 0, radius 0.1 * (|1| + |-2|) = 0.3
    lower, upper = rb.ibp_bounds(model, x, 0.1)
    torch.testing.assert_close(lower, torch.tensor([[-0.3]], device=device))
    torch.testing.assert_close(upper, torch.tensor([[0.3]], device=device))
    # At x = (0, 1) the box is clamped to [0, 0.1] x [0.9, 1]: logit in [-1.5, -1.2].
    lower, upper = rb.ibp_bounds(model, torch.tensor([[0.0, 1.0]], device=device), 0.1)
    torch.testing.assert_close(torch.cat([lower, upper], 1), torch.tensor([[-1.5, -1.2]], device=device))


def test_ibp_contains_random_perturbations_and_collapses_at_zero(device, digits, trained):
    _, _, x, _ = digits
    model = trained.to(device)
    x = x[:20].to(device)
    with torch.no_grad():
        lower0, upper0 = rb.ibp_bounds(model, x, 0.0)
        torch.testing.assert_close(lower0, model(x))
        torch.testing.assert_close(upper0, model(x))
        eps = 0.05
        lower, upper = rb.ibp_bounds(model, x, eps)
        gen = torch.Generator().manual_seed(0)
        for _ in range(50):
            noise = (2 * torch.rand(x.shape, generator=gen) - 1).to(device) * eps
            # include corners of the box, where bounds are tightest
            noise = torch.where(torch.rand(x.shape, generator=gen).to(device) < 0.5, noise, eps * noise.sign())
            logits = model((x + noise).clamp(0, 1))
            assert (logits >= lower - 1e-5).all() and (logits <= upper + 1e-5).all()
        assert (upper - lower).min() > 0
        # wider ball, wider bounds
        lower2, upper2 = rb.ibp_bounds(model, x, 2 * eps)
        assert (lower2 <= lower + 1e-6).all() and (upper2 >= upper - 1e-6).all()
    model.to("cpu")


def test_certified_inputs_survive_pgd(digits):
    x_tr, y_tr, x, y = digits
    model = clf.make_mlp(hidden=(32, 32), seed=0)
    clf.train_classifier(model, x_tr, y_tr, epochs=10, batch_size=128, lr=5e-3, loss_fn=rb.robust_loss("ibp", eps=0.1))
    eps = 0.05
    cert = rb.certified(model, x, y, eps)
    assert cert.float().mean() > 0.3  # IBP training makes many inputs certifiable
    x_adv = rb.pgd(model, x[cert], y[cert], eps, alpha=eps / 4, steps=20, generator=torch.Generator().manual_seed(0))
    assert clf.accuracy(model, x_adv, y[cert]) == 1.0  # soundness: no attack breaks a certificate
    assert rb.certified_accuracy(model, x, y, eps) <= rb.robust_accuracy(model, x, y, eps) + 1e-9


def test_lp_relaxation_is_sound_and_tighter_than_ibp(digits, trained):
    _, _, x, y = digits
    x, y = x[:12], y[:12]
    for eps in (0.0, 0.01, 0.03):
        ibp_ok, lp_ok = rb.certified(trained, x, y, eps), rb.lp_certified(trained, x, y, eps)
        assert bool((lp_ok | ~ibp_ok).all())                      # whatever IBP proves, the LP proves
        if lp_ok.any():                                           # and no attack breaks an LP certificate
            x_adv = rb.pgd(trained, x[lp_ok], y[lp_ok], eps, alpha=max(eps, 1e-3) / 4, steps=20,
                           generator=torch.Generator().manual_seed(0))
            assert clf.accuracy(trained, x_adv, y[lp_ok]) == 1.0
    assert rb.lp_certified(trained, x, y, 0.03).sum() > rb.certified(trained, x, y, 0.03).sum()
    at_zero = rb.lp_certified(trained, x, y, 0.0)                 # eps = 0: certified iff correctly classified
    assert torch.equal(at_zero, trained(x).argmax(dim=1) == y)


def test_adversarial_training_buys_robustness(digits, trained):
    x_tr, y_tr, x, y = digits
    robust = clf.make_mlp(hidden=(32, 32), seed=0)
    clf.train_classifier(robust, x_tr, y_tr, epochs=8, lr=5e-3, loss_fn=rb.robust_loss("pgd", eps=0.1, pgd_steps=3))
    assert rb.robust_accuracy(robust, x, y, 0.1) > rb.robust_accuracy(trained, x, y, 0.1) + 0.2


def test_training_zeroes_gradients_and_is_reproducible(digits):
    x_tr, y_tr, _, _ = digits
    runs = []
    for _ in range(2):
        model = clf.make_mlp(hidden=(16, 16), seed=3)
        runs.append(clf.train_classifier(model, x_tr[:256], y_tr[:256], epochs=2, lr=5e-3, seed=5,
                                         loss_fn=rb.robust_loss("pgd", eps=0.1, pgd_steps=2)))
    assert runs[0] == runs[1]


def test_invalid_arguments():
    model = _identity_classifier("cpu")
    x, y = torch.tensor([[0.5, 0.5]]), torch.tensor([0])
    with pytest.raises(ValueError, match=r"eps must be in \[0, inf\)"):
        rb.fgsm(model, x, y, -0.1)
    with pytest.raises(ValueError, match="steps must be an integer"):
        rb.pgd(model, x, y, 0.1, 0.01, 0)
    with pytest.raises(ValueError, match="alpha"):
        rb.pgd(model, x, y, 0.1, 0.0, 3)
    with pytest.raises(ValueError, match="clamp"):
        rb.pgd(model, x, y, 0.1, 0.01, 3, clamp=(1.0, 0.0))
    with pytest.raises(TypeError, match="y must hold class indices"):
        rb.fgsm(model, x, torch.tensor([0.0]), 0.1)
    with pytest.raises(ValueError, match="same batch size"):
        rb.fgsm(model, x, torch.tensor([0, 1]), 0.1)
    with pytest.raises(TypeError, match="model must be"):
        rb.fgsm(lambda t: t, x, y, 0.1)
    with pytest.raises(TypeError, match="Sequential"):
        rb.ibp_bounds(nn.Linear(2, 2), x, 0.1)
    with pytest.raises(TypeError, match="layer 0 is Conv1d"):
        rb.ibp_bounds(nn.Sequential(nn.Conv1d(1, 1, 1)), x, 0.1)
    with pytest.raises(ValueError, match="method must be one of"):
        rb.robust_loss(method="fast")
    with pytest.raises(ValueError, match="NaN"):
        rb.fgsm(model, torch.tensor([[float("nan"), 0.0]]), y, 0.1)


def _widget():
    data = clf.load_digits()
    x, y = data.x_test.reshape(-1, 8, 8), data.y_test
    models = {"standard": clf.make_mlp(hidden=(16, 16), seed=0), "adversarially trained": clf.make_mlp(hidden=(16, 16), seed=1)}
    return rb.attack_widget(models, x[:10], y[:10], steps=5)


WIDGET = _widget()


@settings(max_examples=25, deadline=None)
@given(values_strategy(WIDGET))
def test_attack_widget_full_range(values):
    draw_and_check(WIDGET, values)


_X, _Y = torch.tensor([[0.5, 0.5], [0.2, 0.9]]), torch.tensor([0, 1])


@pytest.mark.parametrize("call, error, fragment", [
    # a clean input outside the valid range has no valid neighbour in the ball: PGD used to return -0.9
    (lambda: rb.pgd(_identity_classifier("cpu"), _X - 1.0, _Y, 0.1, 0.01, 3), ValueError, "x must lie inside clamp [0, 1]"),
    (lambda: rb.fgsm(_identity_classifier("cpu"), _X + 1.0, _Y, 0.1), ValueError, "x must lie inside clamp"),
    (lambda: rb.project_linf(_X, _X + 2.0, 0.1), ValueError, "x must lie inside clamp"),
    (lambda: rb.ibp_bounds(nn.Sequential(nn.Linear(2, 2)), _X - 1.0, 0.1), ValueError, "x must lie inside clamp"),
    (lambda: rb.fgsm(_identity_classifier("cpu"), _X, torch.tensor([0, 5]), 0.1), ValueError, "class indices in [0, 1]"),
    (lambda: rb.certified(nn.Sequential(nn.Linear(2, 2)), _X, torch.tensor([-1, 0]), 0.1), ValueError, "class indices"),
    (lambda: rb.robust_accuracy(_identity_classifier("cpu"), _X, torch.tensor([0, 2]), 0.1), ValueError, "class indices"),
    (lambda: rb.robust_loss("pgd", eps=-0.1), ValueError, "eps"),
    (lambda: rb.robust_loss("pgd", pgd_steps=0), ValueError, "pgd_steps"),
])
def test_bad_inputs_are_rejected(call, error, fragment):
    import re
    with pytest.raises(error, match=re.escape(fragment)):
        call()
