"""Exercises of lesson 06 (maximum-entropy inverse RL)."""
import numpy as np

from labkit import gridworld, irl
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


def _ascent_cases(rng: np.random.Generator):
    world = gridworld.GridWorld.from_layout(["S.G", ".L."])
    phi = world.features()
    start = world.start_distribution()
    expert = irl.expert_policy(world, world.reward_from_types({"G": 1.0, "L": -1.0}), 0.8, 0.5)
    mu = phi.T @ gridworld.discounted_occupancy(world.P, expert, start, 0.8)
    cases = [
        ((world.P, phi, mu, start, 0.8), {"lr": 0.5, "steps": 1}),        # one step from 0: lr * gradient
        ((world.P, phi, mu, start, 0.8), {"lr": 0.5, "steps": 20}),
        ((world.P, phi, mu, start, 0.8), {"lr": 0.5, "steps": 20, "l2": 0.1}),
        ((world.P, phi, mu, start, 0.8), {"lr": 0.0, "steps": 5}),        # lr must be > 0: ValueError
    ]
    for _ in range(3):
        S, A, K = int(rng.integers(2, 6)), int(rng.integers(2, 4)), int(rng.integers(1, 4))
        P, _ = _random_mdp(rng, S, A)
        features = rng.uniform(0, 1, size=(S, K))
        start_r = rng.dirichlet(np.ones(S))
        gamma = float(rng.uniform(0.5, 0.9))
        demo = rng.dirichlet(np.ones(A), size=S)
        mu_r = features.T @ gridworld.discounted_occupancy(P, demo, start_r, gamma)
        cases.append(((P, features, mu_r, start_r, gamma), {"lr": float(rng.uniform(0.05, 0.3)), "steps": int(rng.integers(2, 15))}))
    return cases


register(Exercise(
    key="06.maxent_gradient_ascent",
    title="the MaxEnt IRL loop: backward pass, forward pass, gradient step",
    reference=irl.maxent_gradient_ascent,
    make_cases=_ascent_cases,
    difficulty=3, importance="core", minutes=25,
    rtol=1e-4, atol=1e-6,
))
