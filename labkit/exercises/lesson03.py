"""Exercises of lesson 03 (key challenges: calibration, abstention, OOD detection)."""
import numpy as np

from labkit import calibration
from labkit.exercises import Exercise, register


def _random_probs(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    z = rng.normal(0, 2.5, size=(n, k))
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _ece_cases(rng: np.random.Generator):
    one_hot = np.eye(3)[[0, 1, 2, 0]]
    cases = [
        ((one_hot, np.array([0, 1, 2, 0])), {}),                        # confident and right: ECE 0
        ((one_hot, np.array([1, 1, 2, 0])), {}),                        # one confident mistake: 0.25
        ((np.array([[0.6, 0.4], [0.6, 0.4], [0.9, 0.1], [0.2, 0.8]]), np.array([0, 1, 0, 1])), {"n_bins": 5}),
        ((np.array([[0.5, 0.5], [0.5, 0.5]]), np.array([0, 1])), {"n_bins": 2}),   # 0.5 sits in bin (0, 0.5]
        # confidences exactly on bin edges: B_m = ((m-1)/M, m/M] puts 0.5 alone in the first bin
        # and 0.75 with 0.6; [b/M, (b+1)/M) would put 0.5 with 0.6 and 0.75 alone
        ((np.array([[0.5, 0.5], [0.6, 0.4], [0.75, 0.25]]), np.array([0, 1, 1])), {"n_bins": 2}),
        ((np.array([[0.25, 0.25, 0.5], [0.5, 0.3, 0.2], [0.75, 0.25, 0.0], [0.8, 0.2, 0.0]]), np.array([2, 0, 0, 1])),
         {"n_bins": 4}),
        ((np.array([[0.7, 0.3]]), np.array([0])), {"n_bins": 10}),      # one sample: ECE = |1 - 0.7|
        ((np.array([[0.7, 0.3]]), np.array([2])), {}),                  # label out of range: ValueError
    ]
    for _ in range(5):
        n, k = int(rng.integers(5, 60)), int(rng.integers(2, 6))
        cases.append(((_random_probs(rng, n, k), rng.integers(0, k, size=n)), {"n_bins": int(rng.integers(1, 20))}))
    return cases


register(Exercise(
    key="03.expected_calibration_error",
    title="expected calibration error with equal-width bins (Guo et al. 2017, eq. 3)",
    reference=calibration.expected_calibration_error,
    make_cases=_ece_cases,
    difficulty=2, importance="core", minutes=20,
))


def _auroc_cases(rng: np.random.Generator):
    cases = [
        ((np.array([0.9, 0.8]), np.array([0.1, 0.2])), {}),            # perfect separation: 1
        ((np.array([0.1]), np.array([0.9])), {}),                       # perfectly wrong: 0
        ((np.array([0.5, 0.5]), np.array([0.5])), {}),                  # all tied: 0.5
        ((np.array([0.9, 0.4, 0.6]), np.array([0.5, 0.6])), {}),        # a tie counts one half
        ((np.array([]), np.array([0.5])), {}),                          # no positives: ValueError
    ]
    for _ in range(5):
        n, m = int(rng.integers(1, 40)), int(rng.integers(1, 40))
        # rounded scores so that ties occur
        cases.append(((np.round(rng.uniform(0, 1, n) + 0.2, 1), np.round(rng.uniform(0, 1, m), 1)), {}))
    return cases


register(Exercise(
    key="03.auroc",
    title="AUROC as the probability that a positive outscores a negative",
    reference=calibration.auroc,
    make_cases=_auroc_cases,
    difficulty=2, importance="core", minutes=15,
))


def _selective_cases(rng: np.random.Generator):
    cases = [
        ((np.array([0.9, 0.8, 0.3]), np.array([True, False, True]), 0.5), {}),
        ((np.array([0.9, 0.8, 0.3]), np.array([True, False, True]), 0.95), {}),   # answer nothing: (0, 0)
        ((np.array([0.9, 0.8, 0.3]), np.array([True, False, True]), 0.0), {}),    # answer everything
        ((np.array([0.5, 0.5]), np.array([False, True]), 0.5), {}),                # >= threshold answers
        ((np.array([0.9]), np.array([True]), 1.5), {}),                             # bad threshold: ValueError
    ]
    for _ in range(5):
        n = int(rng.integers(1, 50))
        cases.append(((rng.uniform(0, 1, n), rng.uniform(0, 1, n) < 0.7, float(rng.uniform(0, 1))), {}))
    return cases


register(Exercise(
    key="03.selective_risk",
    title="coverage and risk of a model that abstains below a confidence threshold",
    reference=calibration.selective_risk,
    make_cases=_selective_cases,
    difficulty=1, importance="core", minutes=10,
))
