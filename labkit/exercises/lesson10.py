"""Exercises of lesson 10 (multi-stakeholder alignment: social choice)."""
import numpy as np

from labkit import social_choice
from labkit.exercises import Exercise, register


def _borda_cases(rng: np.random.Generator):
    cases = [
        ((np.array([[0, 1, 2]]),), {}),
        ((np.array([[0, 1, 2], [1, 2, 0], [2, 0, 1]]),), {}),   # Condorcet cycle: a three-way tie
        ((np.array([[1, 0], [1, 0], [0, 1]]),), {}),
        ((np.array([[0]]),), {}),
        ((np.array([[0, 0, 1]]),), {}),                          # not a permutation: ValueError
    ]
    for _ in range(6):
        n, m = int(rng.integers(1, 9)), int(rng.integers(2, 7))
        cases.append(((np.array([rng.permutation(m) for _ in range(n)]),), {}))
    return cases


register(Exercise(
    key="10.borda_scores",
    title="Borda points from voters' rankings",
    reference=social_choice.borda_scores,
    make_cases=_borda_cases,
    difficulty=1, importance="core", minutes=10,
))


def _pareto_cases(rng: np.random.Generator):
    cases = [
        ((np.array([[1.0, 2.0, 3.0]]),), {}),                   # one stakeholder: only the best survives
        ((np.array([[1.0, 1.0], [2.0, 2.0]]),), {}),            # identical options: neither dominates
        ((np.array([[1.0, 2.0], [2.0, 1.0]]),), {}),            # a trade-off: both survive
        ((np.array([[1.0, 2.0], [2.0, 2.0]]),), {}),            # weak dominance counts
        ((np.array([[0.5]]),), {}),
    ]
    for _ in range(6):
        n, m = int(rng.integers(1, 5)), int(rng.integers(2, 9))
        cases.append(((rng.integers(0, 4, size=(n, m)).astype(float),), {}))
    return cases


register(Exercise(
    key="10.pareto_front",
    title="the options no other option Pareto-dominates",
    reference=social_choice.pareto_front,
    make_cases=_pareto_cases,
    difficulty=2, importance="core", minutes=15,
))
