"""Exercises of lesson 10 (multi-stakeholder alignment: social choice)."""
import numpy as np

from labkit import social_choice
from labkit.exercises import Exercise, register


def _borda_cases(rng: np.random.Generator):
    cases = [
        ((np.array([[0, 1, 2]]),), {}),
        ((np.array([[0, 1, 2], [1, 2, 0], [2, 0, 1]]),), {}),   # Condorcet cycle: a three-way tie
        ((np.array([[1, 0], [1, 0], [0, 1]]),), {}),
        ((np.array([[0]]),), {}),
        ((np.array([[0, 0, 1]]),), {}),                          # not a permutation: ValueError
    ]
    for _ in range(6):
        n, m = int(rng.integers(1, 9)), int(rng.integers(2, 7))
        cases.append(((np.array([rng.permutation(m) for _ in range(n)]),), {}))
    return cases


register(Exercise(
    key="10.borda_scores",
    title="Borda points from voters' rankings",
    reference=social_choice.borda_scores,
    make_cases=_borda_cases,
    difficulty=1, importance="core", minutes=10,
))


def _pareto_cases(rng: np.random.Generator):
    cases = [
        ((np.array([[1.0, 2.0, 3.0]]),), {}),                   # one stakeholder: only the best survives
        ((np.array([[1.0, 1.0], [2.0, 2.0]]),), {}),            # identical options: neither dominates
        ((np.array([[1.0, 2.0], [2.0, 1.0]]),), {}),            # a trade-off: both survive
        ((np.array([[1.0, 2.0], [2.0, 2.0]]),), {}),            # weak dominance counts
        ((np.array([[0.5]]),), {}),
    ]
    for _ in range(6):
        n, m = int(rng.integers(1, 5)), int(rng.integers(2, 9))
        cases.append(((rng.integers(0, 4, size=(n, m)).astype(float),), {}))
    return cases


register(Exercise(
    key="10.pareto_front",
    title="the options no other option Pareto-dominates",
    reference=social_choice.pareto_front,
    make_cases=_pareto_cases,
    difficulty=2, importance="core", minutes=15,
))


def borda_condorcet_disagree() -> np.ndarray:
    """A reference answer: three voters rank A > B > C, two rank B > C > A.

    A beats B and C 3 to 2 (Condorcet winner); Borda gives A 6, B 7, C 2.
    """
    return np.array([[0, 1, 2]] * 3 + [[1, 2, 0]] * 2)


def _disagreement_reason(expected, got) -> str | None:
    """A design check: any valid profile whose Condorcet winner is not the unique Borda winner passes."""
    del expected  # many profiles are right; the reference is one of them
    try:
        scores = social_choice.borda_scores(got)
    except (ValueError, TypeError) as exc:
        return f"not a profile of rankings ({exc})"
    winner = social_choice.condorcet_winner(got)
    if winner is None:
        return "this profile has no Condorcet winner (a majority cycle or a tie)"
    top = np.flatnonzero(scores == scores.max())
    if len(top) > 1:
        return f"Borda ties between options {top.tolist()}: make its winner unique"
    if top[0] == winner:
        return f"Borda and Condorcet both pick option {winner}"
    return None


register(Exercise(
    key="10.borda_condorcet_disagree",
    title="design a profile on which Borda and Condorcet pick different winners",
    reference=borda_condorcet_disagree,
    make_cases=lambda rng: [((), {})],
    difficulty=2, importance="core", minutes=15,
    compare=_disagreement_reason,
))
