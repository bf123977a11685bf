"""Lesson 04: ethics made measurable.

The slide's ``EthicalAI.is_ethical_decision`` is empty. Fairness is not a
property of one decision but of how decisions are distributed across groups,
so this module measures it on a whole run, and records the run.

- :func:`make_lending_data`: a generated lending data set with a *known* bias
  mechanism (group 1's credit score is under-measured; its base rate is lower).
- :func:`group_rates`, :func:`demographic_parity_difference`,
  :func:`equalized_odds_difference` (Hardt, Price and Srebro 2016),
  :func:`calibration_by_group` and :func:`balance_gaps` (Kleinberg, Mullainathan
  and Raghavan 2016), :func:`chouldechova_fpr` (Chouldechova 2017, eq. 2.6).
- Mitigations: :func:`reweighing_weights` (Kamiran and Calders 2012) and
  :func:`group_thresholds` (per-group cut-offs, Hardt et al. 2016).
- Transparency: :func:`model_card` (Mitchell et al. 2019) written from the
  run's numbers. (The tamper-evident audit log is lesson 13's
  :class:`labkit.monitoring.AuditLog`.)
"""
from __future__ import annotations

import functools
import numbers
from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from labkit.ui import float_slider, interactive_figure
from labkit.validation import ensure_array, ensure_choice, ensure_float, ensure_int


# ---------------------------------------------------------------------------
# Data with a known bias mechanism


@dataclass(frozen=True)
class LendingData:
    """Applicants: features ``x`` (credit score, income), ``group`` (0/1), ``y`` (repaid)."""

    x: np.ndarray
    group: np.ndarray
    y: np.ndarray
    ability: np.ndarray  # the latent repayment ability the features measure


def make_lending_data(n: int = 4000, seed: int = 0, score_bias: float = 0.8,
                      ability_gap: float = 0.5, share_group1: float = 0.4) -> LendingData:
    """Generate loan applicants with two known sources of group disparity.

    - ``ability_gap``: group 1's latent ability is lower on average (a
      structural difference in the world), so its repayment base rate is lower.
    - ``score_bias``: group 1's *recorded* credit score is shifted down by this
      amount at equal ability (measurement bias, e.g. thin credit files). A
      model trained on the score under-rates group 1's qualified applicants.

    ability ~ N(-ability_gap * group, 1); repaid ~ Bernoulli(sigmoid(0.5 + 2 ability));
    score = ability - score_bias * group + N(0, 0.5^2); income = ability + N(0, 1).

    Parameters
    ----------
    n : int in [10, 10^6]
    seed : int
    score_bias, ability_gap : float in [0, 3]
    share_group1 : float in (0, 1)

    Returns
    -------
    LendingData
    """
    n = ensure_int("n", n, low=10, high=1_000_000)
    rng = np.random.default_rng(ensure_int("seed", seed, low=0))
    score_bias = ensure_float("score_bias", score_bias, 0.0, 3.0)
    ability_gap = ensure_float("ability_gap", ability_gap, 0.0, 3.0)
    share = ensure_float("share_group1", share_group1, 0.0, 1.0, low_open=True, high_open=True)
    group = (rng.uniform(size=n) < share).astype(int)
    ability = rng.normal(-ability_gap * group, 1.0)
    y = (rng.uniform(size=n) < 1.0 / (1.0 + np.exp(-(0.5 + 2.0 * ability)))).astype(int)
    score = ability - score_bias * group + rng.normal(0.0, 0.5, n)
    income = ability + rng.normal(0.0, 1.0, n)
    return LendingData(np.column_stack([score, income]), group, y, ability)


# ---------------------------------------------------------------------------
# Metrics


def _binary(name: str, value, n: int | None = None) -> np.ndarray:
    a = ensure_array(name, value, ndim=1, min_len=1)
    if not np.isin(a, (0.0, 1.0)).all():
        raise ValueError(f"{name} must hold only 0/1 (or booleans)")
    if n is not None and len(a) != n:
        raise ValueError(f"{name} must have {n} entries (one per applicant), got {len(a)}")
    return a.astype(int)


def _groups(group, n: int) -> np.ndarray:
    g = ensure_array("group", group, ndim=1)
    if len(g) != n:
        raise ValueError(f"group must have {n} entries (one per applicant), got {len(g)}")
    if (g != np.round(g)).any():
        raise ValueError("group must hold integer group labels")
    if len(np.unique(g)) < 2:
        raise ValueError("group must contain at least 2 distinct groups to compare")
    return g.astype(int)


def _safe_rate(num: float, den: float) -> float:
    return float(num / den) if den > 0 else float("nan")


def group_rates(y_true, y_pred, group) -> dict[int, dict[str, float]]:
    """Confusion-matrix rates for each group.

    Returns
    -------
    dict
        ``{g: {"n", "base_rate", "selection_rate", "tpr", "fpr", "ppv", "fnr", "accuracy"}}``
        with ``nan`` where a rate's denominator is empty (e.g. TPR of a group
        with no positives).
    """
    yp = _binary("y_pred", y_pred)
    yt = _binary("y_true", y_true, len(yp))
    g = _groups(group, len(yp))
    out: dict[int, dict[str, float]] = {}
    for k in np.unique(g):
        m = g == k
        t, p = yt[m], yp[m]
        tp, fp = float(np.sum(t & p)), float(np.sum((1 - t) & p))
        pos, neg = float(t.sum()), float((1 - t).sum())
        out[int(k)] = {
            "n": float(m.sum()),
            "base_rate": float(t.mean()),
            "selection_rate": float(p.mean()),
            "tpr": _safe_rate(tp, pos),
            "fpr": _safe_rate(fp, neg),
            "fnr": _safe_rate(pos - tp, pos),
            "ppv": _safe_rate(tp, tp + fp),
            "accuracy": float((t == p).mean()),
        }
    return out


def demographic_parity_difference(y_pred, group) -> float:
    """max_g P(yhat = 1 | g) - min_g P(yhat = 1 | g).

    Demographic (statistical) parity asks every group to be selected at the
    same rate (Dwork et al. 2012; Feldman et al. 2015). 0 means parity.

    Parameters
    ----------
    y_pred : array-like of 0/1, shape (n,)
    group : array-like of int, shape (n,), at least two distinct values

    Returns
    -------
    float in [0, 1]
    """
    yp = _binary("y_pred", y_pred)
    g = _groups(group, len(yp))
    rates = [yp[g == k].mean() for k in np.unique(g)]
    return float(max(rates) - min(rates))


def equalized_odds_difference(y_true, y_pred, group) -> float:
    """The larger of the TPR gap and the FPR gap between groups.

    Equalized odds (Hardt, Price and Srebro 2016, def. 2.1) asks that the
    prediction be independent of the group given the true outcome, i.e. equal
    TPR and equal FPR. The difference is max(max-min TPR, max-min FPR).

    Raises
    ------
    ValueError
        When some group has no positives or no negatives (its TPR or FPR is undefined).
    """
    rates = group_rates(y_true, y_pred, group)
    tpr = [r["tpr"] for r in rates.values()]
    fpr = [r["fpr"] for r in rates.values()]
    if np.isnan(tpr).any() or np.isnan(fpr).any():
        raise ValueError("y_true must contain both outcomes in every group (TPR and FPR need positives and negatives)")
    return float(max(max(tpr) - min(tpr), max(fpr) - min(fpr)))


def calibration_by_group(y_true, scores, group, n_bins: int = 10) -> dict[int, dict[str, Any]]:
    """Calibration within groups (Kleinberg et al. 2016, sec. 2): P(y=1 | s, g) = s?

    For each group, bins the scores into ``n_bins`` equal-width bins on [0, 1]
    and compares the mean score to the observed outcome rate.

    Returns
    -------
    dict
        ``{g: {"count", "mean_score", "outcome_rate" (arrays per bin, 0 when empty),
        "gap" (count-weighted mean |outcome_rate - mean_score|, a binary ECE)}}``
    """
    s = ensure_array("scores", scores, ndim=1, min_len=1)
    if (s < 0).any() or (s > 1).any():
        raise ValueError("scores must be probabilities in [0, 1]")
    yt = _binary("y_true", y_true, len(s))
    g = _groups(group, len(s))
    n_bins = ensure_int("n_bins", n_bins, low=1, high=1000)
    out: dict[int, dict[str, Any]] = {}
    for k in np.unique(g):
        m = g == k
        b = np.clip(np.ceil(s[m] * n_bins).astype(int) - 1, 0, n_bins - 1)
        count = np.bincount(b, minlength=n_bins).astype(float)
        safe = np.maximum(count, 1.0)
        mean_score = np.bincount(b, weights=s[m], minlength=n_bins) / safe
        rate = np.bincount(b, weights=yt[m], minlength=n_bins) / safe
        out[int(k)] = {"count": count, "mean_score": mean_score, "outcome_rate": rate,
                       "gap": float(np.sum(count * np.abs(rate - mean_score)) / count.sum())}
    return out


def balance_gaps(y_true, scores, group) -> dict[str, float]:
    """Kleinberg et al. (2016) balance conditions as gaps between groups.

    Balance for the positive class: E[s | y=1, g] equal across groups;
    for the negative class: E[s | y=0, g] equal. Returns the max-min gap of each.
    """
    s = ensure_array("scores", scores, ndim=1, min_len=1)
    yt = _binary("y_true", y_true, len(s))
    g = _groups(group, len(s))
    pos, neg = [], []
    for k in np.unique(g):
        m = g == k
        if yt[m].min() == yt[m].max():
            raise ValueError("y_true must contain both outcomes in every group")
        pos.append(s[m & (yt == 1)].mean())
        neg.append(s[m & (yt == 0)].mean())
    return {"positive_class": float(max(pos) - min(pos)), "negative_class": float(max(neg) - min(neg))}


def chouldechova_fpr(base_rate: float, ppv: float, fnr: float) -> float:
    """FPR implied by base rate p, PPV and FNR (Chouldechova 2017, eq. 2.6).

    FPR = p / (1 - p) * (1 - PPV) / PPV * (1 - FNR). An identity of the
    confusion matrix: if two groups have different p, equal PPV and equal FNR
    force different FPRs.
    """
    p = ensure_float("base_rate", base_rate, 0.0, 1.0, low_open=True, high_open=True)
    ppv = ensure_float("ppv", ppv, 0.0, 1.0, low_open=True)
    fnr = ensure_float("fnr", fnr, 0.0, 1.0)
    return p / (1 - p) * (1 - ppv) / ppv * (1 - fnr)


# ---------------------------------------------------------------------------
# Mitigations


def reweighing_weights(y_true, group) -> np.ndarray:
    """Kamiran and Calders (2012) reweighing: w(g, y) = P(g) P(y) / P(g, y).

    Weighted, the training data show no dependence between group and label,
    so a model fitted on them has no label-group correlation to learn.
    Every (group, label) cell present gets a finite weight; the weights sum to n.

    Parameters
    ----------
    y_true : array-like of 0/1, shape (n,)
    group : array-like of int, shape (n,)

    Returns
    -------
    np.ndarray, shape (n,)
    """
    yt = _binary("y_true", y_true)
    g = _groups(group, len(yt))
    w = np.empty(len(yt))
    for k in np.unique(g):
        for label in (0, 1):
            cell = (g == k) & (yt == label)
            if cell.any():
                w[cell] = (g == k).mean() * (yt == label).mean() / cell.mean()
    return w


def group_thresholds(scores, group, criterion: str = "parity", target: float = 0.5, y_true=None) -> dict[int, float]:
    """Per-group score cut-offs that equalise a rate across groups.

    - ``"parity"``: each group selects a fraction ``target`` of its applicants
      (demographic parity).
    - ``"equal_opportunity"``: each group accepts a fraction ``target`` of its
      *qualified* applicants (equal TPR; Hardt et al. 2016, sec. 3).

    A decision is ``score >= threshold``. With ties, the achieved rate can
    exceed ``target`` slightly.

    Returns
    -------
    dict
        ``{g: threshold}``
    """
    s = ensure_array("scores", scores, ndim=1, min_len=1)
    g = _groups(group, len(s))
    criterion = ensure_choice("criterion", criterion, ("parity", "equal_opportunity"))
    target = ensure_float("target", target, 0.0, 1.0, low_open=True)
    if criterion == "equal_opportunity":
        if y_true is None:
            raise ValueError("y_true is required when criterion='equal_opportunity'")
        yt = _binary("y_true", y_true, len(s))
    out: dict[int, float] = {}
    for k in np.unique(g):
        pool = s[g == k] if criterion == "parity" else s[(g == k) & (yt == 1)]
        if len(pool) == 0:
            raise ValueError(f"group {k} has no qualified applicants to set a threshold on")
        ranked = np.sort(pool)[::-1]
        out[int(k)] = float(ranked[int(np.ceil(target * len(ranked))) - 1])
    return out


def decide(scores, group, thresholds: dict[int, float]) -> np.ndarray:
    """Decisions ``score >= thresholds[group]`` as a 0/1 array."""
    s = ensure_array("scores", scores, ndim=1, min_len=1)
    g = ensure_array("group", group, ndim=1, dtype=int)
    if len(g) != len(s):
        raise ValueError(f"group must have {len(s)} entries (one per applicant), got {len(g)}")
    if not isinstance(thresholds, dict):
        raise TypeError(f"thresholds must be a dict {{group: threshold}}, got {type(thresholds).__name__}")
    for k, t in thresholds.items():
        ensure_float(f"thresholds[{k!r}]", t)
    missing = set(np.unique(g).tolist()) - set(thresholds)
    if missing:
        raise ValueError(f"thresholds has no entry for group(s) {sorted(missing)}")
    cut = np.array([thresholds[int(k)] for k in g])
    return (s >= cut).astype(int)


def threshold_grid(y_true, scores, group, grid) -> dict[str, np.ndarray]:
    """Metrics of every pair of per-group thresholds, for two groups, vectorised.

    Entry ``[i, j]`` uses threshold ``grid[i]`` for group 0 and ``grid[j]``
    for group 1 (a decision is ``score >= threshold``), and equals what
    :func:`decide` followed by the metric functions would give.

    Returns
    -------
    dict of arrays, shape (len(grid), len(grid))
        ``accuracy``, ``dp_diff`` (demographic parity difference) and ``eo_diff``
        (equalized odds difference).
    """
    s = ensure_array("scores", scores, ndim=1, min_len=1)
    yt = _binary("y_true", y_true, len(s))
    g = _groups(group, len(s))
    if set(np.unique(g).tolist()) != {0, 1}:
        raise ValueError("group must hold exactly the two groups 0 and 1")
    grid = ensure_array("grid", grid, ndim=1, min_len=1)
    per_group = []
    for k in (0, 1):
        sk, yk = s[g == k], yt[g == k]
        if yk.min() == yk.max():
            raise ValueError("y_true must contain both outcomes in every group")
        chosen = sk[:, None] >= grid[None, :]          # (n_k, len(grid))
        per_group.append({
            "sel": chosen.mean(axis=0),
            "tpr": chosen[yk == 1].mean(axis=0),
            "fpr": chosen[yk == 0].mean(axis=0),
            "correct": (chosen == (yk[:, None] == 1)).sum(axis=0),
        })
    a, b = per_group
    gap = lambda key: np.abs(a[key][:, None] - b[key][None, :])  # noqa: E731
    return {
        "accuracy": (a["correct"][:, None] + b["correct"][None, :]) / len(s),
        "dp_diff": gap("sel"),
        "eo_diff": np.maximum(gap("tpr"), gap("fpr")),
    }


# ---------------------------------------------------------------------------
# Transparency and accountability


def model_card(name: str, intended_use: str, data_description: str, metrics_by_variant: dict[str, dict[str, float]],
               caveats: list[str]) -> str:
    """A model card (Mitchell et al. 2019) in Markdown, written from a run's numbers.

    Parameters
    ----------
    name, intended_use, data_description : str
    metrics_by_variant : dict
        ``{variant: {metric: value}}``; every variant must report the same metrics.
    caveats : list of str

    Returns
    -------
    str
        Markdown with sections Model, Intended use, Data, Metrics (a table, 3 decimals), Caveats.
    """
    for arg, val in (("name", name), ("intended_use", intended_use), ("data_description", data_description)):
        if not isinstance(val, str) or not val.strip():
            raise TypeError(f"{arg} must be a non-empty string")
    if not isinstance(metrics_by_variant, dict) or not all(isinstance(m, dict) for m in metrics_by_variant.values()):
        raise TypeError("metrics_by_variant must be a dict {variant: {metric: value}}")
    if not metrics_by_variant:
        raise ValueError("metrics_by_variant must report at least one variant")
    columns = list(next(iter(metrics_by_variant.values())))
    for variant, metrics in metrics_by_variant.items():
        if list(metrics) != columns:
            raise ValueError(f"metrics_by_variant[{variant!r}] must report the metrics {columns}")
        for metric, value in metrics.items():  # NaN is allowed: a rate can be undefined for a variant
            if isinstance(value, bool) or not isinstance(value, (numbers.Real, np.floating, np.integer)):
                raise TypeError(f"metrics_by_variant[{variant!r}][{metric!r}] must be a number, got {type(value).__name__}")
    if isinstance(caveats, (str, bytes)) or not all(isinstance(c, str) for c in caveats):
        raise TypeError("caveats must be a list of strings (one per caveat), not a single string")
    lines = [f"### Model card: {name}", "", f"**Intended use.** {intended_use}", "",
             f"**Data.** {data_description}", "", "**Metrics (held-out test set).**", "",
             "| variant | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for variant, metrics in metrics_by_variant.items():
        lines.append(f"| {variant} | " + " | ".join(f"{float(metrics[c]):.3f}" for c in columns) + " |")
    lines += ["", "**Caveats.**", ""] + [f"- {c}" for c in caveats]
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# The lesson's run and widget


@functools.lru_cache(maxsize=2)
def run_demo(seed: int = 0) -> dict[str, Any]:
    """Train group-blind and reweighed logistic regressions on the lending data.

    Returns
    -------
    dict
        ``train``, ``test`` (LendingData), ``scores`` (group-blind model's test
        probabilities), ``scores_reweighed``, ``scores_aware`` (a model that
        also sees the group: calibrated within groups).
    """
    from sklearn.linear_model import LogisticRegression

    train = make_lending_data(4000, seed=seed)
    test = make_lending_data(4000, seed=seed + 1)
    blind = LogisticRegression().fit(train.x, train.y)
    weights = reweighing_weights(train.y, train.group)
    reweighed = LogisticRegression().fit(train.x, train.y, sample_weight=weights)
    aware_x = lambda d: np.column_stack([d.x, d.group])  # noqa: E731
    aware = LogisticRegression().fit(aware_x(train), train.y)
    return {
        "train": train, "test": test,
        "scores": blind.predict_proba(test.x)[:, 1],
        "scores_reweighed": reweighed.predict_proba(test.x)[:, 1],
        "scores_aware": aware.predict_proba(aware_x(test))[:, 1],
    }


THRESHOLD_RANGE = (0.05, 0.95, 0.01)  # min, max, step of each group's slider
METRICS_SHOWN = ("selection_rate", "tpr", "fpr", "ppv")


def plot_group_thresholds(threshold_group0: float, threshold_group1: float) -> plt.Figure:
    """The widget: per-group thresholds on the group-blind score, and the resulting rates."""
    t0 = ensure_float("threshold_group0", threshold_group0, 0.0, 1.0)
    t1 = ensure_float("threshold_group1", threshold_group1, 0.0, 1.0)
    demo = run_demo()
    test = demo["test"]
    pred = decide(demo["scores"], test.group, {0: t0, 1: t1})
    rates = group_rates(test.y, pred, test.group)
    dp = demographic_parity_difference(pred, test.group)
    eo = equalized_odds_difference(test.y, pred, test.group)
    acc = float((pred == test.y).mean())

    fig, ax = plt.subplots(figsize=(7, 3.6))
    xs = np.arange(len(METRICS_SHOWN))
    for k, offset, colour in ((0, -0.2, "tab:blue"), (1, 0.2, "tab:orange")):
        # PPV is undefined when a group selects nobody; show it as 0 rather than NaN
        vals = [0.0 if np.isnan(rates[k][m]) else rates[k][m] for m in METRICS_SHOWN]
        ax.bar(xs + offset, vals, width=0.4, color=colour, label=f"group {k} (threshold {(t0, t1)[k]:.2f})")
    ax.set_xticks(xs, ["selection rate", "TPR", "FPR", "PPV"])
    ax.set_ylim(0, 1)
    ax.set_title(f"accuracy {acc:.3f} · demographic parity diff {dp:.3f} · equalized odds diff {eo:.3f}", fontsize=10)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return fig


def group_thresholds_widget():
    """Lesson 04's widget: one threshold per group (:data:`THRESHOLD_RANGE`) redrawing :func:`plot_group_thresholds`.

    Returns
    -------
    ipywidgets.VBox
        From :func:`labkit.ui.interactive_figure`, showing both thresholds at 0.5.
    """
    return interactive_figure(
        plot_group_thresholds,
        threshold_group0=float_slider("group 0 threshold", *THRESHOLD_RANGE, 0.5),
        threshold_group1=float_slider("group 1 threshold", *THRESHOLD_RANGE, 0.5),
    )


__all__ = [
    "LendingData", "make_lending_data", "group_rates", "demographic_parity_difference", "equalized_odds_difference",
    "calibration_by_group", "balance_gaps", "chouldechova_fpr", "reweighing_weights", "group_thresholds", "decide",
    "threshold_grid",
    "model_card", "run_demo", "plot_group_thresholds", "THRESHOLD_RANGE",
    "group_thresholds_widget",
]
