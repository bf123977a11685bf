"""Exercises of lesson 08 (interpretability)."""
import numpy as np
import torch
from torch import nn

from labkit import interpret
from labkit.exercises import Exercise, register


def _quadrature_cases(rng: np.random.Generator):
    cases = [((1, "riemann_left"), {}), ((1, "riemann_middle"), {}), ((2, "riemann_trapezoid"), {}),
             ((1, "riemann_trapezoid"), {}),       # needs 2 nodes: ValueError
             ((5, "simpson"), {}),                 # unknown method: ValueError
             ((0, "riemann_right"), {})]           # no nodes: ValueError
    for method in interpret.IG_METHODS:
        cases.append(((int(rng.integers(2, 12)), method), {}))
    return cases


register(Exercise(
    key="08.quadrature",
    title="nodes and weights of the integrated-gradients path integral",
    reference=interpret.quadrature,
    make_cases=_quadrature_cases,
    difficulty=1, importance="core", minutes=15,
))


def _reference_ig(model, x, baseline, target, steps, method):
    return interpret.integrated_gradients(model, x, baseline=baseline, target=target, steps=steps, method=method)


def _mlp(rng: np.random.Generator, d: int, k: int) -> nn.Module:
    torch.manual_seed(int(rng.integers(0, 2**31)))
    return nn.Sequential(nn.Linear(d, 6), nn.Tanh(), nn.Linear(6, k)).double()


def _ig_cases(rng: np.random.Generator):
    lin = nn.Linear(3, 2).double()
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, -2.0, 0.5], [0.0, 1.0, 1.0]]))
        lin.bias.zero_()
    x = torch.tensor([[1.0, 1.0, 2.0]], dtype=torch.float64)
    cases = [
        ((lin, x, None, 0, 4, "riemann_left"), {}),                    # linear model: IG = w * x exactly
        ((lin, x, x.clone(), 1, 4, "gausslegendre"), {}),              # baseline = input: all zero
    ]
    for method in interpret.IG_METHODS:
        d, k, n = 4, 3, int(rng.integers(1, 4))
        xb = torch.tensor(rng.normal(size=(n, d)))
        base = torch.tensor(rng.normal(size=(n, d))) if rng.random() < 0.5 else None
        cases.append(((_mlp(rng, d, k), xb, base, int(rng.integers(0, k)), int(rng.integers(2, 20)), method), {}))
    return cases


register(Exercise(
    key="08.integrated_gradients",
    title="integrated gradients with a chosen quadrature (Sundararajan et al. 2017, eq. 1)",
    reference=_reference_ig,
    make_cases=_ig_cases,
    difficulty=3, importance="core", minutes=30,
))
