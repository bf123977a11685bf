"""Exercises of lesson 11 (continual learning)."""
import numpy as np
import torch

from labkit import continual
from labkit.exercises import Exercise, register


def _tensors(rng: np.random.Generator, shapes, positive=False):
    out = []
    for shape in shapes:
        v = rng.normal(size=shape)
        out.append(torch.tensor(np.abs(v) if positive else v, dtype=torch.float64))
    return out


def _ewc_cases(rng: np.random.Generator):
    shapes = [(3, 2), (3,)]
    p = _tensors(rng, shapes)
    f = _tensors(rng, shapes, positive=True)
    cases = [
        ((p, [t.clone() for t in p], f, 10.0), {}),                          # at the anchor: exactly 0
        ((p, _tensors(rng, shapes), f, 0.0), {}),                            # lambda = 0 switches it off
        (([torch.tensor([2.0])], [torch.tensor([0.0])], [torch.tensor([3.0])], 1.0), {}),  # 0.5 * 3 * 4 = 6
        ((p, _tensors(rng, shapes), f, -1.0), {}),                           # must raise ValueError
        ((p, _tensors(rng, shapes)[:1], f, 1.0), {}),                        # lengths differ: ValueError
    ]
    for _ in range(5):
        shapes = [tuple(int(s) for s in rng.integers(1, 5, size=int(rng.integers(1, 3)))) for _ in range(int(rng.integers(1, 4)))]
        cases.append(((_tensors(rng, shapes), _tensors(rng, shapes), _tensors(rng, shapes, positive=True), float(rng.uniform(0, 50))), {}))
    return cases


register(Exercise(
    key="11.ewc_penalty",
    title="the EWC penalty with a stored anchor (Kirkpatrick et al. 2017, eq. 3)",
    reference=continual.ewc_penalty,
    make_cases=_ewc_cases,
    difficulty=1, importance="core", minutes=10,
))


def _fisher_cases(rng: np.random.Generator):
    cases = [
        ((np.zeros((4, 3)), rng.normal(size=(2, 3))), {}),                   # x = 0: no information
        ((rng.normal(size=(5, 3)), np.zeros((4, 3))), {}),                   # uniform p: p(1-p) = 3/16
        ((np.array([[1.0, 2.0]]), np.array([[1000.0, 0.0], [0.0, 0.0]])), {}),  # saturated: needs a stable softmax
        ((np.ones((3, 2)), np.ones((2, 3))), {}),                            # shape mismatch: ValueError
    ]
    for _ in range(5):
        n, d, k = (int(v) for v in rng.integers(1, 8, size=3))
        cases.append(((rng.normal(size=(n, d)), rng.normal(0, 2, size=(k + 1, d))), {}))
    return cases


register(Exercise(
    key="11.softmax_regression_fisher",
    title="the diagonal Fisher of softmax regression in closed form",
    reference=continual.softmax_regression_fisher,
    make_cases=_fisher_cases,
    difficulty=2, importance="practice", minutes=20,
))
