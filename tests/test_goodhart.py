import numpy as np
import pytest
from hypothesis import given, settings

from labkit import goodhart
from widget_driver import draw_and_check, values_strategy


def test_proxy_agrees_with_true_reward_except_at_the_sensor():
    world = goodhart.make_gridworld()
    proxy, true = goodhart.proxy_reward(world, 1.5), goodhart.true_reward(world)
    differs = np.flatnonzero(proxy != true)
    assert differs.tolist() == world.cells("B").tolist()
    with pytest.raises(ValueError, match="bonus"):
        goodhart.proxy_reward(world, -1.0)


def test_goodhart_curve_proxy_rises_true_falls_under_strong_optimisation():
    world = goodhart.make_gridworld()
    ks = np.arange(0, 31)
    curve = goodhart.goodhart_curve(world, goodhart.proxy_reward(world, 1.5), goodhart.true_reward(world), goodhart.GAMMA, ks)
    # Proxy return never falls with more planning here; the true return peaks and then drops below 0.
    assert (np.diff(curve["proxy"]) >= -1e-12).all()
    peak = curve["true"].argmax()
    assert curve["true"][peak] > 0.5 and curve["true"][-1] < 0 and 0 < peak < len(ks) - 1
    # Where the agent goes to G, proxy and true returns are equal (hand value gamma^6 for 6 moves).
    assert curve["true"][peak] == pytest.approx(curve["proxy"][peak]) == pytest.approx(goodhart.GAMMA**6)


def test_no_gaming_below_the_threshold_and_gaming_above():
    world = goodhart.make_gridworld()
    threshold = goodhart.gaming_threshold(world)
    assert threshold == pytest.approx(goodhart.GAMMA ** (6 - 13) - 1)   # 6 moves to G, 13 to B
    true = goodhart.true_reward(world)
    below = goodhart.goodhart_curve(world, goodhart.proxy_reward(world, threshold - 0.05), true, goodhart.GAMMA, [200])
    above = goodhart.goodhart_curve(world, goodhart.proxy_reward(world, threshold + 0.05), true, goodhart.GAMMA, [200])
    assert below["true"][0] == pytest.approx(below["proxy"][0])
    assert above["true"][0] < 0 < above["proxy"][0]


def test_kl_regularised_agent_moves_smoothly_from_the_base_policy_to_the_exploit():
    world = goodhart.make_gridworld()
    true_r, proxy_r = goodhart.true_reward(world), goodhart.proxy_reward(world, 1.5)
    curve = goodhart.kl_regularised_curve(world, proxy_r, true_r, goodhart.GAMMA, np.logspace(1, -2, 25))
    assert curve["kl"][0] < 1e-3 and (np.diff(curve["kl"]) >= -1e-9).all()          # pressure grows with 1 / T
    assert (np.diff(curve["proxy"]) >= -1e-9).all()                                  # the proxy never falls
    peak = int(np.argmax(curve["true"]))
    assert 0 < peak < len(curve["true"]) - 1 and curve["true"][-1] < 0 < curve["true"][peak]
    # At T -> 0 it is the fully optimised greedy agent of goodhart_curve.
    greedy = goodhart.goodhart_curve(world, proxy_r, true_r, goodhart.GAMMA, [200])
    assert curve["true"][-1] == pytest.approx(greedy["true"][0], abs=1e-3)
    with pytest.raises(ValueError, match="temperatures"):
        goodhart.kl_regularised_curve(world, proxy_r, true_r, goodhart.GAMMA, [1.0, 0.0])


def test_goodhart_curve_rejects_bad_steps():
    world = goodhart.make_gridworld()
    r = goodhart.true_reward(world)
    with pytest.raises(ValueError, match="steps"):
        goodhart.goodhart_curve(world, r, r, 0.9, [3, 1])
    with pytest.raises(TypeError, match="world"):
        goodhart.goodhart_curve("grid", r, r, 0.9, [1])


WIDGET = goodhart.goodhart_widget()


@settings(max_examples=15, deadline=None)
@given(values_strategy(WIDGET))
def test_goodhart_widget_full_range(values):
    draw_and_check(WIDGET, values)


@pytest.mark.parametrize("call, error, fragment", [
    (lambda: goodhart.gaming_threshold(goodhart.make_gridworld(), gamma=float("nan")), ValueError, "gamma must be finite"),
    (lambda: goodhart.gaming_threshold(goodhart.make_gridworld(), gamma=1.0), ValueError, "gamma must be in (0, 1)"),
    (lambda: goodhart.gaming_threshold(goodhart.make_gridworld(), gamma=0.0), ValueError, "gamma must be in (0, 1)"),
    (lambda: goodhart.gaming_threshold(None), TypeError, "world must be a GridWorld"),
    (lambda: goodhart.proxy_reward("world", 1.0), TypeError, "world must be a GridWorld"),
    (lambda: goodhart.true_reward(None), TypeError, "world must be a GridWorld"),
    (lambda: goodhart.goodhart_curve(goodhart.make_gridworld(), np.zeros(3), np.zeros(3), 0.9, [0, 1]), ValueError,
     "one entry per state"),
    (lambda: goodhart.goodhart_curve(goodhart.make_gridworld(), np.zeros(45), np.zeros(45), 0.9, [0.5]), ValueError,
     "steps must hold integers"),
])
def test_bad_inputs_are_rejected(call, error, fragment):
    import re
    with pytest.raises(error, match=re.escape(fragment)):
        call()
