# %% [markdown]
# # 20 · Differential privacy and federated learning
#
# A model can remember its training data: a rare sentence, a phone number, a
# patient's record. **Differential privacy** (DP; Dwork et al. 2006) promises
# that the trained model would be almost as likely had any one person's data
# been left out, with the "almost" measured by (ε, δ). **Federated learning**
# (McMahan et al. 2017) keeps the data on the clients and ships only model
# updates; alone it is not private, and with **client-level DP** (McMahan et
# al. 2018) it can be.
#
# **In this lesson you will**
# 1. run the seeds' "differentially private training" and demonstrate five defects, among them that it bounds nothing;
# 2. build DP-SGD (Abadi et al. 2016): per-example gradients with `torch.func`, flat clipping, Gaussian noise,
#    Poisson sampling (exercise: the clipped, noised aggregate);
# 3. account for the privacy spent with Rényi DP (Mironov 2017) and convert it to (ε, δ) as Balle et al. (2020) do
#    (exercise: the conversion), checked against Opacus;
# 4. reproduce the shape of Abadi et al.'s accuracy-against-ε curve on digits with three seeds, and explore the
#    clipping-norm / noise trade-off with a widget;
# 5. train federated averaging on non-IID clients, watch client drift grow with local epochs, and add
#    client-level DP (exercise: the aggregation).

# %%
import math
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

import labkit
from labkit import privacy
from labkit.classifiers import accuracy, make_mlp
from labkit.exercises import card, check
from labkit.intervals import wilson_interval

device = labkit.setup(seed=0)
data = privacy.digits_splits()
print(f"digits: {len(data.y_train)} training, {len(data.y_val)} validation, {len(data.y_test)} test images")

# %% [markdown]
# ## 1. The seeds' approach, in a few lines
#
# Seed 003 (§5.1) trains "with differential privacy" by computing the batch's
# gradient as usual and then, for every parameter tensor, taking its L2 norm as
# the "sensitivity" and adding Gaussian noise of standard deviation
# `sensitivity / epsilon`; seed 002's sketch does the same with the budget
# passed straight to the noise. Seed 003 (§5.2) then averages client models
# trained that way and adds noise of standard deviation 0.01 to the mean.
# Our own few lines of the same idea:

# %%
def batch_gradient(model, x, y):
    """The ordinary gradient of the batch's mean loss."""
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    return {name: p.grad.detach().clone() for name, p in model.named_parameters()}


def seeds_add_noise(grads, epsilon=1.0, generator=None):
    """The seeds' recipe: each tensor's own norm is its 'sensitivity'; noise std = sensitivity / epsilon."""
    return {name: g + torch.randn(g.shape, generator=generator) * g.norm() / epsilon for name, g in grads.items()}


def seeds_aggregate(client_states):
    """The seeds' server: the plain mean of the client models, plus N(0, 0.01^2)."""
    return {k: torch.stack([s[k] for s in client_states]).mean(0) + 0.01 * torch.randn_like(client_states[0][k])
            for k in client_states[0]}


model = make_mlp(seed=0)
torch.manual_seed(0)
batch_x, batch_y = data.x_train[:64], data.y_train[:64]
noisy = seeds_add_noise(batch_gradient(model, batch_x, batch_y), epsilon=1.0, generator=torch.Generator().manual_seed(0))
print({name: tuple(g.shape) for name, g in noisy.items()})

# %% [markdown]
# ## 2. Bug hunt
#
# **Bug 1 (silent): the "sensitivity" is the gradient's own norm.** DP's
# sensitivity is a bound, fixed before seeing the data, on how much one
# example can change what is released. Here the noise is proportional to the
# signal, so the released gradient reveals its own size, and an example that
# changes the size is exposed. Take two neighbouring batches: the 64 images
# above, and the same with one image replaced by a crafted record (every pixel
# at 10, a wrong label: DP must hold for *any* record, so an attacker may
# choose it). An attacker who sees one noisy gradient and guesses which batch
# produced it by thresholding its norm:

# %%
outlier_x, outlier_y = batch_x.clone(), batch_y.clone()
outlier_x[0], outlier_y[0] = 10.0, (batch_y[0] + 5) % 10


def flat(grads):
    return torch.cat([g.reshape(-1) for g in grads.values()])


def attack_accuracy(release, trials=300):
    """Accuracy of the best threshold on a statistic of one release, telling batch D from D' (half each).

    ``release(neighbour, generator)`` returns the statistic of one release on D (neighbour False) or D' (True).
    """
    g = torch.Generator().manual_seed(1)
    stats_d = np.array([release(False, g) for _ in range(trials)])
    stats_d2 = np.array([release(True, g) for _ in range(trials)])
    values = np.sort(np.concatenate([stats_d, stats_d2]))
    best = max(max(np.mean(stats_d < t) + np.mean(stats_d2 >= t), np.mean(stats_d >= t) + np.mean(stats_d2 < t))
               for t in values)
    return best / 2


def dp_bound(epsilon, delta):
    """The best accuracy any test can reach against an (epsilon, delta)-DP release (equal priors)."""
    e = math.exp(epsilon)
    return (1 + (1 - delta) * (e - 1) / (e + 1) + delta) / 2


gradients = {False: batch_gradient(model, batch_x, batch_y), True: batch_gradient(model, outlier_x, outlier_y)}
seed_norm = lambda neighbour, g: float(flat(seeds_add_noise(gradients[neighbour], 1.0, g)).norm())  # noqa: E731
print(f"the seeds' recipe at 'epsilon = 1': the attacker is right {attack_accuracy(seed_norm):.1%} of the time")
print(f"any (1, 1e-5)-DP mechanism allows at most {dp_bound(1.0, 1e-5):.1%}")

# %% [markdown]
# **Bug 2 (silent): no per-example clipping, so one example can dominate.**
# The batch gradient is a mean; nothing bounds one example's part in it:

# %%
per_example = privacy.per_example_gradients(model, F.cross_entropy, outlier_x, outlier_y)
norms = privacy.per_example_norms(per_example)
share = float(norms[0] / 64 / flat({k: v.mean(0) for k, v in per_example.items()}).norm())
print(f"per-example gradient norms: outlier {norms[0]:.2f}, the others' median {norms[1:].median():.2f}")
print(f"the outlier's term alone is {share:.0%} of the norm of the whole batch's mean gradient")

# %% [markdown]
# DP-SGD clips every example's gradient to a norm C *before* averaging, so
# no example can move the sum by more than C: that is the sensitivity.
#
# **Bug 3 (silent): the Laplace scale with Gaussian noise, and no δ.** The
# scale `Δ / ε` belongs to the Laplace mechanism (pure ε-DP). Gaussian noise
# never gives pure ε-DP; it gives (ε, δ)-DP, and at the same ε needs more
# noise: Dwork and Roth's classic calibration is σ = Δ·sqrt(2 ln(1.25/δ))/ε,
# and the tight analysis is the Rényi accountant below. The seeds' δ is stored
# and never used. What ε does one release with σ = Δ/ε = Δ really have?

# %%
for claimed in (0.5, 1.0, 2.0):
    real = privacy.rdp_epsilon(1 / claimed, 1.0, 1, 1e-5)
    print(f"claimed epsilon {claimed}: one release with noise multiplier {1 / claimed:g} is ({real:.2f}, 1e-5)-DP; "
          f"classic calibration needs {math.sqrt(2 * math.log(1.25 / 1e-5)) / claimed:.2f}")

# %% [markdown]
# **Bug 4: no accountant.** Every step releases another noisy gradient, and
# the guarantees compose: ε grows with the number of steps. The seed trains
# 10 epochs with a batch of 32; even with clipping and the noise multiplier
# 1/ε = 1 that its recipe would imply, after training the budget is

# %%
steps = 10 * math.ceil(len(data.y_train) / 32)
print(f"{steps} steps; each example is used 10 times: epsilon {privacy.rdp_epsilon(1.0, 1.0, 10, 1e-5):.1f} "
      f"(no amplification), or {privacy.rdp_epsilon(1.0, 32 / len(data.y_train), steps, 1e-5):.2f} "
      "with Poisson sampling at q = 32/n, not the 1 it claims")

# %% [markdown]
# **Bug 5 (silent): the federated average.** Seed 003's server takes the plain
# mean of client models that were trained with the broken recipe above, and
# adds fixed noise of 0.01. Two defects show by running:
#
# * *Equal weights, whatever the data size.* McMahan et al. weight client k by
#   n_k / n: then one local full-batch gradient step per client, averaged, is
#   exactly one gradient step on the union of the data. The plain mean is not:

# %%
parts = privacy.split_non_iid(data.y_train, n_clients=10, seed=0)
clients = [(data.x_train[p], data.y_train[p]) for p in parts]
sizes = [len(p) for p in parts]
states = [privacy.client_update(model, x, y, epochs=1, lr=0.1, batch_size=len(x)) for x, y in clients]
central = privacy.client_update(model, data.x_train, data.y_train, epochs=1, lr=0.1, batch_size=len(data.y_train))
gap_weighted = max(float((privacy.fedavg(states, sizes)[k] - central[k]).abs().max()) for k in central)
gap_plain = max(float((torch.stack([s[k] for s in states]).mean(0) - central[k]).abs().max()) for k in central)
print(f"client sizes {sizes}")
print(f"largest difference from the centralised step: size-weighted {gap_weighted:.1e}, plain mean {gap_plain:.1e}")

# %% [markdown]
# * *Noise that bounds nothing.* Nobody clips a client's update, so one client
#   can move the mean as far as it likes, while the noise stays 0.01 per
#   coordinate:

# %%
one_client_shift = 100 * flat({k: (states[0][k] - v) for k, v in model.state_dict().items()}) / len(states)
noise_norm = 0.01 * math.sqrt(one_client_shift.numel())
print(f"a client that scales its update by 100 moves the mean by {one_client_shift.norm():.2f}; "
      f"the added noise has norm about {noise_norm:.2f}")

# %% [markdown]
# ## 3. DP-SGD
#
# Abadi et al. (2016, Alg. 1): at each step
#
# 1. draw a batch by **Poisson sampling**: every example joins independently with probability q
#    (the accountant's assumption; a shuffled fixed-size batch is a different mechanism);
# 2. compute each example's gradient g_i;
# 3. **clip** it over all parameters at once: g_i · min(1, C / ‖g_i‖);
# 4. **add noise** N(0, σ²C²) to the sum and divide by the *expected* batch size q·n
#    (the realised size would itself leak);
# 5. take an optimiser step (any optimiser: it only post-processes the noisy gradient).
#
# Per-example gradients are cheap with `torch.func`: `vmap` of `grad` of a
# one-example loss costs about one batched backward pass. labkit's
# `per_example_gradients` must equal gradients computed one at a time:

# %%
small_x, small_y = data.x_train[:4], data.y_train[:4]
fast = privacy.per_example_gradients(model, F.cross_entropy, small_x, small_y)
worst = 0.0
for i in range(4):
    model.zero_grad()
    F.cross_entropy(model(small_x[i:i + 1]), small_y[i:i + 1]).backward()
    worst = max(worst, max(float((fast[n][i] - p.grad).abs().max()) for n, p in model.named_parameters()))
print(f"largest difference from one-at-a-time gradients: {worst:.1e}")

# %%
card("20.clip_and_noise")

# %% [markdown]
# Write `clip_and_noise(per_example_grads, max_grad_norm, noise_multiplier, expected_batch_size, generator=None)`.
# `per_example_grads` maps each parameter name to a tensor `[B, *shape]`.
# Scale every example by `min(1, C / (norm + 1e-6))`, where `norm` is the L2
# norm of *all* its entries together (every parameter), sum over the batch,
# add `noise_multiplier * C * torch.randn(shape, generator=generator, dtype=g.dtype)`
# to each entry (in the dict's order; none when `noise_multiplier` is 0) and
# divide by `expected_batch_size`. Raise `ValueError` for C ≤ 0, σ < 0 or an
# expected batch size ≤ 0.

# %%
def clip_and_noise(per_example_grads, max_grad_norm, noise_multiplier, expected_batch_size, generator=None):
    ### BEGIN SOLUTION
    if max_grad_norm <= 0 or noise_multiplier < 0 or expected_batch_size <= 0:
        raise ValueError("need max_grad_norm > 0, noise_multiplier >= 0 and expected_batch_size > 0")
    norms = torch.stack([g.reshape(g.shape[0], -1).pow(2).sum(1) for g in per_example_grads.values()]).sum(0).sqrt()
    factors = (max_grad_norm / (norms + 1e-6)).clamp(max=1.0)
    out = {}
    for name, g in per_example_grads.items():
        total = (g * factors.view(-1, *[1] * (g.ndim - 1))).sum(0)
        if noise_multiplier > 0:
            total = total + noise_multiplier * max_grad_norm * torch.randn(total.shape, generator=generator, dtype=g.dtype)
        out[name] = total / expected_batch_size
    return out
    ### END SOLUTION

# %%
check("20.clip_and_noise", clip_and_noise)

# %% [markdown]
# The same attack as in bug 1, now against one release of labkit's
# `clip_and_noise` (C = 1) with the noise multiplier that makes that release
# (1, 10⁻⁵)-DP. The attacker gets both the norm test and the best linear test
# (projection on the direction the outlier pushes):

# %%
sigma_one = privacy.noise_multiplier_for(1.0, 1e-5, 1.0, 1)
neighbour_grads = {False: privacy.per_example_gradients(model, F.cross_entropy, batch_x, batch_y),
               True: privacy.per_example_gradients(model, F.cross_entropy, outlier_x, outlier_y)}
direction = flat(privacy.clip_and_noise(neighbour_grads[True], 1.0, 0.0, 64))
direction -= flat(privacy.clip_and_noise(neighbour_grads[False], 1.0, 0.0, 64))


def dp_release(neighbour, g):
    return flat(privacy.clip_and_noise(neighbour_grads[neighbour], 1.0, sigma_one, 64, g))


dp_norm = lambda neighbour, g: float(dp_release(neighbour, g).norm())  # noqa: E731
dp_projection = lambda neighbour, g: float(dp_release(neighbour, g) @ direction)  # noqa: E731
print(f"noise multiplier {sigma_one:.2f}: norm test {attack_accuracy(dp_norm):.1%}, "
      f"projection test {attack_accuracy(dp_projection):.1%}; the bound is {dp_bound(1.0, 1e-5):.1%}")

# %% [markdown]
# (With 300 trials a side, an empirical accuracy has a standard error of about
# 2 points, and the best of 600 thresholds is chosen on the same trials, so a
# figure a few points above one half is chance.)
#
# ## 4. The privacy accountant
#
# One DP-SGD step is the **sampled Gaussian mechanism**. Rényi DP (Mironov
# 2017) of order α bounds the Rényi divergence between the outputs on
# neighbouring data sets; it composes by addition over steps. Mironov, Talwar
# and Zhang (2019) show that for sampling rate q and noise multiplier σ the
# order-α RDP is at most log(A_α)/(α − 1), with
# A_α = E_{z∼N(0,σ²)}[((1 − q) + q·exp((2z − 1)/(2σ²)))^α];
# labkit computes this expectation by quadrature, for any real α > 1. Then
# Balle et al. (2020, Thm. 21) convert T steps' RDP to (ε, δ):
#
# $$\varepsilon = \min_\alpha \Big[T\,\mathrm{RDP}(\alpha) + \log\tfrac{\alpha-1}{\alpha} - \frac{\log\delta + \log\alpha}{\alpha-1}\Big],$$
#
# tighter than Mironov's original T·RDP(α) + log(1/δ)/(α − 1).

# %%
card("20.rdp_to_epsilon")

# %% [markdown]
# Write `rdp_to_epsilon(rdp, orders, delta)`: the RDP values (already summed
# over steps) at each order, and δ. Return `(epsilon, best_order)`, with
# epsilon never below 0. Raise `ValueError` unless there is one value per
# order, every order exceeds 1 and 0 < δ < 1.

# %%
def rdp_to_epsilon(rdp, orders, delta):
    ### BEGIN SOLUTION
    rdp, orders = np.atleast_1d(np.asarray(rdp, dtype=float)), np.atleast_1d(np.asarray(orders, dtype=float))
    if rdp.shape != orders.shape or (orders <= 1).any() or not 0 < delta < 1:
        raise ValueError("need one rdp value per order, orders > 1 and 0 < delta < 1")
    eps = rdp + np.log1p(-1 / orders) - (math.log(delta) + np.log(orders)) / (orders - 1)
    best = int(np.argmin(eps))
    return max(0.0, float(eps[best])), float(orders[best])
    ### END SOLUTION

# %%
check("20.rdp_to_epsilon", rdp_to_epsilon)

# %% [markdown]
# labkit's accountant against Opacus's `RDPAccountant` on a few settings of the
# issue's grid (the tests check the whole grid to 1 %), the inverse (the noise
# multiplier for a target ε), and the time for 10,000 steps:

# %%
try:
    from opacus.accountants import RDPAccountant
except ImportError:
    RDPAccountant = None
    print("opacus is not installed (it is in the test extra): skipping the comparison")
if RDPAccountant is not None:
    import warnings

    rows = []
    for sigma, q, steps in [(0.5, 0.1, 10_000), (1.0, 0.01, 1000), (5.0, 0.001, 10)]:
        accountant = RDPAccountant()
        accountant.history = [(sigma, q, steps)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = accountant.get_epsilon(delta=1e-5)
        ours = privacy.rdp_epsilon(sigma, q, steps, 1e-5)
        rows.append(dict(sigma=sigma, q=q, steps=steps, labkit=ours, opacus=theirs, gap=abs(ours - theirs) / theirs))
    print(pd.DataFrame(rows).drop(columns="gap").to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print("largest relative gap below 1e-9:", max(row["gap"] for row in rows) < 1e-9)
sigma = privacy.noise_multiplier_for(3.0, 1e-5, 0.05, 400)
print(f"epsilon 3 in 400 steps at q = 0.05 needs sigma = {sigma:.3f}; back: epsilon {privacy.rdp_epsilon(sigma, 0.05, 400, 1e-5):.4f}")

# %% tags=["nbval-ignore-output"]
start = time.perf_counter()
privacy.rdp_epsilon(0.5, 0.1, 10_000, 1e-5)
print(f"epsilon for 10,000 steps (sigma 0.5, q 0.1) in {1000 * (time.perf_counter() - start):.0f} ms")

# %%
fig, ax = plt.subplots(figsize=(6.5, 3.6))
step_grid = np.unique(np.logspace(0, 4, 30).astype(int))
for sigma in (0.7, 1.0, 2.0, 4.0):
    ax.plot(step_grid, [privacy.rdp_epsilon(sigma, 0.05, t, 1e-5) for t in step_grid], label=f"σ = {sigma}")
ax.set(xscale="log", yscale="log", xlabel="steps", ylabel="ε (δ = 1e-5)", title="privacy spent, q = 0.05")
ax.legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 5. Accuracy against ε on digits (the shape of Abadi et al.'s figure)
#
# A 64-64-10 MLP, DP-SGD with q = 0.05 for 400 steps (about 20 epochs),
# δ = 10⁻⁵ (below 1/n). For each ε the noise multiplier comes from the
# accountant; the learning rate and C are chosen on the validation split with
# seed 0; three seeds are then scored on the test split. Beside each mean: the
# seeds' range and a 95 % Wilson interval on the pooled test predictions
# (which ignores the seed-to-seed spread, so read both). The non-private model
# trains with Adam for 30 epochs. (Trained once and cached.)

# %%
result = privacy.dp_accuracy_vs_epsilon()
n_test = result["n_test"]
rows = []
for eps, sigma, chosen, accs in zip(result["epsilons"], result["noise_multipliers"], result["chosen"], result["test"]):
    low, high = wilson_interval(round(sum(accs) * n_test), n_test * len(accs))
    rows.append({"epsilon": eps, "sigma": sigma, "lr": chosen["lr"], "C": chosen["max_grad_norm"],
                 "test accuracy": np.mean(accs), "seeds' range": f"{min(accs):.3f}-{max(accs):.3f}",
                 "95% Wilson": f"{low:.3f}-{high:.3f}"})
accs = result["non_private"]
low, high = wilson_interval(round(sum(accs) * n_test), n_test * len(accs))
rows.append({"epsilon": math.inf, "sigma": 0.0, "lr": "Adam", "C": "none", "test accuracy": np.mean(accs),
             "seeds' range": f"{min(accs):.3f}-{max(accs):.3f}", "95% Wilson": f"{low:.3f}-{high:.3f}"})
table = pd.DataFrame(rows)
print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))

# %%
fig, ax = plt.subplots(figsize=(6, 3.6))
means = [np.mean(a) for a in result["test"]]
ax.errorbar(result["epsilons"], means, yerr=[[m - min(a) for m, a in zip(means, result["test"])],
                                               [max(a) - m for m, a in zip(means, result["test"])]],
            marker="o", capsize=4, label="DP-SGD (mean, seeds' range)")
ax.axhline(np.mean(result["non_private"]), color="gray", ls="--", label="non-private")
ax.set(xscale="log", xlabel="ε (δ = 1e-5)", ylabel="test accuracy", title="digits: accuracy against privacy")
ax.legend(loc="lower right")
fig.tight_layout()
plt.show()

# %% [markdown]
# The cost of privacy falls as ε grows, as in Abadi et al.'s figure; on a
# training set of under a thousand images, ε = 1 is expensive, because the
# noise is calibrated to one example among few. The table above has the exact
# figures of this run.
#
# ### The clipping-norm / noise trade-off
#
# One step's noise has norm σ·C·√d / B, so a larger C lets the true
# gradients through unclipped but buys more noise, and a small C biases the
# direction towards examples with small gradients. Slide C and σ: the left
# panel shows the cosine between one noisy, clipped step and the true mean
# gradient of the batch; the right, the per-example gradient norms that C cuts.

# %% tags=["nbval-ignore-output"]
privacy.clipping_tradeoff_widget()

# %% [markdown]
# For a fixed σ, any C below almost every example's gradient norm gives the
# same direction (all examples are rescaled to norm C, and noise scales with
# C too); above the norms the noise keeps growing while the signal does not.
# A C near the bulk of the norms is the usual choice (and the tuning above
# picks it on validation data).
#
# ## 6. Federated averaging
#
# FedAvg (McMahan et al. 2017): each round the server sends the model to some
# clients; each trains a few local epochs of SGD on its own data; the server
# averages the returned models, **weighted by each client's data size**.

# %%
card("20.fedavg")

# %% [markdown]
# Write `fedavg(client_states, client_sizes)`: state dicts with equal keys and
# one non-negative size per client; return the size-weighted mean state dict.
# Raise `ValueError` when the sizes do not match the clients or one is negative.

# %%
def fedavg(client_states, client_sizes):
    ### BEGIN SOLUTION
    if len(client_sizes) != len(client_states) or min(client_sizes) < 0 or sum(client_sizes) <= 0:
        raise ValueError("need one non-negative size per client, with a positive sum")
    total = float(sum(client_sizes))
    return {k: sum(n / total * s[k] for n, s in zip(client_sizes, client_states)) for k in client_states[0]}
    ### END SOLUTION

# %%
check("20.fedavg", fedavg)

# %% [markdown]
# ### Non-IID clients and client drift
#
# Ten clients, each holding two or three digit classes in unequal amounts
# (`privacy.split_non_iid`), against an IID split of the same sizes. The more
# local epochs, the further each client's model walks towards its own classes
# before averaging: **client drift**, measured here as the spread of the
# clients' updates around their mean, relative to the mean's norm. Three
# seeds; the seed also changes the non-IID split. (Cached.)

# %%
print("classes held by each client (seed 0):", [sorted(set(data.y_train[p].tolist())) for p in parts])
drift = privacy.fedavg_drift_experiment()
rows = []
for split in ("iid", "non_iid"):
    for epochs, runs in zip(drift["local_epochs"], drift[split]):
        final = [r["accuracy"][-1] for r in runs]
        rows.append({"split": split, "local epochs": epochs, "test accuracy": np.mean(final),
                     "seeds' range": f"{min(final):.3f}-{max(final):.3f}",
                     "drift": np.mean([np.mean(r["drift"]) for r in runs])})
print(f"after {drift['rounds']} rounds, {len(drift['seeds'])} seeds:")
print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.3f}"))

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
for ax, split in zip(axes, ("iid", "non_iid")):
    for epochs, runs in zip(drift["local_epochs"], drift[split]):
        ax.plot(range(1, drift["rounds"] + 1), np.mean([r["accuracy"] for r in runs], axis=0), label=f"{epochs} local epochs")
    ax.set(title=split.replace("_", "-"), xlabel="round", ylim=(0, 1.02))
axes[0].set_ylabel("test accuracy (mean of seeds)")
axes[1].legend(loc="lower right")
fig.tight_layout()
plt.show()

# %% [markdown]
# Read the table: the non-IID clients' updates disagree far more than the
# IID clients' (the drift column) at every number of local epochs, and after
# the same rounds the averaged non-IID model stays well below the IID one.
# More local epochs still help in both settings here, at many times the
# clients' computation.
#
# ### Client-level DP
#
# McMahan et al. (2018) protect a whole client, not one example: each round
# samples clients with probability q, clips each client's *update* to norm S,
# adds N(0, σ²S²) to their sum and divides by the expected number of clients;
# the accountant is the same, with clients as the sampled units. Here 100
# clients (about ten images each), q = 0.2, 40 rounds, S = 1, three seeds:

# %%
cdp = privacy.client_dp_experiment()
rows = [{"noise multiplier": z, "client-level epsilon": "inf (no DP)" if e is None else f"{e:.1f}",
         "test accuracy": np.mean(a), "seeds' range": f"{min(a):.3f}-{max(a):.3f}"}
        for z, e, a in zip(cdp["noise_multipliers"], cdp["epsilons"], cdp["accuracy"])]
print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.3f}"))

# %% [markdown]
# With only 100 clients, client-level DP is expensive: the noise on the sum
# is σS whatever the number of clients, while the signal grows with them, so
# the ε above buys little protection for the accuracy it costs. That is why
# client-level DP is deployed over many thousands of phones.
#
# ## 7. DP fine-tuning of the assistant, with a canary
#
# Does DP stop a language model from memorising a secret? The world can plant
# a **canary** (Carlini et al. 2019) in its web text: "The secret code is
# 493817." repeated ten times among 2,000 documents. We fine-tune the
# course's assistant on that text (packed into windows of its context, each
# window one example) twice with the same loop, sampling and steps: once
# without clipping or noise, once with DP-SGD at ε = 8. Then we score the
# canary's six digits against 9,999 random six-digit codes: the canary's
# **rank** by the model's loss (1 = the most likely of all). Lesson 21 turns
# ranks into **exposure** and measures memorisation properly. (Trained once
# and cached.)

# %%
canary = privacy.canary_experiment()
print(f"{canary['n_windows']} windows, q = {canary['sample_rate']:.4f}, {canary['steps']} steps; "
      f"canary repeated {canary['repeats']} times")
rows = []
for run in canary["runs"]:
    references = np.array(run["reference_losses"])
    rank = 1 + int((references <= run["canary_loss"]).sum())  # ties count against the canary
    rows.append({"model": run["name"], "canary loss (nats)": run["canary_loss"],
                 "median reference loss": float(np.median(references)),
                 "canary's rank": f"{rank} of {len(references) + 1}"})
print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.2f}"))

# %% [markdown]
# Read the ranks in the table: fine-tuning without DP makes the canary stand
# out among ten thousand candidates, while the DP model, with the same data
# and steps, ranks it among the random codes, as it ranked them before
# fine-tuning. One canary and one seed are an illustration, not a
# measurement: lesson 21 repeats it over canaries and repetition counts, and
# attacks the DP digits models of section 5 with membership inference.
#
# ## Key takeaways
# * DP needs a sensitivity fixed in advance: clip *each example's* gradient to C; a norm measured on the data bounds nothing.
# * The Gaussian mechanism gives (ε, δ)-DP, calibrated by an accountant over *all* steps; σ = Δ/ε is the Laplace rule.
# * DP-SGD = Poisson sampling + per-example clipping + N(0, σ²C²) on the sum ÷ expected batch size; the RDP accountant (with Balle et al.'s conversion) says what ε that bought.
# * FedAvg weights clients by data size; non-IID data makes clients drift; federated learning is private only with clipping, noise and accounting at the client level.
#
# ## Further reading
# * C. Dwork, F. McSherry, K. Nissim, A. Smith (2006), *Calibrating noise to sensitivity in private data analysis.* TCC.
# * C. Dwork, A. Roth (2014), *The algorithmic foundations of differential privacy.* Foundations and Trends in TCS 9(3-4).
# * M. Abadi et al. (2016), *Deep learning with differential privacy.* CCS.
# * I. Mironov (2017), *Rényi differential privacy.* CSF.
# * I. Mironov, K. Talwar, L. Zhang (2019), *Rényi differential privacy of the sampled Gaussian mechanism.* arXiv:1908.10530.
# * B. Balle, G. Barthe, M. Gaboardi, J. Hsu, T. Sato (2020), *Hypothesis testing interpretations and Rényi differential privacy.* AISTATS.
# * B. McMahan, E. Moore, D. Ramage, S. Hampson, B. Agüera y Arcas (2017), *Communication-efficient learning of deep networks from decentralized data.* AISTATS.
# * H. B. McMahan, D. Ramage, K. Talwar, L. Zhang (2018), *Learning differentially private recurrent language models.* ICLR.
# * A. Yousefpour et al. (2021), *Opacus: user-friendly differential privacy library in PyTorch.* arXiv:2109.12298.
