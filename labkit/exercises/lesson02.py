"""Exercises of lesson 02 (why alignment matters: specification gaming)."""
import numpy as np

from labkit import gridworld
from labkit.exercises import Exercise, register


def _random_mdp(rng: np.random.Generator, S: int, A: int):
    P = rng.dirichlet(np.full(S, 0.5), size=(S, A))
    return P, rng.normal(0, 1, S)


def _policy_evaluation_cases(rng: np.random.Generator):
    world = gridworld.GridWorld.from_layout(["S.G", ".#."])
    r = world.reward_from_types({"G": 1.0})
    stay = np.zeros((world.n_states, world.n_actions))
    stay[:, 4] = 1.0
    uniform = np.full((world.n_states, world.n_actions), 1 / world.n_actions)
    cases = [
        ((world.P, r, stay, 0.9), {}),              # staying put: V = r / (1 - gamma)
        ((world.P, r, uniform, 0.5), {}),
        ((world.P, r, uniform, 0.0), {}),           # gamma 0: V = r
        ((world.P, r, uniform, 1.0), {}),           # gamma 1 has no unique solution: ValueError
    ]
    for _ in range(4):
        S, A = int(rng.integers(2, 7)), int(rng.integers(1, 4))
        P, r = _random_mdp(rng, S, A)
        cases.append(((P, r, rng.dirichlet(np.ones(A), size=S), float(rng.uniform(0, 0.95))), {}))
    return cases


register(Exercise(
    key="02.policy_evaluation",
    title="exact policy evaluation by one linear solve",
    reference=gridworld.policy_evaluation,
    make_cases=_policy_evaluation_cases,
    difficulty=2, importance="core", minutes=15,
))


def _bellman_cases(rng: np.random.Generator):
    world = gridworld.GridWorld.from_layout(["S.G"])
    r = world.reward_from_types({"G": 1.0})
    cases = [
        ((world.P, r, np.zeros(3), 0.9), {}),              # first backup: V = r
        ((world.P, r, np.array([0.0, 0.0, 10.0]), 0.9), {}),
        ((world.P, r, np.zeros(3), 1.5), {}),              # gamma out of range: ValueError
    ]
    for _ in range(4):
        S, A = int(rng.integers(2, 7)), int(rng.integers(1, 4))
        P, r = _random_mdp(rng, S, A)
        cases.append(((P, r, rng.normal(0, 3, S), float(rng.uniform(0, 0.99))), {}))
    return cases


register(Exercise(
    key="02.bellman_backup",
    title="one Bellman optimality backup (returns V_new and Q)",
    reference=gridworld.bellman_backup,
    make_cases=_bellman_cases,
    difficulty=1, importance="core", minutes=10,
))
