"""Lesson 07: constrained optimisation, KKT conditions, and Lagrangian CMDPs.

Part 1, a static problem: minimise f(x) subject to g_i(x) <= 0. At a local
optimum x* (under a constraint qualification) there are multipliers
lambda >= 0 with (Karush 1939; Kuhn and Tucker 1951; Nocedal and Wright 2006,
Thm 12.1)

    stationarity       grad f(x*) + sum_i lambda_i grad g_i(x*) = 0
    primal feasibility g_i(x*) <= 0
    dual feasibility   lambda_i >= 0
    complementarity    lambda_i g_i(x*) = 0.

:func:`solve_slsqp` solves with SciPy's SLSQP (Kraft 1988) and
:func:`kkt_residuals` measures how far a point is from satisfying all four.
Note SciPy's convention: an ``"ineq"`` constraint means ``fun(x) >= 0``; we
write constraints as g(x) <= 0 and pass ``-g`` to SciPy.

Part 2, a constrained MDP (Altman 1999): maximise the discounted reward
J_r(pi) subject to the discounted cost J_c(pi) <= d.

- :func:`cmdp_lp` solves it exactly as a linear programme over discounted
  occupancy measures rho(s, a) (Altman 1999, Thm 3.3).
- :func:`lagrangian_primal_dual` is the Lagrangian method of Ray, Achiam and
  Amodei (2019): the policy best-responds to r - lambda c (here by soft value
  iteration, a small entropy term keeps the response continuous in lambda),
  and the multiplier follows projected gradient ascent,
  lambda <- max(0, lambda + lr (J_c - d)).
"""
from __future__ import annotations

from typing import Callable

import matplotlib.pyplot as plt
import numpy as np
from scipy.optimize import linprog, minimize, nnls

from labkit.gridworld import GridWorld, discounted_occupancy, draw_grid, policy_evaluation, soft_value_iteration
from labkit.ui import float_slider, interactive_figure
from labkit.validation import ensure_array, ensure_float, ensure_int, ensure_transitions

# ---------------------------------------------------------------- part 1: KKT


def kkt_residuals(grad_f, jac_g, g, lam) -> dict[str, float]:
    """How far (x, lambda) is from a KKT point of  min f(x)  s.t.  g(x) <= 0.

    Parameters
    ----------
    grad_f : array (n,), the objective's gradient at x
    jac_g : array (m, n), row i is grad g_i(x)
    g : array (m,), constraint values g_i(x)
    lam : array (m,), the multipliers

    Returns
    -------
    dict of float, each 0 at an exact KKT point:
    ``stationarity`` = max |grad f + J^T lambda|, ``primal`` = max(0, max_i g_i),
    ``dual`` = max(0, max_i -lambda_i), ``complementarity`` = max_i |lambda_i g_i|.
    """
    grad_f = ensure_array("grad_f", grad_f, ndim=1, min_len=1)
    jac_g = ensure_array("jac_g", jac_g, ndim=2)
    g = ensure_array("g", g, ndim=1)
    lam = ensure_array("lam", lam, ndim=1)
    m, n = g.shape[0], grad_f.shape[0]
    if jac_g.shape != (m, n):
        raise ValueError(f"jac_g must have shape (len(g), len(grad_f)) = {(m, n)}, got {jac_g.shape}")
    if lam.shape[0] != m:
        raise ValueError(f"lam must have one entry per constraint ({m}), got {lam.shape[0]}")
    stationarity = grad_f + jac_g.T @ lam
    return {
        "stationarity": float(np.abs(stationarity).max()),
        "primal": float(max(0.0, g.max())) if m else 0.0,
        "dual": float(max(0.0, (-lam).max())) if m else 0.0,
        "complementarity": float(np.abs(lam * g).max()) if m else 0.0,
    }


def solve_slsqp(
    f: Callable, grad_f: Callable, g: Callable, jac_g: Callable, x0, active_tol: float = 1e-6,
) -> dict:
    """Minimise f(x) subject to g(x) <= 0 with SLSQP, and recover the multipliers.

    The multipliers come from the stationarity condition restricted to the
    active constraints (g_i > -active_tol): non-negative least squares,
    min_{lambda >= 0} |grad f + J_A^T lambda| (inactive constraints get 0).

    Returns
    -------
    dict with ``x``, ``fun``, ``lam``, ``success``, ``message`` and ``kkt`` (:func:`kkt_residuals`).
    """
    for name, fn in (("f", f), ("grad_f", grad_f), ("g", g), ("jac_g", jac_g)):
        if not callable(fn):
            raise TypeError(f"{name} must be callable, got {type(fn).__name__}")
    x0 = ensure_array("x0", x0, ndim=1, min_len=1)
    active_tol = ensure_float("active_tol", active_tol, 0.0, low_open=True)
    res = minimize(
        f, x0, jac=grad_f, method="SLSQP",
        constraints=[{"type": "ineq", "fun": lambda x: -np.asarray(g(x)), "jac": lambda x: -np.asarray(jac_g(x))}],
        options={"ftol": 1e-12, "maxiter": 500},
    )
    x = res.x
    G, J, df = np.asarray(g(x), dtype=float), np.atleast_2d(np.asarray(jac_g(x), dtype=float)), np.asarray(grad_f(x))
    lam = np.zeros(G.shape[0])
    active = G > -active_tol
    if active.any():
        lam[active], _ = nnls(J[active].T, -df)
    return {"x": x, "fun": float(res.fun), "lam": lam, "success": bool(res.success), "message": str(res.message),
            "kkt": kkt_residuals(df, J, G, lam)}


# The lesson's well-posed version of the slide's problem: allocate effort x_i >= 0 to
# three capabilities, with diminishing returns a_i log(1 + x_i) and a total risk
# sum_i risk_i x_i that must stay within a budget.
UTILITY = np.array([3.0, 2.0, 1.0])
RISK = np.array([1.0, 2.0, 0.5])


def _check_allocation(budget, utility, risk) -> tuple[float, np.ndarray, np.ndarray]:
    budget = ensure_float("budget", budget, 0.0)
    a = ensure_array("utility", utility, ndim=1, min_len=1)
    q = ensure_array("risk", risk, ndim=1, min_len=1)
    if a.shape != q.shape:
        raise ValueError(f"utility and risk must have the same length, got {a.shape[0]} and {q.shape[0]}")
    if (a <= 0).any():
        raise ValueError("utility must be positive (each a_i > 0)")
    if (q <= 0).any():
        # a zero or negative risk makes that capability free: the maximum is unbounded
        raise ValueError("risk must be positive (each risk_i > 0); with risk_i <= 0 the problem is unbounded")
    return budget, a, q


def allocation_problem(budget: float = 2.0, utility=UTILITY, risk=RISK) -> dict[str, Callable]:
    """f, grad_f, g, jac_g for  max sum a_i log(1 + x_i)  s.t.  risk . x <= budget, x >= 0 (as a minimisation)."""
    budget, a, q = _check_allocation(budget, utility, risk)
    n = a.shape[0]
    return {
        "f": lambda x: -float(a @ np.log1p(x)),
        "grad_f": lambda x: -a / (1 + x),
        "g": lambda x: np.concatenate([[q @ x - budget], -x]),       # risk budget, then x_i >= 0
        "jac_g": lambda x: np.vstack([q[None, :], -np.eye(n)]),
    }


def allocation_closed_form(budget: float = 2.0, utility=UTILITY, risk=RISK) -> tuple[np.ndarray, float]:
    """Exact optimum of :func:`allocation_problem` by water-filling: x_i = max(0, a_i / (nu q_i) - 1).

    From stationarity a_i / (1 + x_i) = nu q_i on the support; nu is found by
    bisection so that the budget binds. Returns ``(x, nu)``.
    """
    budget, a, q = _check_allocation(budget, utility, risk)
    spend = lambda nu: float(q @ np.maximum(0.0, a / (nu * q) - 1))  # noqa: E731, decreasing in nu
    lo, hi = 1e-12, float((a / q).max())  # at nu = max a/q nothing is allocated
    if budget == 0:
        return np.zeros_like(a), hi
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if spend(mid) > budget else (lo, mid)
    nu = 0.5 * (lo + hi)
    return np.maximum(0.0, a / (nu * q) - 1), nu


# ---------------------------------------------------------------- part 2: CMDP

CMDP_LAYOUT = (
    ".......",
    ".#####.",
    "S.HHH.G",
    ".#####.",
    ".......",
)
CMDP_GAMMA = 0.9
BUDGET_RANGE = (0.0, 2.0, 0.05)


def make_cmdp() -> tuple[GridWorld, np.ndarray, np.ndarray, np.ndarray]:
    """The lesson's CMDP: reward 1 per step at G, cost 1 per step on hazard H; start at S.

    Returns ``(world, reward, cost, start)``.
    """
    world = GridWorld.from_layout(CMDP_LAYOUT)
    return (world, world.reward_from_types({"G": 1.0}), world.reward_from_types({"H": 1.0}),
            world.start_distribution("S"))


def _check_cmdp(P, r, c, start, gamma, budget):
    P = ensure_transitions("P", P)
    S = P.shape[0]
    r, c, start = (ensure_array(n, v, ndim=1) for n, v in (("r", r), ("c", c), ("start", start)))
    for name, v in (("r", r), ("c", c), ("start", start)):
        if v.shape[0] != S:
            raise ValueError(f"{name} must have one entry per state ({S}), got {v.shape[0]}")
    if (start < 0).any() or not np.isclose(start.sum(), 1.0):
        raise ValueError("start must be a probability vector")
    gamma = ensure_float("gamma", gamma, 0.0, 1.0, high_open=True)
    budget = ensure_float("budget", budget, 0.0)
    return P, r, c, start, gamma, budget


def cmdp_lp(P, r, c, start, gamma: float, budget: float) -> dict:
    """Exact CMDP optimum by linear programming over occupancy measures (Altman 1999, Thm 3.3).

    max_rho sum_{s,a} rho(s,a) r(s)  s.t.
    sum_a rho(s',a) - gamma sum_{s,a} P(s'|s,a) rho(s,a) = p0(s')  (flow conservation),
    sum_{s,a} rho(s,a) c(s) <= budget,  rho >= 0.

    Returns
    -------
    dict with ``reward`` and ``cost`` (discounted sums J_r, J_c), ``policy``
    (S, A) = rho normalised per state (uniform where rho is 0), ``occupancy``
    rho (S, A), and ``feasible``.
    """
    P, r, c, start, gamma, budget = _check_cmdp(P, r, c, start, gamma, budget)
    S, A, _ = P.shape
    # Flow matrix: row s', column (s, a): [s == s'] - gamma P(s'|s,a).
    flow = np.repeat(np.eye(S), A, axis=1) - gamma * P.reshape(S * A, S).T
    res = linprog(-np.repeat(r, A), A_ub=np.repeat(c, A)[None, :], b_ub=[budget],
                  A_eq=flow, b_eq=start, bounds=(0, None), method="highs")
    if res.status != 0:
        return {"feasible": False, "reward": np.nan, "cost": np.nan, "policy": None, "occupancy": None}
    rho = np.maximum(res.x.reshape(S, A), 0.0)
    total = rho.sum(axis=1, keepdims=True)
    policy = np.where(total > 1e-12, rho / np.where(total > 0, total, 1.0), 1.0 / A)
    return {"feasible": True, "reward": float(rho.sum(axis=1) @ r), "cost": float(rho.sum(axis=1) @ c),
            "policy": policy, "occupancy": rho}


def dual_update(lam: float, cost: float, budget: float, lr: float) -> float:
    """Projected gradient ascent on the multiplier: max(0, lam + lr (cost - budget)) (Ray et al. 2019)."""
    lam = ensure_float("lam", lam, 0.0)
    cost = ensure_float("cost", cost)
    budget = ensure_float("budget", budget, 0.0)
    lr = ensure_float("lr", lr, 0.0, low_open=True)
    return max(0.0, lam + lr * (cost - budget))


def lagrangian_primal_dual(P, r, c, start, gamma: float, budget: float, lr: float = 0.05,
                           steps: int = 150, temperature: float = 0.05) -> dict[str, np.ndarray]:
    """The Lagrangian primal-dual method for a CMDP.

    Each iteration: the policy is the soft-optimal policy (temperature
    ``temperature``) for the Lagrangian reward r - lambda c; J_r and J_c are
    evaluated exactly; then :func:`dual_update`.

    Returns
    -------
    dict of arrays over iterations: ``reward``, ``cost``, ``lam`` (the multiplier
    used at that iteration), and ``policy``, the last policy.
    """
    P, r, c, start, gamma, budget = _check_cmdp(P, r, c, start, gamma, budget)
    lr = ensure_float("lr", lr, 0.0, low_open=True)
    steps = ensure_int("steps", steps, 1, 100_000)
    temperature = ensure_float("temperature", temperature, 0.0, low_open=True)
    lam, V = 0.0, None
    rewards, costs, lams = [], [], []
    for _ in range(steps):
        V, _, pi = soft_value_iteration(P, r - lam * c, gamma, temperature=temperature, tol=1e-9, V0=V)
        J_r = float(start @ policy_evaluation(P, r, pi, gamma))
        J_c = float(start @ policy_evaluation(P, c, pi, gamma))
        rewards.append(J_r)
        costs.append(J_c)
        lams.append(lam)
        lam = dual_update(lam, J_c, budget, lr)
    return {"reward": np.array(rewards), "cost": np.array(costs), "lam": np.array(lams), "policy": pi}


def plot_cmdp(budget: float) -> plt.Figure:
    """Widget: primal-dual reward, cost and multiplier over iterations for cost budget ``budget``, with the LP optimum."""
    budget = ensure_float("budget", budget, BUDGET_RANGE[0], BUDGET_RANGE[1])
    world, r, c, start = make_cmdp()
    hist = lagrangian_primal_dual(world.P, r, c, start, CMDP_GAMMA, budget)
    lp = cmdp_lp(world.P, r, c, start, CMDP_GAMMA, budget)
    it = np.arange(len(hist["reward"]))
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.3))
    axes[0].plot(it, hist["reward"], color="tab:green", label="primal-dual")
    axes[0].axhline(lp["reward"], color="k", ls="--", lw=1, label="LP optimum")
    axes[0].set(title="reward J_r", xlabel="iteration")
    axes[0].legend(fontsize=8)
    axes[1].plot(it, hist["cost"], color="tab:red")
    axes[1].axhline(budget, color="k", ls="--", lw=1, label=f"budget d = {budget:.2f}")
    axes[1].set(title="cost J_c", xlabel="iteration")
    axes[1].legend(fontsize=8)
    axes[2].plot(it, hist["lam"], color="tab:purple")
    axes[2].set(title="multiplier lambda", xlabel="iteration")
    occupancy = discounted_occupancy(world.P, hist["policy"], start, CMDP_GAMMA)
    draw_grid(axes[3], world, occupancy, cmap="Blues", title="final policy's discounted visits")
    fig.tight_layout()
    return fig


def cmdp_widget():
    """Lesson 07's widget: the cost budget (:data:`BUDGET_RANGE`) redrawing :func:`plot_cmdp`.

    Returns
    -------
    ipywidgets.VBox
        From :func:`labkit.ui.interactive_figure`, showing budget 0.8.
    """
    return interactive_figure(plot_cmdp, budget=float_slider("cost budget d", *BUDGET_RANGE, 0.8))


__all__ = [
    "kkt_residuals", "solve_slsqp", "allocation_problem", "allocation_closed_form", "UTILITY", "RISK",
    "CMDP_LAYOUT", "CMDP_GAMMA", "make_cmdp", "cmdp_lp", "dual_update", "lagrangian_primal_dual",
    "BUDGET_RANGE", "plot_cmdp", "cmdp_widget",
]
