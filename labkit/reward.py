"""Lesson 05: reward models learned from pairwise preferences, and their over-optimization.

- :func:`bradley_terry_loss`: the negative log-likelihood of the Bradley-Terry
  model P(a ≻ b) = σ(r(a) − r(b)) (Bradley and Terry 1952), the reward-model
  loss of Christiano et al. (2017, eq. 1) and Ouyang et al. (2022, eq. 1),
  with the optional margin of Touvron et al. (2023, Llama 2, eq. 2).
- :func:`simulate_preferences`: comparisons drawn from a hidden *gold* reward
  through the Bradley-Terry model, then flipped with probability
  ``label_noise`` (annotator error).
- :func:`fit_bradley_terry`: a linear reward r(x) = θ·x fitted by minimising
  the Bradley-Terry loss.
- :func:`held_out_report`: accuracy and the expected calibration error of
  lesson 03 (:func:`labkit.calibration.expected_calibration_error`, Guo et al.
  2017, eq. 3) applied to P(a ≻ b): is 0.8 right 80 % of the time?
- :func:`best_of_n` and :func:`best_of_n_kl`: reward over-optimization in
  miniature (Gao, Schulman and Hilton 2022): pick the best of n samples by the
  learned proxy and watch the gold reward rise, then fall, as
  KL = log n − (n − 1)/n grows (Stiennon et al. 2020, appendix; Gao et al. eq. 1).

The gold reward is r*(x) = w·x − κ·max(0, ŵ·x − τ)²: on typical inputs it is
almost exactly linear, so a linear proxy agrees with it on nearly every pair,
but "more of the good direction" stops helping past τ and then hurts. That is
extremal Goodhart (Manheim and Garrabrant 2018): optimisation pressure drives
the choice into the tail where the proxy was never checked.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

from labkit.ui import dropdown, float_slider, int_slider, interactive_figure
from labkit.calibration import expected_calibration_error, reliability_bins
from labkit.validation import ensure_array, ensure_choice, ensure_float, ensure_instance, ensure_int, ensure_tensor

N_FEATURES = 8
GOLD_SCALE = 2.0       # |w|: how strongly the gold reward separates typical pairs
GOLD_THRESHOLD = 1.0   # τ: past this, more of the rewarded direction starts to hurt
GOLD_CURVATURE = 1.0   # κ: how fast it hurts


def _gold_weights(n_features: int = N_FEATURES) -> np.ndarray:
    w = np.random.default_rng(12345).normal(size=n_features)
    return GOLD_SCALE * w / np.linalg.norm(w)


GOLD_WEIGHTS = _gold_weights()


# ---------------------------------------------------------------------------
# The Bradley-Terry loss
# ---------------------------------------------------------------------------

def bradley_terry_loss(r_chosen: torch.Tensor, r_rejected: torch.Tensor, margin: float | torch.Tensor = 0.0) -> torch.Tensor:
    """Mean Bradley-Terry negative log-likelihood, −log σ(r_chosen − r_rejected − margin).

    Christiano et al. (2017, eq. 1) and Ouyang et al. (2022, eq. 1) fit reward
    models with this loss; ``margin`` > 0 asks the chosen reward to win by at
    least that much (Touvron et al. 2023, eq. 2). Computed with ``logsigmoid``,
    so a reward gap of −200 gives a loss of 200, not ``inf``.

    Parameters
    ----------
    r_chosen, r_rejected : torch.Tensor, float, same shape
        Rewards of the preferred and the other response of each pair.
    margin : float or torch.Tensor broadcastable to that shape, finite

    Returns
    -------
    torch.Tensor
        A scalar, differentiable in the rewards.
    """
    ensure_tensor("r_chosen", r_chosen, floating=True)
    ensure_tensor("r_rejected", r_rejected, floating=True)
    if r_chosen.shape != r_rejected.shape:
        raise ValueError(f"r_chosen and r_rejected must have the same shape, got {tuple(r_chosen.shape)} and {tuple(r_rejected.shape)}")
    if r_chosen.numel() == 0:
        raise ValueError("r_chosen and r_rejected must hold at least one pair")
    if isinstance(margin, torch.Tensor):
        ensure_tensor("margin", margin, floating=True)
        margin = margin.to(r_chosen.device)
    else:
        margin = ensure_float("margin", margin)
    return -F.logsigmoid(r_chosen - r_rejected - margin).mean()


def preference_probability(r_a, r_b) -> np.ndarray:
    """Bradley-Terry P(a ≻ b) = σ(r_a − r_b), computed without overflow."""
    r_a = ensure_array("r_a", r_a)
    r_b = ensure_array("r_b", r_b)
    if r_a.shape != r_b.shape:
        raise ValueError(f"r_a and r_b must have the same shape, got {r_a.shape} and {r_b.shape}")
    d = r_a - r_b
    return np.exp(-np.logaddexp(0.0, -d))


# ---------------------------------------------------------------------------
# Simulated preferences from a hidden gold reward
# ---------------------------------------------------------------------------

def gold_reward(x) -> np.ndarray:
    """The hidden reward r*(x) = w·x − κ·max(0, ŵ·x − τ)² of the lesson's simulation.

    Parameters
    ----------
    x : array-like, shape (..., N_FEATURES)

    Returns
    -------
    np.ndarray, shape (...)
    """
    x = ensure_array("x", x)
    if x.ndim < 1 or x.shape[-1] != N_FEATURES:
        raise ValueError(f"x must have {N_FEATURES} features on its last axis, got shape {x.shape}")
    along = x @ (GOLD_WEIGHTS / GOLD_SCALE)
    return x @ GOLD_WEIGHTS - GOLD_CURVATURE * np.maximum(0.0, along - GOLD_THRESHOLD) ** 2


@dataclass(frozen=True)
class Preferences:
    """Pairs of responses (as feature vectors) and which one the annotator chose."""

    features_a: np.ndarray   # (n, N_FEATURES)
    features_b: np.ndarray   # (n, N_FEATURES)
    prefers_a: np.ndarray    # (n,) bool, the (noisy) label
    gold_prefers_a: np.ndarray  # (n,) bool, r*(a) > r*(b): the noise-free ordering

    def __len__(self) -> int:
        return len(self.prefers_a)

    def chosen_rejected(self) -> tuple[np.ndarray, np.ndarray]:
        """Feature arrays of the chosen and the rejected response of each pair."""
        mask = self.prefers_a[:, None]
        return np.where(mask, self.features_a, self.features_b), np.where(mask, self.features_b, self.features_a)


def simulate_preferences(n_pairs: int, label_noise: float = 0.1, seed: int = 0) -> Preferences:
    """Draw ``n_pairs`` comparisons from the gold reward.

    Responses are feature vectors x ~ N(0, I). The annotator prefers a with
    probability σ(r*(a) − r*(b)) (the Bradley-Terry model of the gold reward:
    close calls are coin flips), then the label is flipped with probability
    ``label_noise`` (careless or adversarial annotators).

    Parameters
    ----------
    n_pairs : int in [1, 1_000_000]
    label_noise : float in [0, 0.5]
    seed : int >= 0

    Returns
    -------
    Preferences
    """
    n_pairs = ensure_int("n_pairs", n_pairs, low=1, high=1_000_000)
    label_noise = ensure_float("label_noise", label_noise, 0.0, 0.5)
    seed = ensure_int("seed", seed, low=0)
    rng = np.random.default_rng(seed)
    xa = rng.normal(size=(n_pairs, N_FEATURES))
    xb = rng.normal(size=(n_pairs, N_FEATURES))
    ga, gb = gold_reward(xa), gold_reward(xb)
    prefers_a = rng.random(n_pairs) < preference_probability(ga, gb)
    flip = rng.random(n_pairs) < label_noise
    return Preferences(xa, xb, prefers_a ^ flip, ga > gb)


def simulate_ratings(n_ratings: int, n_raters: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Absolute scores in [0, 1] ("this answer is 0.8 good"), the feedback the slide's model expects.

    Each rater has a personal scale: score = σ(a_r · r*(x) + b_r) with a harshness
    a_r ~ U(0.2, 1.5) and an offset b_r ~ N(0, 1.5), plus rounding to one decimal.
    Raters agree on the *order* of answers, not on the numbers.

    Returns
    -------
    (features, scores, rater) : arrays of shape (n, N_FEATURES), (n,), (n,)
    """
    n_ratings = ensure_int("n_ratings", n_ratings, low=1, high=1_000_000)
    n_raters = ensure_int("n_raters", n_raters, low=1, high=10_000)
    rng = np.random.default_rng(ensure_int("seed", seed, low=0))
    harshness = rng.uniform(0.2, 1.5, size=n_raters)
    offset = rng.normal(0.0, 1.5, size=n_raters)
    x = rng.normal(size=(n_ratings, N_FEATURES))
    rater = rng.integers(0, n_raters, size=n_ratings)
    scores = np.round(preference_probability(harshness[rater] * gold_reward(x) + offset[rater], np.zeros(n_ratings)), 1)
    return x, scores, rater


# ---------------------------------------------------------------------------
# Fitting and evaluating a linear reward model
# ---------------------------------------------------------------------------

def _check_weights(name: str, weights, data: Preferences) -> np.ndarray:
    w = ensure_array(name, weights, ndim=1)
    if w.shape[0] != data.features_a.shape[1]:
        raise ValueError(f"{name} must have one entry per feature ({data.features_a.shape[1]}), got {w.shape[0]}")
    return w


def bradley_terry_objective(theta, data: Preferences, weight_decay: float = 1e-3) -> float:
    """Mean Bradley-Terry loss of the linear reward θ·x on ``data``, plus ½·λ·|θ|²."""
    ensure_instance("data", data, Preferences)
    theta = _check_weights("theta", theta, data)
    weight_decay = ensure_float("weight_decay", weight_decay, low=0.0)
    chosen, rejected = data.chosen_rejected()
    d = (chosen - rejected) @ theta
    return float(np.mean(np.logaddexp(0.0, -d)) + 0.5 * weight_decay * np.dot(theta, theta))


def fit_bradley_terry(data: Preferences, weight_decay: float = 1e-3, max_steps: int = 50, tol: float = 1e-10) -> np.ndarray:
    """Fit r(x) = θ·x by minimising the Bradley-Terry loss (+ ½·λ·|θ|²) with Newton's method.

    For a linear reward the loss mean(−log σ(θ·(x_chosen − x_rejected))) is
    logistic regression on feature differences (no intercept: Bradley-Terry
    only sees reward differences, so a constant is not identifiable). It is
    convex, so Newton's method with backtracking finds the exact minimiser in
    a few iterations; ``weight_decay`` λ > 0 keeps θ finite when the pairs are
    separable. :func:`bradley_terry_loss` is the same objective in torch, for
    neural reward models.

    Parameters
    ----------
    data : Preferences
    weight_decay : float > 0
    max_steps : int in [1, 1000]
    tol : float > 0
        Stop when the gradient's largest entry is below ``tol``.

    Returns
    -------
    np.ndarray, shape (N_FEATURES,)
        The learned weights θ.
    """
    if not isinstance(data, Preferences):
        raise TypeError(f"data must be a Preferences, got {type(data).__name__}")
    weight_decay = ensure_float("weight_decay", weight_decay, low=0.0, low_open=True)
    max_steps = ensure_int("max_steps", max_steps, low=1, high=1000)
    tol = ensure_float("tol", tol, low=0.0, low_open=True)
    chosen, rejected = data.chosen_rejected()
    diff = chosen - rejected
    theta = np.zeros(diff.shape[1])
    objective = lambda t: float(np.mean(np.logaddexp(0.0, -diff @ t)) + 0.5 * weight_decay * t @ t)  # noqa: E731
    for _ in range(max_steps):
        p = preference_probability(diff @ theta, np.zeros(len(diff)))           # σ(θ·d)
        grad = -diff.T @ (1.0 - p) / len(diff) + weight_decay * theta
        if np.abs(grad).max() < tol:
            break
        hess = (diff * (p * (1.0 - p))[:, None]).T @ diff / len(diff) + weight_decay * np.eye(len(theta))
        step = np.linalg.solve(hess, grad)
        size, current = 1.0, objective(theta)
        while objective(theta - size * step) > current and size > 1e-8:  # backtracking keeps each step a descent
            size /= 2
        theta = theta - size * step
    return theta


def pairwise_accuracy(weights, data: Preferences, against: str = "labels") -> float:
    """Fraction of pairs the linear reward orders like the labels (or the gold ordering)."""
    ensure_instance("data", data, Preferences)
    weights = _check_weights("weights", weights, data)
    if against not in ("labels", "gold"):
        raise ValueError(f"against must be 'labels' or 'gold', got {against!r}")
    target = data.prefers_a if against == "labels" else data.gold_prefers_a
    return float(np.mean((data.features_a @ weights > data.features_b @ weights) == target))


def held_out_report(weights, data: Preferences, n_bins: int = 10) -> dict[str, float]:
    """Accuracy against labels and gold, and ECE of P(a ≻ b), on held-out pairs."""
    ensure_instance("data", data, Preferences)
    weights = _check_weights("weights", weights, data)
    probs = preference_probability(data.features_a @ weights, data.features_b @ weights)
    return {
        "accuracy_vs_labels": pairwise_accuracy(weights, data, "labels"),
        "accuracy_vs_gold": pairwise_accuracy(weights, data, "gold"),
        "ece": expected_calibration_error(probs, data.prefers_a.astype(float), n_bins),
    }


# ---------------------------------------------------------------------------
# Best-of-n against the proxy
# ---------------------------------------------------------------------------

def best_of_n_kl(n) -> float | np.ndarray:
    """KL(best-of-n ‖ base) = log n − (n − 1)/n, in nats (Stiennon et al. 2020; Gao et al. 2022, eq. 1).

    Exact for continuous base distributions without ties; 0 at n = 1.

    Parameters
    ----------
    n : int >= 1, or an array of them

    Returns
    -------
    float, or np.ndarray for array input
    """
    if np.isscalar(n):
        n = ensure_int("n", n, low=1)
        return math.log(n) - (n - 1) / n
    arr = ensure_array("n", n, dtype=float)
    if (arr < 1).any() or (arr != np.round(arr)).any():
        raise ValueError("n must hold integers >= 1")
    return np.log(arr) - (arr - 1) / arr


def best_of_n_select(proxy_scores, gold_scores, n: int) -> tuple[float, float]:
    """Best-of-n on given draws: mean proxy and gold reward of the picked responses.

    Each row of ``proxy_scores`` holds one trial's draws from the base policy;
    its draws are split, in order, into ``n_draws / n`` disjoint groups of
    ``n`` consecutive draws, and in each group best-of-n keeps the draw with
    the highest proxy score (the first one on a tie). ``gold_scores`` holds
    the gold reward of the same draws; the picked draws' gold rewards are
    averaged, not the largest gold reward in the group.

    Parameters
    ----------
    proxy_scores, gold_scores : array-like, shape (n_trials, n_draws)
    n : int in [1, n_draws], dividing n_draws

    Returns
    -------
    (mean proxy, mean gold) : tuple of float, over every group of every trial
    """
    proxy = ensure_array("proxy_scores", proxy_scores, ndim=2)
    gold = ensure_array("gold_scores", gold_scores, ndim=2)
    if gold.shape != proxy.shape:
        raise ValueError(f"gold_scores must have the shape of proxy_scores {proxy.shape}, got {gold.shape}")
    n = ensure_int("n", n, low=1, high=proxy.shape[1])
    if proxy.shape[1] % n:
        raise ValueError(f"n must divide the number of draws per trial ({proxy.shape[1]}), got {n}")
    groups_p = proxy.reshape(proxy.shape[0], -1, n)
    groups_g = gold.reshape(gold.shape[0], -1, n)
    idx = np.argmax(groups_p, axis=2)[..., None]
    return float(np.take_along_axis(groups_p, idx, axis=2).mean()), float(np.take_along_axis(groups_g, idx, axis=2).mean())


def best_of_n(proxy_weights, n_values, n_trials: int = 400, seed: int = 0) -> dict[str, np.ndarray]:
    """Mean proxy and gold reward of the best-of-n sample chosen by the proxy.

    For each trial, draw n_max = max(n_values) responses x ~ N(0, I) (the
    base policy) and split them into n_max / n groups of n; best-of-n picks,
    in each group, the response with the highest proxy reward θ·x. Rewards
    are reported relative to the base policy's mean (so n = 1 gives exactly
    0), as in Gao et al. (2022, fig. 1).

    Parameters
    ----------
    proxy_weights : array-like, shape (N_FEATURES,)
    n_values : sequence of int >= 1, at most 65536, each dividing the largest
    n_trials : int in [1, 100_000]
    seed : int >= 0

    Returns
    -------
    dict with ``n``, ``kl``, ``proxy`` and ``gold`` arrays, one entry per n.
    """
    proxy_weights = ensure_array("proxy_weights", proxy_weights, ndim=1)
    if proxy_weights.shape[0] != N_FEATURES:
        raise ValueError(f"proxy_weights must have {N_FEATURES} entries, got {proxy_weights.shape[0]}")
    ns = ensure_array("n_values", n_values, ndim=1, min_len=1)
    if (ns < 1).any() or (ns > 65536).any() or (ns != np.round(ns)).any():
        raise ValueError("n_values must hold integers in [1, 65536]")
    ns = ns.astype(int)
    if (int(ns.max()) % ns).any():
        raise ValueError(f"every entry of n_values must divide the largest one ({int(ns.max())}), e.g. powers of 2")
    n_trials = ensure_int("n_trials", n_trials, low=1, high=100_000)
    rng = np.random.default_rng(ensure_int("seed", seed, low=0))
    x = rng.normal(size=(n_trials, int(ns.max()), N_FEATURES))
    proxy, gold = x @ proxy_weights, gold_reward(x)
    proxy_means, gold_means = [], []
    for n in ns:
        # Every group of n consecutive draws of a trial is one best-of-n draw.
        mean_proxy, mean_gold = best_of_n_select(proxy, gold, int(n))
        proxy_means.append(mean_proxy)
        gold_means.append(mean_gold)
    base_proxy, base_gold = proxy.mean(), gold.mean()   # the base policy (n = 1)
    return {
        "n": ns,
        "kl": best_of_n_kl(ns),
        "proxy": np.array(proxy_means) - base_proxy,
        "gold": np.array(gold_means) - base_gold,
    }


def fit_gao_bon(kl, gold) -> tuple[float, float, float]:
    """Least-squares fit of Gao et al.'s best-of-n law R(d) = d·(α − β·d), d = sqrt(KL) (2022, eq. 2).

    Returns
    -------
    (alpha, beta, r_squared)
        The gold reward peaks at d* = α / (2β), i.e. KL* = (α / 2β)².
    """
    kl = ensure_array("kl", kl, ndim=1, min_len=2)
    gold = ensure_array("gold", gold, ndim=1, min_len=2)
    if kl.shape != gold.shape:
        raise ValueError(f"kl and gold must have the same length, got {len(kl)} and {len(gold)}")
    if (kl < 0).any():
        raise ValueError("kl must be >= 0")
    d = np.sqrt(kl)
    design = np.c_[d, -d * d]
    (alpha, beta), *_ = np.linalg.lstsq(design, gold, rcond=None)
    residual = gold - design @ np.array([alpha, beta])
    total = ((gold - gold.mean()) ** 2).sum()
    r_squared = 1.0 - (residual ** 2).sum() / total if total > 0 else 1.0
    return float(alpha), float(beta), float(r_squared)


# ---------------------------------------------------------------------------
# The lesson's widget
# ---------------------------------------------------------------------------

N_CHOICES = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]
NOISE_RANGE = (0.0, 0.45, 0.05)
COMPARISONS_RANGE = (20, 2000, 20)


def plot_reward_model(label_noise: float, n_comparisons: int, n: int) -> plt.Figure:
    """Train on ``n_comparisons`` noisy pairs; show calibration and best-of-n over-optimization.

    Left: reliability diagram of the learned P(a ≻ b) on 4,000 held-out pairs.
    Right: proxy and gold reward of best-of-n against KL, with the chosen n marked.
    """
    label_noise = ensure_float("label_noise", label_noise, 0.0, 0.5)
    n_comparisons = ensure_int("n_comparisons", n_comparisons, low=1, high=1_000_000)
    n = ensure_choice("n", n, N_CHOICES)
    train = simulate_preferences(n_comparisons, label_noise, seed=1)
    test = simulate_preferences(4000, label_noise, seed=2)
    theta = fit_bradley_terry(train)
    report = held_out_report(theta, test)
    probs = preference_probability(test.features_a @ theta, test.features_b @ theta)
    bins = reliability_bins(probs, test.prefers_a.astype(float), n_bins=10)
    full = bins["count"] > 0
    mean_p, freq = bins["confidence"][full], bins["accuracy"][full]
    curve = best_of_n(theta, N_CHOICES, n_trials=300, seed=3)

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    ax1.plot([0, 1], [0, 1], color="k", ls="--", lw=1, label="perfect calibration")
    ax1.plot(mean_p, freq, marker="o", label="learned reward model")
    ax1.set(xlabel="predicted P(a ≻ b)", ylabel="observed frequency a chosen", xlim=(0, 1), ylim=(0, 1),
            title=f"held-out acc {report['accuracy_vs_labels']:.3f} (gold {report['accuracy_vs_gold']:.3f}), ECE {report['ece']:.3f}")
    ax1.title.set_fontsize(9)
    ax1.legend(fontsize=8, loc="upper left")
    ax2.plot(curve["kl"], curve["proxy"], marker="o", label="proxy (learned) reward")
    ax2.plot(curve["kl"], curve["gold"], marker="s", label="gold reward")
    k = N_CHOICES.index(n)
    ax2.axvline(curve["kl"][k], color="gray", ls=":", lw=1)
    ax2.set(xlabel="KL(best-of-n ‖ base) = log n − (n−1)/n  [nats]", ylabel="reward relative to n = 1",
            title=f"best-of-{N_CHOICES[k]}: proxy {curve['proxy'][k]:+.2f}, gold {curve['gold'][k]:+.2f}")
    ax2.title.set_fontsize(9)
    ax2.legend(fontsize=8, loc="upper left")
    fig.suptitle(f"{n_comparisons} comparisons, label noise {label_noise:.2f}", fontsize=10)
    fig.tight_layout()
    return fig


def reward_model_widget():
    """Lesson 05's widget: label noise (:data:`NOISE_RANGE`), comparisons (:data:`COMPARISONS_RANGE`) and
    best-of-n (:data:`N_CHOICES`) redrawing :func:`plot_reward_model`.

    Returns
    -------
    ipywidgets.VBox
        From :func:`labkit.ui.interactive_figure`, showing noise 0.1, 500 comparisons, n = 16.
    """
    low, high, step = COMPARISONS_RANGE
    return interactive_figure(
        plot_reward_model,
        label_noise=float_slider("label noise", *NOISE_RANGE, 0.1),
        n_comparisons=int_slider("comparisons", low, high, 500, step=step),
        n=dropdown("best-of-n", N_CHOICES, 16),
    )


__all__ = [
    "bradley_terry_loss", "preference_probability", "gold_reward", "Preferences", "simulate_preferences", "simulate_ratings",
    "fit_bradley_terry", "bradley_terry_objective", "pairwise_accuracy",
    "held_out_report", "best_of_n_kl", "best_of_n_select", "best_of_n", "fit_gao_bon", "plot_reward_model", "GOLD_WEIGHTS", "N_FEATURES",
    "N_CHOICES", "NOISE_RANGE", "COMPARISONS_RANGE", "reward_model_widget",
]
