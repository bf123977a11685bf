"""Exercises of lesson 07 (constrained optimisation)."""
import numpy as np

from labkit import constrained
from labkit.exercises import Exercise, register


def _kkt_cases(rng: np.random.Generator):
    cases = [
        # min (x-0.8)^2 + (y-0.6)^2 s.t. x + y <= 1 at its optimum (0.6, 0.4) with lambda 0.4
        ((np.array([-0.4, -0.4]), np.array([[1.0, 1.0]]), np.array([0.0]), np.array([0.4])), {}),
        # same point, wrong multiplier sign and a violated constraint
        ((np.array([-0.4, -0.4]), np.array([[1.0, 1.0]]), np.array([0.25]), np.array([-0.4])), {}),
        ((np.array([1.0, 2.0]), np.zeros((0, 2)), np.zeros(0), np.zeros(0)), {}),    # unconstrained
        ((np.array([1.0, 2.0]), np.array([[1.0, 1.0]]), np.array([0.0]), np.array([0.1, 0.2])), {}),  # ValueError
    ]
    for _ in range(4):
        n, m = int(rng.integers(1, 5)), int(rng.integers(1, 4))
        cases.append(((rng.normal(size=n), rng.normal(size=(m, n)), rng.normal(size=m), rng.normal(size=m)), {}))
    return cases


register(Exercise(
    key="07.kkt_residuals",
    title="the four KKT residuals of a candidate (x, lambda)",
    reference=constrained.kkt_residuals,
    make_cases=_kkt_cases,
    difficulty=2, importance="core", minutes=15,
))


def _dual_cases(rng: np.random.Generator):
    cases = [
        ((0.0, 0.5, 1.0, 0.1), {}),     # constraint satisfied at lambda 0: stays 0 (projection)
        ((0.3, 2.0, 1.0, 0.1), {}),     # violated: lambda grows
        ((0.05, 0.0, 1.0, 0.1), {}),    # slack: lambda shrinks but not below 0
        ((-1.0, 0.5, 1.0, 0.1), {}),    # negative multiplier: ValueError
        ((0.1, 0.5, 1.0, 0.0), {}),     # zero learning rate: ValueError
    ]
    for _ in range(5):
        cases.append(((float(rng.uniform(0, 3)), float(rng.uniform(0, 3)), float(rng.uniform(0, 3)),
                       float(rng.uniform(0.01, 1))), {}))
    return cases


register(Exercise(
    key="07.dual_update",
    title="projected gradient ascent on the Lagrange multiplier",
    reference=constrained.dual_update,
    make_cases=_dual_cases,
    difficulty=1, importance="core", minutes=10,
))
