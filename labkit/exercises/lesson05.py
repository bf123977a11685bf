"""Exercises of lesson 05 (reward modeling)."""
import numpy as np
import torch

from labkit import calibration, reward
from labkit.exercises import Exercise, register


def _bt_cases(rng: np.random.Generator):
    cases = [
        ((torch.zeros(3), torch.zeros(3)), {}),                                   # σ(0) = 1/2: loss log 2
        ((torch.tensor([2.0, -1.0]), torch.tensor([0.0, 1.0])), {}),
        ((torch.tensor([-200.0, 200.0]), torch.tensor([0.0, 0.0])), {}),          # a naive log(σ) gives inf
        ((torch.tensor([1.0, 3.0]), torch.tensor([0.0, 0.0])), {"margin": 1.0}),
        ((torch.zeros(3), torch.zeros(2)), {}),                                   # shapes differ: ValueError
    ]
    for _ in range(5):
        n = int(rng.integers(1, 50))
        chosen = torch.tensor(rng.normal(0, 3, size=n), dtype=torch.float32)
        rejected = torch.tensor(rng.normal(0, 3, size=n), dtype=torch.float32)
        cases.append(((chosen, rejected), {"margin": float(rng.choice([0.0, 0.5, 2.0]))}))
    return cases


register(Exercise(
    key="05.bradley_terry_loss",
    title="the Bradley-Terry loss of a reward model, numerically stable",
    reference=reward.bradley_terry_loss,
    make_cases=_bt_cases,
    difficulty=1, importance="core", minutes=10,
))


def _ece_cases(rng: np.random.Generator):
    cases = [
        ((np.array([0.5, 0.5, 0.5, 0.5]), np.array([1.0, 0.0, 1.0, 0.0])), {"n_bins": 10}),   # calibrated: 0
        ((np.array([1.0, 1.0]), np.array([1.0, 0.0])), {"n_bins": 10}),            # 1.0 belongs to the last bin
        ((np.array([0.0, 0.25]), np.array([1.0, 0.0])), {"n_bins": 4}),            # 0 joins the first bin, (0, 1/4]
        ((np.array([0.5, 0.6, 0.75]), np.array([1.0, 0.0, 0.0])), {"n_bins": 2}),  # edges: 0.5 in (0, 1/2], 0.75 with 0.6
        ((np.array([0.05, 0.95]), np.array([0.0, 1.0])), {"n_bins": 1}),
        ((np.array([0.1, 0.2, 0.85, 0.9]), np.array([0.0, 1.0, 1.0, 1.0])), {"n_bins": 5}),
        ((np.array([0.2, 1.5]), np.array([0.0, 1.0])), {"n_bins": 10}),            # not a probability: ValueError
    ]
    for _ in range(5):
        n = int(rng.integers(5, 200))
        probs = rng.uniform(0, 1, size=n)
        labels = (rng.uniform(0, 1, size=n) < probs ** 1.5).astype(float)
        cases.append(((probs, labels), {"n_bins": int(rng.integers(2, 16))}))
    return cases


register(Exercise(
    key="05.expected_calibration_error",
    title="expected calibration error of predicted preference probabilities",
    reference=calibration.expected_calibration_error,
    make_cases=_ece_cases,
    difficulty=2, importance="core", minutes=15,
))


def _kl_cases(rng: np.random.Generator):
    cases = [((1,), {}), ((2,), {}), ((1024,), {}), ((0,), {})]   # n = 0 must raise ValueError
    for _ in range(4):
        cases.append(((int(rng.integers(1, 100_000)),), {}))
    return cases


register(Exercise(
    key="05.best_of_n_kl",
    title="the KL divergence of best-of-n sampling from the base policy",
    reference=reward.best_of_n_kl,
    make_cases=_kl_cases,
    difficulty=1, importance="practice", minutes=5,
))


def _bon_cases(rng: np.random.Generator):
    cases = [
        ((np.array([[0.1, 0.9, 0.5, 0.2]]), np.array([[1.0, -1.0, 0.0, 2.0]])), {"n": 2}),   # picks draws 1 and 2
        ((np.array([[0.1, 0.9, 0.5, 0.2]]), np.array([[1.0, -1.0, 0.0, 2.0]])), {"n": 1}),   # n = 1: the base policy
        ((np.array([[0.1, 0.9, 0.5, 0.2]]), np.array([[1.0, -1.0, 0.0, 2.0]])), {"n": 4}),   # proxy's best is gold's worst
        ((np.array([[3.0, 3.0], [0.0, 1.0]]), np.array([[5.0, -5.0], [1.0, 2.0]])), {"n": 2}),  # a tie: the first draw
        ((np.zeros((2, 6)), np.zeros((2, 6))), {"n": 4}),                                    # 4 does not divide 6: ValueError
    ]
    for _ in range(5):
        trials, n = int(rng.integers(1, 20)), int(rng.choice([1, 2, 4, 8]))
        draws = n * int(rng.integers(1, 5))
        proxy = rng.normal(size=(trials, draws))
        gold = proxy - 0.3 * proxy**2 + rng.normal(0, 0.5, size=(trials, draws))
        cases.append(((proxy, gold), {"n": n}))
    return cases


register(Exercise(
    key="05.best_of_n_select",
    title="best-of-n selection: pick by the proxy, score by the gold reward",
    reference=reward.best_of_n_select,
    make_cases=_bon_cases,
    difficulty=2, importance="core", minutes=15,
))


def _bt_fit_cases(rng: np.random.Generator):
    separable = reward.Preferences(                                    # every pair ordered by feature 0: λ keeps θ finite
        np.array([[2.0, 0.0], [1.0, 1.0], [0.5, -1.0]]), np.array([[0.0, 0.0], [0.0, 1.0], [-0.5, 2.0]]),
        np.array([True, True, False]), np.array([True, True, False]))
    cases = [
        ((separable,), {"weight_decay": 0.1}),
        ((reward.simulate_preferences(300, 0.1, seed=1),), {"weight_decay": 0.3}),    # strong regularisation: ½λ|θ|² matters
        ((reward.simulate_preferences(500, 0.0, seed=2),), {"weight_decay": 1e-3}),
        ((reward.simulate_preferences(50, 0.1, seed=3),), {"weight_decay": 0.0}),     # λ = 0: ValueError
    ]
    for _ in range(3):
        n, noise = int(rng.integers(40, 400)), float(rng.choice([0.0, 0.1, 0.3]))
        cases.append(((reward.simulate_preferences(n, noise, seed=int(rng.integers(10, 10_000))),),
                      {"weight_decay": float(rng.choice([1e-3, 0.01, 0.1]))}))
    return cases


register(Exercise(
    key="05.fit_bradley_terry",
    title="fit a linear Bradley-Terry reward model: minimise the regularised loss",
    reference=reward.fit_bradley_terry,
    make_cases=_bt_fit_cases,
    difficulty=2, importance="core", minutes=20,
    rtol=1e-4, atol=1e-5,
))
