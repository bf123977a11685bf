"""The Renyi-DP accountant for DP-SGD (lesson 20).

- :func:`subsampled_gaussian_rdp`: the RDP of one step of the sampled Gaussian
  mechanism (Mironov 2017; Mironov, Talwar and Zhang 2019, Sec. 3.3):
  ``eps_alpha = log A_alpha / (alpha - 1)``, ``A_alpha = E_{z~mu0}[(mu(z)/mu0(z))^alpha]``
  with ``mu0 = N(0, sigma^2)`` and ``mu = (1 - q) mu0 + q N(1, sigma^2)``;
  ``q = 1`` gives the Gaussian mechanism's ``alpha / (2 sigma^2)``.
- :func:`rdp_to_epsilon`: RDP to (epsilon, delta) (Balle et al. 2020, Thm. 21):
  ``eps = rdp + log((alpha - 1) / alpha) - (log delta + log alpha) / (alpha - 1)``,
  minimised over the orders.
- :func:`rdp_epsilon` (RDP adds over steps) and its inverse :func:`noise_multiplier_for`.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy.optimize import brentq
from scipy.special import logsumexp

from labkit.validation import ensure_float, ensure_int


# Renyi orders searched by the accountant: 1.1 to 10.9 in steps of 0.1, then
# 12 to 63 (the grid of TF Privacy and Opacus, so epsilons are comparable).
DEFAULT_ORDERS: tuple[float, ...] = tuple([1 + k / 10 for k in range(1, 100)] + list(range(12, 64)))


def _check_orders(orders) -> np.ndarray:
    alphas = np.atleast_1d(np.asarray(orders, dtype=float))
    if alphas.ndim != 1 or alphas.size == 0 or not np.isfinite(alphas).all() or (alphas <= 1).any():
        raise ValueError("orders must be a non-empty sequence of finite Renyi orders > 1")
    return alphas


def subsampled_gaussian_rdp(noise_multiplier: float, sample_rate: float, orders: Sequence[float] = DEFAULT_ORDERS,
                            grid_points_per_sigma: int = 8) -> np.ndarray:
    """Renyi DP of one step of the sampled Gaussian mechanism, at each order.

    With mu0 = N(0, sigma^2) and the mixture mu = (1 - q) mu0 + q N(1, sigma^2),
    Mironov, Talwar and Zhang (2019, Sec. 3.3) bound the order-alpha RDP by
    ``log A_alpha / (alpha - 1)`` with ``A_alpha = E_{z~mu0}[(mu(z)/mu0(z))^alpha]``.
    A_alpha is computed here by quadrature in log space: the integrand is
    smooth and Gaussian-tailed, so the trapezoid rule on a grid of step
    sigma / ``grid_points_per_sigma`` spanning the mass near 0 and near alpha
    (where the ``(mu/mu0)^alpha`` factor peaks) is exact to rounding. ``q = 1``
    gives the Gaussian mechanism's alpha / (2 sigma^2) (Mironov 2017).

    Parameters
    ----------
    noise_multiplier : float > 0
        sigma, the noise's standard deviation over the sensitivity.
    sample_rate : float in (0, 1]
        q.
    orders : sequence of float > 1
    grid_points_per_sigma : int >= 4

    Returns
    -------
    numpy array of RDP values, one per order (for one step; RDP adds over steps)
    """
    sigma = ensure_float("noise_multiplier", noise_multiplier, low=0.0, low_open=True)
    q = ensure_float("sample_rate", sample_rate, 0.0, 1.0, low_open=True)
    alphas = _check_orders(orders)
    per_sigma = ensure_int("grid_points_per_sigma", grid_points_per_sigma, low=4, high=10_000)
    if q == 1.0:
        return alphas / (2 * sigma**2)
    step = sigma / per_sigma
    z = np.arange(-12 * sigma, alphas.max() + 12 * sigma + step, step)
    log_mu0 = -0.5 * (z / sigma) ** 2 - math.log(sigma * math.sqrt(2 * math.pi))
    # log(mu(z) / mu0(z)) = log((1 - q) + q exp((2z - 1) / (2 sigma^2)))
    log_ratio = np.logaddexp(math.log1p(-q), math.log(q) + (2 * z - 1) / (2 * sigma**2))
    log_a = logsumexp(log_mu0[None, :] + alphas[:, None] * log_ratio[None, :], axis=1) + math.log(step)
    return np.maximum(log_a, 0.0) / (alphas - 1)  # A_alpha >= 1; the max removes rounding below it


def rdp_to_epsilon(rdp: Sequence[float], orders: Sequence[float], delta: float) -> tuple[float, float]:
    """Convert RDP curves to an (epsilon, delta) guarantee (Balle et al. 2020, Thm. 21).

    For each order alpha: ``eps = rdp + log((alpha - 1) / alpha) - (log delta + log alpha) / (alpha - 1)``;
    the guarantee is the smallest over the orders (tighter than Mironov 2017's
    ``rdp + log(1/delta) / (alpha - 1)``).

    Parameters
    ----------
    rdp : sequence of float >= 0
        RDP at each order (total over all steps).
    orders : sequence of float > 1
    delta : float in (0, 1)

    Returns
    -------
    (epsilon, best_order) : (float, float); epsilon is at least 0
    """
    alphas = _check_orders(orders)
    values = np.atleast_1d(np.asarray(rdp, dtype=float))
    if values.shape != alphas.shape:
        raise ValueError(f"rdp must have one value per order ({alphas.size}), got shape {values.shape}")
    if np.isnan(values).any() or (values < 0).any():
        raise ValueError("rdp values must be non-negative (inf allowed)")
    delta = ensure_float("delta", delta, 0.0, 1.0, low_open=True, high_open=True)
    eps = values + np.log1p(-1 / alphas) - (math.log(delta) + np.log(alphas)) / (alphas - 1)
    best = int(np.argmin(eps))
    return max(0.0, float(eps[best])), float(alphas[best])


def rdp_epsilon(noise_multiplier: float, sample_rate: float, steps: int, delta: float,
                orders: Sequence[float] = DEFAULT_ORDERS) -> float:
    """Epsilon of ``steps`` compositions of the sampled Gaussian mechanism at ``delta``.

    Parameters
    ----------
    noise_multiplier : float > 0
        sigma.
    sample_rate : float in (0, 1]
        q, the Poisson sampling rate.
    steps : int >= 0
    delta : float in (0, 1)
    orders : sequence of float > 1
        Renyi orders searched (default :data:`DEFAULT_ORDERS`).

    Returns
    -------
    float epsilon (0 for 0 steps)
    """
    steps = ensure_int("steps", steps, low=0)
    delta = ensure_float("delta", delta, 0.0, 1.0, low_open=True, high_open=True)
    per_step = subsampled_gaussian_rdp(noise_multiplier, sample_rate, orders)
    if steps == 0:
        return 0.0
    return rdp_to_epsilon(per_step * steps, orders, delta)[0]


def noise_multiplier_for(epsilon: float, delta: float, sample_rate: float, steps: int,
                         orders: Sequence[float] = DEFAULT_ORDERS, rtol: float = 1e-6) -> float:
    """The smallest noise multiplier whose :func:`rdp_epsilon` is at most ``epsilon``.

    Epsilon falls as sigma grows, so a root-finder on log sigma finds it.

    Parameters
    ----------
    epsilon : float > 0
    delta : float in (0, 1)
    sample_rate : float in (0, 1]
    steps : int >= 1
    orders : sequence of float > 1
    rtol : float > 0
        Relative tolerance on sigma.

    Returns
    -------
    float sigma
    """
    epsilon = ensure_float("epsilon", epsilon, low=0.0, low_open=True)
    delta = ensure_float("delta", delta, 0.0, 1.0, low_open=True, high_open=True)
    sample_rate = ensure_float("sample_rate", sample_rate, 0.0, 1.0, low_open=True)
    steps = ensure_int("steps", steps, low=1)
    rtol = ensure_float("rtol", rtol, low=0.0, low_open=True)
    alphas = _check_orders(orders)
    # With the orders fixed, even infinite noise leaves eps >= min over alpha of the conversion's delta term.
    floor = rdp_to_epsilon(np.zeros_like(alphas), alphas, delta)[0]
    if epsilon <= floor:
        raise ValueError(f"epsilon must exceed {floor:.4g}, the least these orders reach at delta={delta:g} "
                         f"with any noise; got {epsilon:g}")

    def gap(log_sigma: float) -> float:
        return rdp_epsilon(math.exp(log_sigma), sample_rate, steps, delta, alphas) - epsilon

    low, high = math.log(0.1), math.log(10.0)
    while gap(low) < 0:
        low -= 1.0
    while gap(high) > 0:
        high += 1.0
        if high > math.log(1e6):
            raise ValueError(f"no noise multiplier up to 1e6 reaches epsilon={epsilon:g}")
    return math.exp(brentq(gap, low, high, xtol=rtol / 4, rtol=rtol / 4)) * (1 + rtol / 2)
