"""Exercises of lesson 20 (differential privacy and federated learning)."""
import numpy as np
import torch

from labkit import privacy
from labkit.exercises import Exercise, register


def _grads(rng: np.random.Generator, batch: int, scale: float) -> dict:
    """Per-example gradients of a two-'layer' model, with norms around ``scale``."""
    return {"weight": torch.tensor(rng.normal(0, scale, size=(batch, 3, 2)), dtype=torch.float64),
            "bias": torch.tensor(rng.normal(0, scale, size=(batch, 3)), dtype=torch.float64)}


def _clip_and_noise_cases(rng: np.random.Generator):
    one_big = {"weight": torch.tensor([[[3.0, 0.0]]], dtype=torch.float64), "bias": torch.tensor([[4.0]], dtype=torch.float64)}
    cases = [
        ((one_big, 1.0, 0.0, 1.0), {}),                             # flat norm 5: both parts scaled by 1/5, not per layer
        ((_grads(rng, 4, 0.1), 1.0, 0.0, 4.0), {}),                  # every norm below C: nothing is clipped
        ((_grads(rng, 5, 2.0), 0.5, 0.0, 8.0), {}),                  # divide by the expected batch size, not by 5
        ((_grads(rng, 3, 1.0), 1.0, 2.0, 3.0), {"generator": torch.Generator().manual_seed(0)}),  # noise sigma * C
        ((_grads(rng, 3, 1.0), 0.2, 1.5, 6.0), {"generator": torch.Generator().manual_seed(1)}),
        ((_grads(rng, 2, 1.0), 0.0, 1.0, 2.0), {}),                  # must raise ValueError: C must be positive
        ((_grads(rng, 2, 1.0), 1.0, -1.0, 2.0), {}),                 # must raise ValueError
    ]
    for k in range(6):
        cases.append(((_grads(rng, int(rng.integers(1, 8)), float(rng.choice([0.1, 1.0, 5.0]))),
                       float(rng.choice([0.3, 1.0, 2.0])), float(rng.choice([0.0, 0.7, 1.3])),
                       float(rng.integers(1, 10))), {"generator": torch.Generator().manual_seed(10 + k)}))
    return cases


register(Exercise(
    key="20.clip_and_noise",
    title="DP-SGD's aggregate: flat per-example clipping, Gaussian noise, the expected batch size",
    reference=privacy.clip_and_noise,
    make_cases=_clip_and_noise_cases,
    difficulty=2, importance="core", minutes=20,
))


def _rdp_to_epsilon_cases(rng: np.random.Generator):
    orders = list(privacy.DEFAULT_ORDERS)
    cases = [
        (([0.1, 0.5], [2.0, 10.0], 1e-5), {}),                       # Balle et al.'s conversion beats Mironov's here
        (([0.0], [32.0], 1e-5), {}),
        ((list(privacy.subsampled_gaussian_rdp(1.0, 0.01, orders) * 1000), orders, 1e-5), {}),
        ((list(privacy.subsampled_gaussian_rdp(0.6, 0.1, orders) * 500), orders, 1e-6), {}),
        (([0.1, 0.2], [2.0], 1e-5), {}),                              # must raise ValueError: one value per order
        (([0.1], [1.0], 1e-5), {}),                                   # must raise ValueError: orders must exceed 1
        (([0.1], [2.0], 0.0), {}),                                    # must raise ValueError: delta in (0, 1)
    ]
    for _ in range(6):
        sigma, q, steps = float(rng.uniform(0.5, 5)), float(rng.choice([0.001, 0.01, 0.1])), int(rng.integers(10, 5000))
        cases.append(((list(privacy.subsampled_gaussian_rdp(sigma, q, orders) * steps), orders,
                       float(rng.choice([1e-5, 1e-6, 1e-3]))), {}))
    return cases


register(Exercise(
    key="20.rdp_to_epsilon",
    title="from Renyi DP to an (epsilon, delta) guarantee (Balle et al. 2020)",
    reference=privacy.rdp_to_epsilon,
    make_cases=_rdp_to_epsilon_cases,
    difficulty=2, importance="core", minutes=15,
))


def _fedavg_cases(rng: np.random.Generator):
    def state():
        return {"w": torch.tensor(rng.normal(size=(3, 2))), "b": torch.tensor(rng.normal(size=3))}

    a, b = {"w": torch.tensor([1.0, 2.0]), "b": torch.tensor([0.0])}, {"w": torch.tensor([4.0, 8.0]), "b": torch.tensor([3.0])}
    cases = [
        (([a, b], [1, 2]), {}),                                       # weighted by size, not the plain mean
        (([a, b], [100, 100]), {}),
        (([a], [5]), {}),
        (([a, b, a], [10, 1, 0]), {}),                                # a client with no data has no weight
        (([a, b], [1]), {}),                                          # must raise ValueError: one size per client
        (([a, b], [-1, 2]), {}),                                      # must raise ValueError
    ]
    for _ in range(6):
        k = int(rng.integers(1, 6))
        cases.append((([state() for _ in range(k)], [int(s) for s in rng.integers(1, 500, size=k)]), {}))
    return cases


register(Exercise(
    key="20.fedavg",
    title="federated averaging: the size-weighted mean of client models",
    reference=privacy.fedavg,
    make_cases=_fedavg_cases,
    difficulty=1, importance="practice", minutes=10,
))
