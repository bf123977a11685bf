# %% [markdown]
# # 08 · Interpretability: attributions, SHAP, LIME, probes
#
# To trust a model's safety behaviour we want to know *why* it decides what it
# decides. Interpretability tools answer narrower questions than that: which
# input features moved this output (attributions), which simple rules mimic the
# model (surrogates), what a hidden layer encodes (probes), where a layer looks
# (attention). Each answer is only as good as the method, so this lesson also
# tests the methods.
#
# **In this lesson you will**
# 1. reproduce the slide's `explain` and seed 003's integrated gradients, and find their bugs;
# 2. implement the quadrature and the vectorised integrated gradients of Sundararajan et al. (2017) and measure the completeness error;
# 3. compare gradients, IG, SHAP and LIME on a breast-cancer classifier, and run the sanity check of Adebayo et al. (2018);
# 4. extract rules with a surrogate tree (and report its fidelity), probe hidden representations, and read attention maps.
# 5. find the tiny assistant's refusal direction, ablate and add it during generation, and read a logit lens.

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

import labkit
from labkit import interpret
from labkit.exercises import card, check

device = labkit.setup(seed=0)

# %% [markdown]
# ## 1. The slide's approach
#
# The slide's `InterpretableNN.explain` returns `|W1|` as "feature importance"
# and `|W2| * hidden activations` as "output contribution". In a few lines:

# %%
torch.manual_seed(0)
slide_net = nn.Sequential(nn.Linear(10, 5), nn.ReLU(), nn.Linear(5, 2))

def slide_explain(x):
    hidden = slide_net[1](slide_net[0](x))
    return {"feature_importance": slide_net[0].weight.abs(),
            "output_contribution": slide_net[2].weight.abs() * hidden}

x_one, x_other = torch.randn(1, 10), torch.randn(1, 10)
same = torch.equal(slide_explain(x_one)["feature_importance"], slide_explain(x_other)["feature_importance"])
print("feature importance identical for two different inputs:", same)
print("feature importance shape:", tuple(slide_explain(x_one)["feature_importance"].shape))
print("output contribution shape for a batch of 2:", tuple(slide_explain(torch.randn(2, 10))["output_contribution"].shape))

# %% [markdown]
# ## 2. Bug hunt
#
# **Bug 1 (silent): `|W1|` is not an explanation.** It does not depend on the
# input (identical for both inputs above), it is a (hidden × input) matrix, not
# one score per feature, it ignores everything after the first layer, and the
# absolute value throws away the sign.
#
# **Bug 2 (silent): wrong shapes in the output contribution.** `|W2|` has shape
# (classes, hidden) and the activations (batch, hidden). For one sample they
# broadcast; for a batch of 2 the result above is (2, 5): row 0 pairs *sample 0*
# with *class 0* and row 1 pairs *sample 1* with *class 1*. No error is raised.
# (For a batch of 3 it crashes.)
#
# Seed 003's `ModelInterpreter.integrated_gradients` has the right idea, with
# three defects. Reproduced in a few lines on a model that outputs probabilities:

# %%
prob_net = nn.Sequential(nn.Linear(10, 5), nn.Tanh(), nn.Linear(5, 3), nn.Softmax(dim=-1))
x = torch.randn(1, 10)

def seed_ig(model, x, steps=50):
    baseline = torch.zeros_like(x)
    path = torch.stack([baseline + (k / steps) * (x - baseline) for k in range(steps)]).requires_grad_(True)
    (grads,) = torch.autograd.grad(model(path).sum(), path, create_graph=True)
    return (x - baseline) * grads.mean(0)

seed_attr = seed_ig(prob_net, x)
print(f"largest |attribution|: {seed_attr.abs().max().item():.3f}; result still holds a graph: {seed_attr.requires_grad}")
print(f"last point on the path: alpha = {max(k / 50 for k in range(50)):.2f}")

# %% [markdown]
# **Bug 3 (silent): it sums every output.** The gradient of
# `outputs.sum()` explains the sum of all classes, never the predicted one. With
# probabilities the sum is always 1, so every attribution is zero (above, up to
# float rounding).
#
# **Bug 4 (silent, costly): `create_graph=True`.** It builds the graph of the
# gradient itself (needed only for second derivatives), so the result still holds
# a graph and every step's activations stay in memory.
#
# **Bug 5: the path never reaches the input.** $\alpha = k/\text{steps}$ for
# $k < \text{steps}$ stops at $1 - 1/\text{steps}$ (0.98 above): a left Riemann sum, the least
# accurate rule, with nothing reporting the error.
#
# ## 3. Integrated gradients, done right
#
# For a model $F$, input $x$ and baseline $x'$, Sundararajan, Taly and Yan (2017,
# eq. 1) define
#
# $$\mathrm{IG}_i(x) = (x_i - x'_i)\int_0^1 \frac{\partial F\big(x' + \alpha(x-x')\big)}{\partial x_i}\,d\alpha .$$
#
# By the fundamental theorem of calculus the attributions add up to
# $F(x) - F(x')$ (**completeness**). In practice the integral is a weighted sum
# over nodes $\alpha_k$, and the gap to completeness measures the quadrature
# error. First the nodes and weights, with Captum's method names.

# %%
card("08.quadrature")

# %% [markdown]
# Write `quadrature(steps, method)` returning `(alphas, weights)`, two numpy
# arrays of length `steps` whose weights sum to 1:
# `riemann_left` / `riemann_right` / `riemann_middle` use $\alpha_k = (k + o)/n$
# with $o = 0, 1, \frac12$ and weights $1/n$; `riemann_trapezoid` uses
# `linspace(0, 1, n)` with weights $1/(n-1)$, halved at both ends (it needs
# $n \ge 2$); `gausslegendre` maps `np.polynomial.legendre.leggauss(n)` from
# $[-1, 1]$ to $[0, 1]$. Raise `ValueError` for an unknown method or too few steps.

# %%
def quadrature(steps, method):
    ### BEGIN SOLUTION
    methods = ("riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid", "gausslegendre")
    if method not in methods:
        raise ValueError(f"method must be one of {methods}")
    if steps < (2 if method == "riemann_trapezoid" else 1):
        raise ValueError("too few steps")
    if method == "gausslegendre":
        nodes, weights = np.polynomial.legendre.leggauss(steps)
        return (nodes + 1) / 2, weights / 2
    if method == "riemann_trapezoid":
        weights = np.full(steps, 1.0 / (steps - 1))
        weights[[0, -1]] /= 2
        return np.linspace(0.0, 1.0, steps), weights
    offset = {"riemann_left": 0.0, "riemann_right": 1.0, "riemann_middle": 0.5}[method]
    return (np.arange(steps) + offset) / steps, np.full(steps, 1.0 / steps)
    ### END SOLUTION

# %%
check("08.quadrature", quadrature)

# %%
card("08.integrated_gradients")

# %% [markdown]
# Write `integrated_gradients(model, x, baseline, target, steps, method)` for a
# batch `x` of shape (n, d), a baseline of the same shape or `None` (zeros) and
# an integer class `target`. Use `interpret.quadrature`, and put **all** path
# points of all samples through the model in **one** forward and one backward
# pass (stack them to shape (steps·n, d)); differentiate only the target
# column, and do not ask for `create_graph`.

# %%
def integrated_gradients(model, x, baseline, target, steps, method):
    ### BEGIN SOLUTION
    if baseline is None:
        baseline = torch.zeros_like(x)
    alphas, weights = interpret.quadrature(steps, method)
    a = torch.as_tensor(alphas, dtype=x.dtype).view(-1, 1, 1)
    w = torch.as_tensor(weights, dtype=x.dtype).view(-1, 1, 1)
    points = (baseline + a * (x - baseline)).reshape(-1, x.shape[1]).requires_grad_(True)
    (grad,) = torch.autograd.grad(model(points)[:, target].sum(), points)
    return (x - baseline) * (w * grad.reshape(steps, *x.shape)).sum(0)
    ### END SOLUTION

# %%
check("08.integrated_gradients", integrated_gradients)

# %% [markdown]
# labkit's `interpret.integrated_gradients(model, x, baseline=None, target=None,
# steps=50, method="gausslegendre", return_error=False)` does the same, chunked
# for large inputs, and reports the completeness error on request.
#
# ### The model we explain
#
# A small MLP (30 → 16 → 2) trained on scikit-learn's bundled breast-cancer data
# (569 tumours, 30 standardised features; class 1 = benign).

# %%
demo = interpret.breast_cancer_demo()
model, x_test, names = demo["model"], demo["x_test"], demo["feature_names"]
print(f"train accuracy {demo['train_acc']:.3f}, test accuracy {demo['test_acc']:.3f} on {len(x_test)} test tumours")

# %% [markdown]
# ### Reproducing a reference result: completeness needs enough steps
#
# Sundararajan et al. recommend checking that the attributions add up to
# $F(x) - F(x')$ "within 5 %", raising the number of steps (20 to 300 in their
# experiments) until they do. Here: the mean completeness error over the test
# set, relative to $|F(x) - F(x')|$, for every rule and number of steps
# (logit of class "benign", zero baseline = the training mean).

# %%
xt = torch.from_numpy(x_test)
with torch.no_grad():
    gap = (model(xt)[:, 1] - model(torch.zeros_like(xt))[:, 1]).abs()
step_grid = [2, 4, 8, 16, 32, 64]
rel_error = {}
for method in interpret.IG_METHODS:
    rel_error[method] = []
    for steps in step_grid:
        _, err = interpret.integrated_gradients(model, xt, target=1, steps=steps, method=method, return_error=True)
        rel_error[method].append(float((err / gap).mean()))
fig, ax = plt.subplots(figsize=(7, 3.8))
for method, errs in rel_error.items():
    ax.loglog(step_grid, np.maximum(errs, 1e-8), marker="o", label=method)
ax.axhline(0.05, color="k", ls="--", lw=1, label="5 % (Sundararajan et al.)")
ax.set(xlabel="steps", ylabel="mean relative completeness error", title="Integrated gradients: quadrature error")
ax.legend(fontsize=8)
plt.show()
for method, errs in rel_error.items():
    print(f"{method:<18} " + "  ".join(f"{s}: {e:.1e}" for s, e in zip(step_grid, errs)))

# %% [markdown]
# The left and right Riemann sums (seed 003's rule) converge like $1/n$; the
# midpoint and trapezoid rules like $1/n^2$ (a quarter of the error per
# doubling); Gauss-Legendre, labkit's default, reaches float32 rounding (about
# $10^{-7}$) by 16 steps. For the same accuracy it needs far fewer forward passes
# *here*: Gauss-Legendre's fast convergence relies on the integrand being
# smooth along the path, which it is for this Tanh network. A ReLU network's
# path gradient jumps wherever a unit switches, and then the advantage over the
# trapezoid rule can shrink to little or nothing.
#
# ## 4. Four more explanations, and whether they agree
#
# * **Saliency** $|\partial F/\partial x|$ (Simonyan et al. 2014) and **gradient × input** (Shrikumar et al. 2016): one backward pass.
# * **Kernel SHAP** (Lundberg and Lee 2017) through the `shap` package: Shapley values of the probability of "benign", estimated by a weighted regression over 200 feature coalitions with 8 background tumours standing in for "feature absent".
# * **LIME** (Ribeiro et al. 2016) through the `lime` package: a weighted linear model fitted to perturbations around the sample.
#
# Both sampling methods are seeded. Below: the mean Spearman rank correlation
# between the magnitudes of every pair of methods over 10 test tumours.

# %%
methods = interpret.TABULAR_METHODS
attributions = {m: np.array([interpret.explain_tabular(demo, i, m) for i in range(10)]) for m in methods}
agreement = np.array([[np.mean([interpret.rank_agreement(attributions[a][i], attributions[b][i]) for i in range(10)])
                       for b in methods] for a in methods])
fig, ax = plt.subplots(figsize=(5.5, 4.5))
im = ax.imshow(agreement, vmin=-1, vmax=1, cmap="RdBu")
ax.set_xticks(range(len(methods)), methods, rotation=35, ha="right")
ax.set_yticks(range(len(methods)), methods)
for i in range(len(methods)):
    for j in range(len(methods)):
        ax.text(j, i, f"{agreement[i, j]:.2f}", ha="center", va="center", fontsize=8)
fig.colorbar(im, label="Spearman rho")
ax.set_title("Agreement between attribution methods")
fig.tight_layout()
plt.show()
pairs = sorted((agreement[i, j], methods[i], methods[j]) for i in range(len(methods)) for j in range(i + 1, len(methods)))
for rho, a, b in (pairs[-1], pairs[0]):
    print(f"{a} vs {b}: {rho:.2f}")

# %% [markdown]
# Gradient × input and integrated gradients agree most (both multiply a
# gradient by the input's distance from zero); saliency and LIME least. No pair
# is close to 1: the methods answer different questions (a local slope for
# saliency, a path from a baseline for IG, feature removal against a background
# for SHAP, a discretised local fit for LIME), so "the important features" depend
# on the method. Report which one, and never rely on a single one.
#
# ### The sanity check of Adebayo et al. (2018)
#
# An explanation of *the model* must change when the model's weights are
# destroyed. Re-initialise layers from the top (cascading randomisation) and
# measure the rank correlation with the original explanation: values near 1 mean
# the method was explaining the input, not the model. The slide's `|W1|` fails
# a different way: it never looked at the input at all.

# %%
sample = torch.from_numpy(x_test[:20])
for n_layers in (1, 2):
    random_model = interpret.randomize_weights(model, n_layers, seed=0)
    for name, fn in [("saliency", interpret.gradient_saliency), ("gradient x input", interpret.gradient_x_input),
                     ("integrated gradients", interpret.integrated_gradients)]:
        before, after = fn(model, sample, target=1), fn(random_model, sample, target=1)
        rho = np.mean([interpret.rank_agreement(b, a) for b, a in zip(before.numpy(), after.numpy())])
        print(f"top {n_layers} layer(s) randomised, {name:<20} rank correlation with original: {rho:.3f}")

# %% [markdown]
# Saliency passes: with both layers random its ranking is unrelated to the
# original (negative above). Gradient × input and IG keep a rank correlation
# around 0.4 to 0.5 even for a model with *all* weights random, because
# multiplying by the input carries the input's own structure into the
# explanation, which is Adebayo et al.'s warning about such methods: part of what
# they show is the input, not the model.
#
# ### Pick a sample and a method
#
# The widget recomputes the chosen explanation for one test tumour and shows the
# twelve largest attributions (blue pushes towards "benign").

# %% tags=["nbval-ignore-output"]
interpret.attribution_widget()

# %% [markdown]
# ## 5. Rules from a surrogate tree
#
# Seed 003's `RuleExtractor` fits a decision tree to the model's predictions;
# what it never reports is **fidelity**, how often the tree agrees with the model
# on data it did not see. Without it the rules are a story.

# %%
predict = lambda X: model.predict_proba(X).argmax(1)  # noqa: E731
for depth in (1, 2, 3, 4):
    rules = interpret.surrogate_tree(predict, demo["x_train"], x_test, max_depth=depth, feature_names=names)
    print(f"depth {depth}: fidelity train {rules['train_fidelity']:.3f}, test {rules['test_fidelity']:.3f}")
print(interpret.surrogate_tree(predict, demo["x_train"], x_test, max_depth=2, feature_names=names)["rules"])

# %% [markdown]
# (Thresholds are in standard deviations from the training mean.) One split on
# *worst perimeter* already agrees with the network on about 91 % of held-out
# tumours; depth 4 reaches about 96 %. Trees also print redundant splits: in the
# depth-2 tree both leaves under *worst perimeter > -0.03* say class 0.
#
# ## 6. Attention maps and linear probes
#
# Seed 002 suggests visualising attention and probing hidden states. We do both on
# a model small enough to check: sequences of 10 tokens, where exactly one
# *signal* token (id 1 → label 1, id 2 → label 0) sits at a random position among
# noise tokens. A one-layer classifier with a single learned attention query
# pools the sequence; if it solved the task the way we expect, its attention
# should sit on the signal token.

# %%
tokens, labels, positions = interpret.make_signal_token_task(1000, seed=0)
train, test = slice(0, 600), slice(600, None)
attn_model = interpret.train_attention_classifier(tokens[train], labels[train], epochs=80)
with torch.no_grad():
    test_acc = (attn_model(tokens[test]).argmax(1) == labels[test]).float().mean().item()
    hidden, attn = attn_model.attend(tokens[test])
on_signal = attn[torch.arange(len(attn)), positions[test]].mean().item()
print(f"test accuracy {test_acc:.3f}; mean attention on the signal token {on_signal:.3f} (uniform would be 0.100)")

fig, ax = plt.subplots(figsize=(7, 3))
ax.imshow(attn[:8].numpy(), cmap="viridis", vmin=0, vmax=1)
ax.scatter(positions[test][:8].numpy(), np.arange(8), marker="x", color="red", label="signal token")
ax.set(xlabel="position", ylabel="test sequence", title="Attention weights of the learned query")
ax.legend(loc="upper right", fontsize=8, bbox_to_anchor=(1.3, 1))
fig.tight_layout()
plt.show()

# %% [markdown]
# A **linear probe** (Alain and Bengio 2016) asks what is linearly decodable from
# the pooled representation. Probes need a control. Hewitt and Liang (2019)
# proposed *control tasks*: the same probe trained to predict random labels
# assigned per word type, so that a probe's accuracy can be read against what it
# achieves by memorising (its selectivity). A simpler control, used here, is the
# same probe on an *untrained* model of the same shape (a random-representation
# baseline, not Hewitt and Liang's). We probe the label (which the model was
# trained on) and whether the signal sits in the first half of the sequence
# (which it was not).

# %%
untrained = interpret.AttentionClassifier()
with torch.no_grad():
    feats_trained = attn_model.attend(tokens)[0].numpy()
    feats_untrained = untrained.attend(tokens)[0].numpy()
first_half = (positions < 5).long().numpy()
for target_name, y in [("label", labels.numpy()), ("signal in first half", first_half)]:
    for model_name, feats in [("trained", feats_trained), ("untrained", feats_untrained)]:
        acc = interpret.linear_probe(feats[train], y[train], feats[test], y[test])
        print(f"probe for {target_name:<21} on {model_name:<9} model: accuracy {acc:.3f}")

# %% [markdown]
# Compare each row with its control. The label is already fairly decodable from
# the untrained model: its uniform attention still averages in the signal
# token's embedding. Where the signal sits is not (about chance), but after
# training it is perfectly decodable, although the model was never trained to
# report it: attention now lands on the signal token, so that token's positional
# embedding dominates the pooled vector. A high probe accuracy shows the
# information is *there*, not that the model *uses* it.
#
# ## 7. The refusal direction of the tiny assistant (Arditi et al. 2024)
#
# Probes read; interventions test. Arditi et al. (2024) found that refusal in
# chat models is mediated by one direction of the residual stream: the
# difference between the mean activations on harmful and on harmless prompts,
# at one layer and one of the last token positions of the chat template.
# Projecting it out of every layer makes the model comply; adding it makes the
# model refuse harmless requests. On the course's SFT assistant (lesson 15):
#
# * candidate directions at every layer (0 = embeddings) and the last three
#   positions (`-1` the assistant tag, `-2` the end tag, `-3` the user's last
#   token), computed on the world's *training* prompts;
# * each candidate scored on *validation* prompts with Arditi et al.'s three
#   scores, read from the reply's first token (every refusal of the world
#   starts with " I"): `bypass_score`, the mean log-odds of " I" on harmful
#   prompts with the direction ablated; `induce_score`, the same on benign
#   prompts with it added at its layer (scale 1); `kl_harmless`, the mean KL
#   divergence of benign prompts' first-token distribution, plain against
#   ablated. Beside them, by generation: ablated refusal, ablated helpfulness,
#   and refusal of benign prompts under addition;
# * the choice rule of their appendix: drop candidates with `kl_harmless`
#   above 0.1 (ablation must leave harmless prompts nearly alone), with
#   `induce_score` below 0 (addition must make refusal more likely than not),
#   or read after the last block; take the lowest `bypass_score` of the rest.
#   Their rule also drops the last 20 % of layers, which in a two-block model
#   would leave only the embeddings; here only the stream after the last
#   block is dropped. If no candidate passes, the lowest `bypass_score` of
#   all is taken and the cell says so. Cached: a few minutes once.

# %%
from labkit.lm.cache import get_assistant

assistant = get_assistant("default")
lm, tok, world = assistant.sft, assistant.tokenizer, assistant.world
directions = interpret.default_refusal_directions()
print(directions.drop(columns="direction").round(3).to_string(index=False))
best = interpret.best_refusal_direction(directions)
before_unembedding = directions.layer < lm.cfg.n_layer
gentle, inducing = directions.kl_harmless <= 0.1, directions.induce_score >= 0
print(f"candidates with KL <= 0.1 on harmless prompts: {int((gentle & before_unembedding).sum())}, "
      f"with induce score >= 0: {int((inducing & before_unembedding).sum())}, "
      f"both: {int((gentle & inducing & before_unembedding).sum())} (of {int(before_unembedding.sum())})")
refusal_dir = torch.tensor(best["direction"])
print(f"chosen on validation: layer {best['layer']}, position {best['position']}, norm {best['norm']:.2f}; "
      + ("it passes Arditi et al.'s filters" if best["filtered"] else
         "no candidate passes Arditi et al.'s filters, so this is the lowest bypass score of all"))

# %% [markdown]
# The test prompts, untouched until now: harmful and benign held-out requests,
# plain, with the direction ablated at every layer, and with it added at its
# layer. `interpret.steer` is a context manager, so generation itself runs
# under the intervention.

# %%
test = [e for e in world.test if e.kind in ("harmful", "benign")]
runs = {"plain": interpret.refusal_rates(lm, tok, test),
        "ablated": interpret.refusal_rates(lm, tok, test, "ablate", refusal_dir),
        "added": interpret.refusal_rates(lm, tok, test, "add", refusal_dir, int(best["layer"]))}
print(f"{'':<8} {'refusal (harmful)':>18} {'refusal (benign)':>17} {'helpful (benign)':>17}")
for name, r in runs.items():
    print(f"{name:<8} {r['refusal_harmful']:>18.3f} {r['refusal_benign']:>17.3f} {r['helpful']:>17.3f}")
bars = {"plain refusal of harmful >= 0.9": runs["plain"]["refusal_harmful"] >= 0.9,
        "ablated refusal of harmful <= 0.3": runs["ablated"]["refusal_harmful"] <= 0.3,
        "added refusal of benign >= 0.5": runs["added"]["refusal_benign"] >= 0.5,
        "ablated helpfulness within 0.05 of plain": abs(runs["ablated"]["helpful"] - runs["plain"]["helpful"]) <= 0.05}
print("course bars: " + "; ".join(f"{k}: {'met' if ok else 'NOT met'}" for k, ok in bars.items()))
harmful_test = [e for e in test if e.kind == "harmful"]
print("\nablated replies to harmful requests:")
ablated_harmful = [(e, x) for e, x in zip(test, runs["ablated"]["replies"]) if e.kind == "harmful"]
for e, reply in ablated_harmful[:3]:
    print(f"  {e.prompt!r} -> {reply!r}")

# %% [markdown]
# Read the helpfulness column too: an ablation that removes refusal and also
# breaks the model's answers would be a lobotomy, not a finding. Arditi et al.
# report that ablation leaves benign performance nearly intact on large chat
# models; on this tiny model compare the plain and ablated helpfulness above
# (we hoped for a gap of at most 0.05). Arditi et al.'s KL filter exists to
# exclude such directions; the counts printed above say whether any candidate
# of this tiny model both leaves harmless prompts nearly alone and induces
# refusal. Addition, on the other hand, makes the model refuse almost
# everything and answer nothing.
#
# **Where is refusal decided?** The logit lens (nostalgebraist 2020) reads each
# layer's residual stream at the assistant tag through the final LayerNorm and
# the unembedding, as if the model stopped there: the probability that the reply
# starts with " I" (every refusal of the world starts "I ...", no benign answer does).

# %%
lens_harmful = interpret.logit_lens(lm, tok, [e.prompt for e in harmful_test], " I")
lens_benign = interpret.logit_lens(lm, tok, [e.prompt for e in test if e.kind == "benign"], " I")
fig, ax = plt.subplots(figsize=(5.5, 3.2))
layers = np.arange(len(lens_harmful))
ax.plot(layers, lens_harmful, marker="o", label="harmful test prompts")
ax.plot(layers, lens_benign, marker="o", label="benign test prompts")
ax.set(xticks=layers, xlabel="layer (0 = embeddings)", ylabel='P(reply starts with " I")', title="Logit lens")
ax.legend()
fig.tight_layout()
plt.show()
print("P(' I') by layer, harmful:", np.round(lens_harmful, 3), " benign:", np.round(lens_benign, 3))

# %% [markdown]
# Lesson 18 uses the same ablation as a white-box attack.
#
# ## Key takeaways
# * Weights are not explanations: `|W1|` ignores the input, and broadcasting silently mixed samples with classes.
# * Integrated gradients explains one output along a path; check completeness and pick the quadrature (Gauss-Legendre needs the fewest steps).
# * Methods answer different questions and agree only partly; run the randomisation sanity check; report a surrogate's fidelity; give every probe a control.
# * Interventions test what probes suggest: removing one direction of the tiny assistant's residual stream removes most of its refusals, and adding it makes it refuse harmless requests.
#
# ## Further reading
# * M. Sundararajan, A. Taly, Q. Yan (2017), *Axiomatic attribution for deep networks.* ICML.
# * J. Adebayo et al. (2018), *Sanity checks for saliency maps.* NeurIPS.
# * S. Lundberg, S.-I. Lee (2017), *A unified approach to interpreting model predictions.* NeurIPS.
# * M. T. Ribeiro, S. Singh, C. Guestrin (2016), *"Why should I trust you?" Explaining the predictions of any classifier.* KDD.
# * K. Simonyan, A. Vedaldi, A. Zisserman (2014), *Deep inside convolutional networks.* ICLR workshop.
# * A. Shrikumar et al. (2016), *Not just a black box: learning important features through propagating activation differences.* arXiv:1605.01713.
# * G. Alain, Y. Bengio (2016), *Understanding intermediate layers using linear classifier probes.* arXiv:1610.01644.
# * J. Hewitt, P. Liang (2019), *Designing and interpreting probes with control tasks.* EMNLP.
# * M. Craven, J. Shavlik (1996), *Extracting tree-structured representations of trained networks.* NeurIPS.
# * S. Jain, B. C. Wallace (2019), *Attention is not explanation.* NAACL.
# * A. Arditi et al. (2024), *Refusal in Language Models Is Mediated by a Single Direction.* NeurIPS.
# * nostalgebraist (2020), *interpreting GPT: the logit lens.* LessWrong.
