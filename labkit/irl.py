"""Lesson 06: maximum-entropy inverse reinforcement learning on a gridworld.

Maximum-entropy IRL (Ziebart, Maas, Bagnell and Dey 2008) models a
demonstrator whose trajectories are exponentially more likely the more reward
they collect. With known dynamics and the discounted, causal form of the model
(Ziebart 2010; Gleave and Toyer 2022), learning theta in r(s) = theta . phi(s)
maximises the concave dual

    g(theta) = theta . mu_E - sum_s p0(s) V_theta(s) - l2/2 |theta|^2,

where mu_E are the expert's discounted feature counts and V_theta is the soft
value function (soft value iteration, :func:`labkit.gridworld.soft_value_iteration`).
Its gradient is the famous "expert minus expected feature counts"
(Ziebart et al. 2008, eq. 6):

    grad g = mu_E - Phi^T D_theta - l2 theta,

with D_theta the discounted state-visitation frequencies of the soft-optimal
policy, computed exactly here by one linear solve,
D^T = p0^T (I - gamma P_pi)^-1 (the infinite-horizon limit of the forward pass
in Ziebart et al. 2008, Algorithm 1).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
from scipy.optimize import minimize

from labkit.gridworld import (
    GridWorld, discounted_occupancy, draw_grid, rollouts, soft_value_iteration,
)
from labkit.ui import float_slider, int_slider, interactive_figure
from labkit.validation import ensure_array, ensure_float, ensure_instance, ensure_int

IRL_LAYOUT = (
    "..........",
    ".LL....MM.",
    ".LL....MM.",
    "....G.....",
    "..........",
    "MM....LL..",
    "MM....LL..",
    "..........",
    "...L...G..",
    "..........",
)
TRUE_THETA = {".": 0.0, "G": 1.0, "L": -1.0, "M": -0.3}   # goal, lava, mud, plain floor
SLIP = 0.1
N_DEMOS_RANGE = (1, 100)
GAMMA_RANGE = (0.5, 0.95, 0.05)
NOISE_RANGE = (0.1, 1.0, 0.05)


def make_gridworld(slip: float = SLIP) -> GridWorld:
    """The lesson's 10 x 10 terrain world (goal G, lava L, mud M, floor .)."""
    return GridWorld.from_layout(IRL_LAYOUT, slip=slip)


def true_theta(world: GridWorld) -> np.ndarray:
    """True reward weights, ordered like ``world.cell_types``."""
    ensure_instance("world", world, GridWorld)
    return np.array([TRUE_THETA[k] for k in world.cell_types])


def feature_expectations(trajectories, features, gamma: float) -> np.ndarray:
    """Empirical discounted feature counts mu_E = mean_i sum_t gamma^t phi(s_t^i).

    Parameters
    ----------
    trajectories : int array (n, T) of state indices
    features : array (S, K)
    gamma : float in [0, 1]

    Returns
    -------
    mu : array (K,)
    """
    traj = ensure_array("trajectories", trajectories, ndim=2, dtype=int)
    phi = ensure_array("features", features, ndim=2)
    gamma = ensure_float("gamma", gamma, 0.0, 1.0)
    if traj.shape[0] == 0 or traj.shape[1] == 0:
        raise ValueError("trajectories must hold at least one trajectory of at least one step")
    if traj.min() < 0 or traj.max() >= phi.shape[0]:
        raise ValueError(f"trajectories must hold state indices in [0, {phi.shape[0] - 1}]")
    weights = gamma ** np.arange(traj.shape[1])
    return np.einsum("t,ntk->k", weights, phi[traj]) / traj.shape[0]


def maxent_gradient(expert_features, visitation, features) -> np.ndarray:
    """Ziebart et al. (2008), eq. 6: grad L = mu_E - sum_s D(s) phi(s) (expert minus expected feature counts)."""
    mu = ensure_array("expert_features", expert_features, ndim=1)
    D = ensure_array("visitation", visitation, ndim=1)
    phi = ensure_array("features", features, ndim=2)
    if phi.shape != (D.shape[0], mu.shape[0]):
        raise ValueError(f"features must have shape (len(visitation), len(expert_features)) = "
                         f"{(D.shape[0], mu.shape[0])}, got {phi.shape}")
    return mu - phi.T @ D


def expert_policy(world: GridWorld, reward, gamma: float, noise: float) -> np.ndarray:
    """A Boltzmann-rational demonstrator: the soft-optimal policy at temperature ``noise``.

    pi(a|s) = exp((Q(s,a) - V(s)) / noise) from soft value iteration; ``noise``
    near 0 is nearly optimal, larger values act more randomly. This is exactly
    the MaxEnt model with reward ``reward / noise``, so IRL should recover
    theta_true / noise (up to a constant).
    """
    ensure_instance("world", world, GridWorld)
    noise = ensure_float("noise", noise, 0.0, 100.0, low_open=True)
    return soft_value_iteration(world.P, reward, gamma, temperature=noise, tol=1e-10)[2]


def demo_horizon(gamma: float, tail: float = 1e-3) -> int:
    """Trajectory length after which the discounted tail gamma^T is below ``tail``."""
    gamma = ensure_float("gamma", gamma, 0.0, 1.0, high_open=True)
    tail = ensure_float("tail", tail, 0.0, 1.0, low_open=True, high_open=True)
    return max(1, math.ceil(math.log(tail) / math.log(gamma))) if gamma > 0 else 1


def maxent_dual(theta, P, features, expert_features, start, gamma: float, l2: float = 0.0, V0=None):
    """The MaxEnt IRL objective g(theta) = theta . mu_E - p0 . V_theta - l2/2 |theta|^2 and its gradient.

    Returns ``(g, grad, V)``; grad = mu_E - Phi^T D_theta - l2 theta (Ziebart et al. 2008, eq. 6),
    and ``V`` (the soft values) can warm-start the next call.
    """
    theta = ensure_array("theta", theta, ndim=1)
    phi = ensure_array("features", features, ndim=2)
    mu_E = ensure_array("expert_features", expert_features, ndim=1)
    if phi.shape[1] != theta.shape[0] or mu_E.shape[0] != theta.shape[0]:
        raise ValueError("theta, expert_features and the columns of features must have the same length")
    V, _, pi = soft_value_iteration(P, phi @ theta, gamma, tol=1e-11, V0=V0)
    D = discounted_occupancy(P, pi, start, gamma)
    g = float(theta @ mu_E - start @ V - 0.5 * l2 * theta @ theta)
    return g, maxent_gradient(mu_E, D, phi) - l2 * theta, V


def maxent_gradient_ascent(P, features, expert_features, start, gamma: float, lr: float = 0.1,
                           steps: int = 100, l2: float = 0.0) -> np.ndarray:
    """MaxEnt IRL by plain gradient ascent on the dual: the loop :func:`maxent_irl` hands to L-BFGS.

    Starting from theta = 0, each step computes the soft-optimal policy for
    r = features @ theta (soft value iteration), its exact discounted state
    visitation D, and moves theta += lr * (mu_E - Phi^T D - l2 theta).

    Parameters
    ----------
    P : (S, A, S) transition tensor
    features : (S, K) state features
    expert_features : (K,) the expert's discounted feature counts mu_E
    start : (S,) initial state distribution
    gamma : float in (0, 1)
    lr : float > 0, the step size
    steps : int >= 1
    l2 : float >= 0

    Returns
    -------
    theta : (K,) after ``steps`` steps
    """
    phi = ensure_array("features", features, ndim=2)
    lr = ensure_float("lr", lr, 0.0, low_open=True)
    steps = ensure_int("steps", steps, 1, 100_000)
    l2 = ensure_float("l2", l2, 0.0)
    theta, V = np.zeros(phi.shape[1]), None
    for _ in range(steps):
        _, grad, V = maxent_dual(theta, P, phi, expert_features, start, gamma, l2, V0=V)
        theta = theta + lr * grad
    return theta


@dataclass
class IRLResult:
    """What :func:`maxent_irl` returns."""

    theta: np.ndarray          # (K,) learned weights, ordered like the feature columns
    reward: np.ndarray         # (S,) features @ theta
    policy: np.ndarray         # (S, A) soft-optimal policy for the learned reward
    visitation: np.ndarray     # (S,) its discounted state visitation
    expert_features: np.ndarray
    learner_features: np.ndarray
    n_evaluations: int


def maxent_irl(P, features, trajectories, start, gamma: float, l2: float = 0.01,
               max_steps: int = 200) -> IRLResult:
    """Maximum-entropy IRL with known dynamics: maximise the dual g(theta) with L-BFGS.

    Parameters
    ----------
    P : (S, A, S) transition tensor (known dynamics)
    features : (S, K) state features; reward r = features @ theta
    trajectories : int (n, T) expert state sequences
    start : (S,) initial state distribution of the demonstrations
    gamma : float in (0, 1)
    l2 : float >= 0, Gaussian prior on theta (makes the optimum unique)
    max_steps : int, most L-BFGS iterations

    Returns
    -------
    IRLResult
    """
    P = ensure_array("P", P, ndim=3)
    phi = ensure_array("features", features, ndim=2)
    if phi.shape[0] != P.shape[0]:
        raise ValueError(f"features must have one row per state ({P.shape[0]}), got {phi.shape[0]}")
    gamma = ensure_float("gamma", gamma, 0.0, 1.0, low_open=True, high_open=True)
    l2 = ensure_float("l2", l2, 0.0)
    max_steps = ensure_int("max_steps", max_steps, 1, 10_000)
    return fit_reward(P, phi, feature_expectations(trajectories, phi, gamma), start, gamma, l2, max_steps)


def fit_reward(P, features, expert_features, start, gamma: float, l2: float = 0.01, max_steps: int = 200) -> IRLResult:
    """:func:`maxent_irl` from the expert's discounted feature counts mu_E directly (e.g. exact ones)."""
    P = ensure_array("P", P, ndim=3)
    phi = ensure_array("features", features, ndim=2)
    mu_E = ensure_array("expert_features", expert_features, ndim=1)
    gamma = ensure_float("gamma", gamma, 0.0, 1.0, low_open=True, high_open=True)
    l2 = ensure_float("l2", l2, 0.0)
    max_steps = ensure_int("max_steps", max_steps, 1, 10_000)
    start = ensure_array("start", start, ndim=1)
    warm = {"V": None, "n": 0}

    def negative_dual(theta):
        g, grad, warm["V"] = maxent_dual(theta, P, phi, mu_E, start, gamma, l2, V0=warm["V"])
        warm["n"] += 1
        return -g, -grad

    res = minimize(negative_dual, np.zeros(phi.shape[1]), jac=True, method="L-BFGS-B",
                   options={"maxiter": max_steps, "gtol": 1e-9, "ftol": 1e-14})
    theta = res.x
    _, _, pi = soft_value_iteration(P, phi @ theta, gamma, tol=1e-10, V0=warm["V"])
    D = discounted_occupancy(P, pi, start, gamma)
    return IRLResult(theta, phi @ theta, pi, D, mu_E, phi.T @ D, warm["n"])


def run_experiment(n_demos: int = 50, gamma: float = 0.9, noise: float = 0.25, seed: int = 0) -> dict:
    """Demonstrations from a noisy optimal expert on the lesson world, then MaxEnt IRL.

    Returns a dict with the world, the true reward, the IRL result, the expert's
    empirical visitation and the learner's visitation (both normalised to sum to 1).
    """
    n_demos = ensure_int("n_demos", n_demos, 1, 10_000)
    gamma = ensure_float("gamma", gamma, 0.0, 1.0, low_open=True, high_open=True)
    seed = ensure_int("seed", seed, 0)
    world = make_gridworld()
    phi = world.features()
    r_true = phi @ true_theta(world)
    start = world.start_distribution()
    pi_E = expert_policy(world, r_true, gamma, noise)
    horizon = demo_horizon(gamma)
    demos = rollouts(world.P, pi_E, start, n_demos, horizon, np.random.default_rng(seed))
    result = maxent_irl(world.P, phi, demos, start, gamma)
    weights = gamma ** np.arange(horizon)
    expert_visits = np.bincount(demos.ravel(), weights=np.tile(weights, n_demos), minlength=world.n_states)
    return {
        "world": world, "true_reward": r_true, "result": result, "demos": demos,
        "expert_visitation": expert_visits / expert_visits.sum(),
        "learner_visitation": result.visitation / result.visitation.sum(),
    }


def centred(x) -> np.ndarray:
    """Reward up to the constant MaxEnt IRL cannot identify (features sum to 1 per state): subtract the mean."""
    x = ensure_array("x", x, ndim=1, min_len=1)
    return x - x.mean()


def plot_irl(n_demos: int, gamma: float, noise: float) -> plt.Figure:
    """Widget: true vs recovered reward maps, and expert vs learner visitation."""
    n_demos = ensure_int("n_demos", n_demos, *N_DEMOS_RANGE)
    gamma = ensure_float("gamma", gamma, GAMMA_RANGE[0], GAMMA_RANGE[1])
    noise = ensure_float("noise", noise, NOISE_RANGE[0], NOISE_RANGE[1])
    out = run_experiment(n_demos, gamma, noise)
    world, res = out["world"], out["result"]
    tv = 0.5 * np.abs(out["expert_visitation"] - out["learner_visitation"]).sum()
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.4))
    draw_grid(axes[0], world, centred(out["true_reward"]), cmap="RdYlGn", title="true reward (centred)")
    draw_grid(axes[1], world, centred(res.reward), cmap="RdYlGn", title="recovered reward (centred)")
    vmax = max(out["expert_visitation"].max(), out["learner_visitation"].max())
    draw_grid(axes[2], world, out["expert_visitation"], cmap="Blues", vmin=0, vmax=vmax,
              title=f"expert visitation ({n_demos} demos)", annotate=False)
    draw_grid(axes[3], world, out["learner_visitation"], cmap="Blues", vmin=0, vmax=vmax,
              title=f"learner visitation (TV distance {tv:.3f})", annotate=False)
    fig.suptitle(f"MaxEnt IRL: gamma {gamma:.2f}, demonstrator noise {noise:.2f}", fontsize=11)
    fig.tight_layout()
    return fig


def irl_widget():
    """Lesson 06's widget: demonstrations (:data:`N_DEMOS_RANGE`), discount (:data:`GAMMA_RANGE`) and
    demonstrator noise (:data:`NOISE_RANGE`) redrawing :func:`plot_irl`.

    Returns
    -------
    ipywidgets.VBox
        From :func:`labkit.ui.interactive_figure`, showing 50 demonstrations, gamma 0.9, noise 0.25.
    """
    return interactive_figure(
        plot_irl,
        n_demos=int_slider("demonstrations", *N_DEMOS_RANGE, 50),
        gamma=float_slider("discount", *GAMMA_RANGE, 0.9),
        noise=float_slider("demonstrator noise", *NOISE_RANGE, 0.25),
    )


__all__ = [
    "IRL_LAYOUT", "TRUE_THETA", "make_gridworld", "true_theta", "feature_expectations",
    "maxent_gradient", "maxent_dual", "maxent_gradient_ascent", "fit_reward", "expert_policy", "demo_horizon", "IRLResult", "maxent_irl", "run_experiment",
    "centred", "plot_irl", "N_DEMOS_RANGE", "GAMMA_RANGE", "NOISE_RANGE", "irl_widget",
]
