"""Exercises of lesson 06 (maximum-entropy inverse RL)."""
import numpy as np

from labkit import gridworld
from labkit.exercises import Exercise, register


def _random_mdp(rng: np.random.Generator, S: int, A: int):
    P = rng.dirichlet(np.full(S, 0.5), size=(S, A))
    return P, rng.normal(0, 1, S)


def _soft_backup_cases(rng: np.random.Generator):
    world = gridworld.GridWorld.from_layout(["S.G"])
    r = world.reward_from_types({"G": 1.0})
    cases = [
        ((world.P, r, np.zeros(3), 0.9), {}),
        ((world.P, r, np.array([1000.0, 0.0, -1000.0]), 0.9), {}),   # overflows a naive exp
        ((world.P, r, np.zeros(3), 0.9), {"temperature": 0.1}),
        ((world.P, r, np.zeros(3), 0.9), {"temperature": 0.0}),      # ValueError
    ]
    for _ in range(4):
        S, A = int(rng.integers(2, 7)), int(rng.integers(1, 4))
        P, r = _random_mdp(rng, S, A)
        cases.append(((P, r, rng.normal(0, 3, S), float(rng.uniform(0, 0.99))),
                      {"temperature": float(rng.uniform(0.2, 2.0))}))
    return cases


register(Exercise(
    key="06.soft_bellman_backup",
    title="one soft Bellman backup with a stable log-sum-exp (returns V_new and Q)",
    reference=gridworld.soft_bellman_backup,
    make_cases=_soft_backup_cases,
    difficulty=2, importance="core", minutes=15,
))


def _visitation_cases(rng: np.random.Generator):
    world = gridworld.GridWorld.from_layout(["S.G"])
    right = np.zeros((3, 5))
    right[:, 3] = 1.0
    start = np.array([1.0, 0.0, 0.0])
    cases = [
        ((world.P, right, start, 1.0, 3), {}),      # one visit to each cell
        ((world.P, right, start, 0.5, 4), {}),
        ((world.P, np.full((3, 5), 0.2), start, 0.9, 1), {}),
        ((world.P, right, start, 0.9, 0), {}),      # horizon 0: ValueError
    ]
    for _ in range(4):
        S, A = int(rng.integers(2, 7)), int(rng.integers(1, 4))
        P, _ = _random_mdp(rng, S, A)
        cases.append(((P, rng.dirichlet(np.ones(A), size=S), rng.dirichlet(np.ones(S)),
                       float(rng.uniform(0.5, 1.0)), int(rng.integers(1, 20))), {}))
    return cases


register(Exercise(
    key="06.state_visitation",
    title="expected discounted state visitation (the forward pass)",
    reference=gridworld.state_visitation,
    make_cases=_visitation_cases,
    difficulty=2, importance="core", minutes=15,
))
