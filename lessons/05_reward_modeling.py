# %% [markdown]
# # 05 · Reward modeling: Bradley–Terry and over-optimization
#
# RLHF optimises a language model against a *reward model*: a learned function
# that scores responses the way people would. Slide 5 of the deck proposes a
# linear model regressed on a scalar "feedback". This lesson shows what that
# gets wrong, trains the reward model RLHF actually uses, from pairwise
# preferences, and then shows the trap waiting for every learned reward: push
# hard enough on it and the true quality goes *down*.
#
# **In this lesson you will**
# 1. run the slide's scalar-feedback model and find its defects;
# 2. write the Bradley–Terry loss (Christiano et al. 2017; Ouyang et al. 2022) and fit a reward model with it on simulated preferences with label noise;
# 3. measure held-out accuracy and calibration (and write the calibration error);
# 4. write best-of-n selection and measure when optimising a learned reward model lowers the true reward, for reward models of several qualities (Gao, Schulman and Hilton 2022);
# 5. explore label noise, data size, model capacity and n with a widget.
#
# **The simulation.** A response is a vector $x \in \mathbb{R}^8$ of features
# drawn from $N(0, I)$ (think: helpfulness, honesty, length, ... as a model's
# responses vary). A hidden **gold reward** $r^*(x)$ says how good it really is.
# We never let the reward model see $r^*$, only people's judgements about it.

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch

import labkit
from labkit import reward as rw
from labkit.exercises import card, check

device = labkit.setup(seed=0)

# %% [markdown]
# ## 1. The slide's approach
#
# The slide keeps a weight vector, predicts $\hat r = w \cdot s$ and, given a
# number such as `human_feedback = 0.8`, takes one least-mean-squares step
# $w \leftarrow w + 0.01\,(f - \hat r)\,s$. In a few lines:

# %%
class SlideRewardModel:
    def __init__(self, num_features):
        self.weights = np.random.randn(num_features)

    def calculate_reward(self, state):
        return state @ self.weights

    def update(self, state, human_feedback, learning_rate=0.01):
        error = human_feedback - self.calculate_reward(state)
        self.weights += learning_rate * error * state

# %% [markdown]
# ### Bug hunt
#
# **Bug 1: the step size silently diverges.** An LMS step with rate η shrinks
# the error along $s$ by a factor $1 - \eta\|s\|^2$; once $\eta\|s\|^2 > 2$ the
# error *grows* every step. With 8 features $\eta\|s\|^2 \approx 0.08$ and all is
# well; with a 768-dimensional sentence embedding, $\eta\|s\|^2 \approx 7.7$.
# Nothing warns: the weight norm grows without bound, from about 28 to about
# a million in 400 updates, and with more updates it overflows to `inf`.

# %%
feedback_rng = np.random.default_rng(0)
model = SlideRewardModel(768)
with np.errstate(over="ignore", invalid="ignore"):
    for step in range(1, 401):
        model.update(feedback_rng.normal(size=768), 0.8)
        if step in (1, 10, 100, 400):
            print(f"after {step:>3} updates: |w| = {np.linalg.norm(model.weights):.3g}")

# %% [markdown]
# **Bug 2: absolute scores, fitted with a constant step and no intercept.**
# What does "0.8" mean? Each rater has a personal scale: a lenient one gives 0.9
# where a harsh one gives 0.4, though both agree which answer is better.
# `rw.simulate_ratings` draws such scores from the gold reward through
# rater-specific scales. The slide's model has no intercept, so its rewards are
# centred on 0 while the scores average above 0.5, and it takes one step of a
# fixed size per rating, starting from random weights.
# Ranking accuracy on 4,000 held-out pairs, against the gold ordering:

# %%
held_out = rw.simulate_preferences(4000, label_noise=0.0, seed=2)
features, scores, rater = rw.simulate_ratings(2000, seed=4)
slide_model = SlideRewardModel(rw.N_FEATURES)
for x, score in zip(features, scores):
    slide_model.update(x, score)
least_squares = np.linalg.lstsq(np.c_[features, np.ones(len(features))], scores, rcond=None)[0][:-1]
bt_weights = rw.fit_bradley_terry(rw.simulate_preferences(1000, label_noise=0.0, seed=5))
print(f"mean score {scores.mean():.3f}, mean slide reward {(features @ slide_model.weights).mean():.3f}")
print(f"slide model after one pass over 2000 ratings: {rw.pairwise_accuracy(slide_model.weights, held_out, 'gold'):.3f}")
print(f"least squares with intercept, same ratings:   {rw.pairwise_accuracy(least_squares, held_out, 'gold'):.3f}")
print(f"Bradley-Terry on 1000 comparisons:            {rw.pairwise_accuracy(bt_weights, held_out, 'gold'):.3f}")

# %% [markdown]
# So the rater-specific scales are *not* what sinks the slide's model here:
# least squares on the very same ratings ranks as well as Bradley–Terry. Where
# does the slide's number come from, then? Take its update apart, one change
# at a time:

# %%
def slide_fit(learning_rate=0.01, passes=1, intercept=False, start=None):
    x = np.c_[features, np.ones(len(features))] if intercept else features
    lms = SlideRewardModel(x.shape[1])
    if start is not None:
        lms.weights = np.r_[start, np.zeros(x.shape[1] - len(start))]
    for _ in range(passes):
        for row, score in zip(x, scores):
            lms.update(row, score, learning_rate)
    return lms.weights[:rw.N_FEATURES]

no_intercept = np.linalg.lstsq(features, scores, rcond=None)[0]
variants = {
    "slide: step 0.01, 1 pass, random start": slide_fit(),
    "same, started from zero": slide_fit(start=np.zeros(rw.N_FEATURES)),
    "same, 10 passes": slide_fit(passes=10),
    "step 0.001, 20 passes": slide_fit(learning_rate=0.001, passes=20),
    "step 0.01 with an intercept": slide_fit(intercept=True),
    "least squares, no intercept": no_intercept,
    "least squares with intercept": least_squares,
}
for name, weights in variants.items():
    print(f"{name:<40} {rw.pairwise_accuracy(weights, held_out, 'gold'):.3f}")

# %% [markdown]
# The start and the number of passes change nothing: the slide's model is not
# "far from its fit", it is **jittering around it**. A least-mean-squares step
# of constant size never settles; each rating kicks the weights by
# $\eta\,(f - \hat r)\,s$, and with no intercept the residual $f - \hat r$
# carries the whole mean score (about 0.54), so the kicks are large. A ten
# times smaller step (with the passes it needs to get there), or an intercept,
# removes most of the loss; solving the least-squares problem exactly removes
# the rest. The slide's ranking accuracy
# is the price of its optimiser (a constant step and no intercept), not of
# absolute ratings.
#
# Absolute ratings still have a real problem, which this simulation hides:
# here every rater scores a random sample of responses, so a harsh rater's
# offset averages out. When raters see different kinds of response (one rates
# code, another poetry), the offsets become part of the data and least squares
# learns them as reward. Comparisons need no scale at all: "A is better than B"
# means the same from a lenient and a harsh rater, and people make them more
# easily and consistently, which is why Christiano et al. (2017) collect
# comparisons and Ouyang et al. (2022) rankings.
# Finally, the slide's `np.random.randn` uses numpy's hidden global generator:
# two models built the same way disagree, unless something else happened to seed it.
#
# ## 2. The Bradley–Terry reward model
#
# Bradley and Terry (1952) model a comparison as
# $P(a \succ b) = \sigma(r(a) - r(b))$. Fitting $r$ by maximum likelihood on
# pairs (chosen, rejected) minimises
#
# $$L = -\frac{1}{N}\sum_i \log \sigma\big(r(x^{\text{chosen}}_i) - r(x^{\text{rejected}}_i) - m\big),$$
#
# the reward-model loss of Christiano et al. (2017, eq. 1) and Ouyang et al.
# (2022, eq. 1); Llama 2 adds a margin $m$ for pairs rated "much better"
# (Touvron et al. 2023, eq. 2).

# %%
card("05.bradley_terry_loss")

# %% [markdown]
# Write `bradley_terry_loss(r_chosen, r_rejected, margin=0.0)` for two torch
# tensors of the same shape, returning the **mean** loss as a scalar tensor.
# Use `torch.nn.functional.logsigmoid`: `torch.log(torch.sigmoid(-200.))` is
# `-inf` in float32. Raise `ValueError` when the shapes differ.

# %%
import torch.nn.functional as F

def bradley_terry_loss(r_chosen, r_rejected, margin=0.0):
    ### BEGIN SOLUTION
    if r_chosen.shape != r_rejected.shape:
        raise ValueError("r_chosen and r_rejected must have the same shape")
    return -F.logsigmoid(r_chosen - r_rejected - margin).mean()
    ### END SOLUTION

# %%
check("05.bradley_terry_loss", bradley_terry_loss)

# %% [markdown]
# A quick sanity check of labkit's version: equal rewards give $\log 2$, and a
# reward gap of −200 gives a loss of 200, not infinity.

# %%
print(f"{rw.bradley_terry_loss(torch.zeros(4), torch.zeros(4)).item():.4f} (log 2 = {np.log(2):.4f})")
print(f"{rw.bradley_terry_loss(torch.tensor([-200.0]), torch.tensor([0.0])).item():.1f}")

# %% [markdown]
# **Simulated annotators.** `rw.simulate_preferences` draws pairs of responses
# and labels them the way the gold reward says, through the Bradley–Terry model
# itself (close calls are coin flips), then flips each label with probability
# `label_noise` (careless annotators). The reward model is linear,
# $r_\theta(x) = \theta\cdot x$: for a linear reward the loss above is convex
# (logistic regression on $x^{\text{chosen}} - x^{\text{rejected}}$), so
# its minimiser can be found exactly. Fit it yourself.

# %%
card("05.fit_bradley_terry")

# %% [markdown]
# Write `fit_bradley_terry(data, weight_decay=1e-3)` for a `rw.Preferences`
# (`data.chosen_rejected()` gives the feature arrays of the chosen and the
# rejected response of each pair). Return the $\theta$ that minimises
#
# $$L(\theta) = \frac{1}{N}\sum_i \log\big(1 + e^{-\theta\cdot d_i}\big) + \tfrac{\lambda}{2}\|\theta\|^2,
# \qquad d_i = x^{\text{chosen}}_i - x^{\text{rejected}}_i,$$
#
# to within about $10^{-5}$. The regulariser keeps $\theta$ finite when some
# feature orders every pair (the pairs are *separable*). Newton's method
# converges in a few steps: the gradient is
# $-\frac{1}{N}\sum_i (1 - \sigma(\theta\cdot d_i))\,d_i + \lambda\theta$ and the
# Hessian $\frac{1}{N}\sum_i \sigma(\theta\cdot d_i)(1 - \sigma(\theta\cdot d_i))\,d_i d_i^\top + \lambda I$.
# Raise `ValueError` when `weight_decay` is not positive.

# %%
from scipy.special import expit

def fit_bradley_terry(data, weight_decay=1e-3):
    ### BEGIN SOLUTION
    if weight_decay <= 0:
        raise ValueError("weight_decay must be > 0")
    chosen, rejected = data.chosen_rejected()
    d = chosen - rejected
    theta = np.zeros(d.shape[1])
    for _ in range(50):
        p = expit(d @ theta)
        grad = -d.T @ (1 - p) / len(d) + weight_decay * theta
        hess = (d * (p * (1 - p))[:, None]).T @ d / len(d) + weight_decay * np.eye(len(theta))
        theta = theta - np.linalg.solve(hess, grad)
    return theta
    ### END SOLUTION

# %%
check("05.fit_bradley_terry", fit_bradley_terry)

# %% [markdown]
# labkit's `rw.fit_bradley_terry` is the same fit, with a line search that
# keeps every Newton step a descent.

# %%
train = rw.simulate_preferences(1000, label_noise=0.1, seed=1)
test = rw.simulate_preferences(4000, label_noise=0.1, seed=2)
theta = rw.fit_bradley_terry(train)
chosen, rejected = (torch.tensor(a) for a in train.chosen_rejected())
theta_t = torch.tensor(theta)
print(f"training loss at the fit: {rw.bradley_terry_loss(chosen @ theta_t, rejected @ theta_t).item():.4f}")
cosine = theta @ rw.GOLD_WEIGHTS / (np.linalg.norm(theta) * np.linalg.norm(rw.GOLD_WEIGHTS))
print(f"cosine between learned and gold weights: {cosine:.3f}")
for name, value in rw.held_out_report(theta, test).items():
    print(f"held-out {name:<19} {value:.3f}")

# %% [markdown]
# Two accuracies tell different stories. Against the held-out *labels* the model
# is right on about three pairs in four, which looks mediocre, but the labels
# themselves are noisy: against the noise-free gold ordering it is right on
# about 94 %. Annotator noise puts a ceiling on label accuracy, not on what the
# model learns.
#
# ### Calibration
#
# The model outputs a probability $P(a \succ b)$. It is **calibrated** if, among
# pairs where it says 0.8, $a$ is chosen 80 % of the time. The expected
# calibration error (ECE; Guo et al. 2017, eq. 3) averages the gap over bins of
# predicted probability, weighted by bin size:
# $\mathrm{ECE} = \sum_b \frac{n_b}{n}\,\big|\overline{y}_b - \overline{p}_b\big|$.

# %%
card("05.expected_calibration_error")

# %% [markdown]
# Write `expected_calibration_error(probs, labels, n_bins=10)` with Guo et al.'s
# bins, as in lesson 03: bin $m = 1, \dots, M$ holds the probabilities in
# $((m-1)/M, m/M]$, and a probability of exactly 0 goes into the first bin;
# empty bins count for nothing. Raise `ValueError` when a probability lies
# outside $[0, 1]$.

# %%
def expected_calibration_error(probs, labels, n_bins=10):
    ### BEGIN SOLUTION
    probs, labels = np.asarray(probs, dtype=float), np.asarray(labels, dtype=float)
    if (probs < 0).any() or (probs > 1).any():
        raise ValueError("probs must lie in [0, 1]")
    bins = np.clip(np.ceil(probs * n_bins).astype(int) - 1, 0, n_bins - 1)
    total = 0.0
    for b in range(n_bins):
        in_bin = bins == b
        if in_bin.any():
            total += in_bin.sum() * abs(labels[in_bin].mean() - probs[in_bin].mean())
    return total / len(probs)
    ### END SOLUTION

# %%
check("05.expected_calibration_error", expected_calibration_error)

# %% [markdown]
# Label noise matters for calibration: the Bradley–Terry model can only say
# "σ of a reward gap", while flipped labels cap the true probability at
# $1 - \text{noise}$. The fitted model compensates by shrinking its rewards,
# which is what maximum likelihood does, and stays roughly calibrated:

# %%
for noise in (0.0, 0.1, 0.3):
    tr = rw.simulate_preferences(1000, noise, seed=1)
    te = rw.simulate_preferences(4000, noise, seed=2)
    th = rw.fit_bradley_terry(tr)
    report = rw.held_out_report(th, te)
    print(f"label noise {noise:.1f}: |theta| {np.linalg.norm(th):.3f}, acc vs labels {report['accuracy_vs_labels']:.3f}, "
          f"acc vs gold {report['accuracy_vs_gold']:.3f}, ECE {report['ece']:.3f}")

# %% [markdown]
# ## 3. Reward over-optimization in miniature (Gao, Schulman and Hilton 2022)
#
# **A world for this section.** The gold reward of sections 1 and 2 is almost
# linear on typical responses but carries a penalty, $-\kappa\max(0,\ \hat w\cdot x - \tau)^2$,
# past a fixed distance along its own direction. Optimise *any* proxy hard
# enough and the responses walk into that penalty, so the point where the gold
# reward turns down would be set by the gold reward, not by the reward model:
# a reproduction of Gao et al. that could not fail. This section uses a gold
# reward with no turning point of its own, so that anything that goes wrong
# under optimisation is the reward model's doing:
#
# * a response has 6 **quality features** $q \sim N(0, I)$ (what people value)
#   and 2 **surface features** $s$ (think length, a confident tone);
# * the gold reward is $r^*(x) = w\cdot q$ with every weight positive: more
#   of any quality is always better, and the surface features count for nothing;
# * in the data, the surface features *correlate* with the gold reward (better
#   answers tend to be longer): $s_j = \rho\,\hat g + \sqrt{1-\rho^2}\,\varepsilon_j$
#   with $\hat g$ the standardised gold reward, $\rho = 0.5$, and noise
#   $\varepsilon_j$ of unit variance that is either Gaussian or Student-t
#   (heavy-tailed, like the lengths of real responses);
# * the reward model is a linear Bradley–Terry model of limited quality:
#   trained on **finite data** (100 to 10,000 comparisons, label noise 0.1) and
#   of **limited capacity**: `rw.fit_reward_model(data, n_quality_seen)` reads
#   only the first `n_quality_seen` quality features and both surface ones, as
#   a small model picks up length easily and content only in part.
#
# The surface features are a correlate of quality, not a cause: a reward model
# that can read every quality feature needs none of them, one that cannot
# will lean on them. How correlated and how heavy-tailed they are:

# %%
tails = dict(rw.SPURIOUS_TAILS)   # name -> degrees of freedom of the surface noise (None: Gaussian)
for name, dof in tails.items():
    x = rw.draw_responses(200 * 1024, seed=7, spurious_dof=dof)
    gold, surface = rw.quality_gold(x), x[:, rw.N_QUALITY]
    largest = np.median(surface.reshape(200, 1024).max(axis=1))   # what best-of-1024 could pick on length alone
    print(f"{name:<20} corr(surface, gold) {np.corrcoef(surface, gold)[0, 1]:.3f}, sd {surface.std():.2f}, "
          f"median largest of 1024 surface values {largest:.2f} sd")

# %% [markdown]
# The three kinds of noise give nearly the same correlation and spread; they
# differ in the extremes, which is where best-of-n looks.
#
# The simplest way to optimise against a reward model is **best-of-n**: sample
# $n$ responses from the base policy and keep the one the proxy scores highest.
# Its KL divergence from the base policy is usually quoted as
# $\mathrm{KL}_{\text{bon}} = \log n - \frac{n-1}{n}$ (Stiennon et al. 2020;
# Gao et al. 2022, eq. 1), and $n$ measures optimisation pressure. Beirami et
# al. (2024) show that this is an **upper bound**, exact only when no two
# responses tie on the reward; with ties (a discrete set of responses, say
# two), the true KL is smaller and stays bounded (at most $\log 2$ for two
# equally likely responses) while the formula grows without limit. Our
# responses are continuous, so ties have probability zero and the formula is
# exact here.

# %%
card("05.best_of_n_kl")

# %% [markdown]
# Write `best_of_n_kl(n)` for an integer $n \ge 1$ (return a float), raising
# `ValueError` when $n < 1$.

# %%
import math

def best_of_n_kl(n):
    ### BEGIN SOLUTION
    if n < 1:
        raise ValueError("n must be >= 1")
    return math.log(n) - (n - 1) / n
    ### END SOLUTION

# %%
check("05.best_of_n_kl", best_of_n_kl)

# %% [markdown]
# Best-of-n itself. To measure it cheaply, draw many responses per trial once
# and reuse them for every n: split each trial's draws into consecutive groups
# of n, keep in each group the draw the **proxy** scores highest, and average
# what the picked draws get from the proxy and from the **gold** reward.

# %%
card("05.best_of_n_select")

# %% [markdown]
# Write `best_of_n_select(proxy_scores, gold_scores, n)`: both arrays have shape
# `(n_trials, n_draws)`; return `(mean proxy, mean gold)` of the picked draws as
# floats, taking the first draw on a tie (`np.argmax` does). Raise `ValueError`
# when `n` does not divide `n_draws`.

# %%
def best_of_n_select(proxy_scores, gold_scores, n):
    ### BEGIN SOLUTION
    proxy, gold = np.asarray(proxy_scores, dtype=float), np.asarray(gold_scores, dtype=float)
    if proxy.shape[1] % n:
        raise ValueError("n must divide the number of draws")
    groups_p = proxy.reshape(len(proxy), -1, n)
    groups_g = gold.reshape(len(gold), -1, n)
    pick = np.argmax(groups_p, axis=2)[..., None]
    return float(np.take_along_axis(groups_p, pick, axis=2).mean()), float(np.take_along_axis(groups_g, pick, axis=2).mean())
    ### END SOLUTION

# %%
check("05.best_of_n_select", best_of_n_select)

# %% [markdown]
# Gao et al. (2022, fig. 1) found that as KL grows, the proxy reward keeps
# rising while the gold reward rises, peaks and falls, and that for best-of-n
# the gold reward follows $R(d) = d\,(\alpha - \beta d)$ with $d = \sqrt{\mathrm{KL}}$
# (their eq. 2). Here are three proxies with the heavy-tailed surface noise
# (Student-t, 2.5 degrees of freedom): the gold weights themselves (what a
# model that reads everything would learn from endless data), a reward model
# that reads every quality feature trained on 10,000 comparisons, and a small
# one that reads 2 of the 6 trained on 100. Rewards are relative to the base
# policy; every proxy is run on the same draws.

# %%
n_values = rw.N_CHOICES
heavy = tails["Student-t, 2.5 dof"]
proxies = {
    "gold weights": np.r_[rw.QUALITY_WEIGHTS, np.zeros(rw.N_SPURIOUS)],
    "6 seen, 10000 pairs": rw.fit_reward_model(rw.simulate_response_preferences(10000, 0.1, seed=10, spurious_dof=heavy), 6),
    "2 seen, 100 pairs": rw.fit_reward_model(rw.simulate_response_preferences(100, 0.1, seed=10, spurious_dof=heavy), 2),
}
held_out_heavy = rw.simulate_response_preferences(4000, 0.0, seed=2, spurious_dof=heavy)
fig, ax = plt.subplots(figsize=(7, 4))
print("n                         " + " ".join(f"{n:>6}" for n in n_values))
print("KL                        " + " ".join(f"{k:6.2f}" for k in rw.best_of_n_kl(np.array(n_values))))
for (name, weights), style in zip(proxies.items(), ["-", "--", ":"]):
    curve = rw.best_of_n(weights, n_values, n_trials=1000, seed=3, spurious_dof=heavy)
    peak = rw.gold_peak(curve)
    alpha, beta, r2 = rw.fit_gao_bon(curve["kl"], curve["gold"])
    ax.plot(curve["kl"], curve["proxy"], style, marker="o", ms=3, color="tab:blue", label=f"proxy, {name}")
    ax.plot(curve["kl"], curve["gold"], style, marker="s", ms=3, color="tab:orange", label=f"gold, {name}")
    print(f"proxy {name:<20}" + " ".join(f"{v:6.2f}" for v in curve["proxy"]))
    print(f"gold  {name:<20}" + " ".join(f"{v:6.2f}" for v in curve["gold"]))
    turned = (f"peaks at n = {peak['n']} (KL {peak['kl']:.2f}) and falls {peak['fall']:.2f} ± {peak['fall_se']:.2f} by n = {n_values[-1]}"
              if peak["turned"] else f"no significant fall up to n = {n_values[-1]}")
    print(f"   surface weights {np.round(weights[rw.N_QUALITY:], 3)}, accuracy vs gold {rw.pairwise_accuracy(weights, held_out_heavy, 'gold'):.3f}; "
          f"gold {turned}; Gao fit R^2 {r2:.3f}")
ax.set(xlabel="KL(best-of-n ‖ base) = log n − (n−1)/n  [nats]", ylabel="reward relative to the base policy",
       title="Best-of-n against learned reward models (Student-t surface noise, 2.5 dof)")
ax.legend(fontsize=7)
plt.show()

# %% [markdown]
# A fall counts when it exceeds twice its Monte-Carlo standard error (the
# "±" above, from the spread of the picked responses' gold rewards), so that a
# flat curve's noise is not read as a peak.
#
# ### Does a better reward model over-optimise later?
#
# Gao et al. found that larger reward models (and ones trained on more data)
# let the policy go further, to a larger KL, before the gold reward turns down,
# and reach a higher peak. Here is every combination of data (100, 1,000 and
# 10,000 comparisons) and capacity (2 or all 6 quality features seen), three
# seeds each, for each kind of surface noise: where does the gold reward of
# best-of-n peak, up to n = 1024?

# %%
import itertools

print(f"{'surface noise':<20} {'pairs':>6} {'seen':>5} {'|surface w|':>12}   per seed: accuracy vs gold, gold peak n (fall ± se)")
sweeps = {}
for name, dof in tails.items():
    sweeps[name] = rw.overoptimization_sweep([100, 1000, 10000], [2, 6], seeds=[10, 11, 12], spurious_dof=dof)
    for (pairs, seen), group in itertools.groupby(sweeps[name], key=lambda row: (row["pairs"], row["seen"])):
        group = list(group)
        peaks = [f"{r['accuracy_vs_gold']:.3f} " + (f"{r['peak']['n']:>4} ({r['peak']['fall']:.2f} ± {r['peak']['fall_se']:.2f})"
                                                     if r["peak"]["turned"] else f"{'none':>17}") for r in group]
        surface = np.mean([np.abs(r["weights"][rw.N_QUALITY:]).sum() for r in group])
        print(f"{name:<20} {pairs:>6} {seen:>5} {surface:>12.3f}   " + "  ".join(peaks))
for name, rows in sweeps.items():
    print(f"{name}: the gold reward turns down for {sum(r['peak']['turned'] for r in rows)} of {len(rows)} reward models")

# %% [markdown]
# What the measurements say, read from the table rather than from the paper:
#
# * **No turning point without heavy tails.** With Gaussian surface noise no
#   reward model's gold reward falls, however poor the model. When responses,
#   proxy and gold are jointly Gaussian this is a theorem: the expected gold
#   reward given the proxy is a straight line in the proxy, so selecting
#   harder on any proxy that correlates positively with the gold reward only
#   ever raises it. A worse reward model costs *height* (compare its curve with
#   the gold weights'), not a fall.
# * **Heavy tails, small models, little data.** With Student-t noise of 3
#   degrees of freedom one model's gold reward turns down; with 2.5, five of
#   the 18. Every one of them is a small model (2 of 6 quality features seen):
#   all three trained on 100 comparisons, two of the three trained on 1,000,
#   later and by less, and none of those trained on 10,000, up to n = 1024. No
#   model that reads every quality feature turns, whatever its data. This is
#   the situation Kwa, Thomas and Garriga-Alonso (2024) analyse: when the
#   proxy's error is heavier-tailed than the true reward, the best of many
#   draws is picked for its error, and its gold reward drifts back towards the
#   base policy's: regressional Goodhart, in the terms of Manheim and
#   Garrabrant (2018), made severe by the tail.
# * **Where it turns, the peak moves the way Gao et al. found.** Better reward
#   models, through more data or more capacity, turn later or not within the
#   range we measured. The full model's weight on the surface features shrinks
#   towards zero as its data grow (the `|surface w|` column); the small model's
#   levels off instead, because for it the surface features stand in for the
#   content it cannot read, so more data moves its peak beyond n = 1024 rather
#   than removing the reason for it (we did not measure further).
#
# Held-out accuracy does not warn of any of this: the small models that turn
# are as accurate against the gold ordering as the small models trained on
# 10,000 comparisons that do not (compare the accuracies in the rows). Three
# seeds per setting show that the outcome also varies from one training set
# to the next. Gao et al.'s functional form fits the curves that keep rising
# almost exactly and the one that turns less well (the R² values printed
# above the table).
#
# What to do about it is the same either way: Gao et al. measure
# over-optimization against a separate gold model, and one *limits* how far
# the policy moves from its start. RLHF does that with a KL penalty (Ouyang et
# al. 2022, eq. 2), but Gao et al. (2022) found that the penalty did not
# improve the gold reward reached at a given KL: it acted like early stopping,
# moving the policy along the same frontier rather than onto a better one.
# What helps is to stop at the right KL, which needs a gold or held-out signal
# to find. Lesson 16 measures the same thing on the course's assistant: best-of-n
# (and PPO and DPO) against a Bradley–Terry reward model learned from its
# replies, scored by a separate gold judge, in its section 7.
#
# ### The widget
#
# Change the annotators' label noise, the number of comparisons, how many
# quality features the reward model reads, the tail of the surface features'
# noise, and n. The left panel is the reliability diagram of the retrained
# reward model on held-out pairs, with the histogram of its predicted
# probabilities beneath (as in lesson 03: a bin with few pairs says little);
# the right panel is the over-optimization curve, with best-of-n marked. It
# opens on a small model (2 quality features seen) trained on 200 comparisons
# with heavy-tailed surface noise, whose gold reward turns down; give it all
# six quality features, or Gaussian noise, and the fall goes. Move the number
# of comparisons a little and see how much one training set decides.

# %% tags=["nbval-ignore-output"]
rw.reward_model_widget()

# %% [markdown]
# ## Key takeaways
# * Train reward models on comparisons with the Bradley–Terry loss, computed with `logsigmoid`; absolute scores need a common scale that people do not share.
# * Judge a reward model against the noise-free ordering when you can, and check its calibration: label accuracy is capped by annotator noise.
# * A learned reward is a proxy: optimising it hard (large n, large KL) raises the proxy and can, past a point, lower the true reward. Here it did so only for small reward models leaning on heavy-tailed surface features, which held-out accuracy did not flag. Limit the distance from the base policy and choose the limit with a signal other than the proxy; in Gao et al.'s runs a KL penalty did no better than stopping early.
# * The best-of-n KL formula log n − (n−1)/n is an upper bound, exact only without ties (Beirami et al. 2024).
#
# ## Further reading
# * R. A. Bradley, M. E. Terry (1952), *Rank Analysis of Incomplete Block Designs: I. The Method of Paired Comparisons.* Biometrika 39.
# * P. Christiano, J. Leike, T. Brown et al. (2017), *Deep Reinforcement Learning from Human Preferences.* NeurIPS.
# * N. Stiennon, L. Ouyang, J. Wu et al. (2020), *Learning to Summarize from Human Feedback.* NeurIPS.
# * L. Ouyang, J. Wu, X. Jiang et al. (2022), *Training Language Models to Follow Instructions with Human Feedback.* NeurIPS.
# * L. Gao, J. Schulman, J. Hilton (2022), *Scaling Laws for Reward Model Overoptimization.* arXiv:2210.10760 (ICML 2023).
# * A. Beirami, A. Agarwal, J. Berant, A. D'Amour, J. Eisenstein, C. Nagpal, A. T. Suresh (2024), *Theoretical guarantees on the best-of-n alignment policy.* arXiv:2401.01879.
# * C. Guo, G. Pleiss, Y. Sun, K. Q. Weinberger (2017), *On Calibration of Modern Neural Networks.* ICML.
# * D. Manheim, S. Garrabrant (2018), *Categorizing Variants of Goodhart's Law.* arXiv:1803.04585.
# * T. Kwa, D. Thomas, A. Garriga-Alonso (2024), *Catastrophic Goodhart: regularizing RLHF with KL divergence does not mitigate heavy-tailed reward misspecification.* arXiv:2407.14503.
