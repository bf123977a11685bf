import numpy as np
import pytest
import torch
from hypothesis import given, settings
from torch import nn

from labkit import continual
from widget_driver import draw_and_check, values_strategy


def test_ewc_penalty_hand_value_zero_at_anchor_and_quadratic(device):
    p = [torch.tensor([2.0, -1.0], device=device)]
    a = [torch.tensor([0.0, 0.0], device=device)]
    f = [torch.tensor([3.0, 0.5], device=device)]
    # 0.5 * lam * (3 * 4 + 0.5 * 1) = 0.5 * 2 * 12.5
    assert continual.ewc_penalty(p, a, f, 2.0).item() == pytest.approx(12.5)
    assert continual.ewc_penalty(a, a, f, 5.0).item() == 0.0
    g = torch.Generator().manual_seed(0)
    anchor = [torch.randn(4, 3, generator=g).to(device), torch.randn(3, generator=g).to(device)]
    fisher = [torch.rand(4, 3, generator=g).to(device), torch.rand(3, generator=g).to(device)]
    d = [torch.randn(t.shape, generator=g).to(device) for t in anchor]
    vals = [continual.ewc_penalty([x + t * y for x, y in zip(anchor, d)], anchor, fisher, 1.0).item() for t in (1.0, 2.0, 3.0)]
    assert vals[1] == pytest.approx(4 * vals[0]) and vals[2] == pytest.approx(9 * vals[0])


def test_ewc_penalty_gradient_pulls_toward_anchor_and_anchor_gets_none():
    p = torch.tensor([1.0, -2.0], requires_grad=True)
    a = torch.tensor([0.0, 0.0], requires_grad=True)
    continual.ewc_penalty([p], [a], [torch.tensor([2.0, 1.0])], 1.0).backward()
    assert torch.allclose(p.grad, torch.tensor([2.0, -2.0]))  # lam * F * (p - a)
    assert a.grad is None


def test_slide_regulariser_is_identically_zero():
    p = nn.Linear(3, 2).weight
    assert (p - p.data).pow(2).sum().item() == 0.0


def test_ewc_penalty_rejects_bad_arguments():
    t = [torch.zeros(2)]
    with pytest.raises(ValueError, match="lam"):
        continual.ewc_penalty(t, t, t, -1.0)
    with pytest.raises(ValueError, match="equal length"):
        continual.ewc_penalty(t, t + t, t, 1.0)
    with pytest.raises(ValueError, match="shapes differ"):
        continual.ewc_penalty(t, [torch.zeros(3)], t, 1.0)
    with pytest.raises(TypeError, match="lam"):
        continual.ewc_penalty(t, t, t, "big")


def test_diagonal_fisher_matches_closed_form_and_brute_force(device):
    rng = np.random.default_rng(0)
    X, W = rng.normal(size=(20, 3)), rng.normal(size=(4, 3))
    model = nn.Linear(3, 4, bias=False).double().to(device)
    with torch.no_grad():
        model.weight.copy_(torch.from_numpy(W))
    (fisher,) = continual.diagonal_fisher(model, torch.from_numpy(X).to(device), chunk_size=7)
    np.testing.assert_allclose(fisher.cpu().numpy(), continual.softmax_regression_fisher(X, W), rtol=1e-10)
    # brute force: loop over samples and classes with ordinary autograd
    brute = torch.zeros_like(model.weight)
    for x in torch.from_numpy(X).to(device):
        logp = torch.log_softmax(model(x), -1)
        for c in range(4):
            (g,) = torch.autograd.grad(logp[c], model.weight, retain_graph=True)
            brute += logp[c].exp().detach() * g**2
    np.testing.assert_allclose(fisher.cpu().numpy(), (brute / len(X)).cpu().numpy(), rtol=1e-10)


def test_empirical_fisher_uses_labels():
    model = nn.Linear(2, 2, bias=False).double()
    with torch.no_grad():
        model.weight.zero_()
    X = torch.tensor([[1.0, 2.0]], dtype=torch.float64)
    (f,) = continual.diagonal_fisher(model, X, torch.tensor([0]))
    # p = (1/2, 1/2); grad of log p_0 wrt W is ((1 - 1/2) x, (0 - 1/2) x)
    np.testing.assert_allclose(f.numpy(), 0.25 * np.array([[1.0, 4.0], [1.0, 4.0]]))
    with pytest.raises(ValueError, match="one label per row"):
        continual.diagonal_fisher(model, X, torch.tensor([0, 1]))


def test_softmax_regression_fisher_properties():
    X = np.array([[1.0, 2.0]])
    np.testing.assert_allclose(continual.softmax_regression_fisher(X, np.zeros((2, 2))), [[0.25, 1.0], [0.25, 1.0]])
    saturated = continual.softmax_regression_fisher(X, np.array([[1000.0, 0.0], [0.0, 0.0]]))
    assert np.all(np.isfinite(saturated)) and saturated.max() < 1e-300 + 1e-12
    with pytest.raises(ValueError, match="features"):
        continual.softmax_regression_fisher(np.ones((2, 3)), np.ones((2, 2)))


def test_tasks_are_permutations_of_the_same_images():
    a, b = continual.permuted_digits_tasks(2, seed=0)
    assert torch.equal(a["x_train"][:, b["permutation"]], b["x_train"])
    assert sorted(b["permutation"]) == list(range(64)) and not np.array_equal(b["permutation"], np.arange(64))
    with pytest.raises(ValueError, match="n_tasks"):
        continual.permuted_digits_tasks(0)


def test_forgetting_and_ewc_protection():
    plain = continual.train_sequential("finetune", epochs_b=10)
    ewc = continual.train_sequential("ewc", lam=100.0, epochs_b=10)
    assert plain["acc_a"][0] > 0.9                      # task A was learned
    assert plain["final_a"] < plain["acc_a"][0] - 0.3   # and fine-tuning forgets it
    assert ewc["final_a"] > plain["final_a"] + 0.3      # EWC keeps much more of it
    again = continual.train_sequential("ewc", lam=100.0, epochs_b=10)
    assert again["acc_a"] == ewc["acc_a"]               # deterministic
    with pytest.raises(ValueError, match="strategy"):
        continual.train_sequential("magic")


WIDGET = continual.ewc_lambda_widget()


@settings(max_examples=6, deadline=None)
@given(values_strategy(WIDGET))
def test_lambda_widget_full_range(values):
    draw_and_check(WIDGET, values)


@pytest.mark.parametrize("call, error, fragment", [
    (lambda: continual.diagonal_fisher("model", torch.zeros(2, 2)), TypeError, "model must be a Module"),
    (lambda: continual.diagonal_fisher(nn.Linear(2, 2), torch.zeros(0, 2)), ValueError, "at least one input"),
    (lambda: continual.diagonal_fisher(nn.Linear(2, 2), torch.zeros(2, 2), torch.tensor([0, 5])), ValueError, "class indices in [0, 1]"),
    (lambda: continual.diagonal_fisher(nn.Linear(2, 2), torch.zeros(2, 2), torch.tensor([0.0, 1.0])), TypeError, "torch.long"),
    (lambda: continual.diagonal_fisher(nn.Linear(2, 2), torch.full((2, 2), float("nan"))), ValueError, "NaN"),
    (lambda: continual.softmax_regression_fisher(np.ones((2, 3)), np.ones((2, 2))), ValueError, "features"),
    (lambda: continual.ewc_penalty([torch.ones(2)], [torch.zeros(2)], [torch.ones(2)], -1.0), ValueError, "lam"),
    (lambda: continual.permuted_digits_tasks(2, test_fraction=1.0), ValueError, "test_fraction"),
    (lambda: continual.train_sequential("ewc", epochs_b=0), ValueError, "epochs_b"),
])
def test_bad_inputs_are_rejected(call, error, fragment):
    import re
    with pytest.raises(error, match=re.escape(fragment)):
        call()


# ---------------------------------------------------------------- forgetting safety
def test_sequence_fisher_is_the_mean_squared_gradient_of_each_demonstration(tiny_assistant):
    from labkit.lm.train import sft_tensors

    m, tok = tiny_assistant.sft, tiny_assistant.tokenizer
    pairs = [(e.prompt, e.response) for e in tiny_assistant.world.sft[:3]]
    idx, tgt, mask = sft_tensors(tok, pairs, m.cfg.context, system_every=0)
    fisher = continual.sequence_fisher(m, idx, tgt, mask)
    expected = [torch.zeros_like(p) for p in m.parameters()]
    for i in range(3):
        grads = torch.autograd.grad(m(idx[i:i + 1], tgt[i:i + 1], mask[i:i + 1])[1], list(m.parameters()))
        expected = [e + g ** 2 / 3 for e, g in zip(expected, grads)]
    assert all(torch.allclose(f, e, rtol=1e-4, atol=1e-10) for f, e in zip(fisher, expected))
    # padding rows of one demonstration must not change its loss (mean over supervised tokens only)
    assert all((f >= 0).all() for f in fisher) and any(f.sum() > 0 for f in fisher)
    with pytest.raises(ValueError):
        continual.sequence_fisher(m, idx[:0], tgt[:0], mask[:0])


def test_finetune_safety_run_starts_at_the_sft_model_and_leaves_it_untouched(tiny_assistant):
    before = {k: v.clone() for k, v in tiny_assistant.sft.state_dict().items()}
    h = continual.finetune_safety_run(tiny_assistant, "ewc", steps=2, eval_steps=(0, 2), n_fisher=4, split="validation")
    assert h["steps"] == [0, 2] and len(h["refusal"]) == len(h["helpful"]) == 2
    from labkit.lm.harness import ModelResponder, evaluate_assistant

    table = evaluate_assistant(ModelResponder(tiny_assistant.sft, tiny_assistant.tokenizer), tiny_assistant.world,
                               per_category=False, split="validation")
    assert h["refusal"][0] == pytest.approx(float(table.set_index("metric").loc["refusal", "rate"]))
    assert all(torch.equal(v, tiny_assistant.sft.state_dict()[k]) for k, v in before.items())
    with pytest.raises(ValueError, match="strategy"):
        continual.finetune_safety_run(tiny_assistant, "l2")


def test_benign_finetuning_erodes_refusal_and_replay_slows_it():
    """The cached study (3 seeds): plain fine-tuning ends below where it started; replay ends above plain fine-tuning."""
    study = continual.default_safety_forgetting()
    final = {name: np.mean([h["refusal"][-1] for h in hs]) for name, hs in study.items()}
    start = np.mean([h["refusal"][0] for h in study["finetune"]])
    assert final["finetune"] < start - 0.2
    assert final["replay"] > final["finetune"]
    assert all(len(hs) == len(continual.SAFETY_SEEDS) for hs in study.values())
