"""Lesson 02: specification gaming and Goodhart's law in a gridworld.

"When a measure becomes a target, it ceases to be a good measure" (Goodhart
1975, in Strathern's 1997 wording). We show it with an agent, not a drawn curve:

- The designer wants the agent at the goal ``G`` (true reward 1 per step).
- The reward the agent is *trained* on (the proxy) also pays at the sensor
  cell ``B``, where, like the bucket in the tomato-watering gridworld of
  Leike et al. (2017), the agent fools the sensor: proxy pays ``1 + bonus``
  per step, the true reward is ``B_TRUE`` (a small harm).
- Optimisation pressure is the planning horizon: the greedy policy after
  ``k`` value-iteration backups plans ``k`` steps ahead. Weak optimisers find
  the nearby goal (proxy and true agree); strong ones find the far-away
  exploit (proxy up, true down). The drop is a step: a phase transition in
  the sense of Pan, Bhatia and Steinhardt (2022), not the smooth KL-indexed
  curve of Gao, Schulman and Hilton (2022).

Returns are computed exactly (linear solve), not sampled, and reported per
step, (1 - gamma) * V(start), so 1 means "at the goal from step 0 on".
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from labkit.gridworld import (GridWorld, discounted_occupancy, draw_grid, greedy_path, greedy_policy, policy_evaluation,
                              soft_value_iteration, value_iteration)
from labkit.ui import float_slider, int_slider, interactive_figure
from labkit.validation import ensure_array, ensure_float, ensure_instance, ensure_int

GOODHART_LAYOUT = (
    "S...#....",
    ".##.#.##.",
    ".#G.#.#B.",
    ".#..#.#..",
    ".........",
)
GAMMA = 0.9
B_TRUE = -0.5          # true reward at the sensor cell: a small harm
BONUS_RANGE = (0.0, 3.0, 0.25)   # min, max, step of the widget's mis-specification slider
STEPS_RANGE = (0, 30)            # min, max planning steps (value-iteration backups)


def make_gridworld() -> GridWorld:
    """The lesson's 5 x 9 gridworld (deterministic moves)."""
    return GridWorld.from_layout(GOODHART_LAYOUT)


def true_reward(world: GridWorld) -> np.ndarray:
    """What the designer wants: 1 per step at ``G``, ``B_TRUE`` at the sensor cell ``B``."""
    ensure_instance("world", world, GridWorld)
    return world.reward_from_types({"G": 1.0, "B": B_TRUE})


def proxy_reward(world: GridWorld, bonus: float) -> np.ndarray:
    """What the agent is trained on: agrees with the true reward except at ``B``, where it pays ``1 + bonus``.

    Parameters
    ----------
    bonus : float >= 0
        How much the fooled sensor over-reports; 0 still mis-reports ``B`` as
        being as good as the goal.
    """
    ensure_instance("world", world, GridWorld)
    bonus = ensure_float("bonus", bonus, 0.0, 100.0)
    return world.reward_from_types({"G": 1.0, "B": 1.0 + bonus})


def _check_rewards(world: GridWorld, proxy, true, gamma: float) -> tuple[np.ndarray, np.ndarray, float]:
    """Validated (proxy, true, gamma) for ``world``: one reward entry per state, gamma in [0, 1)."""
    ensure_instance("world", world, GridWorld)
    proxy = ensure_array("proxy", proxy, ndim=1)
    true = ensure_array("true", true, ndim=1)
    if len(proxy) != world.n_states or len(true) != world.n_states:
        raise ValueError(f"proxy and true must have one entry per state ({world.n_states}), got {len(proxy)} and {len(true)}")
    return proxy, true, ensure_float("gamma", gamma, 0.0, 1.0, high_open=True)


def goodhart_curve(world: GridWorld, proxy, true, gamma: float, steps) -> dict[str, np.ndarray]:
    """Proxy and true per-step return of the greedy policy after ``k`` backups, for each ``k`` in ``steps``.

    Parameters
    ----------
    world : GridWorld, with exactly one start cell ``S``
    proxy, true : arrays (S,)
        The reward optimised and the reward that measures success.
    gamma : float in [0, 1)
    steps : array of int >= 0, increasing
        Numbers of value-iteration backups (the optimisation pressure).

    Returns
    -------
    dict with ``steps``, ``proxy`` and ``true`` (arrays of per-step returns from ``S``).
    """
    proxy, true, gamma = _check_rewards(world, proxy, true, gamma)
    steps = ensure_array("steps", steps, ndim=1, dtype=int, min_len=1)
    if (steps < 0).any() or (np.diff(steps) < 0).any() or steps.max() > 10_000:
        raise ValueError("steps must be non-decreasing integers in [0, 10000]")
    start = int(world.cells("S")[0])
    P = world.P
    V = np.zeros(world.n_states)
    Q = np.repeat(proxy[:, None], world.n_actions, axis=1)   # zero backups: Q = r
    done = 0
    out_proxy, out_true = [], []
    for k in steps:
        while done < k:                                      # incremental backups, shared across k
            Q = proxy[:, None] + gamma * P @ V
            V = Q.max(axis=1)
            done += 1
        pi = greedy_policy(Q)
        out_proxy.append((1 - gamma) * policy_evaluation(P, proxy, pi, gamma)[start])
        out_true.append((1 - gamma) * policy_evaluation(P, true, pi, gamma)[start])
    return {"steps": steps, "proxy": np.array(out_proxy) + 0.0, "true": np.array(out_true) + 0.0}


def kl_regularised_curve(world: GridWorld, proxy, true, gamma: float, temperatures) -> dict[str, np.ndarray]:
    """A smooth optimiser: the KL-regularised optimum of the proxy at each temperature.

    At temperature T the policy maximises E[sum_t gamma^t (proxy(s_t) - T KL(pi(.|s_t) || uniform))],
    whose solution is the soft-optimal policy of :func:`labkit.gridworld.soft_value_iteration`
    at temperature T: T large stays at the uniform random base policy, T -> 0
    becomes the greedy optimum. Optimisation pressure is measured as in Gao et
    al. (2022) by the distance from the base policy: here the per-step KL,
    averaged over the policy's normalised discounted state visitation from ``S``.

    Parameters
    ----------
    world : GridWorld, with exactly one start cell ``S``
    proxy, true : arrays (S,)
    gamma : float in [0, 1)
    temperatures : array of float > 0

    Returns
    -------
    dict with ``temperature``, ``kl``, ``proxy`` and ``true`` (per-step returns from ``S``).
    """
    proxy, true, gamma = _check_rewards(world, proxy, true, gamma)
    temperatures = ensure_array("temperatures", temperatures, ndim=1, min_len=1)
    if (temperatures <= 0).any():
        raise ValueError("temperatures must be > 0")
    start = np.zeros(world.n_states)
    start[int(world.cells("S")[0])] = 1.0
    kls, out_proxy, out_true = [], [], []
    for temperature in temperatures:
        _, _, pi = soft_value_iteration(world.P, proxy, gamma, temperature=float(temperature), tol=1e-10)
        visits = (1 - gamma) * discounted_occupancy(world.P, pi, start, gamma)
        log_ratio = np.log(np.clip(pi, 1e-300, None) * world.n_actions)   # log(pi / uniform)
        kls.append(float(visits @ (pi * log_ratio).sum(axis=1)))
        out_proxy.append((1 - gamma) * float(start @ policy_evaluation(world.P, proxy, pi, gamma)))
        out_true.append((1 - gamma) * float(start @ policy_evaluation(world.P, true, pi, gamma)))
    return {"temperature": temperatures, "kl": np.array(kls), "proxy": np.array(out_proxy), "true": np.array(out_true)}


def gaming_threshold(world: GridWorld, gamma: float = GAMMA) -> float:
    """Smallest proxy bonus at which the fully optimised agent prefers ``B`` to ``G``.

    With deterministic moves, staying at a cell worth ``v`` from step ``d`` on
    is worth gamma^d v / (1 - gamma); the exploit wins once
    gamma^d_B (1 + bonus) > gamma^d_G, i.e. bonus > gamma^(d_G - d_B) - 1.

    Parameters
    ----------
    world : GridWorld with cells ``S``, ``G`` and ``B``
    gamma : float in (0, 1)
    """
    ensure_instance("world", world, GridWorld)
    gamma = ensure_float("gamma", gamma, 0.0, 1.0, low_open=True, high_open=True)
    dist = _distances(world)
    d_goal, d_b = dist[world.cells("G")[0]], dist[world.cells("B")[0]]
    return float(gamma ** (d_goal - d_b) - 1.0)


def _distances(world: GridWorld) -> np.ndarray:
    """Shortest number of moves from ``S`` to every cell (breadth-first search on P)."""
    start = int(world.cells("S")[0])
    dist = np.full(world.n_states, np.inf)
    dist[start] = 0
    frontier = [start]
    while frontier:
        nxt = []
        for s in frontier:
            for t in np.flatnonzero(world.P[s].max(axis=0) > 0):
                if dist[t] == np.inf:
                    dist[t] = dist[s] + 1
                    nxt.append(int(t))
        frontier = nxt
    return dist


def plot_goodhart(bonus: float, steps: int) -> plt.Figure:
    """Widget: proxy vs true return over optimisation pressure, and the path the agent takes at ``steps``."""
    bonus = ensure_float("bonus", bonus, BONUS_RANGE[0], BONUS_RANGE[1])
    steps = ensure_int("steps", steps, *STEPS_RANGE)
    world = make_gridworld()
    proxy, true = proxy_reward(world, bonus), true_reward(world)
    ks = np.arange(STEPS_RANGE[0], STEPS_RANGE[1] + 1)
    curve = goodhart_curve(world, proxy, true, GAMMA, ks)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.6), gridspec_kw={"width_ratios": [1.1, 1]})
    ax1.plot(ks, curve["proxy"], color="tab:orange", marker=".", label="proxy return (what is optimised)")
    ax1.plot(ks, curve["true"], color="tab:green", marker=".", label="true return (what we wanted)")
    ax1.axvline(steps, color="k", ls=":", lw=1)
    ax1.set(xlabel="optimisation pressure: value-iteration steps (planning horizon)",
            ylabel="return per step", title=f"proxy bonus at B = {bonus:.2f}", ylim=(-0.6, 1.6))
    ax1.legend(loc="upper left", fontsize=8)
    _, Q = value_iteration(world.P, proxy, GAMMA, steps=steps)
    path = greedy_path(world, greedy_policy(Q), int(world.cells("S")[0]), 16)
    draw_grid(ax2, world, proxy, cmap="Oranges", path=path,
              title=f"proxy reward and the agent's path after {steps} steps")
    fig.tight_layout()
    return fig


def goodhart_widget():
    """Lesson 02's widget: the proxy bonus (:data:`BONUS_RANGE`) and optimisation steps (:data:`STEPS_RANGE`)
    redrawing :func:`plot_goodhart`.

    Returns
    -------
    ipywidgets.VBox
        From :func:`labkit.ui.interactive_figure`, showing bonus 1.5 after 20 steps.
    """
    return interactive_figure(
        plot_goodhart,
        bonus=float_slider("proxy bonus at B", *BONUS_RANGE, 1.5),
        steps=int_slider("optimisation steps", *STEPS_RANGE, 20),
    )


__all__ = [
    "GOODHART_LAYOUT", "GAMMA", "B_TRUE", "make_gridworld", "true_reward", "proxy_reward",
    "goodhart_curve", "kl_regularised_curve", "gaming_threshold", "plot_goodhart", "BONUS_RANGE", "STEPS_RANGE", "goodhart_widget",
]
