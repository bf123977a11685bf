import numpy as np
import pytest
from hypothesis import given, settings

from labkit import gridworld as gw
from labkit import irl
from widget_driver import draw_and_check, values_strategy


def small_world():
    return gw.GridWorld.from_layout(["..G", ".L.", "M.."], slip=0.1)


def test_gradient_is_zero_when_learner_visitation_equals_expert():
    world = small_world()
    phi, start = world.features(), world.start_distribution()
    theta = np.array([0.3, -0.2, 1.0, -0.5])
    _, _, pi = gw.soft_value_iteration(world.P, phi @ theta, 0.9, tol=1e-12)
    D = gw.discounted_occupancy(world.P, pi, start, 0.9)
    np.testing.assert_allclose(irl.maxent_gradient(phi.T @ D, D, phi), 0.0, atol=1e-12)
    _, grad, _ = irl.maxent_dual(theta, world.P, phi, phi.T @ D, start, 0.9)
    np.testing.assert_allclose(grad, 0.0, atol=1e-7)


def test_dual_gradient_matches_finite_differences():
    world = small_world()
    phi, start = world.features(), world.start_distribution()
    mu = np.array([4.0, 1.0, 3.5, 1.5])
    theta = np.array([0.1, -0.4, 0.7, 0.2])
    _, grad, _ = irl.maxent_dual(theta, world.P, phi, mu, start, 0.9, l2=0.1)
    eps = 1e-5
    numeric = [(irl.maxent_dual(theta + eps * e, world.P, phi, mu, start, 0.9, l2=0.1)[0]
                - irl.maxent_dual(theta - eps * e, world.P, phi, mu, start, 0.9, l2=0.1)[0]) / (2 * eps)
               for e in np.eye(4)]
    np.testing.assert_allclose(grad, numeric, atol=1e-5)


def test_exact_expert_features_recover_the_reward_up_to_scale_and_constant():
    world = small_world()
    phi, start = world.features(), world.start_distribution()
    theta_true = np.array([0.0, 1.0, -1.0, -0.3])   # ., G, L, M
    noise = 0.5                                      # Boltzmann demonstrator: model reward is theta / noise
    pi_E = irl.expert_policy(world, phi @ theta_true, 0.9, noise)
    mu_E = phi.T @ gw.discounted_occupancy(world.P, pi_E, start, 0.9)
    res = irl.fit_reward(world.P, phi, mu_E, start, 0.9, l2=0.0)
    np.testing.assert_allclose(irl.centred(res.theta) * noise, irl.centred(theta_true), atol=1e-3)
    np.testing.assert_allclose(res.visitation, gw.discounted_occupancy(world.P, pi_E, start, 0.9), atol=1e-4)


def test_gradient_ascent_climbs_the_dual_to_the_lbfgs_optimum():
    world = small_world()
    phi, start = world.features(), world.start_distribution()
    pi_E = irl.expert_policy(world, phi @ np.array([0.0, 1.0, -1.0, -0.3]), 0.9, 0.5)
    mu_E = phi.T @ gw.discounted_occupancy(world.P, pi_E, start, 0.9)
    lbfgs = irl.fit_reward(world.P, phi, mu_E, start, 0.9, l2=0.1)
    duals = [irl.maxent_dual(irl.maxent_gradient_ascent(world.P, phi, mu_E, start, 0.9, lr=0.05, steps=k, l2=0.1),
                             world.P, phi, mu_E, start, 0.9, l2=0.1)[0] for k in (1, 10, 100)]
    assert duals[0] < duals[1] < duals[2]
    theta = irl.maxent_gradient_ascent(world.P, phi, mu_E, start, 0.9, lr=0.05, steps=2000, l2=0.1)
    np.testing.assert_allclose(theta, lbfgs.theta, atol=1e-3)
    with pytest.raises(ValueError, match="lr"):
        irl.maxent_gradient_ascent(world.P, phi, mu_E, start, 0.9, lr=0.0)


def test_sampled_demonstrations_satisfy_regularised_feature_matching():
    out = irl.run_experiment(n_demos=30, gamma=0.9, noise=0.25)
    res = out["result"]
    # Stationarity of the regularised dual: mu_E - mu_theta = l2 * theta.
    np.testing.assert_allclose(res.expert_features - res.learner_features, 0.01 * res.theta, atol=1e-4)
    tv = 0.5 * np.abs(out["expert_visitation"] - out["learner_visitation"]).sum()
    uniform = gw.discounted_occupancy(out["world"].P, np.full((100, 5), 0.2), out["world"].start_distribution(), 0.9)
    tv_uniform = 0.5 * np.abs(out["expert_visitation"] - uniform / uniform.sum()).sum()
    assert tv < 0.5 * tv_uniform


def test_feature_expectations_hand_value_and_errors():
    phi = np.eye(3)
    traj = np.array([[0, 1, 2], [0, 0, 0]])
    np.testing.assert_allclose(irl.feature_expectations(traj, phi, 0.5), [(1 + 1.75) / 2, 0.25, 0.125])
    with pytest.raises(ValueError, match="state indices"):
        irl.feature_expectations(np.array([[0, 3]]), phi, 0.5)
    with pytest.raises(ValueError, match="features must have shape"):
        irl.maxent_gradient(np.zeros(2), np.zeros(3), phi)
    with pytest.raises(ValueError, match="gamma"):
        irl.maxent_irl(np.full((3, 1, 3), 1 / 3), phi, traj, np.ones(3) / 3, 1.0)


WIDGET = irl.irl_widget()


@settings(max_examples=8, deadline=None)
@given(values_strategy(WIDGET))
def test_irl_widget_full_range(values):
    draw_and_check(WIDGET, values)


_W = irl.make_gridworld()


@pytest.mark.parametrize("call, error, fragment", [
    (lambda: irl.demo_horizon(0.9, tail=float("inf")), ValueError, "tail must be finite"),
    (lambda: irl.demo_horizon(0.9, tail=1.5), ValueError, "tail must be in (0, 1)"),
    (lambda: irl.feature_expectations([[0, 1.5]], np.eye(3), 0.9), ValueError, "trajectories must hold integers"),
    (lambda: irl.feature_expectations([[0, np.nan]], np.eye(3), 0.9), ValueError, "trajectories contains NaN"),
    (lambda: irl.feature_expectations([[0, 3]], np.eye(3), 0.9), ValueError, "state indices in [0, 2]"),
    (lambda: irl.expert_policy(None, np.zeros(3), 0.9, 0.5), TypeError, "world must be a GridWorld"),
    (lambda: irl.true_theta("world"), TypeError, "world must be a GridWorld"),
    (lambda: irl.centred([]), ValueError, "at least 1"),
    (lambda: irl.run_experiment(seed=True), TypeError, "seed"),
    (lambda: irl.maxent_irl(-_W.P, _W.features(), [[0, 1]], _W.start_distribution(), 0.9), ValueError, "P must hold probabilities"),
])
def test_bad_inputs_are_rejected(call, error, fragment):
    import re
    with pytest.raises(error, match=re.escape(fragment)):
        call()
