import numpy as np
import pytest
from hypothesis import given, settings

from labkit import constrained as C
from labkit import gridworld as gw
from widget_driver import draw_and_check, values_strategy


def test_kkt_residuals_hand_values():
    # min (x-0.8)^2 + (y-0.6)^2 s.t. x + y <= 1: optimum (0.6, 0.4), lambda = 0.4
    res = C.kkt_residuals([-0.4, -0.4], [[1.0, 1.0]], [0.0], [0.4])
    assert all(v == pytest.approx(0.0, abs=1e-12) for v in res.values())
    res = C.kkt_residuals([-0.4, -0.4], [[1.0, 1.0]], [0.25], [-0.4])
    assert res == pytest.approx({"stationarity": 0.8, "primal": 0.25, "dual": 0.4, "complementarity": 0.1})
    with pytest.raises(ValueError, match="jac_g must have shape"):
        C.kkt_residuals([1.0, 2.0], [[1.0]], [0.0], [0.0])


def test_slsqp_projection_satisfies_kkt_and_hand_solution():
    t = np.array([0.8, 0.6])
    out = C.solve_slsqp(lambda x: float(((x - t) ** 2).sum()), lambda x: 2 * (x - t),
                        lambda x: np.array([x.sum() - 1.0]), lambda x: np.ones((1, 2)), np.zeros(2))
    np.testing.assert_allclose(out["x"], [0.6, 0.4], atol=1e-6)
    np.testing.assert_allclose(out["lam"], [0.4], atol=1e-6)
    assert max(out["kkt"].values()) < 1e-6


@pytest.mark.parametrize("budget", [0.5, 2.0, 6.0])
def test_slsqp_allocation_matches_water_filling_and_kkt(budget):
    out = C.solve_slsqp(**C.allocation_problem(budget), x0=np.zeros(3))
    x_star, nu = C.allocation_closed_form(budget)
    np.testing.assert_allclose(out["x"], x_star, atol=1e-5)
    assert out["lam"][0] == pytest.approx(nu, abs=1e-4)
    assert max(out["kkt"].values()) < 1e-6


def test_allocation_hand_value():
    # budget 2: support {1, 3}: 3/(1+x1) = nu, 1/(1+x3) = 0.5 nu, x1 + 0.5 x3 = 2 -> nu = 8/7
    x, nu = C.allocation_closed_form(2.0)
    np.testing.assert_allclose(x, [1.625, 0.0, 0.75])
    assert nu == pytest.approx(8 / 7)


def test_cmdp_lp_is_optimal_feasible_and_randomises_in_at_most_one_state():
    world, r, c, start = C.make_cmdp()
    for budget in [0.0, 0.8, 1.5, 5.0]:
        lp = C.cmdp_lp(world.P, r, c, start, C.CMDP_GAMMA, budget)
        J_r = start @ gw.policy_evaluation(world.P, r, lp["policy"], C.CMDP_GAMMA)
        J_c = start @ gw.policy_evaluation(world.P, c, lp["policy"], C.CMDP_GAMMA)
        assert J_r == pytest.approx(lp["reward"], abs=1e-7) and J_c <= budget + 1e-7
        visited = lp["occupancy"].sum(axis=1) > 1e-9
        randomised = ((lp["policy"][visited] > 1e-7).sum(axis=1) > 1).sum()
        assert randomised <= 1                                   # Altman 1999: at most one per constraint
    unconstrained, _ = gw.value_iteration(world.P, r, C.CMDP_GAMMA)
    assert C.cmdp_lp(world.P, r, c, start, C.CMDP_GAMMA, 5.0)["reward"] == pytest.approx(start @ unconstrained)
    # Value is non-decreasing in the budget (a larger feasible set).
    values = [C.cmdp_lp(world.P, r, c, start, C.CMDP_GAMMA, d)["reward"] for d in np.linspace(0, 2.2, 12)]
    assert (np.diff(values) >= -1e-9).all()


def test_primal_dual_approaches_the_lp_optimum():
    world, r, c, start = C.make_cmdp()
    budget = 0.8
    hist = C.lagrangian_primal_dual(world.P, r, c, start, C.CMDP_GAMMA, budget)
    lp = C.cmdp_lp(world.P, r, c, start, C.CMDP_GAMMA, budget)
    # The small entropy term (temperature 0.05) costs a little reward: the last iterate is within 0.01.
    assert hist["cost"][-1] == pytest.approx(budget, abs=0.01)
    assert hist["reward"][-1] == pytest.approx(lp["reward"], abs=0.01)
    assert hist["reward"][-1] <= lp["reward"] + 1e-6 or hist["cost"][-1] > budget
    assert (hist["lam"] >= 0).all()


def test_dual_update_and_errors():
    assert C.dual_update(0.0, 0.5, 1.0, 0.1) == 0.0
    assert C.dual_update(0.3, 2.0, 1.0, 0.1) == pytest.approx(0.4)
    with pytest.raises(ValueError, match="lam"):
        C.dual_update(-1.0, 0.5, 1.0, 0.1)
    world, r, c, start = C.make_cmdp()
    with pytest.raises(ValueError, match="budget"):
        C.cmdp_lp(world.P, r, c, start, 0.9, -1.0)
    with pytest.raises(TypeError, match="callable"):
        C.solve_slsqp(1, 2, 3, 4, np.zeros(2))


WIDGET = C.cmdp_widget()


@settings(max_examples=10, deadline=None)
@given(values_strategy(WIDGET))
def test_cmdp_widget_full_range(values):
    draw_and_check(WIDGET, values)


_P = gw.GridWorld.from_layout(("S.", ".G")).P
_S = _P.shape[0]
_R, _START = np.arange(_S, dtype=float), np.full(_S, 1.0 / _S)


@pytest.mark.parametrize("call, error, fragment", [
    # a zero risk makes a capability free: the slide's maximisation is unbounded
    (lambda: C.allocation_closed_form(2.0, [1.0, 1.0], [1.0, 0.0]), ValueError, "risk must be positive"),
    (lambda: C.allocation_closed_form(2.0, [1.0, 1.0], [1.0, -1.0]), ValueError, "unbounded"),
    (lambda: C.allocation_closed_form(2.0, [1.0, np.nan], [1.0, 1.0]), ValueError, "utility contains NaN"),
    (lambda: C.allocation_closed_form(2.0, [1.0, 1.0, 1.0], [1.0, 1.0]), ValueError, "same length"),
    (lambda: C.allocation_closed_form(2.0, [0.0, 1.0], [1.0, 1.0]), ValueError, "utility must be positive"),
    (lambda: C.allocation_closed_form(-1.0), ValueError, "budget"),
    (lambda: C.allocation_closed_form(2.0, None, [1.0]), TypeError, "utility"),
    (lambda: C.allocation_problem(2.0, [1.0], [0.0]), ValueError, "risk must be positive"),
    (lambda: C.cmdp_lp(-_P, _R, _R, _START, 0.9, 1.0), ValueError, "P must hold probabilities"),
    (lambda: C.cmdp_lp(_P, _R, _R, _START * 2, 0.9, 1.0), ValueError, "start must be a probability vector"),
    (lambda: C.lagrangian_primal_dual(_P[:, :, :-1], _R, _R, _START, 0.9, 1.0), ValueError, "P must have shape (S, A, S)"),
    (lambda: C.dual_update(0.5, 1.0, -0.5, 0.1), ValueError, "budget"),
    (lambda: C.dual_update(0.5, float("inf"), 0.5, 0.1), ValueError, "cost must be finite"),
])
def test_bad_inputs_are_rejected(call, error, fragment):
    import re
    with pytest.raises(error, match=re.escape(fragment)):
        call()
