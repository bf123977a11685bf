"""The confidence interval the course reports beside every rate.

:func:`wilson_interval` (Wilson 1927) keeps its coverage close to nominal for
small samples, where the textbook Wald interval does not (Brown, Cai and
DasGupta 2001). Lesson 00 teaches it (``labkit.basics`` shows the Wald
interval beside it); the evaluation harness of the language-model lessons and
the lessons' tables use it. It lives in the infrastructure layer so that a
substrate can report it without importing a lesson's module.
"""
from __future__ import annotations

import math

from scipy import stats

from labkit.validation import ensure_float, ensure_int


def _check_counts(successes, n, confidence) -> tuple[int, int, float]:
    """Validated (successes, n, confidence) of a binomial interval."""
    n = ensure_int("n", n, low=1)
    k = ensure_int("successes", successes, low=0, high=n)
    return k, n, ensure_float("confidence", confidence, 0.0, 1.0, low_open=True, high_open=True)


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion.

    With p̂ = k/n and z the normal quantile,
    centre = (p̂ + z²/2n) / (1 + z²/n), half-width = z·sqrt(p̂(1-p̂)/n + z²/4n²) / (1 + z²/n).

    Parameters
    ----------
    successes : int in [0, n]
    n : int, at least 1
    confidence : float in (0, 1)

    Returns
    -------
    (low, high) : tuple of float, inside [0, 1]
    """
    k, n, conf = _check_counts(successes, n, confidence)
    z = float(stats.norm.ppf(0.5 + conf / 2))
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def clopper_pearson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The exact (Clopper and Pearson 1934) interval for a binomial proportion.

    Inverts two one-sided binomial tests: the bounds are Beta quantiles,
    low = Beta(α/2; k, n-k+1) and high = Beta(1-α/2; k+1, n-k), with low = 0
    when k = 0 and high = 1 when k = n. Its coverage is at least the nominal
    level for every true p, at the price of width. For k = 0 the upper bound
    is 1 - (α/2)^(1/n), close to the "rule of three" 3/n at 95 % (one-sided).
    Parameters and return value as for :func:`wilson_interval`.
    """
    k, n, conf = _check_counts(successes, n, confidence)
    alpha = 1 - conf
    low = 0.0 if k == 0 else float(stats.beta.ppf(alpha / 2, k, n - k + 1))
    high = 1.0 if k == n else float(stats.beta.ppf(1 - alpha / 2, k + 1, n - k))
    return low, high


__all__ = ["wilson_interval", "clopper_pearson_interval"]
