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


def _small_cmdp(rng: np.random.Generator, n_states: int, n_actions: int):
    P = rng.dirichlet(np.ones(n_states), size=(n_states, n_actions))
    reward, cost = rng.uniform(0, 1, n_states), rng.uniform(0, 1, n_states)
    start = rng.dirichlet(np.ones(n_states))
    return P, reward, cost, start


def _primal_dual_cases(rng: np.random.Generator):
    P, r, c, start = _small_cmdp(np.random.default_rng(7), 3, 2)
    cases = [
        ((P, r, c, start, 0.9, 10.0), {"lr": 0.5, "steps": 5, "temperature": 0.1}),   # never binding: lambda stays 0
        ((P, r, c, start, 0.9, 0.0), {"lr": 0.5, "steps": 6, "temperature": 0.1}),    # zero budget: lambda keeps growing
        ((P, r, c, start, 0.9, 2.0), {"lr": 0.0, "steps": 3, "temperature": 0.1}),    # lr must be > 0: ValueError
    ]
    for _ in range(3):
        n_states, n_actions = int(rng.integers(2, 5)), int(rng.integers(2, 4))
        P, r, c, start = _small_cmdp(rng, n_states, n_actions)
        gamma = float(rng.uniform(0.5, 0.9))
        budget = float(rng.uniform(0.2, 0.8)) * float(c.max()) / (1 - gamma)
        cases.append(((P, r, c, start, gamma, budget),
                      {"lr": float(rng.uniform(0.05, 1.0)), "steps": int(rng.integers(3, 12)), "temperature": 0.1}))
    return cases


register(Exercise(
    key="07.primal_dual",
    title="the Lagrangian primal-dual loop for a constrained MDP",
    reference=constrained.lagrangian_primal_dual,
    make_cases=_primal_dual_cases,
    difficulty=3, importance="core", minutes=25,
    rtol=1e-4, atol=1e-5,
))
