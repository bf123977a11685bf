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
- :func:`best_of_n_kl`, :func:`best_of_n_select` and :func:`best_of_n_curve`:
  best-of-n against a proxy, scored by the gold reward, against
  KL = log n − (n − 1)/n (Stiennon et al. 2020, appendix; Gao et al. 2022, eq. 1).
- :func:`overoptimization_sweep`: does the gold reward of best-of-n rise, then
  fall (Gao, Schulman and Hilton 2022), and where, for reward models of several
  qualities? In that world (:func:`draw_responses`, :func:`quality_gold`) the
  gold reward is linear and increasing in every quality feature, with no
  turning point of its own, and the surface features correlate with it in the
  data; a proxy trained on finite data (:func:`simulate_response_preferences`)
  by a model of limited capacity (:func:`fit_reward_model`) can only be hurt
  by optimisation through its own errors. Whether it is depends on the tail of
  the surface features (Kwa, Thomas and Garriga-Alonso 2024).

The comparisons of the first sections (:func:`gold_reward`,
:func:`simulate_preferences`, also used by lesson 16) come from 8 Gaussian
features and r*(x) = w·x − κ·max(0, ŵ·x − τ)², almost exactly linear on
typical inputs; best-of-n is no longer run against it, because its penalty
would set where the gold reward turns whatever the reward model.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

from labkit.ui import dropdown, float_slider, int_slider, interactive_figure
from labkit.calibration import expected_calibration_error, plot_reliability
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
    return _annotate(rng, xa, xb, gold_reward(xa), gold_reward(xb), label_noise)


def _annotate(rng: np.random.Generator, xa: np.ndarray, xb: np.ndarray, ga: np.ndarray, gb: np.ndarray,
              label_noise: float) -> Preferences:
    """Label pairs through the Bradley-Terry model of the gold rewards ``ga``, ``gb``, then flip with ``label_noise``."""
    prefers_a = rng.random(len(ga)) < preference_probability(ga, gb)
    flip = rng.random(len(ga)) < label_noise
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
    picked_proxy, picked_gold = _best_of_n_picks(proxy, gold, n)
    return float(picked_proxy.mean()), float(picked_gold.mean())


def _best_of_n_picks(proxy: np.ndarray, gold: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Proxy and gold reward of the draw picked in every group of ``n`` consecutive draws (first on a tie)."""
    groups_p = proxy.reshape(proxy.shape[0], -1, n)
    groups_g = gold.reshape(gold.shape[0], -1, n)
    idx = np.argmax(groups_p, axis=2)[..., None]
    return np.take_along_axis(groups_p, idx, axis=2), np.take_along_axis(groups_g, idx, axis=2)


def best_of_n_curve(proxy_scores, gold_scores, n_values) -> dict[str, np.ndarray]:
    """Best-of-n for every n in ``n_values`` on the same draws, relative to the base policy.

    Picks as :func:`best_of_n_select` does, once per n, and subtracts the base
    policy's mean (so n = 1 gives exactly 0), as in Gao et al. (2022, fig. 1).
    The groups are disjoint, so the picks of one n are independent and
    ``gold_se`` = std / sqrt(number of picks) is the Monte-Carlo standard
    error of each mean gold reward.

    Parameters
    ----------
    proxy_scores, gold_scores : array-like, shape (n_trials, n_draws)
    n_values : sequence of int >= 1, each dividing n_draws

    Returns
    -------
    dict with ``n``, ``kl``, ``proxy``, ``gold`` and ``gold_se`` arrays, one entry per n.
    """
    proxy = ensure_array("proxy_scores", proxy_scores, ndim=2)
    gold = ensure_array("gold_scores", gold_scores, ndim=2)
    if gold.shape != proxy.shape:
        raise ValueError(f"gold_scores must have the shape of proxy_scores {proxy.shape}, got {gold.shape}")
    ns = ensure_array("n_values", n_values, ndim=1, dtype=int, min_len=1)
    if (ns < 1).any() or (proxy.shape[1] % ns).any():
        raise ValueError(f"n_values must hold integers >= 1 that divide the number of draws per trial ({proxy.shape[1]})")
    picks = [_best_of_n_picks(proxy, gold, int(n)) for n in ns]
    return {
        "n": ns, "kl": best_of_n_kl(ns),
        "proxy": np.array([p.mean() for p, _ in picks]) - proxy.mean(),
        "gold": np.array([g.mean() for _, g in picks]) - gold.mean(),
        "gold_se": np.array([g.std() / math.sqrt(g.size) for _, g in picks]),
    }


def _check_n_values(n_values) -> np.ndarray:
    ns = ensure_array("n_values", n_values, ndim=1, dtype=int, min_len=1)
    if (ns < 1).any() or (ns > 65536).any():
        raise ValueError("n_values must hold integers in [1, 65536]")
    if (int(ns.max()) % ns).any():
        raise ValueError(f"every entry of n_values must divide the largest one ({int(ns.max())}), e.g. powers of 2")
    return ns


# ---------------------------------------------------------------------------
# Over-optimization of a learned proxy: a gold reward without a turning point
# ---------------------------------------------------------------------------
#
# A response has N_QUALITY quality features q ~ N(0, I) (what people value) and
# N_SPURIOUS surface features s (length, a confident tone, ...). The gold reward
# is linear and increasing in q and ignores s: more quality is always better,
# so any fall of the gold reward under best-of-n comes from the proxy's errors.
# In the data, s correlates with the gold reward (better answers tend to be
# longer): s = ρ·ĝ + sqrt(1 − ρ²)·ε with ĝ the standardised gold reward and ε
# independent, unit-variance Student-t noise (real surface features such as
# length are heavy-tailed); ``spurious_dof=None`` makes ε Gaussian.

N_QUALITY = 6
N_SPURIOUS = 2
N_RESPONSE_FEATURES = N_QUALITY + N_SPURIOUS
SPURIOUS_CORRELATION = 0.5   # ρ: correlation of each surface feature with the gold reward
SPURIOUS_DOF = 3.0           # degrees of freedom of the surface features' own noise
QUALITY_WEIGHTS = np.abs(_gold_weights(N_QUALITY))   # each quality feature measured so that more is better


def _check_dof(spurious_dof) -> float | None:
    return None if spurious_dof is None else ensure_float("spurious_dof", spurious_dof, low=2.0, high=1000.0, low_open=True)


def _draw_responses(rng: np.random.Generator, shape: tuple[int, ...], spurious_dof: float | None) -> np.ndarray:
    quality = rng.normal(size=(*shape, N_QUALITY))
    standard_gold = quality @ (QUALITY_WEIGHTS / np.linalg.norm(QUALITY_WEIGHTS))
    if spurious_dof is None:
        noise = rng.normal(size=(*shape, N_SPURIOUS))
    else:   # Student-t scaled to unit variance, so ρ is the correlation whatever the tail
        noise = rng.standard_t(spurious_dof, size=(*shape, N_SPURIOUS)) / math.sqrt(spurious_dof / (spurious_dof - 2))
    spurious = SPURIOUS_CORRELATION * standard_gold[..., None] + math.sqrt(1 - SPURIOUS_CORRELATION ** 2) * noise
    return np.concatenate([quality, spurious], axis=-1)


def draw_responses(n_responses: int, seed: int = 0, spurious_dof: float | None = SPURIOUS_DOF) -> np.ndarray:
    """Responses of the base policy: N_QUALITY quality features, then N_SPURIOUS surface features.

    Parameters
    ----------
    n_responses : int in [1, 10_000_000]
    seed : int >= 0
    spurious_dof : float in (2, 1000], or None
        Degrees of freedom of the surface features' Student-t noise; None: Gaussian.

    Returns
    -------
    np.ndarray, shape (n_responses, N_RESPONSE_FEATURES)
    """
    n_responses = ensure_int("n_responses", n_responses, low=1, high=10_000_000)
    rng = np.random.default_rng(ensure_int("seed", seed, low=0))
    return _draw_responses(rng, (n_responses,), _check_dof(spurious_dof))


def quality_gold(x) -> np.ndarray:
    """The gold reward w·q of :func:`draw_responses`' responses: increasing in every quality feature, blind to surface ones.

    Parameters
    ----------
    x : array-like, shape (..., N_RESPONSE_FEATURES)

    Returns
    -------
    np.ndarray, shape (...)
    """
    x = ensure_array("x", x)
    if x.ndim < 1 or x.shape[-1] != N_RESPONSE_FEATURES:
        raise ValueError(f"x must have {N_RESPONSE_FEATURES} features on its last axis, got shape {x.shape}")
    return x[..., :N_QUALITY] @ QUALITY_WEIGHTS


def simulate_response_preferences(n_pairs: int, label_noise: float = 0.1, seed: int = 0,
                                  spurious_dof: float | None = SPURIOUS_DOF) -> Preferences:
    """Comparisons of :func:`draw_responses`' responses, labelled through the Bradley-Terry model of :func:`quality_gold`.

    As :func:`simulate_preferences`: P(a ≻ b) = σ(r*(a) − r*(b)), then each
    label flipped with probability ``label_noise``.

    Parameters
    ----------
    n_pairs : int in [1, 1_000_000]
    label_noise : float in [0, 0.5]
    seed : int >= 0
    spurious_dof : float in (2, 1000], or None

    Returns
    -------
    Preferences
    """
    n_pairs = ensure_int("n_pairs", n_pairs, low=1, high=1_000_000)
    label_noise = ensure_float("label_noise", label_noise, 0.0, 0.5)
    rng = np.random.default_rng(ensure_int("seed", seed, low=0))
    xa, xb = _draw_responses(rng, (2, n_pairs), _check_dof(spurious_dof))
    return _annotate(rng, xa, xb, quality_gold(xa), quality_gold(xb), label_noise)


def fit_reward_model(data: Preferences, n_quality_seen: int = N_QUALITY, weight_decay: float = 1e-3) -> np.ndarray:
    """A linear Bradley-Terry reward model of limited capacity: it reads the first ``n_quality_seen``
    quality features and every surface feature.

    A small model picks up surface features easily and only part of the
    content; the quality features it cannot read are left out of the fit
    (their weights are 0), so the surface features, which correlate with
    them, stand in for them.

    Parameters
    ----------
    data : Preferences over responses of :func:`draw_responses`
    n_quality_seen : int in [0, N_QUALITY]
    weight_decay : float > 0

    Returns
    -------
    np.ndarray, shape (N_RESPONSE_FEATURES,)
    """
    ensure_instance("data", data, Preferences)
    if data.features_a.shape[1] != N_RESPONSE_FEATURES:
        raise ValueError(f"data must hold responses with {N_RESPONSE_FEATURES} features, got {data.features_a.shape[1]}")
    n_quality_seen = ensure_int("n_quality_seen", n_quality_seen, low=0, high=N_QUALITY)
    seen = np.r_[np.arange(N_QUALITY) < n_quality_seen, np.ones(N_SPURIOUS, dtype=bool)]
    visible = Preferences(data.features_a[:, seen], data.features_b[:, seen], data.prefers_a, data.gold_prefers_a)
    theta = np.zeros(N_RESPONSE_FEATURES)
    theta[seen] = fit_bradley_terry(visible, weight_decay=weight_decay)
    return theta


def best_of_n(proxy_weights, n_values, n_trials: int = 400, seed: int = 0,
              spurious_dof: float | None = SPURIOUS_DOF) -> dict[str, np.ndarray]:
    """Mean proxy and gold reward of the best-of-n response chosen by the linear proxy θ·x.

    For each trial, draw n_max = max(n_values) responses of :func:`draw_responses`
    (the base policy) and split them into n_max / n groups of n; best-of-n
    picks, in each group, the response with the highest proxy reward, scored
    by :func:`quality_gold` (:func:`best_of_n_curve`).

    Parameters
    ----------
    proxy_weights : array-like, shape (N_RESPONSE_FEATURES,)
    n_values : sequence of int in [1, 65536], each dividing the largest
    n_trials : int in [1, 100_000]
    seed : int >= 0
    spurious_dof : float in (2, 1000], or None

    Returns
    -------
    dict with ``n``, ``kl``, ``proxy`` and ``gold`` arrays, one entry per n.
    """
    proxy_weights = ensure_array("proxy_weights", proxy_weights, ndim=1)
    if proxy_weights.shape[0] != N_RESPONSE_FEATURES:
        raise ValueError(f"proxy_weights must have {N_RESPONSE_FEATURES} entries, got {proxy_weights.shape[0]}")
    ns = _check_n_values(n_values)
    n_trials = ensure_int("n_trials", n_trials, low=1, high=100_000)
    rng = np.random.default_rng(ensure_int("seed", seed, low=0))
    x = _draw_responses(rng, (n_trials, int(ns.max())), _check_dof(spurious_dof))
    return best_of_n_curve(x @ proxy_weights, quality_gold(x), ns)


def gold_peak(curve: dict) -> dict:
    """Where the gold reward of a best-of-n curve is highest.

    Parameters
    ----------
    curve : dict with ``n``, ``kl`` and ``gold`` arrays, as :func:`best_of_n` returns

    Returns
    -------
    dict with ``n``, ``kl``, ``gold`` at the maximum, ``fall`` (the peak's gold
    minus the gold at the largest n, >= 0), ``fall_se`` (its standard error,
    sqrt(se_peak² + se_last²): conservative, as both means share draws) and
    ``turned``: True when the gold reward fell by more than twice ``fall_se``
    after its maximum, i.e. it peaked inside the range and not by chance.
    """
    ensure_instance("curve", curve, dict)
    gold = ensure_array("curve['gold']", curve.get("gold"), ndim=1, min_len=1)
    se = ensure_array("curve['gold_se']", curve.get("gold_se"), ndim=1, min_len=1)
    if se.shape != gold.shape or len(curve.get("n", ())) != len(gold):
        raise ValueError("curve's n, gold and gold_se must have one entry per n")
    top = int(np.argmax(gold))
    fall, fall_se = float(gold[top] - gold[-1]), float(math.hypot(se[top], se[-1]))
    return {"n": int(curve["n"][top]), "kl": float(curve["kl"][top]), "gold": float(gold[top]),
            "fall": fall, "fall_se": fall_se, "turned": top < len(gold) - 1 and fall > 2 * fall_se}


def overoptimization_sweep(pair_counts, quality_seen, seeds, label_noise: float = 0.1,
                           spurious_dof: float | None = SPURIOUS_DOF, n_values=None, n_trials: int = 1000,
                           draw_seed: int = 3) -> list[dict]:
    """Train reward models of several qualities and find where best-of-n's gold reward peaks for each.

    Every (pairs, quality features seen, seed) trains :func:`fit_reward_model`
    on ``pairs`` comparisons (preference seed ``seed``), measures its accuracy
    against the gold ordering on 4,000 held-out pairs, and runs best-of-n on
    the same ``n_trials`` × max(n) responses for every model (common random
    numbers, so differences between rows are the models').

    Parameters
    ----------
    pair_counts : sequence of int in [1, 1_000_000]
    quality_seen : sequence of int in [0, N_QUALITY]
    seeds : sequence of int >= 0, the preference data's seeds (never ``draw_seed`` or 2, the held-out seed)
    label_noise : float in [0, 0.5]
    spurious_dof : float in (2, 1000], or None
    n_values : sequence of int, each dividing the largest; default :data:`N_CHOICES`
    n_trials : int in [1, 100_000]
    draw_seed : int >= 0

    Returns
    -------
    list of dict, one per model: ``pairs``, ``seen``, ``seed``, ``accuracy_vs_gold``,
    ``weights``, ``curve`` (from :func:`best_of_n`) and ``peak`` (from :func:`gold_peak`).
    """
    pair_counts = [ensure_int("pair_counts", p, low=1, high=1_000_000) for p in ensure_array("pair_counts", pair_counts, ndim=1, dtype=int, min_len=1)]
    quality_seen = [ensure_int("quality_seen", k, low=0, high=N_QUALITY) for k in ensure_array("quality_seen", quality_seen, ndim=1, dtype=int, min_len=1)]
    seeds = [ensure_int("seeds", s, low=0) for s in ensure_array("seeds", seeds, ndim=1, dtype=int, min_len=1)]
    draw_seed = ensure_int("draw_seed", draw_seed, low=0)
    if {2, draw_seed} & set(seeds):
        raise ValueError(f"seeds must not contain the held-out seed 2 or draw_seed {draw_seed}")
    ns = _check_n_values(N_CHOICES if n_values is None else n_values)
    n_trials = ensure_int("n_trials", n_trials, low=1, high=100_000)
    held_out = simulate_response_preferences(4000, 0.0, seed=2, spurious_dof=spurious_dof)
    x = _draw_responses(np.random.default_rng(draw_seed), (n_trials, int(ns.max())), _check_dof(spurious_dof))
    gold = quality_gold(x)
    rows = []
    for pairs in pair_counts:
        for seen in quality_seen:
            for seed in seeds:
                data = simulate_response_preferences(pairs, label_noise, seed=seed, spurious_dof=spurious_dof)
                theta = fit_reward_model(data, seen)
                curve = best_of_n_curve(x @ theta, gold, ns)
                rows.append({"pairs": pairs, "seen": seen, "seed": seed, "accuracy_vs_gold": pairwise_accuracy(theta, held_out, "gold"),
                             "weights": theta, "curve": curve, "peak": gold_peak(curve)})
    return rows


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
QUALITY_SEEN_RANGE = (0, N_QUALITY, 1)
SPURIOUS_TAILS = [("Gaussian", None), ("Student-t, 3 dof", 3.0), ("Student-t, 2.5 dof", 2.5)]


def plot_reward_model(label_noise: float, n_comparisons: int, n_quality_seen: int, spurious_dof: float | None, n: int) -> plt.Figure:
    """Train on ``n_comparisons`` noisy pairs; show calibration and best-of-n over-optimization.

    Left: reliability diagram of the learned P(a ≻ b) on 4,000 held-out pairs,
    with the histogram of its predictions beneath (:func:`labkit.calibration.plot_reliability`).
    Right: proxy and gold reward of best-of-n against KL, with the chosen n
    marked. The reward model reads ``n_quality_seen`` quality features and
    both surface features (:func:`fit_reward_model`); the surface features'
    noise has ``spurious_dof`` degrees of freedom (one of :data:`SPURIOUS_TAILS`).
    """
    label_noise = ensure_float("label_noise", label_noise, 0.0, 0.5)
    n_comparisons = ensure_int("n_comparisons", n_comparisons, low=1, high=1_000_000)
    n_quality_seen = ensure_int("n_quality_seen", n_quality_seen, low=0, high=N_QUALITY)
    spurious_dof = ensure_choice("spurious_dof", spurious_dof, [dof for _, dof in SPURIOUS_TAILS])
    n = ensure_choice("n", n, N_CHOICES)
    train = simulate_response_preferences(n_comparisons, label_noise, seed=1, spurious_dof=spurious_dof)
    test = simulate_response_preferences(4000, label_noise, seed=2, spurious_dof=spurious_dof)
    theta = fit_reward_model(train, n_quality_seen)
    report = held_out_report(theta, test)
    probs = preference_probability(test.features_a @ theta, test.features_b @ theta)
    curve = best_of_n(theta, N_CHOICES, n_trials=300, seed=3, spurious_dof=spurious_dof)
    peak = gold_peak(curve)

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4.6), gridspec_kw={"width_ratios": [1, 1.4]})
    _, hist_ax = plot_reliability(probs, test.prefers_a.astype(float), n_bins=10, ax=ax1, label="held-out P(a ≻ b)")
    ax1.set_ylabel("observed frequency a chosen")
    hist_ax.set_xlabel("predicted P(a ≻ b)")
    ax1.set_title(f"acc {report['accuracy_vs_labels']:.3f} (gold {report['accuracy_vs_gold']:.3f}), ECE {report['ece']:.3f}", fontsize=9)
    ax2.plot(curve["kl"], curve["proxy"], marker="o", label="proxy (learned) reward")
    ax2.plot(curve["kl"], curve["gold"], marker="s", label="gold reward")
    k = N_CHOICES.index(n)
    ax2.axvline(curve["kl"][k], color="gray", ls=":", lw=1)
    where = f"peaks at n = {peak['n']}" if peak["turned"] else f"no significant fall up to n = {N_CHOICES[-1]}"
    ax2.set(xlabel="KL(best-of-n ‖ base) = log n − (n−1)/n  [nats]", ylabel="reward relative to n = 1",
            title=f"best-of-{n}: proxy {curve['proxy'][k]:+.2f}, gold {curve['gold'][k]:+.2f}; gold {where}")
    ax2.title.set_fontsize(9)
    ax2.legend(fontsize=8, loc="upper left")
    tail = dict((dof, name) for name, dof in SPURIOUS_TAILS)[spurious_dof]
    fig.suptitle(f"{n_comparisons} comparisons, label noise {label_noise:.2f}, {n_quality_seen} of {N_QUALITY} quality features seen, "
                 f"{tail} surface noise; surface weights {np.round(theta[N_QUALITY:], 2)}", fontsize=10)
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.12, top=0.86, wspace=0.25)
    return fig


def reward_model_widget():
    """Lesson 05's widget: label noise (:data:`NOISE_RANGE`), comparisons (:data:`COMPARISONS_RANGE`),
    quality features the reward model reads (:data:`QUALITY_SEEN_RANGE`), the surface features' tail
    (:data:`SPURIOUS_TAILS`) and best-of-n (:data:`N_CHOICES`) redrawing :func:`plot_reward_model`.

    Returns
    -------
    ipywidgets.VBox
        From :func:`labkit.ui.interactive_figure`, showing noise 0.1, 200 comparisons, 2 quality features seen,
        Student-t surface noise with 2.5 dof, n = 16.
    """
    low, high, step = COMPARISONS_RANGE
    return interactive_figure(
        plot_reward_model,
        label_noise=float_slider("label noise", *NOISE_RANGE, 0.1),
        n_comparisons=int_slider("comparisons", low, high, 200, step=step),
        n_quality_seen=int_slider("quality features seen", *QUALITY_SEEN_RANGE[:2], 2, step=QUALITY_SEEN_RANGE[2]),
        spurious_dof=dropdown("surface noise", SPURIOUS_TAILS, 2.5),
        n=dropdown("best-of-n", N_CHOICES, 16),
    )


__all__ = [
    "bradley_terry_loss", "preference_probability", "gold_reward", "Preferences", "simulate_preferences", "simulate_ratings",
    "fit_bradley_terry", "bradley_terry_objective", "pairwise_accuracy",
    "held_out_report", "best_of_n_kl", "best_of_n_select", "best_of_n_curve", "best_of_n", "fit_gao_bon", "GOLD_WEIGHTS", "N_FEATURES",
    "N_QUALITY", "N_SPURIOUS", "N_RESPONSE_FEATURES", "SPURIOUS_CORRELATION", "SPURIOUS_DOF", "QUALITY_WEIGHTS",
    "draw_responses", "quality_gold", "simulate_response_preferences", "fit_reward_model", "gold_peak", "overoptimization_sweep",
    "plot_reward_model", "N_CHOICES", "NOISE_RANGE", "COMPARISONS_RANGE", "QUALITY_SEEN_RANGE", "SPURIOUS_TAILS", "reward_model_widget",
]
