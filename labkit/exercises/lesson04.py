"""Exercises of lesson 04 (ethics made measurable: fairness metrics)."""
import numpy as np

from labkit import fairness
from labkit.exercises import Exercise, register

# A small table: group 0 selects 3 of 4, group 1 selects 1 of 4.
Y_TRUE = np.array([1, 1, 0, 0, 1, 1, 0, 0])
Y_PRED = np.array([1, 1, 1, 0, 1, 0, 0, 0])
GROUP = np.array([0, 0, 0, 0, 1, 1, 1, 1])


def _random_table(rng: np.random.Generator, n: int, n_groups: int):
    group = np.r_[np.arange(n_groups), rng.integers(0, n_groups, n - n_groups)]
    # each group gets at least one positive and one negative so that TPR/FPR exist
    y_true = rng.integers(0, 2, n)
    for k in range(n_groups):
        idx = np.flatnonzero(group == k)
        if len(idx) < 2:
            group = np.r_[group, k, k]
            y_true = np.r_[y_true, 0, 1]
        else:
            y_true[idx[0]], y_true[idx[1]] = 0, 1
    y_pred = (rng.uniform(size=len(group)) < 0.5).astype(int)
    return y_true, y_pred, group


def _dp_cases(rng: np.random.Generator):
    cases = [
        ((Y_PRED, GROUP), {}),                                   # 3/4 - 1/4 = 0.5
        ((np.ones(6, int), np.array([0, 0, 1, 1, 2, 2])), {}),   # everyone selected: 0
        ((np.array([1, 0, 0, 1, 1, 1]), np.array([2, 2, 5, 5, 9, 9])), {}),  # labels need not be 0..k
        ((np.array([1, 0, 1]), np.array([0, 0, 0])), {}),       # one group only: ValueError
    ]
    for _ in range(5):
        _, y_pred, group = _random_table(rng, int(rng.integers(6, 60)), int(rng.integers(2, 4)))
        cases.append(((y_pred, group), {}))
    return cases


register(Exercise(
    key="04.demographic_parity_difference",
    title="demographic parity difference: the gap in selection rates",
    reference=fairness.demographic_parity_difference,
    make_cases=_dp_cases,
    difficulty=1, importance="core", minutes=10,
))


def _eo_cases(rng: np.random.Generator):
    cases = [
        ((Y_TRUE, Y_PRED, GROUP), {}),                           # TPR gap 0.5, FPR gap 0.5
        ((Y_TRUE, Y_TRUE, GROUP), {}),                           # perfect predictions: 0
        ((np.array([1, 0, 1, 0]), np.array([1, 1, 0, 0]), np.array([0, 0, 1, 1])), {}),  # TPR gap 1
        ((np.array([1, 1, 1, 0]), np.array([1, 0, 1, 0]), np.array([0, 0, 1, 1])), {}),  # group 0 has no negatives: ValueError
    ]
    for _ in range(5):
        cases.append((_random_table(rng, int(rng.integers(6, 60)), int(rng.integers(2, 4))), {}))
    return cases


register(Exercise(
    key="04.equalized_odds_difference",
    title="equalized odds difference: the larger of the TPR and FPR gaps",
    reference=fairness.equalized_odds_difference,
    make_cases=_eo_cases,
    difficulty=2, importance="core", minutes=15,
))


def _reweighing_cases(rng: np.random.Generator):
    cases = [
        ((Y_TRUE, GROUP), {}),                                         # independent already: all 1
        ((np.array([1, 1, 1, 0, 1, 0, 0, 0]), GROUP), {}),             # 3/4 vs 1/4 positives
        ((np.array([1, 1, 0]), np.array([0, 0, 1])), {}),              # cells (0,0) and (1,1) empty
        ((np.array([1, 2, 0]), np.array([0, 1, 1])), {}),              # label 2: ValueError
    ]
    for _ in range(5):
        y_true, _, group = _random_table(rng, int(rng.integers(6, 60)), int(rng.integers(2, 4)))
        cases.append(((y_true, group), {}))
    return cases


register(Exercise(
    key="04.reweighing_weights",
    title="Kamiran-Calders reweighing: w = P(g) P(y) / P(g, y)",
    reference=fairness.reweighing_weights,
    make_cases=_reweighing_cases,
    difficulty=2, importance="practice", minutes=15,
))
