"""Exercises of lesson 19 (bias in language models)."""
import numpy as np

from labkit import bias
from labkit.exercises import Exercise, register


def _contrast_cases(rng: np.random.Generator):
    cases = [
        ((np.array([[1.0, -1.0]]), np.array([1.0, -1.0])), {}),            # one he job, one she job
        ((np.array([[2.0, 2.0, 2.0]]), np.array([1.0, 1.0, -1.0])), {}),   # a lean to "he" everywhere cancels
        ((np.array([[3.0, 1.0, 0.0], [0.5, 0.5, -2.0]]), np.array([1.0, 1.0, -1.0])), {}),  # unequal group sizes
        ((np.array([[1.0, 2.0]]), np.array([1.0, 1.0])), {}),              # must raise ValueError: no "she" job
    ]
    for _ in range(6):
        n_jobs = int(rng.integers(2, 9))
        signs = np.where(np.arange(n_jobs) < int(rng.integers(1, n_jobs)), 1.0, -1.0)
        rng.shuffle(signs)
        cases.append(((rng.normal(0.5, 1.5, size=(int(rng.integers(1, 6)), n_jobs)), signs), {}))
    return cases


register(Exercise(
    key="19.stereotype_contrast",
    title="a signed, per-template stereotype contrast of log-probability gaps",
    reference=bias.stereotype_contrast,
    make_cases=_contrast_cases,
    difficulty=1, importance="core", minutes=10,
))


def _bootstrap_cases(rng: np.random.Generator):
    cases = [
        ((np.array([1.0, 1.0, 1.0]),), {"n_boot": 50}),                       # no spread: a point interval
        ((np.array([0.0, 1.0]),), {"n_boot": 200, "seed": 3}),
        ((np.array([0.2, -0.4, 1.3, 0.8, 0.1]),), {"n_boot": 500, "confidence": 0.9, "seed": 1}),
        ((np.array([1.0]),), {}),                                             # must raise ValueError: one value
        ((np.array([0.0, 1.0]),), {"confidence": 1.0}),                       # must raise ValueError
    ]
    for i in range(5):
        values = rng.normal(0.0, 1.0, size=int(rng.integers(3, 15)))
        cases.append(((values,), {"n_boot": int(rng.integers(100, 1000)), "seed": i}))
    return cases


register(Exercise(
    key="19.bootstrap_interval",
    title="a percentile-bootstrap interval over templates",
    reference=bias.bootstrap_interval,
    make_cases=_bootstrap_cases,
    difficulty=2, importance="core", minutes=15,
))


def false_positive_rate_by_group(scores, labels, groups, threshold=0.5):
    """``{group: false-positive rate}`` from :func:`labkit.bias.false_positive_rates`."""
    return bias.false_positive_rates(scores, labels, groups, threshold)["fpr"].to_dict()


def _fpr_cases(rng: np.random.Generator):
    cases = [
        (([0.9, 0.2, 0.6, 0.4], [0, 0, 0, 0], ["a", "a", "b", "b"]), {}),
        (([0.9, 0.2, 0.6, 0.4], [1, 0, 1, 0], ["a", "a", "b", "b"]), {}),       # positives do not count
        (([0.5, 0.49, 0.5], [0, 0, 0], ["x", "x", "y"]), {"threshold": 0.5}),   # a score at the threshold is flagged
        (([0.9, 0.1], [1, 0], ["only-positive", "g"]), {}),                   # a group without negatives is left out
        (([0.1, 0.2], [0, 2], ["a", "b"]), {}),                               # must raise ValueError: label 2
    ]
    for _ in range(5):
        n = int(rng.integers(10, 60))
        groups = [str(g) for g in rng.choice(["muslim", "women", "gay people", "black people"], size=n)]
        cases.append(((rng.random(n).round(2).tolist(), rng.integers(0, 2, size=n).tolist(), groups),
                      {"threshold": float(rng.choice([0.3, 0.5, 0.7]))}))
    return cases


register(Exercise(
    key="19.false_positive_rates",
    title="per-group false-positive rates (unintended bias)",
    reference=false_positive_rate_by_group,
    make_cases=_fpr_cases,
    difficulty=1, importance="practice", minutes=10,
))
