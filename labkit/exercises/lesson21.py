"""Exercises of lesson 21 (membership inference, memorisation and model extraction)."""
import numpy as np

from labkit import leakage
from labkit.exercises import Exercise, register


def _loss_roc_cases(rng: np.random.Generator):
    cases = [
        (([0.1, 0.2, 3.0, 4.0], [True, True, False, False]), {}),      # perfect attack: AUC 1
        (([3.0, 4.0, 0.1, 0.2], [True, True, False, False]), {}),      # members have the *higher* loss: AUC 0
        (([0.5, 0.5, 0.5, 0.5], [True, False, True, False]), {}),      # all tied: one step from (0, 0) to (1, 1)
        (([0.0, 0.0, 1.0, 1.0, 2.0], [True, False, True, True, False]), {}),  # ties across the classes
        (([0.1, 0.2], [True, True]), {}),                              # one class only: ValueError
        (([0.1, 0.2, 0.3], [True, False]), {}),                        # lengths differ: ValueError
    ]
    for _ in range(6):
        n = int(rng.integers(6, 40))
        member = rng.random(n) < 0.5
        member[:2] = [True, False]
        losses = np.round(rng.exponential(1.0, size=n) * (1 - 0.5 * member), 1)  # rounded: ties
        cases.append(((losses.tolist(), member.tolist()), {}))
    return cases


register(Exercise(
    key="21.loss_threshold_roc",
    title="the ROC curve of the loss-threshold attack, ties and all",
    reference=leakage.loss_threshold_roc,
    make_cases=_loss_roc_cases,
    difficulty=2, importance="core", minutes=20,
))


def _exposure_cases(rng: np.random.Generator):
    cases = [
        ((0.1, [0.5, 1.0, 2.0]), {}),          # lowest loss: log2(4) = 2 bits
        ((9.0, [0.5, 1.0, 2.0]), {}),          # highest: 0 bits
        ((1.0, [0.5, 1.0, 2.0]), {}),          # a tie ranks ahead of the canary: rank 3
        ((1.0, [1.0, 1.0, 1.0]), {}),          # all tied: last
        ((2.5, [7.0]), {}),                     # two candidates: 1 bit
        ((1.0, []), {}),                        # no references: ValueError
    ]
    for _ in range(6):
        refs = np.round(rng.normal(10.0, 2.0, size=int(rng.integers(5, 300))), 1)
        canary = float(rng.choice(refs)) if rng.random() < 0.5 else float(np.round(rng.normal(8.0, 2.0), 1))
        cases.append(((canary, refs.tolist()), {}))
    return cases


register(Exercise(
    key="21.exposure",
    title="a canary's exposure from its rank among reference losses",
    reference=leakage.exposure,
    make_cases=_exposure_cases,
    difficulty=1, importance="core", minutes=10,
))
