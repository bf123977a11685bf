"""Lesson 10: welfare functions, voting rules and the Pareto front."""
import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from labkit import social_choice as sc
from widget_driver import draw_and_check, values_strategy

PROFILE = np.array([[7.0, 5.0, 4.0, 8.0], [1.0, 3.0, 4.0, 6.0], [9.0, 7.0, 6.0, 1.0]])
CYCLE = np.array([[0, 1, 2], [1, 2, 0], [2, 0, 1]])

utility_matrices = hnp.arrays(
    float, st.tuples(st.integers(1, 4), st.integers(1, 6)), elements=st.integers(1, 5).map(float))


def test_welfare_hand_values():
    np.testing.assert_allclose(sc.welfare(PROFILE, "utilitarian"), [17, 15, 14, 15])
    np.testing.assert_allclose(sc.welfare(PROFILE, "utilitarian", [1, 0, 0]), PROFILE[0])
    np.testing.assert_allclose(sc.welfare(PROFILE, "maximin"), [1, 3, 4, 1])
    np.testing.assert_allclose(sc.welfare(PROFILE, "nash"), np.log(PROFILE).sum(axis=0))
    nash = sc.welfare(PROFILE, "nash", disagreement=[0.0, 2.0, 0.0])
    assert np.isneginf(nash[0]) and nash[1] == pytest.approx(math.log(5 * 1 * 7))
    assert [sc.choose(PROFILE, r) for r in sc.RULES] == [0, 2, 1]
    assert sc.choose(PROFILE, "nash", disagreement=10.0) is None


def test_condorcet_cycle():
    assert sc.condorcet_winner(CYCLE) is None
    np.testing.assert_allclose(sc.borda_scores(CYCLE), [3, 3, 3])
    margins = sc.pairwise_margins(CYCLE)
    np.testing.assert_allclose(margins, -margins.T)
    assert margins[0, 1] == 1 and margins[1, 2] == 1 and margins[2, 0] == 1


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 7), st.integers(1, 5), st.integers(0, 2**31 - 1))
def test_borda_and_condorcet_properties(n, m, seed):
    rng = np.random.default_rng(seed)
    ranks = np.array([rng.permutation(m) for _ in range(n)])
    scores = sc.borda_scores(ranks)
    assert scores.sum() == pytest.approx(n * m * (m - 1) / 2)     # every ballot hands out 0 + 1 + ... + (m-1)
    np.testing.assert_allclose(sc.borda_scores(ranks[::-1]), scores)  # anonymity
    winner = sc.condorcet_winner(ranks)
    margins = sc.pairwise_margins(ranks)
    brute = [a for a in range(m) if all(
        sum((list(r).index(a) < list(r).index(b)) for r in ranks) * 2 > n for b in range(m) if b != a)]
    assert (winner is None and brute == []) or brute == [winner]
    np.testing.assert_allclose(margins, -margins.T)
    unanimous = np.tile(ranks[0], (n, 1))
    assert sc.condorcet_winner(unanimous) == (ranks[0][0] if m > 1 else 0)


def _dominates(u, k, j):
    return bool(np.all(u[:, k] >= u[:, j]) and np.any(u[:, k] > u[:, j]))


@settings(max_examples=150, deadline=None)
@given(utility_matrices)
def test_pareto_front_matches_brute_force(u):
    front = sc.pareto_front(u)
    m = u.shape[1]
    for j in range(m):
        dominated = any(_dominates(u, k, j) for k in range(m))
        assert front[j] == (not dominated)
    assert front.any()  # a finite set always has a non-dominated option


@settings(max_examples=150, deadline=None)
@given(utility_matrices)
def test_welfare_winners_are_pareto_optimal(u):
    front = sc.pareto_front(u)
    for rule in sc.RULES:
        assert front[sc.choose(u, rule)], rule  # leximin breaks maximin ties; utilities >= 1 keep Nash finite


@settings(max_examples=100, deadline=None)
@given(utility_matrices, st.integers(0, 3), st.floats(0.1, 10.0))
def test_nash_is_invariant_to_rescaling_one_stakeholder(u, i, scale):
    i = i % u.shape[0]
    scaled = u.copy()
    scaled[i] *= scale
    shift = sc.welfare(scaled, "nash") - sc.welfare(u, "nash")
    np.testing.assert_allclose(shift, math.log(scale), atol=1e-9)   # same constant for every option
    best = sc.welfare(scaled, "nash")
    assert best[sc.choose(u, "nash")] == pytest.approx(best.max(), abs=1e-9)
    assert sc.choose(scaled, "maximin") is not None


def test_utilitarian_is_not_scale_invariant():
    u = np.array([[1.0, 2.0], [2.2, 1.0]])  # sums 3.2 vs 3.0; rescaled 5.2 vs 7.0
    assert sc.choose(u, "utilitarian") == 0
    assert sc.choose(u * np.array([[3.0], [1.0]]), "utilitarian") == 1


def test_slide_utilities_and_missing_attribute():
    u = sc.stakeholder_utilities(sc.SLIDE_STAKEHOLDERS, sc.SLIDE_OPTIONS)
    assert u[0, 0] == pytest.approx(0.8 * 0.9 + 0.2 * 0.5)
    assert sc.all_winners(u) == {"utilitarian": 3, "maximin": 0, "nash": 0, "borda": 3, "condorcet": 3}
    with pytest.raises(ValueError, match="lacks attributes"):
        sc.stakeholder_utilities({"User": {"privacy": 1.0}}, {"X": {"Privacy": 0.5}})


def test_invalid_arguments():
    with pytest.raises(ValueError, match="rule must be one of"):
        sc.welfare(PROFILE, "borda")
    with pytest.raises(ValueError, match="one entry per stakeholder"):
        sc.welfare(PROFILE, "utilitarian", [1.0, 1.0])
    with pytest.raises(ValueError, match="non-negative"):
        sc.welfare(PROFILE, "utilitarian", [1.0, -1.0, 1.0])
    with pytest.raises(ValueError, match="permutation"):
        sc.borda_scores([[0, 0, 1]])
    with pytest.raises(TypeError, match="integer"):
        sc.borda_scores([[0.5, 1.5]])
    with pytest.raises(ValueError, match="NaN"):
        sc.pareto_front([[1.0, float("nan")]])
    with pytest.raises(ValueError, match="dimensions"):
        sc.pareto_front([1.0, 2.0])


WIDGET = sc.stakeholder_weights_widget()


@settings(max_examples=25, deadline=None)
@given(values_strategy(WIDGET))
def test_weights_widget_full_range(values):
    draw_and_check(WIDGET, values)


def test_weights_widget_all_zero():
    draw_and_check(WIDGET, {"user": 0.0, "company": 0.0, "society": 0.0})


_U = np.array([[1.0, 2.0, 0.5], [0.5, 1.0, 2.0]])


@pytest.mark.parametrize("call, error, fragment", [
    (lambda: sc.welfare(_U, "nash", disagreement=float("nan")), ValueError, "disagreement contains NaN"),
    (lambda: sc.welfare(_U, "utilitarian", disagreement="none"), TypeError, "disagreement"),
    (lambda: sc.welfare(_U, "nash", disagreement=[0.0, 0.0, 0.0]), ValueError, "one entry per stakeholder"),
    (lambda: sc.welfare(_U, "nash", weights=[1.0, -1.0]), ValueError, "weights must be non-negative"),
    (lambda: sc.plot_stakeholder_weights(user=float("inf")), ValueError, "user must be finite"),
    (lambda: sc.plot_stakeholder_weights(company=-1.0), ValueError, "company must be in [0, inf)"),
])
def test_bad_inputs_are_rejected(call, error, fragment):
    import re
    with pytest.raises(error, match=re.escape(fragment)):
        call()
