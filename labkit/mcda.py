"""Lesson 12: ethical decisions as explicit multi-criteria decision analysis (MCDA).

The slide's ``EthicalPrinciple.evaluate`` returns ``None``, so its framework
crashes on the first multiplication. The corrected version makes every step
explicit:

1. **Scoring** (:class:`Principle`, :func:`score_matrix`): each principle reads
   one named attribute of an action, in [0, 1], and says whether more is better
   (beneficence) or worse (harm, for non-maleficence: score = 1 - harm).
   Missing or out-of-range attributes are errors, never silent zeros.
2. **Normalisation** (:func:`minmax_normalise`, :func:`sum_normalise`): put the
   criteria on a common scale. Both depend on the set of actions, which is
   what makes rank reversal possible (Belton and Gear 1983).
3. **Aggregation**, three ways that encode different ethics:
   :func:`weighted_sum` (compensatory: benefit can buy harm; Keeney and Raiffa
   1976, the additive value model), :func:`lexicographic_choice` (a strict
   priority order of principles; Fishburn 1974), and
   :func:`constrained_choice` (non-maleficence as a hard constraint, then a
   weighted sum among the admissible actions).
4. **Sensitivity** (:func:`flip_points`, :func:`winner_map`): which weight
   changes flip the decision.
5. **Moral uncertainty** (:data:`THEORIES`, :func:`choiceworthiness`,
   :func:`expected_choiceworthiness`, :func:`credence_weighted_borda`,
   :func:`favourite_theory_choice`): credences over whole ethical theories
   instead of weights over principles (MacAskill, Bykvist and Ord 2020).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap
from scipy import stats

from labkit.ui import float_slider, interactive_figure
from labkit.validation import ensure_array, ensure_choice, ensure_float, ensure_int, ensure_weights


@dataclass(frozen=True)
class Principle:
    """An ethical principle scored from one attribute of an action.

    ``benefit=True``: the attribute itself is the score; ``False``: the
    attribute is a cost and the score is ``1 - value``.
    """

    name: str
    attribute: str
    benefit: bool = True

    def score(self, action: Mapping[str, float]) -> float:
        """Score in [0, 1]; raises ValueError for a missing, non-finite or out-of-range attribute."""
        if self.attribute not in action:
            raise ValueError(f"action {action.get('name', '?')!r} has no attribute {self.attribute!r} needed by {self.name}")
        value = ensure_float(f"{action.get('name', 'action')}[{self.attribute!r}]", action[self.attribute], 0.0, 1.0)
        return value if self.benefit else 1.0 - value


PRINCIPLES: tuple[Principle, ...] = (
    Principle("beneficence", "benefit"),
    Principle("non_maleficence", "harm", benefit=False),
    Principle("autonomy", "autonomy"),
    Principle("justice", "fairness"),
)
SLIDE_WEIGHTS = np.array([0.3, 0.3, 0.2, 0.2])
# The slide's two actions and two more: a high-benefit, high-harm action and a cautious one.
ACTIONS: tuple[dict, ...] = (
    {"name": "A", "benefit": 0.8, "harm": 0.2, "autonomy": 0.6, "fairness": 0.7},
    {"name": "B", "benefit": 0.6, "harm": 0.1, "autonomy": 0.9, "fairness": 0.5},
    {"name": "C", "benefit": 1.0, "harm": 0.7, "autonomy": 0.7, "fairness": 0.8},
    {"name": "D", "benefit": 0.4, "harm": 0.0, "autonomy": 0.5, "fairness": 0.6},
)


def score_matrix(actions: Sequence[Mapping[str, float]], principles: Sequence[Principle] = PRINCIPLES) -> np.ndarray:
    """Scores of shape (n_actions, n_principles), every entry in [0, 1], higher is better."""
    if len(actions) == 0 or len(principles) == 0:
        raise ValueError("actions and principles must be non-empty")
    return np.array([[p.score(a) for p in principles] for a in actions], dtype=float)


def _scores(scores) -> np.ndarray:
    s = ensure_array("scores", scores, ndim=2, min_len=1)
    if s.shape[1] < 1:
        raise ValueError("scores must have at least one criterion (column)")
    return s


def _weights(weights, n: int) -> np.ndarray:
    w = ensure_weights("weights", weights, n, "criterion")
    return w / w.sum()


def minmax_normalise(scores) -> np.ndarray:
    """Rescale each column to [0, 1]: (x - min) / (max - min); a constant column becomes 0.

    A constant criterion does not discriminate between the actions, so any
    constant would do; 0 keeps it from adding to every total.
    """
    s = _scores(scores)
    low, span = s.min(axis=0), np.ptp(s, axis=0)
    out = np.zeros_like(s)
    varies = span > 0
    out[:, varies] = (s[:, varies] - low[varies]) / span[varies]
    return out


def sum_normalise(scores) -> np.ndarray:
    """Divide each column by its sum (Saaty's distributive normalisation); columns need a positive sum."""
    s = _scores(scores)
    if (s < 0).any() or (s.sum(axis=0) <= 0).any():
        raise ValueError("scores must be non-negative with a positive sum in every column for sum normalisation")
    return s / s.sum(axis=0)


def weighted_sum(scores, weights) -> np.ndarray:
    """Additive value of each action, sum_k w_k s_k with w normalised to sum 1 (Keeney and Raiffa 1976)."""
    s = _scores(scores)
    return s @ _weights(weights, s.shape[1])


def lexicographic_choice(scores, order: Sequence[int], tol: float = 1e-9) -> int:
    """Index of the best action by criteria in strict priority ``order`` (Fishburn 1974).

    Keep the actions within ``tol`` of the best on ``order[0]``, then among
    those the ones within ``tol`` of the best on ``order[1]``, and so on; the
    lowest index wins a tie that survives every criterion.

    Parameters
    ----------
    scores : array-like, shape (n_actions, n_criteria), higher is better
    order : sequence of distinct column indices (a prefix of the priorities is allowed)
    tol : float >= 0

    Returns
    -------
    int
    """
    s = _scores(scores)
    tol = ensure_float("tol", tol, low=0.0)
    order = [ensure_int("order entry", k, 0, s.shape[1] - 1) for k in order]
    if not order or len(set(order)) != len(order):
        raise ValueError(f"order must list distinct criteria in [0, {s.shape[1] - 1}], got {order}")
    alive = np.arange(s.shape[0])
    for k in order:
        col = s[alive, k]
        alive = alive[col >= col.max() - tol]
    return int(alive[0])


def constrained_choice(scores, weights, floors) -> int | None:
    """Weighted-sum choice among the actions meeting every floor, or None when none does.

    ``floors[k]`` is the minimum acceptable score on criterion k (use 0 for no
    constraint). Non-maleficence as a hard constraint is ``floors[1] = 1 - max_harm``:
    no amount of benefit buys an action past it. ``None`` means refuse or escalate.
    Floors are compared with a 1e-12 tolerance, so a floor computed as ``1 - 0.3``
    still admits a score of exactly 0.7.
    """
    s = _scores(scores)
    f = ensure_array("floors", floors, ndim=1)
    if f.shape[0] != s.shape[1]:
        raise ValueError(f"floors must have one entry per criterion ({s.shape[1]}), got {f.shape[0]}")
    feasible = (s >= f - 1e-12).all(axis=1)
    if not feasible.any():
        return None
    value = np.where(feasible, weighted_sum(s, weights), -np.inf)
    return int(np.argmax(value))


def _simplex_weights(weights: np.ndarray, fixed: dict[int, float]) -> np.ndarray:
    """Set the weights in ``fixed``; share the rest among the others in proportion to ``weights``."""
    rest = 1.0 - sum(fixed.values())
    others = [k for k in range(weights.size) if k not in fixed]
    base = weights[others]
    base = base / base.sum() if base.sum() > 0 else np.full(len(others), 1.0 / max(len(others), 1))
    out = np.zeros(weights.size)
    out[others] = rest * base
    for k, v in fixed.items():
        out[k] = v
    return out


def flip_points(scores, weights, k: int) -> list[tuple[float, int, int]]:
    """Where the weighted-sum winner changes as criterion ``k``'s weight t sweeps [0, 1].

    The other weights keep their proportions and share 1 - t, so each action's
    value is linear in t: V_a(t) = t s_ak + (1 - t) R_a. Candidate flips are the
    crossings of these lines; the winner is evaluated between them.

    Returns
    -------
    list of (t, winner_before, winner_after), sorted by t
    """
    s = _scores(scores)
    w = _weights(weights, s.shape[1])
    k = ensure_int("k", k, 0, s.shape[1] - 1)
    end0 = s @ _simplex_weights(w, {k: 0.0})             # V_a(0) = R_a
    end1 = s[:, k]                                       # V_a(1)
    slope = end1 - end0
    ts = {0.0, 1.0}
    for a in range(s.shape[0]):
        for b in range(a + 1, s.shape[0]):
            ds = slope[a] - slope[b]
            if abs(ds) > 1e-12:
                t = (end0[b] - end0[a]) / ds
                if 0.0 < t < 1.0:
                    ts.add(float(t))
    grid = sorted(ts)
    mids = [(lo + hi) / 2 for lo, hi in zip(grid[:-1], grid[1:])]
    winners = [int(np.argmax(end0 + m * slope)) for m in mids]
    return [(grid[i + 1], winners[i], winners[i + 1]) for i in range(len(winners) - 1) if winners[i] != winners[i + 1]]


def winner_map(scores, weights, i: int, j: int, n: int = 41) -> np.ndarray:
    """Weighted-sum winner over a grid of weights for criteria ``i`` (rows) and ``j`` (columns).

    Cell (r, c) sets w_i = r/(n-1), w_j = c/(n-1) and shares the remaining
    1 - w_i - w_j among the other criteria in proportion to ``weights``. Cells
    with w_i + w_j > 1 are NaN.

    Returns
    -------
    np.ndarray of float, shape (n, n): winning action index or NaN
    """
    s = _scores(scores)
    w = _weights(weights, s.shape[1])
    i = ensure_int("i", i, 0, s.shape[1] - 1)
    j = ensure_int("j", j, 0, s.shape[1] - 1)
    if i == j:
        raise ValueError("i and j must be different criteria")
    n = ensure_int("n", n, 2, 401)
    grid = np.linspace(0.0, 1.0, n)
    out = np.full((n, n), np.nan)
    for r, wi in enumerate(grid):
        for c, wj in enumerate(grid):
            if wi + wj <= 1.0 + 1e-12:
                out[r, c] = np.argmax(s @ _simplex_weights(w, {i: wi, j: min(wj, 1.0 - wi)}))
    return out


WEIGHT_RANGE = (0.0, 1.0, 0.05)    # min, max, step of each principle's weight slider (normalised to sum 1)
MAX_HARM_RANGE = (0.0, 1.0, 0.05)  # min, max, step of the constrained rule's harm limit


def plot_decision(beneficence: float = 0.3, non_maleficence: float = 0.3, autonomy: float = 0.2,
                  justice: float = 0.2, max_harm: float = 0.3) -> plt.Figure:
    """Widget: weights -> each method's decision, and the stability map around the chosen weights."""
    raw = np.array([beneficence, non_maleficence, autonomy, justice], dtype=float)
    note = ""
    if raw.sum() <= 0:
        raw, note = np.ones(4), " (all weights 0: treated as equal)"
    w = raw / raw.sum()
    s = score_matrix(ACTIONS)
    names = [a["name"] for a in ACTIONS]
    value = weighted_sum(s, w)
    order = [int(k) for k in np.argsort(-w, kind="stable")]
    floors = np.array([0.0, 1.0 - max_harm, 0.0, 0.0])
    decisions = {
        "weighted sum": names[int(np.argmax(value))],
        f"lexicographic ({PRINCIPLES[order[0]].name} first)": names[lexicographic_choice(s, order)],
        f"harm <= {max_harm:.2f}, then sum": (lambda c: "refuse" if c is None else names[c])(constrained_choice(s, w, floors)),
    }
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    harmful = s[:, 1] < floors[1] - 1e-12
    axes[0].bar(names, value, color=np.where(harmful, "tab:red", "tab:gray"))
    axes[0].set_ylim(0, 1)
    axes[0].set_ylabel("weighted-sum value")
    axes[0].set_title("red: harm above the limit" + note, fontsize=9)
    text = "\n".join(f"{m}: {d}" for m, d in decisions.items())
    axes[0].text(0.02, 0.97, text, transform=axes[0].transAxes, va="top", fontsize=8, family="monospace",
                 bbox={"facecolor": "white", "alpha": 0.8})
    grid = winner_map(s, w, 0, 1, n=31)
    cmap = ListedColormap(["tab:blue", "tab:orange", "tab:purple", "tab:green"][: len(names)])
    axes[1].imshow(grid, origin="lower", extent=(0, 1, 0, 1), cmap=cmap, vmin=-0.5, vmax=len(names) - 0.5)
    axes[1].plot([w[1]], [w[0]], "k*", markersize=14)
    for idx, name in enumerate(names):
        axes[1].plot([], [], "s", color=cmap(idx), label=name)
    axes[1].legend(fontsize=7, loc="upper right", title="winner", title_fontsize=7)
    axes[1].set_xlabel("weight of non-maleficence")
    axes[1].set_ylabel("weight of beneficence")
    axes[1].set_title("stability map (autonomy, justice keep their ratio)", fontsize=9)
    fig.tight_layout()
    return fig


def decision_widget():
    """Lesson 12's widget: the four principles' weights (:data:`WEIGHT_RANGE`) and the harm limit
    (:data:`MAX_HARM_RANGE`) redrawing :func:`plot_decision`.

    Returns
    -------
    ipywidgets.VBox
        From :func:`labkit.ui.interactive_figure`, showing the slide's weights and harm limit 0.3.
    """
    return interactive_figure(
        plot_decision,
        beneficence=float_slider("beneficence", *WEIGHT_RANGE, 0.3),
        non_maleficence=float_slider("non-maleficence", *WEIGHT_RANGE, 0.3),
        autonomy=float_slider("autonomy", *WEIGHT_RANGE, 0.2),
        justice=float_slider("justice", *WEIGHT_RANGE, 0.2),
        max_harm=float_slider("max harm", *MAX_HARM_RANGE, 0.3),
    )


# ---------------------------------------------------------------------------
# Moral uncertainty: credences over ethical theories
# ---------------------------------------------------------------------------

def _utilitarian(action: Mapping[str, float]) -> float:
    return action["benefit"] - action["harm"]


def _deontological(action: Mapping[str, float]) -> float:
    # Harming beyond a small threshold is forbidden outright; among permitted acts, respect autonomy.
    return action["autonomy"] if action["harm"] <= DEONTIC_HARM_LIMIT else -1.0


def _egalitarian(action: Mapping[str, float]) -> float:
    return action["fairness"]


DEONTIC_HARM_LIMIT = 0.15
THEORIES = {"utilitarian": _utilitarian, "deontological": _deontological, "egalitarian": _egalitarian}
NORMALISATIONS = ("none", "range", "variance")


def choiceworthiness(actions: Sequence[Mapping[str, float]], theories: Mapping = THEORIES) -> np.ndarray:
    """Each theory's choiceworthiness of each action, shape (n_theories, n_actions).

    The default theories: utilitarian (benefit - harm), deontological (any
    harm above :data:`DEONTIC_HARM_LIMIT` is forbidden, scored -1; otherwise
    the action's respect for autonomy) and egalitarian (fairness).
    """
    if not actions:
        raise ValueError("actions must not be empty")
    try:
        return np.array([[float(theory(a)) for a in actions] for theory in theories.values()])
    except KeyError as exc:
        raise ValueError(f"an action lacks the attribute {exc} a theory needs") from None


def _credences(credences, n: int) -> np.ndarray:
    c = ensure_array("credences", credences, ndim=1)
    if len(c) != n or (c < 0).any() or not math.isclose(float(c.sum()), 1.0, abs_tol=1e-9):
        raise ValueError(f"credences must be {n} non-negative numbers summing to 1, got {c.tolist()}")
    return c


def expected_choiceworthiness(cw, credences, normalise: str = "variance") -> np.ndarray:
    """Credence-weighted sum of the theories' choiceworthiness, per action (MacAskill et al. 2020, ch. 4).

    Summing across theories presumes their units are comparable, which nothing
    guarantees. ``normalise`` is the intertheoretic comparison assumed:
    ``"none"`` takes the numbers at face value, ``"range"`` maps each theory's
    best action to 1 and worst to 0, ``"variance"`` gives each theory mean 0
    and variance 1 over the actions ("variance voting", MacAskill, Cotton-Barratt
    and Ord 2020). A theory indifferent between all actions contributes 0.
    """
    cw = ensure_array("cw", cw, ndim=2, min_len=1)
    c = _credences(credences, cw.shape[0])
    normalise = ensure_choice("normalise", normalise, NORMALISATIONS)
    if normalise == "range":
        spread = np.ptp(cw, axis=1, keepdims=True)
        cw = np.where(spread > 0, (cw - cw.min(axis=1, keepdims=True)) / np.where(spread > 0, spread, 1.0), 0.0)
    elif normalise == "variance":
        spread = cw.std(axis=1, keepdims=True)
        cw = np.where(spread > 0, (cw - cw.mean(axis=1, keepdims=True)) / np.where(spread > 0, spread, 1.0), 0.0)
    return c @ cw


def credence_weighted_borda(cw, credences) -> np.ndarray:
    """Each theory ranks the actions; Borda points (ties share them) weighted by credence (MacAskill 2016).

    Uses only each theory's ranking, so it needs no intertheoretic unit, at the
    price of ignoring how much a theory cares.
    """
    cw = ensure_array("cw", cw, ndim=2, min_len=1)
    c = _credences(credences, cw.shape[0])
    points = np.array([stats.rankdata(row) - 1.0 for row in cw])
    return c @ points


def favourite_theory_choice(cw, credences) -> int:
    """"My favourite theory": the best action of the single most credible theory (first on ties)."""
    cw = ensure_array("cw", cw, ndim=2, min_len=1)
    c = _credences(credences, cw.shape[0])
    return int(np.argmax(cw[int(np.argmax(c))]))


__all__ = [
    "Principle", "PRINCIPLES", "SLIDE_WEIGHTS", "ACTIONS", "score_matrix", "minmax_normalise", "sum_normalise",
    "weighted_sum", "lexicographic_choice", "constrained_choice", "flip_points", "winner_map", "plot_decision",
    "WEIGHT_RANGE", "MAX_HARM_RANGE", "decision_widget", "THEORIES", "DEONTIC_HARM_LIMIT", "NORMALISATIONS",
    "choiceworthiness", "expected_choiceworthiness", "credence_weighted_borda", "favourite_theory_choice",
]
