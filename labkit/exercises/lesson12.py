"""Exercises of lesson 12 (ethical decision-making: MCDA)."""
import numpy as np

from labkit import mcda
from labkit.exercises import Exercise, register


def _minmax_cases(rng: np.random.Generator):
    cases = [
        ((np.array([[0.0, 1.0], [1.0, 3.0]]),), {}),
        ((np.array([[0.2, 0.5], [0.2, 0.7], [0.2, 0.6]]),), {}),   # a constant column becomes 0
        ((np.array([[5.0, -1.0, 2.0]]),), {}),                     # one action: every column constant
        ((np.array([[1.0], [0.0], [0.5]]),), {}),
        ((np.array([[np.nan, 1.0], [0.0, 2.0]]),), {}),            # NaN: ValueError
    ]
    for _ in range(6):
        n, m = int(rng.integers(2, 7)), int(rng.integers(1, 5))
        cases.append(((rng.uniform(-2, 2, size=(n, m)),), {}))
    return cases


register(Exercise(
    key="12.minmax_normalise",
    title="min-max normalisation of a decision matrix",
    reference=mcda.minmax_normalise,
    make_cases=_minmax_cases,
    difficulty=1, importance="core", minutes=10,
))


def _lex_cases(rng: np.random.Generator):
    s = np.array([[0.8, 0.8, 0.6], [0.6, 0.9, 0.9], [1.0, 0.3, 0.7], [0.4, 1.0, 0.5]])
    ties = np.array([[0.5, 0.2], [0.5, 0.9], [0.4, 1.0]])
    cases = [
        ((s, [0, 1, 2]), {}),
        ((s, [1, 0, 2]), {}),
        ((s, [2]), {}),
        ((ties, [0, 1]), {}),                         # tie on the first criterion, broken by the second
        ((ties, [0]), {}),                            # tie survives: lowest index
        ((ties, [0, 1]), {"tol": 0.15}),              # within tolerance counts as a tie
        ((s, [0, 0]), {}),                            # repeated criterion: ValueError
        ((s, [3]), {}),                               # no such criterion: ValueError
    ]
    for _ in range(6):
        n, m = int(rng.integers(2, 7)), int(rng.integers(1, 5))
        scores = rng.integers(0, 3, size=(n, m)).astype(float)   # small integers: many ties
        cases.append(((scores, [int(k) for k in rng.permutation(m)]), {}))
    return cases


register(Exercise(
    key="12.lexicographic_choice",
    title="choose by a strict priority order of principles",
    reference=mcda.lexicographic_choice,
    make_cases=_lex_cases,
    difficulty=2, importance="core", minutes=15,
))
