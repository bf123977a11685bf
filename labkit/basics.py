"""Lesson 00: small numerical tools every later lesson relies on.

- :func:`softmax` with a temperature, computed stably (subtract the max).
- :func:`wilson_interval`: the 95 % interval the course reports beside every
  rate (Wilson 1927). Its coverage stays close to nominal for small samples,
  where the textbook Wald interval p ± z·sqrt(p(1-p)/n) does not
  (Brown, Cai and DasGupta 2001).
"""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
from scipy import stats

from labkit.intervals import clopper_pearson_interval, wilson_interval  # taught here; infrastructure, since every layer reports it
from labkit.ui import float_slider, interactive_figure
from labkit.validation import ensure_array, ensure_float, ensure_int


def softmax(logits, temperature: float = 1.0) -> np.ndarray:
    """Softmax over the last axis of ``logits`` divided by ``temperature``.

    Parameters
    ----------
    logits : array-like, shape (..., k)
        Unnormalised scores; any finite values, however large.
    temperature : float in (0, inf)
        Below 1 sharpens the distribution, above 1 flattens it.

    Returns
    -------
    np.ndarray
        Probabilities of the same shape, summing to 1 over the last axis.
    """
    z = ensure_array("logits", logits, ndim=(1, 2, 3))
    if z.shape[-1] == 0:
        raise ValueError("logits must have at least one entry on the last axis")
    t = ensure_float("temperature", temperature, low=0.0, low_open=True)
    z = z / t
    z = z - z.max(axis=-1, keepdims=True)  # exp of the largest entry is 1: no overflow
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def entropy(p) -> float:
    """Shannon entropy in nats of a probability vector."""
    p = ensure_array("p", p, ndim=1, min_len=1)
    if (p < 0).any() or not math.isclose(float(p.sum()), 1.0, rel_tol=1e-6, abs_tol=1e-6):
        raise ValueError("p must be non-negative and sum to 1")
    nz = p[p > 0]
    return float(-(nz * np.log(nz)).sum())


def wald_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The textbook normal-approximation interval, clipped to [0, 1] (shown for contrast)."""
    n = ensure_int("n", n, low=1)
    k = ensure_int("successes", successes, low=0, high=n)
    conf = ensure_float("confidence", confidence, 0.0, 1.0, low_open=True, high_open=True)
    z = float(stats.norm.ppf(0.5 + conf / 2))
    p = k / n
    half = z * math.sqrt(p * (1 - p) / n)
    return max(0.0, p - half), min(1.0, p + half)


INTERVAL_METHODS = {"wald": wald_interval, "wilson": wilson_interval, "clopper_pearson": clopper_pearson_interval}


def interval_coverage(method: str, n: int, ps, confidence: float = 0.95) -> np.ndarray:
    """Exact coverage probability of an interval method for each true p.

    Sums the binomial probabilities of the outcomes k whose interval contains
    p; no sampling, so the curve is exact. ``method`` is a key of
    :data:`INTERVAL_METHODS` ("wald", "wilson" or "clopper_pearson").
    """
    n = ensure_int("n", n, low=1, high=10_000)
    ps = ensure_array("ps", ps, ndim=1, min_len=1)
    if (ps < 0).any() or (ps > 1).any():
        raise ValueError("ps must lie in [0, 1]")
    fn = INTERVAL_METHODS.get(method)
    if fn is None:
        raise ValueError(f"method must be one of {sorted(INTERVAL_METHODS)}, got {method!r}")
    bounds = np.array([fn(k, n, confidence) for k in range(n + 1)])
    pmf = stats.binom.pmf(np.arange(n + 1)[None, :], n, ps[:, None])
    inside = (bounds[None, :, 0] <= ps[:, None]) & (ps[:, None] <= bounds[None, :, 1])
    return (pmf * inside).sum(axis=1)


# The widget: how temperature reshapes a next-token distribution.
EXAMPLE_TOKENS = ["Sure", "Sorry", "I", "Here", "No"]
EXAMPLE_LOGITS = np.array([2.0, 1.5, 0.5, 0.2, -1.0])
TEMPERATURE_RANGE = (0.1, 5.0, 0.1)  # min, max, step of the lesson's slider


def plot_temperature(temperature: float) -> plt.Figure:
    """Bar chart of ``softmax(EXAMPLE_LOGITS, temperature)`` with its entropy."""
    p = softmax(EXAMPLE_LOGITS, temperature)
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.bar(EXAMPLE_TOKENS, p, color="tab:blue")
    ax.set_ylim(0, 1)
    ax.set_ylabel("probability")
    ax.set_title(f"temperature {temperature:.1f}: entropy {entropy(p):.2f} nats (max {math.log(len(p)):.2f})")
    fig.tight_layout()
    return fig


def temperature_widget():
    """Lesson 00's widget: a temperature slider over :data:`TEMPERATURE_RANGE` redrawing :func:`plot_temperature`.

    Returns
    -------
    ipywidgets.VBox
        From :func:`labkit.ui.interactive_figure`, showing the figure at T = 1.
    """
    return interactive_figure(plot_temperature, temperature=float_slider("temperature", *TEMPERATURE_RANGE, 1.0))


__all__ = ["softmax", "entropy", "wilson_interval", "wald_interval", "clopper_pearson_interval", "INTERVAL_METHODS",
           "interval_coverage", "plot_temperature",
           "TEMPERATURE_RANGE", "temperature_widget"]
