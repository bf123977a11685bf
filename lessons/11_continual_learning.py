# %% [markdown]
# # 11 · Continual learning: EWC against forgetting
#
# A deployed model is updated again and again: new data, new policies, new
# safety rules. Trained naively on the new task, a network overwrites what it
# knew: **catastrophic forgetting** (McCloskey and Cohen 1989). For safety this
# matters twice: a fine-tune for a new skill can silently erase earlier safety
# training.
#
# **In this lesson you will**
# 1. reproduce the slide's "regularised update" and find out why it regularises nothing;
# 2. implement the Elastic Weight Consolidation penalty (Kirkpatrick et al. 2017) and a closed-form Fisher;
# 3. watch forgetting happen on a sequence of two digit tasks, and compare fine-tuning, an L2 anchor, EWC and replay;
# 4. explore the stability/plasticity trade-off with a slider on λ, and compare L2 and EWC on their frontiers over λ;
# 5. watch a language model forget its safety training under benign fine-tuning (Qi et al. 2023), and slow it with EWC and replay.

# %%
import warnings

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

import labkit
from labkit import continual
from labkit.exercises import card, check

device = labkit.setup(seed=0)

# %% [markdown]
# ## 1. The slide's approach
#
# The slide updates a small MLP on new data and, "to prevent catastrophic
# forgetting", adds `importance * (param - param.data).pow(2).sum()` for every
# parameter that already has a gradient. Here is the same idea in a few lines:

# %%
torch.manual_seed(0)
slide_model = nn.Sequential(nn.Linear(10, 5), nn.ReLU(), nn.Linear(5, 2))
param = slide_model[0].weight
regulariser = (param - param.data).pow(2).sum()
(grad,) = torch.autograd.grad(regulariser, param)
print(f"regulariser value: {regulariser.item():.3f}, largest |gradient|: {grad.abs().max().item():.3f}")

# %% [markdown]
# ## 2. Bug hunt
#
# **Bug 1 (silent): the penalty is identically zero.** `param.data` is the
# *same numbers* as `param`, only detached from autograd, so the difference is
# zero at every step, and so is its gradient (printed above). The update is plain
# training. A real anchor must be a **copy stored before** the new task starts.
#
# **Bug 2 (silent): the first step skips it anyway.** The term is only added when
# `param.grad is not None`; before the first `backward()` every `.grad` is `None`:

# %%
fresh = nn.Sequential(nn.Linear(10, 5), nn.ReLU(), nn.Linear(5, 2))
print("parameters the slide would regularise on its first step:", sum(p.grad is not None for p in fresh.parameters()))

# %% [markdown]
#
# **Bug 3 (silent): every parameter is equally important.** A single scalar
# `importance` treats all weights alike. Some weights matter a lot for the old
# task and others not at all; EWC weights each by its Fisher information.
#
# **Bug 4: the loss reconstructs the input.** `criterion(outputs, new_data)`
# compares the model's 2 outputs with its 10 *inputs*: there are no labels. With
# these shapes it does not even run:

# %%
new_data = torch.randn(100, 10, generator=torch.Generator().manual_seed(0))
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # MSELoss warns about the size mismatch before failing
    try:
        nn.MSELoss()(slide_model(new_data), new_data)
    except RuntimeError as exc:
        print("RuntimeError:", str(exc).split(" at ")[0])

# %% [markdown]
# With an output layer of width 10 it would run, and would teach the classifier
# to copy its input, which is no task at all.
#
# ## 3. Elastic Weight Consolidation
#
# Kirkpatrick et al. (2017) treat the old task's solution $\theta^*_A$ as the mean
# of a Gaussian posterior whose precision is the diagonal Fisher information
# $F_i = \mathbb{E}_{x}\,\mathbb{E}_{y\sim p_\theta(y|x)}\big[(\partial_{\theta_i}\log p_\theta(y|x))^2\big]$
# at $\theta^*_A$. Training on task B then minimises (their eq. 3)
#
# $$\mathcal{L}(\theta) = \mathcal{L}_B(\theta) + \sum_i \frac{\lambda}{2} F_i\,(\theta_i - \theta^*_{A,i})^2 .$$
#
# Weights that barely affect task A's predictions ($F_i \approx 0$) stay free;
# important ones are held by stiff springs.

# %%
card("11.ewc_penalty")

# %% [markdown]
# Write `ewc_penalty(params, anchor, fisher, lam)`: three equal-length lists of
# tensors and $\lambda \ge 0$; return the scalar tensor of eq. 3. Raise
# `ValueError` for a negative `lam` or lists of different lengths. Detach the
# anchor, so no gradient flows into the stored copy.

# %%
def ewc_penalty(params, anchor, fisher, lam):
    ### BEGIN SOLUTION
    params, anchor, fisher = list(params), list(anchor), list(fisher)
    if lam < 0:
        raise ValueError("lam must be >= 0")
    if not (len(params) == len(anchor) == len(fisher)) or not params:
        raise ValueError("params, anchor and fisher must have equal lengths")
    total = sum((f * (p - a.detach()).pow(2)).sum() for p, a, f in zip(params, anchor, fisher))
    return 0.5 * lam * total
    ### END SOLUTION

# %%
check("11.ewc_penalty", ewc_penalty)

# %% [markdown]
# The penalty is zero at the anchor and grows quadratically away from it. This
# time the anchor is a stored copy, so moving the weights changes it:

# %%
anchor = [p.detach().clone() for p in slide_model.parameters()]
ones = [torch.ones_like(a) for a in anchor]
direction = [torch.randn(a.shape, generator=torch.Generator().manual_seed(1)) for a in anchor]
for t in (0.0, 0.1, 0.2, 0.4):
    moved = [a + t * d for a, d in zip(anchor, direction)]
    print(f"distance x {t:.1f}: penalty {continual.ewc_penalty(moved, anchor, ones, 1.0).item():.3f}")

# %% [markdown]
# Doubling the distance multiplies the penalty by four.
#
# ### The Fisher information, in closed form
#
# For softmax regression (logits $z = W x$) the gradient of $\log p_y$ with
# respect to $W_{kj}$ is $(\mathbb{1}[y=k]-p_k)\,x_j$. Averaging its square over
# $y \sim p$ gives $\sum_y p_y(\mathbb{1}[y=k]-p_k)^2 = p_k(1-p_k)$, so
# $F_{kj} = \frac1n\sum_n p_{nk}(1-p_{nk})\,x_{nj}^2$.

# %%
card("11.softmax_regression_fisher")

# %% [markdown]
# Write `softmax_regression_fisher(x, W)` for `x` of shape (n, d) and `W` of
# shape (classes, d), returning shape (classes, d). Use a softmax that cannot
# overflow, and raise `ValueError` when the feature counts differ.

# %%
def softmax_regression_fisher(x, W):
    ### BEGIN SOLUTION
    x, W = np.asarray(x, dtype=float), np.asarray(W, dtype=float)
    if x.shape[1] != W.shape[1]:
        raise ValueError("x and W must have the same number of features")
    z = x @ W.T
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    return (p * (1 - p)).T @ x**2 / len(x)
    ### END SOLUTION

# %%
check("11.softmax_regression_fisher", softmax_regression_fisher)

# %% [markdown]
# labkit's general `diagonal_fisher` takes the expectation over the classes
# exactly with vectorised per-sample gradients (`torch.func`), for any
# classifier. On a softmax regression it must agree with the formula:

# %%
rng = np.random.default_rng(0)
x_small, W_small = rng.normal(size=(50, 4)), rng.normal(size=(3, 4))
linear = nn.Linear(4, 3, bias=False).double()
with torch.no_grad():
    linear.weight.copy_(torch.from_numpy(W_small))
(fisher_autograd,) = continual.diagonal_fisher(linear, torch.from_numpy(x_small))
gap = np.abs(fisher_autograd.numpy() - continual.softmax_regression_fisher(x_small, W_small)).max()
print(f"largest gap between autograd and closed form: {gap:.1e}")

# %% [markdown]
# ## 4. Forgetting, and four ways to fight it
#
# Task A is scikit-learn's 8×8 digits; task B is the same digits with the 64
# pixels shuffled by a fixed permutation (the "permuted MNIST" protocol of the
# EWC paper, in miniature). One MLP (64-64-10) trains on A, then on B. We
# compare
#
# * **fine-tuning**: plain training on B;
# * **L2 anchor**: eq. 3 with every $F_i = 1$;
# * **EWC**: eq. 3 with the Fisher computed at the end of task A;
# * **replay**: half of every batch drawn from 100 stored task-A images.

# %%
tasks = continual.permuted_digits_tasks(2, seed=0)
print(f"{len(tasks[0]['x_train'])} training and {len(tasks[0]['x_test'])} test images per task")
runs = {
    "fine-tune": continual.train_sequential("finetune"),
    "L2 anchor, lambda=0.1": continual.train_sequential("l2", lam=0.1),
    "EWC, lambda=100": continual.train_sequential("ewc", lam=100.0),
    "replay (100 images)": continual.train_sequential("replay"),
}
print(f"task A accuracy before task B: {runs['fine-tune']['acc_a'][0]:.3f}")
for name, h in runs.items():
    print(f"{name:<22} after task B: task A {h['final_a']:.3f}, task B {h['final_b']:.3f}")

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
for name, h in runs.items():
    axes[0].plot(h["epochs"], h["acc_a"], label=name)
    axes[1].plot(h["epochs"], h["acc_b"], label=name)
axes[0].set(title="task A (old) while task B trains", xlabel="epochs on task B", ylabel="test accuracy", ylim=(0, 1.02))
axes[1].set(title="task B (new)", xlabel="epochs on task B")
axes[1].legend(loc="lower right", fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# The output above shows the pattern of the EWC paper's Figure 2A in
# miniature: fine-tuning learns B and drops A to about a third; an L2 anchor
# strong enough to protect A holds *all* weights equally and learns B worse;
# EWC keeps A far better than fine-tuning while still learning B. At these two
# λ the L2 anchor keeps slightly more of A than EWC and pays for it on B (the
# numbers are printed above): one λ each is not a fair comparison. A fair one
# puts each method's whole frontier over λ on one plot, below. Replay, with
# only 100 stored images, does best here: when old data may be stored it is a
# strong baseline, and EWC is the option when it may not (privacy, licensing).

# %%
frontier = continual.default_lambda_frontier()
fig, ax = plt.subplots(figsize=(5.5, 4))
for name, points in [("L2 anchor", frontier["l2"]), ("EWC", frontier["ewc"])]:
    lams, acc_a, acc_b = zip(*points)
    ax.plot(acc_b, acc_a, marker="o", label=name)
    for lam, a, b in points:
        ax.annotate(f"{lam:g}", (b, a), fontsize=7, xytext=(3, 3), textcoords="offset points")
ax.scatter([runs["fine-tune"]["final_b"]], [runs["fine-tune"]["final_a"]], color="k", label="fine-tune")
ax.set(xlabel="task B accuracy (new)", ylabel="task A accuracy (old)", title="Frontiers over λ (labels: λ)")
ax.legend()
fig.tight_layout()
plt.show()
for name in ("l2", "ewc"):
    print(name, "  ".join(f"λ={lam:g}: A {a:.3f} B {b:.3f}" for lam, a, b in frontier[name]))

# %% [markdown]
# Read the frontiers, not single points: a method is better where its curve
# lies above and to the right of the other's (more of A kept for the same B).
#
# ### The stability/plasticity trade-off
#
# Slide λ (log scale): small λ is fine-tuning, large λ freezes task A's
# solution and stops B from being learned. The grey lines are fine-tuning.

# %% tags=["nbval-ignore-output"]
continual.ewc_lambda_widget()

# %% [markdown]
# ## 5. Forgetting safety (Qi et al. 2023)
#
# The same forgetting happens to a language model's *safety*. Qi et al.
# (2023) fine-tuned aligned chat models on a few benign examples and their
# refusals eroded. In miniature: the course's SFT assistant (lesson 15) is
# fine-tuned on benign demonstrations only (arithmetic, atlas, spelling, ...),
# and after each number of steps we measure refusal on the held-out harmful
# *test* prompts and helpfulness on the held-out benign ones. Two mitigations
# from this lesson:
#
# * **EWC** with an empirical Fisher estimated on 64 *safety demonstrations*
#   (harmful requests answered with refusals), λ = 1000;
# * **replay**: 2 of every 16 rows of a batch drawn from the safety demonstrations.
#
# Settings (learning rate, λ, replay share, steps) were chosen on the
# *validation* prompts with seed 0; three seeds each, cached (a few minutes
# once). Where lesson 16's DPO policy exists, the same run applies to it.

# %%
safety = continual.default_safety_forgetting()
fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharex=True)
for i, (name, histories) in enumerate(safety.items()):
    steps = histories[0]["steps"]
    for ax, metric in zip(axes, ("refusal", "helpful")):
        values = np.array([h[metric] for h in histories])
        ax.plot(steps, values.mean(0), marker="o", color=f"C{i}", label=f"{name} (mean of {len(histories)} seeds)")
        ax.fill_between(steps, values.min(0), values.max(0), color=f"C{i}", alpha=0.2)
axes[0].set(xlabel="fine-tuning steps on benign data", ylabel="refusal of harmful test prompts", ylim=(0, 1.02))
axes[1].set(xlabel="fine-tuning steps on benign data", ylabel="helpfulness on benign test prompts", ylim=(0, 1.02))
axes[0].legend(fontsize=8)
fig.tight_layout()
plt.show()
for name, histories in safety.items():
    ref = [h["refusal"][-1] for h in histories]
    hlp = [h["helpful"][-1] for h in histories]
    print(f"{name:<9} after {histories[0]['steps'][-1]} steps: refusal {np.mean(ref):.3f} (seeds {np.round(ref, 3)}),"
          f" helpfulness {np.mean(hlp):.3f}")

# %% [markdown]
# Shaded bands span the three seeds. Benign data alone, no harmful example
# anywhere, erodes the refusals: nothing in the fine-tuning objective asks the
# model to keep them. Replaying a few safety demonstrations is the cheapest
# protection when they may be stored; EWC needs only the Fisher. Lesson 18
# lists fine-tuning among the white-box attacks for the same reason.
#
# ## Key takeaways
# * `param - param.data` is zero: an anchor must be a copy stored before the new task.
# * EWC (eq. 3) weights each parameter's spring by the diagonal Fisher at the old solution; an L2 anchor treats all weights alike and trades plasticity for stability.
# * Always report old-task *and* new-task accuracy; on this benchmark a small replay buffer is a strong baseline.
# * Compare regularisers on their frontiers over λ, not at one λ each.
# * Safety is a task that can be forgotten: benign fine-tuning erodes refusals (Qi et al. 2023); replay of safety data and EWC slow it.
#
# ## Further reading
# * J. Kirkpatrick et al. (2017), *Overcoming catastrophic forgetting in neural networks.* PNAS 114(13).
# * M. McCloskey, N. J. Cohen (1989), *Catastrophic interference in connectionist networks.* Psychology of Learning and Motivation 24.
# * I. Goodfellow et al. (2013), *An empirical investigation of catastrophic forgetting in gradient-based neural networks.* arXiv:1312.6211.
# * F. Kunstner, L. Balles, P. Hennig (2019), *Limitations of the empirical Fisher approximation.* NeurIPS.
# * D. Rolnick et al. (2019), *Experience replay for continual learning.* NeurIPS.
# * X. Qi et al. (2023), *Fine-tuning Aligned Language Models Compromises Safety, Even When Users Do Not Intend To!* ICLR 2024.
