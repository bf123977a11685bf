"""Exercises of lesson 00 (welcome)."""
import numpy as np

from labkit import basics
from labkit.exercises import Exercise, register


def _softmax_cases(rng: np.random.Generator):
    cases = [
        ((np.array([0.0, 0.0, 0.0]),), {}),
        ((np.array([1000.0, 0.0, -1000.0]),), {}),       # overflows a naive exp
        ((np.array([-1000.0, -1000.0]),), {}),           # underflows a naive exp
        ((np.array([[1000.0, 0.0], [0.0, -1000.0]]),), {}),  # each row needs its own max, not the array's
        ((np.array([1.0, 2.0, 3.0]),), {"temperature": 0.5}),
        ((np.array([1.0, 2.0, 3.0]),), {"temperature": 0.0}),  # must raise ValueError
    ]
    for _ in range(5):
        k = int(rng.integers(1, 8))
        cases.append(((rng.normal(0, 5, size=(3, k)),), {"temperature": float(rng.uniform(0.2, 4.0))}))
    return cases


register(Exercise(
    key="00.softmax",
    title="a softmax with temperature that never overflows",
    reference=basics.softmax,
    make_cases=_softmax_cases,
    difficulty=1, importance="core", minutes=10,
))


def _wilson_cases(rng: np.random.Generator):
    cases = [((0, 10), {}), ((10, 10), {}), ((5, 10), {}), ((1, 1), {}), ((3, 20), {"confidence": 0.9}), ((4, 3), {})]
    for _ in range(5):
        n = int(rng.integers(1, 500))
        cases.append(((int(rng.integers(0, n + 1)), n), {}))
    return cases


register(Exercise(
    key="00.wilson_interval",
    title="the Wilson score interval for a rate",
    reference=basics.wilson_interval,
    make_cases=_wilson_cases,
    difficulty=2, importance="core", minutes=15,
))
