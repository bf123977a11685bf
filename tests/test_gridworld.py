import itertools

import numpy as np
import pytest

from labkit import gridworld as gw


def tiny_mdp(seed=0, S=3, A=2):
    rng = np.random.default_rng(seed)
    return rng.dirichlet(np.ones(S), size=(S, A)), rng.normal(0, 1, S)


def test_transitions_are_stochastic_and_respect_walls():
    world = gw.GridWorld.from_layout(["S.#", "..G"], slip=0.2)
    np.testing.assert_allclose(world.P.sum(axis=2), 1.0)
    wall = world.state(0, 2)
    assert world.P[np.arange(6) != wall][:, :, wall].max() == 0.0   # a wall is never entered
    s = world.state(0, 1)
    # "right" from (0,1) bumps into the wall: stay with prob 0.8 + slip share of bumping moves
    # bumping actions from (0,1): up, right, stay -> 3/5 of the slip mass stays too.
    assert world.P[s, 3, s] == pytest.approx(0.8 + 0.2 * 3 / 5)
    assert world.features().sum(axis=1).tolist() == [1, 1, 0, 1, 1, 1]


def test_bad_layouts_and_arguments_raise():
    with pytest.raises(ValueError, match="same length"):
        gw.GridWorld.from_layout(["..", "..."])
    with pytest.raises(ValueError, match=r"slip must be in \[0, 1\)"):
        gw.GridWorld.from_layout([".."], slip=1.0)
    with pytest.raises(TypeError, match="layout"):
        gw.GridWorld.from_layout([1, 2])
    P, r = tiny_mdp()
    with pytest.raises(ValueError, match="gamma"):
        gw.value_iteration(P, r, 1.0)
    with pytest.raises(ValueError, match="P must hold probabilities"):
        gw.value_iteration(P * 2, r, 0.9)
    with pytest.raises(ValueError, match="temperature"):
        gw.soft_value_iteration(P, r, 0.9, temperature=0.0)
    with pytest.raises(ValueError, match="policy rows"):
        gw.policy_evaluation(P, r, np.ones((3, 2)), 0.9)


def test_value_iteration_matches_brute_force_over_all_deterministic_policies():
    P, r = tiny_mdp(1, S=4, A=3)
    V, Q = gw.value_iteration(P, r, 0.8)
    best = np.full(4, -np.inf)
    for choice in itertools.product(range(3), repeat=4):
        pi = np.eye(3)[list(choice)]
        best = np.maximum(best, gw.policy_evaluation(P, r, pi, 0.8))
    np.testing.assert_allclose(V, best, atol=1e-8)
    np.testing.assert_allclose(gw.policy_evaluation(P, r, gw.greedy_policy(Q), 0.8), V, atol=1e-8)


def test_policy_evaluation_hand_values():
    world = gw.GridWorld.from_layout(["S.G"])
    r = world.reward_from_types({"G": 1.0})
    right = np.zeros((3, 5))
    right[:, 3] = 1.0
    # From S: 0 + 0.5 * 0 + 0.25 * 1 / (1 - 0.5) = 0.5
    assert gw.policy_evaluation(world.P, r, right, 0.5)[0] == pytest.approx(0.5)


def test_soft_value_iteration_is_the_entropy_regularised_optimum():
    P, r = tiny_mdp(2, S=4, A=3)
    gamma, T = 0.8, 0.7
    V, Q, pi = gw.soft_value_iteration(P, r, gamma, temperature=T, tol=1e-12)
    np.testing.assert_allclose(pi.sum(axis=1), 1.0)
    V_next, _ = gw.soft_bellman_backup(P, r, V, gamma, T)
    np.testing.assert_allclose(V_next, V, atol=1e-10)                 # a fixed point

    def regularised_value(policy):
        entropy = -(policy * np.log(np.clip(policy, 1e-300, None))).sum(axis=1)
        return gw.policy_evaluation(P, r + T * entropy, policy, gamma)

    np.testing.assert_allclose(regularised_value(pi), V, atol=1e-8)   # V is pi's regularised return
    rng = np.random.default_rng(0)
    for _ in range(200):                                              # and no other policy does better
        other = rng.dirichlet(np.ones(3) * 0.5, size=4)
        assert (regularised_value(other) <= V + 1e-9).all()


def test_soft_value_iteration_tends_to_hard_value_iteration():
    P, r = tiny_mdp(3)
    V_hard, _ = gw.value_iteration(P, r, 0.9)
    V_soft, _, _ = gw.soft_value_iteration(P, r, 0.9, temperature=1e-3, tol=1e-13)
    # soft >= hard, and the gap is at most T log A / (1 - gamma)
    assert (V_soft >= V_hard - 1e-9).all()
    assert (V_soft - V_hard).max() <= 1e-3 * np.log(2) / 0.1 + 1e-9


def test_soft_backup_is_stable_for_huge_values():
    P, r = tiny_mdp(4)
    V_new, _ = gw.soft_bellman_backup(P, r, np.array([1e4, -1e4, 0.0]), 0.9)
    assert np.isfinite(V_new).all()


def test_value_iteration_converges_fast_on_10x10():
    import time

    world = gw.GridWorld.from_layout(["." * 9 + "G"] + ["." * 10] * 9, slip=0.1)
    r = world.reward_from_types({"G": 1.0})
    t = time.perf_counter()
    V, _, _ = gw.soft_value_iteration(world.P, r, 0.9, tol=1e-8)
    assert time.perf_counter() - t < 1.0
    assert V.argmax() == world.cells("G")[0]


def test_state_visitation_properties():
    P, _ = tiny_mdp(5)
    rng = np.random.default_rng(0)
    pi = rng.dirichlet(np.ones(2), size=3)
    start = np.array([0.2, 0.3, 0.5])
    D = gw.state_visitation(P, pi, start, 0.9, 25)
    assert D.sum() == pytest.approx((1 - 0.9**25) / 0.1)
    D_long = gw.state_visitation(P, pi, start, 0.9, 500)
    np.testing.assert_allclose(D_long, gw.discounted_occupancy(P, pi, start, 0.9), atol=1e-9)
    # Monte Carlo agrees with the forward pass
    states = gw.rollouts(P, pi, start, 20000, 5, rng)
    mc = np.array([(states[:, t, None] == np.arange(3)).mean(axis=0) * 0.9**t for t in range(5)]).sum(axis=0)
    np.testing.assert_allclose(mc, gw.state_visitation(P, pi, start, 0.9, 5), atol=0.03)


def test_rollouts_are_seeded():
    P, _ = tiny_mdp(6)
    pi = np.full((3, 2), 0.5)
    a = gw.rollouts(P, pi, np.ones(3) / 3, 5, 7, np.random.default_rng(1))
    b = gw.rollouts(P, pi, np.ones(3) / 3, 5, 7, np.random.default_rng(1))
    assert (a == b).all() and a.min() >= 0 and a.max() <= 2
    with pytest.raises(TypeError, match="rng"):
        gw.rollouts(P, pi, np.ones(3) / 3, 5, 7, 0)


_W = gw.GridWorld.from_layout(("S..", ".#G"))
_PI = np.full((_W.n_states, _W.n_actions), 1.0 / _W.n_actions)
_START = np.full(_W.n_states, 1.0 / _W.n_states)


@pytest.mark.parametrize("call, error, fragment", [
    (lambda: gw.state_visitation(-_W.P, _PI, _START, 0.9, 5), ValueError, "P must hold probabilities"),
    (lambda: gw.discounted_occupancy(_W.P * 2, _PI, _START, 0.9), ValueError, "P must hold probabilities"),
    (lambda: gw.rollouts(_W.P, _PI, _START[:-1], 2, 3, np.random.default_rng(0)), ValueError, "start must be a probability vector"),
    (lambda: gw.rollouts(_W.P, _PI, -_START, 2, 3, np.random.default_rng(0)), ValueError, "start must be a probability vector"),
    (lambda: gw.rollouts(_W.P, _PI, _START, 2, 3, 0), TypeError, "rng must be a numpy Generator"),
    (lambda: gw.greedy_policy(np.zeros((0, 4))), ValueError, "Q must have at least 1 entries"),
    (lambda: gw.greedy_path(None, _PI, 0, 3), TypeError, "world must be a GridWorld"),
    (lambda: gw.value_iteration(_W.P, np.zeros(_W.n_states), 0.9, steps=-1), ValueError, "steps must be an integer"),
    (lambda: gw.soft_value_iteration(_W.P, np.zeros(_W.n_states), 0.9, max_steps=0), ValueError, "max_steps"),
    (lambda: gw.policy_evaluation(_W.P, np.zeros(_W.n_states), _PI * 2, 0.9), ValueError, "policy rows"),
])
def test_bad_inputs_are_rejected(call, error, fragment):
    import re
    with pytest.raises(error, match=re.escape(fragment)):
        call()
