"""Exercises of lesson 16 (RLHF: DPO, GAE and PPO's clipped loss)."""
import numpy as np
import torch

from labkit import rlhf
from labkit.exercises import Exercise, register


def _t(x) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x, dtype=np.float64))


def _dpo_cases(rng: np.random.Generator):
    z = [0.0, 0.0]
    cases = [
        (([-1.0, -2.0], [-3.0, -1.0], [-2.0, -2.0], [-2.0, -2.0]), {"beta": 0.5}),  # hand-computable
        ((z, z, z, z), {"beta": 0.1}),                                              # log 2
        (([-5.0], [-5.0], [-1.0], [-9.0]), {"beta": 1.0}),                          # the reference matters
        (([-1.0, -1.0], [-30.0, -2.0], [-1.0, -1.0], [-1.0, -1.0]), {"beta": 2.0}),  # a large margin: no overflow
        (([0.0], [0.0], [0.0], [0.0]), {"beta": 0.0}),                               # must raise ValueError
    ]
    for _ in range(8):
        n = int(rng.integers(1, 9))
        cases.append((tuple((-rng.exponential(10.0, n)).tolist() for _ in range(4)),
                      {"beta": float(rng.choice([0.01, 0.1, 0.5, 2.0]))}))
    return [(tuple(_t(a) for a in args), kw) for args, kw in cases]


register(Exercise(
    key="16.dpo_loss",
    title="the DPO loss from sequence log-probabilities",
    reference=rlhf.dpo_loss,
    make_cases=_dpo_cases,
    difficulty=1, importance="core", minutes=10,
))


def _ragged(rng: np.random.Generator, B: int, T: int):
    mask = np.zeros((B, T))
    for b in range(B):
        start = int(rng.integers(0, T))
        mask[b, start:start + int(rng.integers(1, T - start + 1))] = 1
    return mask


def _gae_cases(rng: np.random.Generator):
    cases = [
        (([[0.0, 0.0, 1.0]], [[0.5, 0.5, 0.5]], [[1, 1, 1]]), {"gamma": 1.0, "lam": 1.0}),   # return minus value
        (([[0.0, 0.0, 1.0]], [[0.5, 0.5, 0.5]], [[1, 1, 1]]), {"gamma": 1.0, "lam": 0.0}),   # one-step TD errors
        (([[0.0, 1.0, 0.0, 0.0]], [[0.3, 0.2, 0.9, 0.9]], [[0, 1, 1, 0]]), {"gamma": 0.9, "lam": 0.8}),  # prompt and padding
        (([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]], [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]], [[1, 1, 1], [1, 0, 0]]),
         {"gamma": 1.0, "lam": 0.95}),                                                      # a ragged batch
        (([[1.0]], [[0.0]], [[1]]), {"gamma": 1.5, "lam": 0.95}),                            # must raise ValueError
    ]
    for _ in range(8):
        B, T = int(rng.integers(1, 5)), int(rng.integers(1, 9))
        cases.append(((rng.normal(size=(B, T)), rng.normal(size=(B, T)), _ragged(rng, B, T)),
                      {"gamma": float(rng.choice([0.9, 0.99, 1.0])), "lam": float(rng.choice([0.0, 0.5, 0.95, 1.0]))}))
    return [(tuple(_t(a) for a in args), kw) for args, kw in cases]


register(Exercise(
    key="16.gae",
    title="generalised advantage estimation as a backward recursion over ragged replies",
    reference=rlhf.gae,
    make_cases=_gae_cases,
    difficulty=2, importance="core", minutes=25,
))


def _ppo_cases(rng: np.random.Generator):
    cases = [
        (([[0.5, -0.5, -0.5, 0.5]], [[0.0] * 4], [[1.0, -1.0, 1.0, -1.0]], [[1, 1, 1, 1]]), {"clip_range": 0.2}),
        (([[0.0, 0.5, -0.5], [0.1, 0.0, 9.0]], [[0.0] * 3] * 2, [[1.0, 1.0, -1.0], [-2.0, 3.0, 100.0]],
          [[1, 1, 1], [1, 1, 0]]), {"clip_range": 0.2}),                                     # a masked token must not count
        (([[0.0, 0.0]], [[0.0, 0.0]], [[1.0, 2.0]], [[1, 0]]), {"clip_range": 0.1}),
        (([[0.0]], [[0.0]], [[1.0]], [[1]]), {"clip_range": 1.0}),                           # must raise ValueError
    ]
    for _ in range(8):
        B, T = int(rng.integers(1, 5)), int(rng.integers(1, 9))
        old = rng.normal(size=(B, T)) - 2
        cases.append(((old + rng.normal(0, 0.3, size=(B, T)), old, rng.normal(size=(B, T)), _ragged(rng, B, T)),
                      {"clip_range": float(rng.choice([0.1, 0.2, 0.3]))}))
    return [(tuple(_t(a) for a in args), kw) for args, kw in cases]


register(Exercise(
    key="16.ppo_policy_loss",
    title="PPO's clipped surrogate loss with a masked mean",
    reference=rlhf.ppo_policy_loss,
    make_cases=_ppo_cases,
    difficulty=2, importance="core", minutes=15,
))
