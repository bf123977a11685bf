"""Lesson 10: choosing for many stakeholders, with social choice theory.

Utilities are a matrix ``U`` of shape ``(n_stakeholders, n_options)``:
``U[i, j]`` is how good option ``j`` is for stakeholder ``i``. Rankings are an
integer matrix of shape ``(n_voters, n_options)`` whose row ``i`` lists the
options from voter ``i``'s best to worst.

- Utilitarian welfare, sum_i w_i U[i, j] (Harsanyi 1955).
- Rawlsian maximin, min_i U[i, j] (Rawls 1971): judge an option by its worst-off stakeholder.
- Nash welfare, sum_i w_i log(U[i, j] - d_i), the (weighted) Nash bargaining
  product (Nash 1950; Kaneko and Nakamura 1979); options that leave someone at or
  below the disagreement point d_i score -inf.
- Borda count: an option in position p of a ranking of m options gets m-1-p points (Borda 1781).
- Condorcet winner: the option that beats every other in a pairwise majority vote (Condorcet 1785);
  it need not exist (a Condorcet cycle).
- Pareto front: options no other option weakly improves for everyone and strictly for someone.

Ties are broken towards the lowest option index, and said so: a rule that
hides how it breaks ties makes the order of the input a hidden parameter.
"""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np

from labkit.ui import float_slider, interactive_figure
from labkit.validation import ensure_array, ensure_choice, ensure_float, ensure_weights

RULES = ("utilitarian", "maximin", "nash")


def _utilities(utilities) -> np.ndarray:
    u = ensure_array("utilities", utilities, ndim=2, min_len=1)
    if u.shape[1] < 1:
        raise ValueError("utilities must have at least one option (column)")
    return u


def _weights(weights, n: int) -> np.ndarray:
    return np.ones(n) if weights is None else ensure_weights("weights", weights, n, "stakeholder")


def _disagreement(disagreement, n: int) -> np.ndarray:
    d = ensure_array("disagreement", disagreement, ndim=(0, 1))
    if d.ndim == 1 and d.shape[0] != n:
        raise ValueError(f"disagreement must be a number or have one entry per stakeholder ({n}), got {d.shape[0]}")
    return np.broadcast_to(d, (n,))


def welfare(utilities, rule: str = "utilitarian", weights=None, disagreement=0.0) -> np.ndarray:
    """Social welfare of every option under ``rule``.

    Parameters
    ----------
    utilities : array-like, shape (n_stakeholders, n_options)
    rule : {"utilitarian", "maximin", "nash"}
    weights : array-like of shape (n_stakeholders,), non-negative, or None (all 1)
        Used by the utilitarian and Nash rules; maximin ignores them (Rawls'
        rule looks only at the worst-off, whoever they are).
    disagreement : float or array-like of shape (n_stakeholders,)
        Nash's disagreement point d: what each stakeholder gets if no deal is made.

    Returns
    -------
    np.ndarray of shape (n_options,)
        Higher is better; the Nash rule gives -inf to options not strictly above d for everyone.
    """
    u = _utilities(utilities)
    rule = ensure_choice("rule", rule, RULES)
    w = _weights(weights, u.shape[0])
    d = _disagreement(disagreement, u.shape[0])
    if rule == "utilitarian":
        return w @ u                                    # Harsanyi (1955): weighted sum
    if rule == "maximin":
        return u.min(axis=0)                            # Rawls (1971): the worst-off stakeholder
    gain = u - d[:, None]
    out = np.full(u.shape[1], -np.inf)
    ok = (gain > 0).all(axis=0)                         # Nash (1950): maximise prod_i (u_i - d_i)^{w_i}
    out[ok] = (w[:, None] * np.log(gain[:, ok])).sum(axis=0)
    return out


def choose(utilities, rule: str = "utilitarian", weights=None, disagreement=0.0) -> int | None:
    """Index of the option ``rule`` picks, or None if Nash finds no option above d.

    Maximin ties are broken by leximin (compare the worst-off, then the
    second worst-off, ...), Rawls' own refinement, so the chosen option is never
    Pareto-dominated; remaining ties go to the lowest index.
    """
    scores = welfare(utilities, rule, weights, disagreement)
    if rule == "maximin":
        sorted_u = np.sort(_utilities(utilities), axis=0)   # column j: option j's utilities, worst first
        best = 0
        for j in range(1, sorted_u.shape[1]):
            diff = sorted_u[:, j] - sorted_u[:, best]
            first = np.flatnonzero(diff)
            if first.size and diff[first[0]] > 0:
                best = j
        return best
    if np.isneginf(scores).all():
        return None
    return int(np.argmax(scores))


def rankings_from_utilities(utilities) -> np.ndarray:
    """Each stakeholder's ranking, best first (ties keep the lower index first)."""
    u = _utilities(utilities)
    return np.argsort(-u, axis=1, kind="stable")


def _rankings(rankings) -> np.ndarray:
    r = ensure_array("rankings", rankings, ndim=2, dtype=float, min_len=1)
    if not np.all(r == np.round(r)):
        raise TypeError("rankings must hold integer option indices")
    r = r.astype(int)
    m = r.shape[1]
    if m < 1 or not (np.sort(r, axis=1) == np.arange(m)).all():
        raise ValueError(f"each row of rankings must be a permutation of 0..{m - 1} (best option first)")
    return r


def borda_scores(rankings) -> np.ndarray:
    """Borda points of every option: position p (0 = best) of m options earns m-1-p.

    Parameters
    ----------
    rankings : array-like of int, shape (n_voters, n_options), rows are permutations

    Returns
    -------
    np.ndarray of float, shape (n_options,)
    """
    r = _rankings(rankings)
    n, m = r.shape
    scores = np.zeros(m)
    np.add.at(scores, r, np.broadcast_to(np.arange(m - 1, -1, -1, dtype=float), (n, m)))
    return scores


def pairwise_margins(rankings) -> np.ndarray:
    """``M[a, b]`` = voters ranking a above b minus voters ranking b above a (antisymmetric)."""
    r = _rankings(rankings)
    position = np.argsort(r, axis=1)                    # position[i, option]
    above = (position[:, :, None] < position[:, None, :]).sum(axis=0)
    return (above - above.T).astype(float)


def condorcet_winner(rankings) -> int | None:
    """The option that beats every other by a strict pairwise majority, or None (e.g. a cycle)."""
    margins = pairwise_margins(rankings)
    m = margins.shape[0]
    for a in range(m):
        if all(margins[a, b] > 0 for b in range(m) if b != a):
            return a
    return None


def pareto_front(utilities) -> np.ndarray:
    """Boolean mask of options not Pareto-dominated by another option.

    Option k dominates j when U[:, k] >= U[:, j] for every stakeholder and
    U[:, k] > U[:, j] for at least one. Identical options do not dominate each other.

    Parameters
    ----------
    utilities : array-like, shape (n_stakeholders, n_options)

    Returns
    -------
    np.ndarray of bool, shape (n_options,)
    """
    u = _utilities(utilities)
    ge = (u[:, :, None] >= u[:, None, :]).all(axis=0)   # ge[k, j]: k at least as good as j for all
    gt = (u[:, :, None] > u[:, None, :]).any(axis=0)
    dominated = (ge & gt).any(axis=0)
    return ~dominated


def all_winners(utilities, weights=None) -> dict[str, int | None]:
    """The option each rule picks on one profile (Borda and Condorcet use the stakeholders' rankings,
    with Borda points weighted by ``weights``)."""
    u = _utilities(utilities)
    w = _weights(weights, u.shape[0])
    ranks = rankings_from_utilities(u)
    m = u.shape[1]
    points = np.zeros(m)
    for wi, row in zip(w, ranks):
        points[row] += wi * np.arange(m - 1, -1, -1)
    return {
        "utilitarian": choose(u, "utilitarian", w),
        "maximin": choose(u, "maximin"),
        "nash": choose(u, "nash", w),
        "borda": int(np.argmax(points)),
        "condorcet": condorcet_winner(ranks),
    }


# --- The slide's stakeholders, as a utility matrix ------------------------------------

SLIDE_STAKEHOLDERS = {
    "User": {"privacy": 0.8, "efficiency": 0.2},
    "Company": {"profit": 0.6, "reputation": 0.4},
    "Society": {"fairness": 0.7, "sustainability": 0.3},
}
# The slide's two options plus two more, so the rules have something to disagree about.
SLIDE_OPTIONS = {
    "A (slide)": {"privacy": 0.9, "efficiency": 0.5, "profit": 0.3, "reputation": 0.8, "fairness": 0.6, "sustainability": 0.7},
    "B (slide)": {"privacy": 0.5, "efficiency": 0.9, "profit": 0.7, "reputation": 0.6, "fairness": 0.4, "sustainability": 0.5},
    "C ad-funded": {"privacy": 0.1, "efficiency": 0.9, "profit": 1.0, "reputation": 0.7, "fairness": 0.6, "sustainability": 0.6},
    "D nonprofit": {"privacy": 1.0, "efficiency": 0.4, "profit": 0.05, "reputation": 0.6, "fairness": 0.9, "sustainability": 0.9},
}


def stakeholder_utilities(stakeholders: dict[str, dict[str, float]], options: dict[str, dict[str, float]]) -> np.ndarray:
    """U[i, j] = sum_a weight_ia * option_j[a]; a missing attribute is an error, never a silent 0."""
    u = np.zeros((len(stakeholders), len(options)))
    for i, (who, prefs) in enumerate(stakeholders.items()):
        for j, (name, option) in enumerate(options.items()):
            missing = sorted(set(prefs) - set(option))
            if missing:
                raise ValueError(f"option {name!r} lacks attributes {missing} that stakeholder {who!r} cares about")
            u[i, j] = sum(weight * float(option[attr]) for attr, weight in prefs.items())
    return u


WEIGHT_RANGE = (0.0, 1.0, 0.05)  # min, max, step of each stakeholder's weight slider (normalised to sum 1)


def plot_stakeholder_weights(user: float = 1.0, company: float = 1.0, society: float = 1.0) -> plt.Figure:
    """Widget: stakeholder weights -> weighted welfare of each option and the winner of each rule."""
    raw = np.array([ensure_float(name, value, low=0.0) for name, value in
                    (("user", user), ("company", company), ("society", society))])
    note = ""
    if raw.sum() <= 0:
        raw, note = np.ones(3), " (all weights 0: treated as equal)"
    w = raw / raw.sum()
    u = stakeholder_utilities(SLIDE_STAKEHOLDERS, SLIDE_OPTIONS)
    names = list(SLIDE_OPTIONS)
    winners = all_winners(u, w)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), gridspec_kw={"width_ratios": [3, 2]})
    x = np.arange(len(names))
    for k, who in enumerate(SLIDE_STAKEHOLDERS):
        axes[0].bar(x + (k - 1) * 0.25, u[k], width=0.25, label=f"{who} (w={w[k]:.2f})", alpha=0.8)
    axes[0].scatter(x, welfare(u, "utilitarian", w), marker="_", s=900, linewidths=3, color="k", label="weighted sum")
    axes[0].set_xticks(x, names, fontsize=8)
    axes[0].set_ylabel("utility")
    axes[0].set_ylim(0, 1.3)
    axes[0].legend(fontsize=7, loc="upper center", ncol=4, markerscale=0.3)
    axes[0].set_title("utility per stakeholder" + note, fontsize=10)
    axes[1].axis("off")
    lines = [f"{rule:<12} -> {'none (cycle)' if idx is None else names[idx]}" for rule, idx in winners.items()]
    axes[1].text(0.0, 0.5, "chosen option\n\n" + "\n".join(lines), family="monospace", fontsize=9, va="center")
    fig.tight_layout()
    return fig


def stakeholder_weights_widget():
    """Lesson 10's widget: one weight per stakeholder (:data:`WEIGHT_RANGE`) redrawing :func:`plot_stakeholder_weights`.

    Returns
    -------
    ipywidgets.VBox
        From :func:`labkit.ui.interactive_figure`, showing equal weights.
    """
    return interactive_figure(
        plot_stakeholder_weights,
        user=float_slider("user", *WEIGHT_RANGE, 1.0),
        company=float_slider("company", *WEIGHT_RANGE, 1.0),
        society=float_slider("society", *WEIGHT_RANGE, 1.0),
    )


__all__ = [
    "RULES", "welfare", "choose", "rankings_from_utilities", "borda_scores", "pairwise_margins", "condorcet_winner",
    "pareto_front", "all_winners", "SLIDE_STAKEHOLDERS", "SLIDE_OPTIONS", "stakeholder_utilities",
    "WEIGHT_RANGE", "plot_stakeholder_weights", "stakeholder_weights_widget",
]
