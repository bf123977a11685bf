import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labkit import basics
from widget_driver import draw_and_check, values_strategy


def test_softmax_hand_values_and_stability():
    np.testing.assert_allclose(basics.softmax([0.0, math.log(3.0)]), [0.25, 0.75])
    np.testing.assert_allclose(basics.softmax([1000.0, 0.0]), [1.0, 0.0], atol=1e-300)
    p = basics.softmax(np.random.default_rng(0).normal(0, 50, size=(4, 7)), temperature=0.3)
    np.testing.assert_allclose(p.sum(axis=-1), 1.0)
    with pytest.raises(ValueError, match="temperature"):
        basics.softmax([1.0], temperature=0)


def test_temperature_limits():
    z = np.array([3.0, 1.0, 0.0])
    assert basics.softmax(z, 1e-3)[0] == pytest.approx(1.0)
    np.testing.assert_allclose(basics.softmax(z, 1e6), np.full(3, 1 / 3), atol=1e-5)


def test_wilson_known_values():
    # Hand computation: k=0, n=10, z=1.959964 -> upper = z^2/n / (1 + z^2/n) = 0.27753
    low, high = basics.wilson_interval(0, 10)
    assert low == 0.0 and high == pytest.approx(0.27753, abs=1e-5)
    low, high = basics.wilson_interval(5, 10)
    assert (low, high) == pytest.approx((0.23659, 0.76341), abs=1e-5)
    with pytest.raises(ValueError, match=r"successes must be an integer in \[0, 10\]"):
        basics.wilson_interval(11, 10)


def test_wilson_coverage_beats_wald_at_small_n():
    ps = np.linspace(0.01, 0.99, 99)
    wilson = basics.interval_coverage("wilson", 20, ps)
    wald = basics.interval_coverage("wald", 20, ps)
    assert wilson.mean() > 0.93 and wald.mean() < 0.90
    assert np.all((0 <= wilson) & (wilson <= 1))


def test_clopper_pearson_known_values_and_guaranteed_coverage():
    # k = 0: the upper bound solves (1 - p)^n = alpha / 2; k = n mirrors it.
    low, high = basics.clopper_pearson_interval(0, 20)
    assert low == 0.0 and high == pytest.approx(1 - 0.025 ** (1 / 20), abs=1e-12)
    low, high = basics.clopper_pearson_interval(20, 20)
    assert high == 1.0 and low == pytest.approx(0.025 ** (1 / 20), abs=1e-12)
    # 3/20: the Beta quantiles scipy's exact binomial test reports (0.03207, 0.37893).
    assert basics.clopper_pearson_interval(3, 20) == pytest.approx((0.032071, 0.378927), abs=1e-6)
    with pytest.raises(ValueError, match=r"successes must be an integer in \[0, 20\]"):
        basics.clopper_pearson_interval(21, 20)
    # Its coverage never falls below nominal on a fine grid; Wilson's dips near 0 (Brown et al. 2001).
    ps = np.linspace(0.0001, 0.9999, 9999)
    assert basics.interval_coverage("clopper_pearson", 20, ps).min() >= 0.95
    wilson = basics.interval_coverage("wilson", 20, ps)
    assert wilson.min() < 0.85 and min(ps[wilson.argmin()], 1 - ps[wilson.argmin()]) < 0.02
    with pytest.raises(ValueError, match="method must be one of"):
        basics.interval_coverage("agresti", 20, ps)


def test_entropy():
    assert basics.entropy([0.5, 0.5]) == pytest.approx(math.log(2))
    with pytest.raises(ValueError):
        basics.entropy([0.5, 0.6])


WIDGET = basics.temperature_widget()


@settings(max_examples=25, deadline=None)
@given(values_strategy(WIDGET))
def test_temperature_widget_full_range(values):
    draw_and_check(WIDGET, values)
