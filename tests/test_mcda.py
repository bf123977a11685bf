"""Lesson 12: scoring, normalisation, aggregation and sensitivity."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from labkit import mcda
from widget_driver import draw_and_check, values_strategy

S = mcda.score_matrix(mcda.ACTIONS)
W = mcda.SLIDE_WEIGHTS

score_matrices = hnp.arrays(
    float, st.tuples(st.integers(1, 6), st.integers(1, 4)), elements=st.integers(0, 4).map(lambda v: v / 4))


def test_principle_scores_and_errors():
    harm = mcda.Principle("non_maleficence", "harm", benefit=False)
    assert harm.score({"harm": 0.25}) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="no attribute 'harm'"):
        harm.score({"name": "X", "fairness": 0.5})
    with pytest.raises(ValueError, match=r"must be in \[0, 1\]"):
        harm.score({"harm": 1.5})
    with pytest.raises(ValueError, match="finite"):
        harm.score({"harm": float("nan")})
    np.testing.assert_allclose(S[2], [1.0, 0.3, 0.7, 0.8])


def test_weighted_sum_hand_values():
    # A: 0.3*0.8 + 0.3*0.8 + 0.2*0.6 + 0.2*0.7 = 0.74
    np.testing.assert_allclose(mcda.weighted_sum(S, W), [0.74, 0.73, 0.69, 0.64])
    np.testing.assert_allclose(mcda.weighted_sum(S, 2 * W), mcda.weighted_sum(S, W))  # weights are normalised
    with pytest.raises(ValueError, match="one entry per criterion"):
        mcda.weighted_sum(S, [1.0, 1.0])
    with pytest.raises(ValueError, match="non-negative"):
        mcda.weighted_sum(S, [0.0, 0.0, 0.0, 0.0])


@settings(max_examples=100, deadline=None)
@given(score_matrices, st.floats(0.1, 10.0), st.floats(-5.0, 5.0))
def test_minmax_range_and_affine_invariance(s, scale, shift):
    out = mcda.minmax_normalise(s)
    varies = np.ptp(s, axis=0) > 0
    np.testing.assert_allclose(out[:, varies].min(axis=0), 0.0)
    np.testing.assert_allclose(out[:, varies].max(axis=0), 1.0)
    assert (out[:, ~varies] == 0).all()
    np.testing.assert_allclose(mcda.minmax_normalise(s * scale + shift), out, atol=1e-9)


def test_sum_normalise_columns_sum_to_one():
    np.testing.assert_allclose(mcda.sum_normalise(S).sum(axis=0), 1.0)
    with pytest.raises(ValueError, match="positive sum"):
        mcda.sum_normalise([[0.0, 1.0], [0.0, 2.0]])


@settings(max_examples=150, deadline=None)
@given(score_matrices, st.integers(0, 2**31 - 1))
def test_lexicographic_matches_sorting_tuples(s, seed):
    order = [int(k) for k in np.random.default_rng(seed).permutation(s.shape[1])]
    brute = min(range(s.shape[0]), key=lambda a: (tuple(-s[a, k] for k in order), a))
    assert mcda.lexicographic_choice(s, order, tol=0.0) == brute


def test_lexicographic_errors():
    with pytest.raises(ValueError, match="distinct"):
        mcda.lexicographic_choice(S, [0, 0])
    with pytest.raises(ValueError, match="order entry"):
        mcda.lexicographic_choice(S, [7])


@settings(max_examples=100, deadline=None)
@given(score_matrices, st.floats(0.0, 1.0))
def test_constrained_choice_respects_floors(s, floor):
    floors = np.zeros(s.shape[1])
    floors[0] = floor
    w = np.ones(s.shape[1])
    pick = mcda.constrained_choice(s, w, floors)
    feasible = s[:, 0] >= floor - 1e-12  # the documented rounding tolerance
    if not feasible.any():
        assert pick is None
    else:
        assert feasible[pick]
        assert mcda.weighted_sum(s, w)[pick] == pytest.approx(mcda.weighted_sum(s, w)[feasible].max())
    assert mcda.constrained_choice(s, w, np.zeros(s.shape[1])) == int(np.argmax(mcda.weighted_sum(s, w)))


def test_hard_constraint_removes_the_harmful_action():
    assert int(np.argmax(mcda.weighted_sum(mcda.minmax_normalise(S), W))) == 2     # C wins when compensatory
    assert mcda.constrained_choice(S, W, [0.0, 0.7, 0.0, 0.0]) == 0                  # harm <= 0.3: C is out
    assert mcda.constrained_choice(S, W, [0.0, 1.01, 0.0, 0.0]) is None


def _winner_at(s, w, k, t):
    others = np.delete(w, k)
    weights = np.insert(others / others.sum() * (1 - t), k, t)
    return int(np.argmax(s @ weights))


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(float, st.tuples(st.integers(2, 5), st.integers(2, 4)), elements=st.floats(0, 1, allow_subnormal=False)),
       st.integers(0, 3), st.integers(0, 2**31 - 1))
def test_flip_points_match_a_dense_sweep(s, k, seed):
    k = k % s.shape[1]
    w = np.random.default_rng(seed).uniform(0.1, 1.0, s.shape[1])
    flips = mcda.flip_points(s, w, k)
    ts = [t for t, _, _ in flips]
    assert ts == sorted(ts) and all(0 < t < 1 for t in ts)
    for t, before, after in flips:
        assert before != after
        eps = 1e-7
        values_lo = s @ np.insert(np.delete(w, k) / np.delete(w, k).sum() * (1 - t + eps), k, t - eps)
        values_hi = s @ np.insert(np.delete(w, k) / np.delete(w, k).sum() * (1 - t - eps), k, t + eps)
        assert values_lo[before] >= values_lo.max() - 1e-6 and values_hi[after] >= values_hi.max() - 1e-6
    # between consecutive flips the winner is constant: compare with a grid that avoids the flip points
    grid = [t for t in np.linspace(0.0005, 0.9995, 400) if all(abs(t - f) > 1e-6 for f in ts)]
    current = flips[0][1] if flips else _winner_at(s, w, k, grid[0])
    for t in grid:
        expected = current
        for f, _, after in flips:
            if f < t:
                expected = after
        assert _winner_at(s, w, k, t) == expected


def test_flip_points_on_the_lesson_profile():
    flips = mcda.flip_points(S, W, 3)
    assert [(round(t, 3), a, b) for t, a, b in flips] == [(0.158, 1, 0), (0.467, 0, 2)]


def test_winner_map_agrees_with_direct_computation():
    grid = mcda.winner_map(S, W, 0, 1, n=11)
    assert np.isnan(grid[10, 1]) and np.isnan(grid[6, 6]) and not np.isnan(grid[5, 5])
    # w_benef = 0.3, w_nonmal = 0.3 and the rest in the slide's ratio are exactly the slide's weights
    assert grid[3, 3] == int(np.argmax(mcda.weighted_sum(S, W)))
    with pytest.raises(ValueError, match="different"):
        mcda.winner_map(S, W, 1, 1)


def test_belton_gear_rank_reversal():
    values = np.array([[1.0, 9.0, 8.0], [9.0, 1.0, 9.0], [1.0, 1.0, 8.0]])
    before = mcda.weighted_sum(mcda.sum_normalise(values), np.ones(3))
    after = mcda.weighted_sum(mcda.sum_normalise(np.vstack([values, values[1]])), np.ones(3))
    assert before[1] > before[0] and after[0] > after[1]


WIDGET = mcda.decision_widget()


@settings(max_examples=25, deadline=None)
@given(values_strategy(WIDGET))
def test_decision_widget_full_range(values):
    draw_and_check(WIDGET, values)


def test_decision_widget_all_zero_weights():
    draw_and_check(WIDGET, {"beneficence": 0.0, "non_maleficence": 0.0, "autonomy": 0.0, "justice": 0.0, "max_harm": 0.0})


def test_moral_uncertainty_rules_hand_values_and_their_disagreement():
    cw = mcda.choiceworthiness(mcda.ACTIONS)
    np.testing.assert_allclose(cw, [[0.6, 0.5, 0.3, 0.4], [-1.0, 0.9, -1.0, 0.5], [0.7, 0.5, 0.8, 0.6]])
    credences = [0.4, 0.35, 0.25]
    # No normalisation: 0.4 * 0.5 + 0.35 * 0.9 + 0.25 * 0.5 = 0.64 for B.
    assert mcda.expected_choiceworthiness(cw, credences, "none")[1] == pytest.approx(0.64)
    picks = {n: int(np.argmax(mcda.expected_choiceworthiness(cw, credences, n))) for n in mcda.NORMALISATIONS}
    assert picks == {"none": 1, "range": 1, "variance": 0}   # the intertheoretic unit decides
    # Range normalisation puts every theory on [0, 1]; variance normalisation gives mean 0.
    assert mcda.expected_choiceworthiness(cw, credences, "range").max() <= 1.0
    assert mcda.expected_choiceworthiness(cw, credences, "variance").sum() == pytest.approx(0.0, abs=1e-12)
    # Borda: utilitarian ranks A, B, D, C (3, 2, 0, 1); ties share points.
    np.testing.assert_allclose(mcda.credence_weighted_borda(cw, credences), [1.875, 1.85, 0.925, 1.35])
    assert mcda.favourite_theory_choice(cw, credences) == 0
    # An indifferent theory contributes nothing.
    flat = np.vstack([cw, np.zeros(4)])
    np.testing.assert_allclose(mcda.expected_choiceworthiness(flat, credences + [0.0], "variance"),
                               mcda.expected_choiceworthiness(cw, credences, "variance"))
    with pytest.raises(ValueError, match="credences"):
        mcda.expected_choiceworthiness(cw, [0.5, 0.5, 0.5])
    with pytest.raises(ValueError, match="normalise"):
        mcda.expected_choiceworthiness(cw, credences, "softmax")
    with pytest.raises(ValueError, match="attribute"):
        mcda.choiceworthiness([{"name": "E", "benefit": 0.5}])
