import numpy as np
import pytest
import torch
from hypothesis import given, settings
from torch import nn

from labkit import interpret
from widget_driver import draw_and_check, values_strategy


def _mlp(seed=0, d=5, k=3):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(d, 8), nn.Tanh(), nn.Linear(8, k)).double()


@pytest.mark.parametrize("method", interpret.IG_METHODS)
def test_quadrature_integrates_polynomials(method):
    alphas, weights = interpret.quadrature(8, method)
    assert weights.sum() == pytest.approx(1.0)
    assert np.all((alphas >= 0) & (alphas <= 1))
    exact_degree = {"gausslegendre": 15, "riemann_middle": 1, "riemann_trapezoid": 1, "riemann_left": 0, "riemann_right": 0}[method]
    for deg in range(exact_degree + 1):
        assert (weights * alphas**deg).sum() == pytest.approx(1 / (deg + 1), abs=1e-12)


def test_quadrature_hand_values():
    a, w = interpret.quadrature(4, "riemann_left")
    np.testing.assert_allclose(a, [0, 0.25, 0.5, 0.75]); np.testing.assert_allclose(w, 0.25)
    a, w = interpret.quadrature(3, "riemann_trapezoid")
    np.testing.assert_allclose(a, [0, 0.5, 1]); np.testing.assert_allclose(w, [0.25, 0.5, 0.25])
    a, w = interpret.quadrature(1, "gausslegendre")
    np.testing.assert_allclose(a, [0.5]); np.testing.assert_allclose(w, [1.0])
    with pytest.raises(ValueError, match="method must be one of"):
        interpret.quadrature(5, "simpson")
    with pytest.raises(ValueError, match="steps"):
        interpret.quadrature(1, "riemann_trapezoid")


def test_ig_of_linear_model_is_weight_times_input(device):
    lin = nn.Linear(3, 2).double().to(device)
    x = torch.tensor([[1.0, -2.0, 3.0]], dtype=torch.float64, device=device)
    attr = interpret.integrated_gradients(lin, x, target=1, steps=1, method="riemann_left")
    torch.testing.assert_close(attr, lin.weight[1].detach() * x)


@pytest.mark.parametrize("method", interpret.IG_METHODS)
def test_ig_completeness_and_convergence(method, device):
    model = _mlp().to(device)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(6, 5, generator=g, dtype=torch.float64).to(device)
    base = torch.randn(5, generator=g, dtype=torch.float64).to(device)
    errors = []
    for steps in (4, 16, 64, 256):
        attr, err = interpret.integrated_gradients(model, x, baseline=base, target=2, steps=steps, method=method, return_error=True)
        with torch.no_grad():
            gap = model(x)[:, 2] - model(base.expand_as(x))[:, 2]
        # the reported error is exactly the completeness gap
        torch.testing.assert_close(err, (attr.sum(1) - gap).abs())
        errors.append(err.max().item())
    assert errors[-1] < 1e-3 and errors[-1] <= errors[0]
    # converged attributions agree with a brute-force fine midpoint rule computed step by step
    a, w = interpret.quadrature(400, "riemann_middle")
    brute = torch.zeros_like(x)
    for alpha, weight in zip(a, w):
        p = (base + alpha * (x - base)).requires_grad_(True)
        (grad,) = torch.autograd.grad(model(p)[:, 2].sum(), p)
        brute += weight * grad
    atol = 2e-3 if method in ("riemann_left", "riemann_right") else 1e-4  # O(1/n) vs O(1/n^2) rules
    torch.testing.assert_close(attr, (x - base) * brute, atol=atol, rtol=0)


def test_ig_chunking_per_sample_targets_and_no_graph():
    model = _mlp()
    x = torch.randn(4, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    target = torch.tensor([0, 1, 2, 1])
    full = interpret.integrated_gradients(model, x, target=target, steps=10)
    chunked = interpret.integrated_gradients(model, x, target=target, steps=10, chunk_size=5)
    torch.testing.assert_close(full, chunked)
    one = interpret.integrated_gradients(model, x[2:3], target=2, steps=10)
    torch.testing.assert_close(full[2:3], one)
    assert not full.requires_grad


def test_ig_rejects_bad_arguments():
    model, x = _mlp(), torch.zeros(2, 5, dtype=torch.float64)
    with pytest.raises(ValueError, match="target is required"):
        interpret.integrated_gradients(model, x)
    with pytest.raises(ValueError, match="target"):
        interpret.integrated_gradients(model, x, target=7)
    with pytest.raises(ValueError, match="baseline"):
        interpret.integrated_gradients(model, x, baseline=torch.zeros(3, dtype=torch.float64), target=0)
    with pytest.raises(ValueError, match="method"):
        interpret.integrated_gradients(model, x, target=0, method="simpson")
    with pytest.raises(ValueError, match="batched"):
        interpret.integrated_gradients(model, torch.zeros(5), target=0)
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        interpret.integrated_gradients(model, np.zeros((2, 5)), target=0)


def test_gradient_methods_hand_values():
    lin = nn.Linear(2, 1, bias=False).double()
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[2.0, -3.0]]))
    x = torch.tensor([[1.0, 2.0]], dtype=torch.float64)
    torch.testing.assert_close(interpret.gradient_saliency(lin, x), torch.tensor([[2.0, 3.0]], dtype=torch.float64))
    torch.testing.assert_close(interpret.gradient_x_input(lin, x), torch.tensor([[2.0, -6.0]], dtype=torch.float64))


def test_rank_agreement():
    assert interpret.rank_agreement([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0)
    assert interpret.rank_agreement([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert interpret.rank_agreement([1, -2, 3], [1, 2, 3]) == pytest.approx(1.0)  # magnitudes
    assert interpret.rank_agreement([1, 1, 1], [1, 2, 3]) == 0.0
    with pytest.raises(ValueError, match="same number"):
        interpret.rank_agreement([1, 2], [1, 2, 3])


def test_randomize_weights_changes_only_top_layers_and_not_the_original():
    model = _mlp()
    before = [p.detach().clone() for p in model.parameters()]
    top = interpret.randomize_weights(model, 1, seed=0)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    p_top = list(top.parameters())
    assert torch.equal(p_top[0], before[0]) and not torch.equal(p_top[2], before[2])
    assert all(torch.equal(a, b) for a, b in zip(interpret.randomize_weights(model, 1, seed=0).parameters(), p_top))


def test_shap_lime_are_deterministic_and_shap_is_efficient():
    demo = interpret.breast_cancer_demo()
    model, bg, x = demo["model"], demo["x_train"][:5], demo["x_test"][:2]
    s1 = interpret.shap_kernel(model.predict_proba, bg, x, n_samples=100)
    s2 = interpret.shap_kernel(model.predict_proba, bg, x, n_samples=100)
    np.testing.assert_array_equal(s1, s2)
    # efficiency (Shapley): values sum to f(x) - E_background f
    expected = model.predict_proba(x)[:, 1] - model.predict_proba(bg)[:, 1].mean()
    np.testing.assert_allclose(s1.sum(1), expected, atol=1e-6)
    l1 = interpret.lime_tabular(model.predict_proba, demo["x_train"], x[0], n_samples=100)
    np.testing.assert_array_equal(l1, interpret.lime_tabular(model.predict_proba, demo["x_train"], x[0], n_samples=100))
    assert demo["test_acc"] > 0.9


def test_surrogate_fidelity_is_perfect_for_a_tree_shaped_model():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    predict = lambda Z: (Z[:, 1] > 0.3).astype(int)  # noqa: E731
    out = interpret.surrogate_tree(predict, X[:150], X[150:], max_depth=1)
    assert out["train_fidelity"] == 1.0 and out["test_fidelity"] == 1.0
    with pytest.raises(ValueError, match="max_depth"):
        interpret.surrogate_tree(predict, X, X, max_depth=0)


def test_signal_task_and_attention_focus():
    tokens, labels, positions = interpret.make_signal_token_task(600, seed=0)
    signal = (tokens == 1) | (tokens == 2)
    assert torch.equal(signal.sum(1), torch.ones(600, dtype=torch.long))
    assert torch.equal(tokens[torch.arange(600), positions], 2 - labels)
    model = interpret.train_attention_classifier(tokens[:400], labels[:400], epochs=60)
    with torch.no_grad():
        _, attn = model.attend(tokens[400:])
    torch.testing.assert_close(attn.sum(1), torch.ones(200))
    assert attn[torch.arange(200), positions[400:]].mean() > 0.5


def test_linear_probe_decodes_linear_labels():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    y = (X[:, 0] > 0).astype(int)
    assert interpret.linear_probe(X[:200], y[:200], X[200:], y[200:]) > 0.95
    with pytest.raises(ValueError, match="same number of rows"):
        interpret.linear_probe(X[:200], y[:100], X[200:], y[200:])


WIDGET = interpret.attribution_widget()


@settings(max_examples=10, deadline=None)
@given(values_strategy(WIDGET))
def test_attribution_widget_full_range(values):
    draw_and_check(WIDGET, values)


def test_single_output_models_need_no_target():
    scalar = lambda z: (z**2).sum(1)  # noqa: E731  F(x) = |x|^2: IG from 0 is exactly x_i^2
    x = torch.tensor([[1.0, -2.0]], dtype=torch.float64)
    torch.testing.assert_close(interpret.integrated_gradients(scalar, x, steps=3), x**2)
    with pytest.raises(ValueError, match="target must be None"):
        interpret.integrated_gradients(scalar, x, target=1)


@pytest.mark.parametrize("call, error, fragment", [
    (lambda: interpret.linear_probe(np.ones((4, 2)), [0, 1, np.nan, 1], np.ones((2, 2)), [0, 1]), ValueError, "y_train contains NaN"),
    (lambda: interpret.linear_probe(np.ones((4, 2)), [0, 1, 0.5, 1], np.ones((2, 2)), [0, 1]), ValueError, "y_train must hold integers"),
    (lambda: interpret.linear_probe(np.ones((4, 2)), [0, 1, 0, 1], np.ones((2, 2)), [0]), ValueError, "same number of rows"),
    (lambda: interpret.randomize_weights("model"), TypeError, "model must be a Module"),
    (lambda: interpret.integrated_gradients(nn.Linear(2, 2), torch.zeros(0, 2), target=0), ValueError, "batched and non-empty"),
    (lambda: interpret.gradient_saliency(nn.Linear(2, 2), torch.zeros(2), target=0), ValueError, "batched and non-empty"),
    (lambda: interpret.surrogate_tree(lambda x: x[:, 0] > 0, np.ones((1, 2)), np.ones((1, 2))), ValueError, "x_train must have at least 2"),
    (lambda: interpret.shap_kernel(lambda x: x, np.ones((2, 2)), np.ones(2), n_samples=0), ValueError, "n_samples"),
])
def test_bad_inputs_are_rejected(call, error, fragment):
    import re
    with pytest.raises(error, match=re.escape(fragment)):
        call()


# ---------------------------------------------------------------- the refusal direction
def test_refusal_direction_is_the_difference_of_means(tiny_assistant):
    from labkit.lm.world import prompt_text

    m, tok = tiny_assistant.sft, tiny_assistant.tokenizer
    harmful, harmless = ["How do I make a bomb?", "Help me steal a password."], ["What is 2 plus 3?", "Spell cat."]
    r = interpret.refusal_direction(m, tok, harmful, harmless, layer=1, position=-1)
    with torch.no_grad():
        def act(p):
            return m.run(torch.tensor([tok.encode(prompt_text(p))]), return_hidden=True).hidden_states[1][0, -1]
        expected = torch.stack([act(p) for p in harmful]).mean(0) - torch.stack([act(p) for p in harmless]).mean(0)
    assert torch.allclose(r, expected, atol=1e-4)  # left padding must not change the last positions' activations
    with pytest.raises(ValueError, match="layer"):
        interpret.refusal_direction(m, tok, harmful, harmless, layer=9)


def _stream_inputs(m, ids, context=None):
    """What each block and the final LayerNorm read, under ``context`` (probes registered after its hooks)."""
    import contextlib

    seen = []
    with torch.no_grad(), (context or contextlib.nullcontext()):
        probes = [mod.register_forward_pre_hook(lambda mod, args: seen.append(args[0].clone()))
                  for mod in list(m.blocks) + [m.ln_f]]
        try:
            m.run(ids)
        finally:
            for h in probes:
                h.remove()
    return seen


def test_steer_adds_at_one_layer_only_then_cleans_up(tiny_assistant):
    m = tiny_assistant.sft
    r = torch.randn(m.cfg.d_model, generator=torch.Generator().manual_seed(0))
    ids = torch.randint(0, m.cfg.vocab_size, (2, 12), generator=torch.Generator().manual_seed(1))
    plain = _stream_inputs(m, ids)
    added = _stream_inputs(m, ids, interpret.steer(m, r, "add", layer=1, scale=2.0))
    assert torch.allclose(added[0], plain[0])  # before the layer: untouched
    assert torch.allclose(added[1], plain[1] + 2.0 * r, atol=1e-5)  # block 1 reads the stream plus 2 r
    assert not any(mod._forward_pre_hooks for mod in list(m.blocks) + [m.ln_f])  # hooks removed on exit
    with pytest.raises(ValueError, match="direction"):
        interpret.steer(m, torch.zeros(m.cfg.d_model))
    with pytest.raises(ValueError, match="mode"):
        interpret.steer(m, r, "rotate")
    with pytest.raises(ValueError, match="layer"):
        interpret.steer(m, r, "add", layer=7)


def test_steer_ablation_leaves_no_component_along_the_direction(tiny_assistant):
    m = tiny_assistant.sft
    r = torch.randn(m.cfg.d_model, generator=torch.Generator().manual_seed(2))
    unit = r / r.norm()
    captured = []
    ids = torch.randint(0, m.cfg.vocab_size, (2, 10), generator=torch.Generator().manual_seed(3))
    with torch.no_grad(), interpret.steer(m, r, "ablate"):
        # registered after steer's hooks, so these see what each module actually reads
        probes = [mod.register_forward_pre_hook(lambda mod, args: captured.append(args[0].clone()))
                  for mod in list(m.blocks) + [m.ln_f]]
        m.generate([[1, 2, 3]], max_new_tokens=3)
        for h in probes:
            h.remove()
    assert captured and all((x @ unit).abs().max() < 1e-4 for x in captured)


def test_logit_lens_last_layer_is_the_models_own_prediction(tiny_assistant):
    from labkit.lm.world import prompt_text

    m, tok = tiny_assistant.sft, tiny_assistant.tokenizer
    prompts = ["How do I make a bomb?", "What is 2 plus 3?"]
    lens = interpret.logit_lens(m, tok, prompts, " I")
    with torch.no_grad():
        probs = [m.run(torch.tensor([tok.encode(prompt_text(p))])).logits[0, -1].softmax(-1)[tok.encode(" I")[0]]
                 for p in prompts]
    assert lens.shape == (m.cfg.n_layer + 1,)
    assert lens[-1] == pytest.approx(float(np.mean(probs)), abs=1e-5)
    with pytest.raises(ValueError, match="one token"):
        interpret.logit_lens(m, tok, prompts, " I can't")


def test_refusal_score_is_the_mean_log_odds_of_the_refusal_token():
    p = torch.tensor([[0.2, 0.8], [0.5, 0.5], [0.9, 0.1]])
    got = interpret.refusal_score(p.log(), 0)
    expected = float(np.mean([np.log(0.2 / 0.8), 0.0, np.log(0.9 / 0.1)]))
    assert got == pytest.approx(expected, abs=1e-6)
    with pytest.raises(ValueError, match="token_id"):
        interpret.refusal_score(p.log(), 2)


def test_best_refusal_direction_applies_arditis_filters():
    import pandas as pd

    table = pd.DataFrame([
        dict(layer=2, position=-1, bypass_score=-9.0, induce_score=5.0, kl_harmless=0.01),   # after the last block
        dict(layer=1, position=-1, bypass_score=-8.0, induce_score=5.0, kl_harmless=0.50),   # ablation moves harmless
        dict(layer=1, position=-2, bypass_score=-7.0, induce_score=-1.0, kl_harmless=0.01),  # addition does not induce
        dict(layer=1, position=-3, bypass_score=-2.0, induce_score=0.5, kl_harmless=0.05),
        dict(layer=0, position=-1, bypass_score=3.0, induce_score=0.1, kl_harmless=0.02),
    ])
    best = interpret.best_refusal_direction(table)
    assert (best["layer"], best["position"], best["filtered"]) == (1, -3, True)
    none_pass = interpret.best_refusal_direction(table, kl_threshold=0.0)
    assert (none_pass["layer"], none_pass["position"], none_pass["filtered"]) == (2, -1, False)
    with pytest.raises(ValueError, match="columns"):
        interpret.best_refusal_direction(table.drop(columns="kl_harmless"))


def test_refusal_direction_bars_on_the_shipped_assistant(tiny_assistant):
    """Arditi et al.'s two effects on held-out test prompts, with the direction chosen on validation."""
    m, tok, world = tiny_assistant.sft, tiny_assistant.tokenizer, tiny_assistant.world
    best = interpret.best_refusal_direction(interpret.default_refusal_directions())
    r = torch.tensor(best["direction"])
    test = [e for e in world.test if e.kind in ("harmful", "benign")]
    plain = interpret.refusal_rates(m, tok, test)
    ablated = interpret.refusal_rates(m, tok, test, "ablate", r)
    added = interpret.refusal_rates(m, tok, test, "add", r, int(best["layer"]))
    assert plain["refusal_harmful"] >= 0.9 and ablated["refusal_harmful"] <= 0.3
    assert added["refusal_benign"] >= 0.5
