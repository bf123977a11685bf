"""Exercises of lesson 18 (red teaming)."""
import numpy as np
import torch

from labkit import redteam
from labkit.exercises import Exercise, register


def gcg_candidates_seeded(grad, suffix, top_k, batch_size, seed):
    """:func:`labkit.redteam.gcg_candidates` with a fresh generator seeded by ``seed`` (so a check can replay it)."""
    return redteam.gcg_candidates(grad, suffix, top_k, batch_size, torch.Generator().manual_seed(int(seed)))


def _candidate_cases(rng: np.random.Generator):
    def case(L, V, k, B, seed):
        g = torch.Generator().manual_seed(int(rng.integers(1 << 30)))
        grad = torch.randn(L, V, generator=g)
        suffix = torch.randint(0, V, (L,), generator=g)
        return (grad, suffix, k, B, seed), {}

    cases = [case(1, 5, 1, 4, 0),          # one position, top-1: every candidate is the same swap
             case(4, 10, 10, 16, 1),       # top_k = vocabulary: any token may be proposed
             case(6, 40, 3, 32, 2)]
    for _ in range(6):
        cases.append(case(int(rng.integers(2, 12)), int(rng.integers(8, 80)), int(rng.integers(1, 8)),
                          int(rng.integers(1, 64)), int(rng.integers(1000))))
    return cases


register(Exercise(
    key="18.gcg_candidates",
    title="the GCG candidate step: single-token swaps drawn from the top-k gradient tokens",
    reference=gcg_candidates_seeded,
    make_cases=_candidate_cases,
    difficulty=2, importance="core", minutes=20,
))


def _asr_cases(rng: np.random.Generator):
    cases = [(([True, True, True],), {}),        # the seed's smoke test: 3 of 3 is not a rate of 1
             (([False] * 20,), {}),               # 0 of 20: the upper bound is not 0
             (([True] * 16 + [False] * 4,), {}),
             (([True],), {}),
             (([],), {})]                          # must raise ValueError
    for _ in range(6):
        n = int(rng.integers(1, 300))
        cases.append(((list(rng.random(n) < rng.random()),), {}))
    return cases


register(Exercise(
    key="18.attack_success_rate",
    title="an attack success rate with its 95 % Wilson interval",
    reference=redteam.attack_success_rate,
    make_cases=_asr_cases,
    difficulty=1, importance="core", minutes=10,
))
