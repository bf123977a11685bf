"""Exercises of lesson 13 (monitoring)."""
import numpy as np

from labkit import monitoring
from labkit.exercises import Exercise, register


def _ewma_cases(rng: np.random.Generator):
    cases = [
        ((np.array([1.0, 1.0, 1.0]),), {"lam": 0.5}),              # 0.5, 0.75, 0.875
        ((np.array([2.0, 0.0]),), {"lam": 1.0}),                   # lam = 1: no smoothing
        ((np.array([0.0, 0.0]),), {"lam": 0.2, "start": 10.0}),    # decays from the start value
        ((np.array([]),), {"lam": 0.3}),
        ((np.array([1.0]),), {"lam": 0.0}),                        # must raise ValueError
    ]
    for _ in range(5):
        cases.append(((rng.normal(size=int(rng.integers(1, 60))),),
                      {"lam": float(rng.uniform(0.01, 1.0)), "start": float(rng.normal())}))
    return cases


register(Exercise(
    key="13.ewma",
    title="an exponentially weighted moving average",
    reference=monitoring.ewma,
    make_cases=_ewma_cases,
    difficulty=1, importance="core", minutes=10,
))


def _cusum_cases(rng: np.random.Generator):
    cases = [
        ((np.zeros(5),), {}),                                        # in control: statistic stays 0
        ((np.array([1.5, 1.5, 1.5, 1.5, 1.5, 1.5]),), {"h": 2.5}),   # +1 per step: alarm at the third, restart
        ((np.array([-2.0, -2.0, -2.0, -2.0]),), {"h": 4.0}),         # downward shift: the lower sum
        ((np.array([10.0, 12.0, 11.0]),), {"mu0": 10.0, "sigma": 2.0, "k": 0.25, "h": 0.5}),
        ((np.array([1.0]),), {"sigma": 0.0}),                        # must raise ValueError
    ]
    for _ in range(5):
        n = int(rng.integers(20, 200))
        x = rng.normal(size=n)
        x[n // 2:] += float(rng.uniform(0, 2))
        cases.append(((x,), {"k": float(rng.uniform(0.2, 1.0)), "h": float(rng.uniform(2, 6))}))
    return cases


register(Exercise(
    key="13.cusum",
    title="Page's two-sided CUSUM with restarts",
    reference=monitoring.cusum,
    make_cases=_cusum_cases,
    difficulty=2, importance="core", minutes=20,
))
