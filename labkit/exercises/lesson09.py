"""Exercises of lesson 09 (adversarial robustness)."""
import numpy as np
import torch
from torch import nn

from labkit import robustness
from labkit.exercises import Exercise, register


def _tensor(rng: np.random.Generator, *shape: int, low: float = 0.0, high: float = 1.0) -> torch.Tensor:
    return torch.tensor(rng.uniform(low, high, size=shape), dtype=torch.float32)


def _model(rng: np.random.Generator, n_in: int, n_out: int, hidden: int | None = None) -> nn.Sequential:
    """A small MLP whose weights come from ``rng`` (so the cases are reproducible)."""
    sizes = [n_in, n_out] if hidden is None else [n_in, hidden, n_out]
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layer = nn.Linear(a, b)
        with torch.no_grad():
            layer.weight.copy_(torch.tensor(rng.normal(0, 1, size=(b, a)), dtype=torch.float32))
            layer.bias.copy_(torch.tensor(rng.normal(0, 0.5, size=b), dtype=torch.float32))
        layers.append(layer)
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _project_cases(rng: np.random.Generator):
    x = torch.tensor([[0.5, 0.0, 1.0, 0.95]])
    cases = [
        ((x.clone(), x.clone(), 0.1), {}),                                   # already inside
        ((torch.tensor([[0.9, -0.5, 1.4, 0.5]]), x.clone(), 0.1), {}),       # every coordinate clipped
        ((torch.tensor([[0.9, -0.5, 1.4, 0.5]]), x.clone(), 0.1), {"clamp": None}),
        ((torch.tensor([[0.9, -0.5, 1.4, 0.5]]), x.clone(), 0.0), {}),       # eps = 0 returns x
        ((x.clone(), x.clone(), -0.1), {}),                                  # must raise ValueError
    ]
    for _ in range(4):
        x = _tensor(rng, 5, 8)
        eps = float(rng.uniform(0.01, 0.5))
        cases.append(((x + _tensor(rng, 5, 8, low=-1.0, high=1.0), x, eps), {}))
    return cases


register(Exercise(
    key="09.project_linf",
    title="project onto the L∞ ball and the valid pixel range",
    reference=robustness.project_linf,
    make_cases=_project_cases,
    difficulty=1, importance="core", minutes=10,
))


def _fgsm_cases(rng: np.random.Generator):
    x = torch.tensor([[0.5, 0.5], [0.05, 0.98]])
    y = torch.tensor([0, 1])
    identity = nn.Sequential(nn.Linear(2, 2))
    with torch.no_grad():
        identity[0].weight.copy_(torch.eye(2))
        identity[0].bias.zero_()
    cases = [
        ((identity, x, y, 0.1), {}),
        ((identity, x, y, 0.1), {"clamp": None}),
        ((identity, x, y, 0.0), {}),
        ((identity, x, y, -0.1), {}),    # must raise ValueError
    ]
    for _ in range(4):
        model = _model(rng, 6, 3, hidden=8)
        cases.append(((model, _tensor(rng, 10, 6), torch.tensor(rng.integers(0, 3, size=10)), float(rng.uniform(0.02, 0.3))), {}))
    return cases


register(Exercise(
    key="09.fgsm",
    title="the fast gradient sign method, clamped to [0, 1]",
    reference=robustness.fgsm,
    make_cases=_fgsm_cases,
    difficulty=2, importance="core", minutes=15,
))


def _ibp_linear_cases(rng: np.random.Generator):
    w = torch.tensor([[1.0, -2.0]])
    b = torch.tensor([0.5])
    cases = [
        ((torch.tensor([[0.4, 0.4]]), torch.tensor([[0.6, 0.6]]), w, b), {}),   # hand value: [-0.3, 0.3]
        ((torch.tensor([[0.5, 0.5]]), torch.tensor([[0.5, 0.5]]), w, b), {}),   # a point: W x + b twice
        ((torch.tensor([[0.4, 0.4]]), torch.tensor([[0.6, 0.6]]), w, None), {}),
        ((torch.tensor([[0.6, 0.4]]), torch.tensor([[0.4, 0.6]]), w, b), {}),   # lower > upper: ValueError
    ]
    for _ in range(4):
        n_in, n_out = int(rng.integers(2, 9)), int(rng.integers(1, 6))
        lower = torch.tensor(rng.normal(0, 1, size=(4, n_in)), dtype=torch.float32)
        upper = lower + _tensor(rng, 4, n_in)
        weight = torch.tensor(rng.normal(0, 1, size=(n_out, n_in)), dtype=torch.float32)
        bias = torch.tensor(rng.normal(0, 1, size=n_out), dtype=torch.float32)
        cases.append(((lower, upper, weight, bias), {}))
    return cases


register(Exercise(
    key="09.ibp_linear",
    title="interval bounds through one linear layer",
    reference=robustness.ibp_linear,
    make_cases=_ibp_linear_cases,
    difficulty=2, importance="core", minutes=15,
))
