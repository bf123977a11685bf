# %% [markdown]
# # 07 · Constrained optimization: KKT conditions and Lagrangian CMDPs
#
# "Maximise performance, but stay within a safety budget" is a constrained
# optimisation problem. This lesson does it twice: for a small static problem
# solved with SciPy, where we verify the optimality (KKT) conditions by
# computation, and for a **constrained MDP**, where an agent must maximise reward
# while keeping its expected cost under a budget, solved with the Lagrangian
# primal-dual method used for safe RL.
#
# **In this lesson you will**
# 1. run the slide's SLSQP example and find why its constraint does the opposite of its comment;
# 2. check the four KKT conditions numerically (exercise) on a well-posed problem;
# 3. solve a constrained gridworld exactly with a linear programme (Altman 1999);
# 4. implement the multiplier update and the whole primal-dual loop (exercises) and watch reward, cost and the
#    multiplier of the Lagrangian method (Ray et al. 2019) converge to the exact optimum.

# %%
import warnings

import matplotlib.pyplot as plt
import numpy as np
from scipy.optimize import minimize

import labkit
from labkit import constrained, gridworld
from labkit.exercises import card, check

device = labkit.setup(seed=0)

# %% [markdown]
# ## 1. The slide's approach
#
# The slide maximises $\sum_i x_i^2$ "subject to $\sum_i x_i \le 1$" with SLSQP,
# starting from $(0.5, 0.5)$. The same program, with the solver's warnings
# silenced so we see what a reader of its output sees:

# %%
def slide_objective(x):
    return -np.sum(x**2)          # maximise the sum of squares

def slide_constraint(x):
    return np.sum(x) - 1          # comment on the slide: "sum of elements must be <= 1"

with warnings.catch_warnings(), np.errstate(all="ignore"):
    warnings.simplefilter("ignore")
    slide = minimize(slide_objective, np.array([0.5, 0.5]), method="SLSQP",
                     constraints=[{"type": "ineq", "fun": slide_constraint}])
print("'Optimal solution':", slide.x)
print("'Objective value' :", -slide.fun)
print("'Constraint satisfaction':", slide_constraint(slide.x) <= 0)
print("solver status:", slide.status, "-", slide.message, "| success:", slide.success)

# %% [markdown]
# ### Bug hunt
#
# **Bug 1 (silent): the constraint points the wrong way.** In SciPy an
# `"ineq"` constraint means `fun(x) >= 0`. So `np.sum(x) - 1` enforces
# $\sum x \ge 1$, the opposite of the comment. The solver happily walks along
# $x_1 = x_2 \to \infty$, which satisfies *its* constraint:

# %%
print(f"sum of the slide's 'solution': {slide.x.sum():.3e}  (>= 1, as SciPy was told)")

# %% [markdown]
# **Bug 2 (silent): the objective is unbounded either way.** Maximising
# $\sum x_i^2$ has no solution under $\sum x \ge 1$ (go to $+\infty$) *nor* under
# $\sum x \le 1$ (go to $-\infty$). With the constraint turned the way the
# comment meant, SLSQP reports success at the start point, which is only a
# first-order stationary point, and the *worst* point on the boundary:

# %%
fixed_sign = minimize(slide_objective, np.array([0.5, 0.5]), method="SLSQP",
                      constraints=[{"type": "ineq", "fun": lambda x: 1 - np.sum(x)}])
print("with sum(x) <= 1:", fixed_sign.x, "objective", f"{-fixed_sign.fun:.3f}", "success:", fixed_sign.success)
print("but the feasible point (-10, -10) scores", f"{-slide_objective(np.array([-10.0, -10.0])):.1f}")

# %% [markdown]
# **Bug 3 (silent): the check contradicts the solver, and failure is not
# checked.** The last line tests `<= 0`, the comment's convention, not the one
# given to SciPy, so it can print `False` for a point the solver considers
# feasible; and the program prints an "Optimal solution" without looking at
# `result.success` (here: status 5, failure). Always check `success` and verify
# optimality yourself, which is what the KKT conditions are for.
#
# ## 2. The KKT conditions, checked numerically
#
# For $\min f(x)$ subject to $g_i(x) \le 0$, a (regular) local optimum $x^*$ has
# multipliers $\lambda \ge 0$ with (Karush 1939; Kuhn and Tucker 1951;
# Nocedal and Wright 2006, Thm 12.1):
#
# | condition | formula |
# |---|---|
# | stationarity | $\nabla f(x^*) + \sum_i \lambda_i \nabla g_i(x^*) = 0$ |
# | primal feasibility | $g_i(x^*) \le 0$ |
# | dual feasibility | $\lambda_i \ge 0$ |
# | complementary slackness | $\lambda_i\, g_i(x^*) = 0$ |
#
# Each gives a residual that is 0 at a KKT point: $\max|\nabla f + J^\top\lambda|$,
# $\max(0, \max_i g_i)$, $\max(0, \max_i -\lambda_i)$, $\max_i |\lambda_i g_i|$.

# %%
card("07.kkt_residuals")

# %% [markdown]
# Write `kkt_residuals(grad_f, jac_g, g, lam)` returning a dict with keys
# `"stationarity"`, `"primal"`, `"dual"`, `"complementarity"` (floats).
# `jac_g` has shape `(m, n)` (row $i$ is $\nabla g_i$). With no constraints
# ($m = 0$) the last three are 0. Raise `ValueError` if `lam` and `g` differ in length.

# %%
def kkt_residuals(grad_f, jac_g, g, lam):
    ### BEGIN SOLUTION
    grad_f, jac_g, g, lam = (np.asarray(v, dtype=float) for v in (grad_f, jac_g, g, lam))
    if lam.shape != g.shape:
        raise ValueError("lam and g must have the same length")
    m = len(g)
    return {
        "stationarity": float(np.abs(grad_f + jac_g.T @ lam).max()),
        "primal": float(max(0.0, g.max())) if m else 0.0,
        "dual": float(max(0.0, (-lam).max())) if m else 0.0,
        "complementarity": float(np.abs(lam * g).max()) if m else 0.0,
    }
    ### END SOLUTION

# %%
check("07.kkt_residuals", kkt_residuals)

# %% [markdown]
# ### A well-posed version of the slide's problem
#
# Spend effort $x_i \ge 0$ on three capabilities with diminishing returns
# $\sum_i a_i \log(1 + x_i)$, $a = (3, 2, 1)$. Each unit of effort adds risk
# $q = (1, 2, 0.5)$, and the total risk $q\cdot x$ must stay within a budget of 2.
# The objective is concave and the constraints linear, so the KKT point is the
# global optimum. It also has a closed form ("water-filling": $x_i = \max(0,
# a_i/(\nu q_i) - 1)$), which we use to check SLSQP.

# %%
problem = constrained.allocation_problem(budget=2.0)
sol = constrained.solve_slsqp(**problem, x0=np.zeros(3))
x_exact, nu_exact = constrained.allocation_closed_form(2.0)
print("SLSQP success:", sol["success"])
print("x (SLSQP)        :", np.round(sol["x"], 4) + 0.0)
print("x (water-filling):", np.round(x_exact, 4))
print("multipliers [risk budget, x1>=0, x2>=0, x3>=0]:", np.round(sol["lam"], 4))
print(f"risk-budget multiplier, closed form: {nu_exact:.4f} (= 8/7)")
for name, value in sol["kkt"].items():
    print(f"KKT {name:<16} residual {value:.1e}")

# %% [markdown]
# All four residuals are below 1e-7 (stationarity holds to SLSQP's tolerance, the rest to rounding error). Capability 2 gets
# nothing: its marginal utility per unit of risk, $a_2/q_2 = 1$, is below the
# multiplier $\nu = 8/7$, and its bound $x_2 \ge 0$ is active with multiplier
# $0.286$. The multiplier of the risk budget is its **shadow price**: how much
# optimal utility one more unit of allowed risk buys. We check that by a finite
# difference:

# %%
budgets = np.linspace(0.25, 6, 24)
utility = np.array([-constrained.solve_slsqp(**constrained.allocation_problem(b), x0=np.zeros(3))["fun"] for b in budgets])
allocations = np.array([constrained.allocation_closed_form(b)[0] for b in budgets])
du = (-constrained.solve_slsqp(**constrained.allocation_problem(2.01), x0=np.zeros(3))["fun"]
      + constrained.solve_slsqp(**constrained.allocation_problem(1.99), x0=np.zeros(3))["fun"]) / 0.02
print(f"d(optimal utility)/d(budget) at 2: {du:.4f}   multiplier: {sol['lam'][0]:.4f}")

fig, axes = plt.subplots(1, 2, figsize=(11, 3.3))
axes[0].stackplot(budgets, allocations.T, labels=["capability 1", "capability 2", "capability 3"], alpha=0.8)
axes[0].set(xlabel="risk budget", ylabel="effort x", title="optimal allocation")
axes[0].legend(loc="upper left", fontsize=8)
axes[1].plot(budgets, utility, marker=".")
axes[1].set(xlabel="risk budget", ylabel="optimal utility", title="utility bought by risk (slope = multiplier)")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 3. A constrained MDP
#
# A **constrained MDP** (Altman 1999) adds a cost to an MDP: maximise the
# discounted reward $J_r(\pi)$ subject to the discounted cost $J_c(\pi) \le d$.
# Our gridworld: the agent starts at `S` and earns 1 per step at `G`. The short
# route crosses three hazard cells `H` (cost 1 per step); the long route around
# the walls is safe but 4 steps slower. $\gamma = 0.9$.

# %%
world, reward, cost, start = constrained.make_cmdp()
fig, axes = plt.subplots(1, 2, figsize=(9, 2.6))
gridworld.draw_grid(axes[0], world, reward, cmap="Greens", title="reward")
gridworld.draw_grid(axes[1], world, cost, cmap="Reds", title="cost")
fig.tight_layout()
plt.show()

# %% [markdown]
# **The exact answer: a linear programme.** Write the policy through its
# discounted occupancy $\rho(s,a) = \sum_t \gamma^t \Pr(s_t = s, a_t = a)$. Then
# $J_r$, $J_c$ and the "flow" conservation of $\rho$ are all linear, and the CMDP
# is an LP (Altman 1999, Thm 3.3); the policy is $\pi(a \mid s) \propto \rho(s,a)$.
# Unlike an unconstrained MDP, the optimum may need to **randomise**.

# %%
for d in (0.0, 0.8, 1.5, 2.5):
    lp = constrained.cmdp_lp(world.P, reward, cost, start, constrained.CMDP_GAMMA, d)
    visited = lp["occupancy"].sum(axis=1) > 1e-9
    randomised = int(((lp["policy"][visited] > 1e-7).sum(axis=1) > 1).sum())
    print(f"budget {d:.1f}: J_r = {lp['reward']:.3f}, J_c = {lp['cost']:.3f}, states where the policy randomises: {randomised}")

# %% [markdown]
# With no budget the agent takes the safe route ($J_r = 0.9^{10}/(1-0.9) = 3.487$);
# once the budget covers the whole hazard crossing (about 2.2), it takes the short route.
# In between it **mixes** the two routes at one state, exactly as Altman's theory
# says: an optimal policy needs to randomise in at most as many states as there
# are constraints (one).
#
# **The Lagrangian method.** Deep RL cannot solve an LP over all states, so safe-RL
# methods (Ray, Achiam and Amodei 2019) use the Lagrangian
# $L(\pi, \lambda) = J_r(\pi) - \lambda\,(J_c(\pi) - d)$ and alternate:
#
# * **primal step:** best response of the policy to the reward $r - \lambda c$
#   (labkit: soft value iteration with a small temperature, 0.05, so the response changes
#   continuously with $\lambda$);
# * **dual step:** projected gradient ascent $\lambda \leftarrow \max(0, \lambda + \eta\,(J_c - d))$:
#   the multiplier grows while the constraint is violated and shrinks (never below 0) while there is slack.

# %%
card("07.dual_update")

# %% [markdown]
# Write `dual_update(lam, cost, budget, lr)` returning the new multiplier. Raise
# `ValueError` when `lam < 0` or `lr <= 0`.

# %%
def dual_update(lam, cost, budget, lr):
    ### BEGIN SOLUTION
    if lam < 0 or lr <= 0:
        raise ValueError("need lam >= 0 and lr > 0")
    return max(0.0, lam + lr * (cost - budget))
    ### END SOLUTION

# %%
check("07.dual_update", dual_update)

# %% [markdown]
# Now the whole method. Put the two steps in a loop: start at $\lambda = 0$;
# at each iteration compute the soft-optimal policy for $r - \lambda c$
# (`gridworld.soft_value_iteration(P, r - lam * c, gamma, temperature=temperature,
# tol=1e-9)` returns `(V, Q, policy)`), evaluate it exactly under $r$ and under
# $c$ (`start @ gridworld.policy_evaluation(P, r, policy, gamma)`), record
# $J_r$, $J_c$ and the $\lambda$ that policy used, then take the dual step.

# %%
card("07.primal_dual")

# %% [markdown]
# Write `primal_dual(P, r, c, start, gamma, budget, lr=0.05, steps=150, temperature=0.05)`
# returning a dict with arrays `"reward"`, `"cost"` and `"lam"` (one entry per
# iteration) and `"policy"`, the last policy. Raise `ValueError` when `lr <= 0`.

# %%
from labkit import gridworld

def primal_dual(P, r, c, start, gamma, budget, lr=0.05, steps=150, temperature=0.05):
    ### BEGIN SOLUTION
    if lr <= 0:
        raise ValueError("lr must be > 0")
    lam, V = 0.0, None
    rewards, costs, lams = [], [], []
    for _ in range(steps):
        V, _, policy = gridworld.soft_value_iteration(P, r - lam * c, gamma, temperature=temperature, tol=1e-9, V0=V)
        rewards.append(float(start @ gridworld.policy_evaluation(P, r, policy, gamma)))
        costs.append(float(start @ gridworld.policy_evaluation(P, c, policy, gamma)))
        lams.append(lam)
        lam = dual_update(lam, costs[-1], budget, lr)
    return {"reward": np.array(rewards), "cost": np.array(costs), "lam": np.array(lams), "policy": policy}
    ### END SOLUTION

# %%
check("07.primal_dual", primal_dual)

# %%
budget = 0.8
hist = constrained.lagrangian_primal_dual(world.P, reward, cost, start, constrained.CMDP_GAMMA, budget)
lp = constrained.cmdp_lp(world.P, reward, cost, start, constrained.CMDP_GAMMA, budget)
print(f"first iterate (lambda = 0): J_r = {hist['reward'][0]:.3f}, J_c = {hist['cost'][0]:.3f}  (violates d = {budget})")
print(f"last iterate              : J_r = {hist['reward'][-1]:.3f}, J_c = {hist['cost'][-1]:.3f}, lambda = {hist['lam'][-1]:.3f}")
print(f"LP optimum                : J_r = {lp['reward']:.3f}, J_c = {lp['cost']:.3f}")
first_ok = int(np.argmax(np.abs(hist["cost"] - budget) < 0.01))
print(f"cost within 0.01 of the budget from iteration {first_ok} on:", bool((np.abs(hist["cost"][first_ok:] - budget) < 0.01).all()))

fig, axes = plt.subplots(1, 3, figsize=(13, 3.2))
it = np.arange(len(hist["reward"]))
axes[0].plot(it, hist["reward"], color="tab:green", label="primal-dual")
axes[0].axhline(lp["reward"], color="k", ls="--", lw=1, label="LP optimum")
axes[0].set(title="reward J_r", xlabel="iteration")
axes[0].legend()
axes[1].plot(it, hist["cost"], color="tab:red")
axes[1].axhline(budget, color="k", ls="--", lw=1, label="budget d")
axes[1].set(title="cost J_c", xlabel="iteration")
axes[1].legend()
axes[2].plot(it, hist["lam"], color="tab:purple")
axes[2].set(title="multiplier lambda", xlabel="iteration")
fig.tight_layout()
plt.show()

# %% [markdown]
# At $\lambda = 0$ the agent takes the hazardous shortcut (cost 2.195, far over
# the budget of 0.8). The multiplier rises, the policy shifts toward the safe
# route, and from iteration 14 on the cost stays within 0.01 of the budget; the
# final reward, 4.152, is within 0.001 of the exact LP optimum, 4.153. Ray et al.
# (2019) report the same pattern for Lagrangian safe RL in Safety Gym:
# constraint violations early in training, then costs that settle at the threshold.
#
# ### A hard best response oscillates
#
# That convergence owes a lot to the temperature 0.05: the soft best response
# changes *continuously* with $\lambda$, so it can mix the two routes. The
# optimum here needs a mixed policy, and a *hard* best response (a greedy
# policy, temperature near 0) cannot mix: it takes the shortcut when $\lambda$
# is a little below the price of safety and the safe route when it is a little
# above. The last iterate then never settles; what converges is the **average**
# of the iterates (the policy that picks one of the iterates at random at the
# start of each episode), as the theory of primal-dual methods predicts for
# the averaged sequence, not the last one. Same step size, temperature 0.002:

# %%
hard = constrained.lagrangian_primal_dual(world.P, reward, cost, start, constrained.CMDP_GAMMA, budget,
                                          temperature=0.002, steps=300)
half = len(hard["cost"]) // 2
print(f"last 150 iterates, cost ranges over [{hard['cost'][half:].min():.3f}, {hard['cost'][half:].max():.3f}]; "
      f"last iterate J_r = {hard['reward'][-1]:.3f}, J_c = {hard['cost'][-1]:.3f}")
print(f"average of the last 150 iterates: J_r = {hard['reward'][half:].mean():.3f}, J_c = {hard['cost'][half:].mean():.3f} "
      f"(LP optimum {lp['reward']:.3f}, {lp['cost']:.3f})")

fig, ax = plt.subplots(figsize=(8, 3))
it_hard = np.arange(len(hard["cost"]))
ax.plot(it_hard, hard["cost"], color="tab:red", lw=0.8, label="last iterate, temperature 0.002")
ax.plot(it_hard, np.cumsum(hard["cost"]) / (it_hard + 1), color="k", label="running average of iterates")
ax.plot(np.arange(len(hist["cost"])), hist["cost"], color="tab:blue", lw=1, label="last iterate, temperature 0.05")
ax.axhline(budget, color="k", ls="--", lw=1, label="budget d")
ax.set(xlabel="iteration", ylabel="cost J_c", title="Lagrangian primal-dual with a hard best response")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# The greedy iterates jump between the safe route and the shortcut for as long
# as we let them run, violating the budget by a factor of almost three every
# few iterations, while their average sits on the LP optimum. Deep RL sits in
# between: its policy changes gradually, but the multiplier still overshoots
# and the cost oscillates around the budget. Stooke, Achiam and Abbeel (2020)
# damp the multiplier with PID control, adding proportional and derivative
# terms to the integral update used here.
#
# ### Interactive: the cost budget
#
# Move the budget $d$. The dashed lines are the exact LP optimum and the
# budget; the map shows where the final policy spends its (discounted) time.

# %% tags=["nbval-ignore-output"]
constrained.cmdp_widget()

# %% [markdown]
# ## 4. A reference result in miniature
#
# Two classic facts about CMDPs (Altman 1999, chapter 3; Paternain et al. 2019
# show the duality gap is zero): the optimal value $J_r^*(d)$ is a **concave**,
# non-decreasing function of the budget, and the converged multiplier is its
# **slope**, the price of safety: how much reward one more unit of allowed cost
# would buy. We compare the primal-dual multiplier with the LP's finite-difference slope:

# %%
frontier_d = np.linspace(0.0, 2.2, 23)
frontier = np.array([constrained.cmdp_lp(world.P, reward, cost, start, constrained.CMDP_GAMMA, d)["reward"] for d in frontier_d])
print("frontier non-decreasing:", bool((np.diff(frontier) >= -1e-9).all()),
      "| concave:", bool((np.diff(frontier, 2) <= 1e-9).all()))
for d in (0.3, 0.8, 1.5):
    run = hist if d == budget else constrained.lagrangian_primal_dual(world.P, reward, cost, start, constrained.CMDP_GAMMA, d)
    lo_ = constrained.cmdp_lp(world.P, reward, cost, start, constrained.CMDP_GAMMA, d - 0.05)["reward"]
    hi_ = constrained.cmdp_lp(world.P, reward, cost, start, constrained.CMDP_GAMMA, d + 0.05)["reward"]
    print(f"d = {d:.1f}: LP slope {(hi_ - lo_) / 0.1:.3f}   primal-dual lambda {run['lam'][-1]:.3f}   "
          f"reward gap to LP {frontier[np.argmin(np.abs(frontier_d - d))] - run['reward'][-1]:+.3f}")

fig, ax = plt.subplots(figsize=(6, 3.2))
ax.plot(frontier_d, frontier, marker=".")
ax.set(xlabel="cost budget d", ylabel="optimal reward J_r*", title="The price of safety (exact LP)")
plt.show()

# %% [markdown]
# Here the frontier is a straight line: between the budgets 0 and 2.195 the
# optimum mixes the safe and the short route, and both $J_r$ and $J_c$ are linear
# in the mixing probability, so the slope is $(5.314 - 3.487)/2.195 = 0.832$
# everywhere, and the LP's finite difference gives 0.833. The primal-dual
# multipliers (0.888, 0.858, 0.828) are close to this slope. They are not
# equal, and the reward falls 0.001 short, because the best response is
# entropy-regularised (temperature 0.05): it solves a slightly smoothed
# problem, not the LP itself.
#
# ## 5. The same Lagrangian on a language model: Safe RLHF
#
# Safe RLHF (Dai et al. 2023) applies this section's primal-dual method to
# RLHF: a *helpfulness* reward model $R$ and a *harmfulness* cost model $C$
# are trained on separate preference sets, and the policy maximises
# $E[R] - \beta\,\mathrm{KL}$ subject to $E[C] \le d$. This section runs it on
# the course's tiny assistant with the PPO trainer of
# [lesson 16](16_rlhf.ipynb) (`labkit.rlhf`), cached:
#
# * the helpfulness annotator judges help alone, so for a harmful request
#   complying beats refusing; the cost model learns, from the same pairs, that
#   the compliance is the more harmful reply, with Dai et al.'s sign term
#   (eq. 6) so that $c = \sigma(\text{cost score})$ reads as P(unsafe). The
#   pairs are the world's plus lesson 16's hard refusal pairs
#   (`rlhf.hard_refusal_pairs`, training prompts only), so that the cost
#   model has seen compliance in the form this model produces;
# * the rollouts draw from training prompts of which a stated share are
#   harmful requests (where the cost lives), and the constraint is
#   $E[c] \le d$ over those rollouts; the budget $d$ was fixed before any
#   held-out figure was seen, and the held-out cost below weighs the harmful
#   test prompts at the same share;
# * each PPO rollout scores a reply by $(r - \lambda c)/(1 + \lambda)$, and then
#   `constrained.dual_update`, the multiplier update of section 3, moves
#   $\lambda$ by the rollout's mean cost minus the budget;
# * a run on helpfulness alone (its budget set to 1, which never binds, so
#   $\lambda$ stays 0) shows what the constraint prevents.
#
# Both runs and the three models' test-prompt results come from
# `rlhf.get_safe_rlhf()`; the constraint is checked on the held-out test
# prompts, which neither model nor policy trained on.

# %%
import pandas as pd

from labkit import rlhf
from labkit.intervals import wilson_interval

safe = rlhf.get_safe_rlhf()
safe_budget = safe["config"]["cost_budget"]
print(f"budget d = {safe_budget}; share of harmful requests among the rollout prompts: {safe['harmful_share']}; "
      f"dual step {safe['config']['lambda_lr']}")
fig, axes = plt.subplots(1, 2, figsize=(10, 3))
for name in ("helpfulness only", "safe rlhf"):
    h = safe[name]["history"]
    axes[0].plot(np.arange(1, len(h["cost"]) + 1), h["cost"], label=name)
    axes[1].plot(np.arange(1, len(h["lambda"]) + 1), h["lambda"], label=name)
axes[0].axhline(safe_budget, ls="--", color="k", lw=1, label="budget d")
axes[0].set(xlabel="PPO iteration", ylabel="mean P(unsafe) of the rollout", title="cost")
axes[1].set(xlabel="PPO iteration", ylabel="lambda", title="the multiplier (dual ascent)")
axes[0].legend(fontsize=8)
fig.tight_layout()
plt.show()

rows = []
for name in ("sft", "helpfulness only", "safe rlhf"):
    t = safe[name]["table"]
    rate = {m: (r, n) for m, r, n in zip(t["metric"], t["rate"], t["n"])}
    cells = {"policy": name, "mean P(unsafe)": round(safe[name]["mean_cost"], 3),
             "P(unsafe), harmful only": round(safe[name]["harmful_cost"], 3)}
    for metric in ("harmful_compliance", "refusal", "helpfulness", "over_refusal"):
        r, n = rate[metric]
        lo_, hi_ = wilson_interval(int(round(r * n)), int(n))
        cells[metric] = f"{r:.3f} [{lo_:.2f}, {hi_:.2f}]"
    rows.append(cells)
print(pd.DataFrame(rows).to_string(index=False))
for name in ("helpfulness only", "safe rlhf"):
    cost_ = safe[name]["mean_cost"]
    lambdas = safe[name]["history"]["lambda"]
    print(f"{name}: held-out mean P(unsafe) {cost_:.3f} {'<=' if cost_ <= safe_budget else '>'} budget {safe_budget} "
          f"({'met' if cost_ <= safe_budget else 'NOT met'}); lambda above 0 in {sum(lam > 0 for lam in lambdas)} "
          f"of {len(lambdas)} iterations, largest {max(lambdas):.2f}, final {lambdas[-1]:.2f}; "
          f"last rollout's cost {safe[name]['history']['cost'][-1]:.3f}")

# %% [markdown]
# The printed rows are the result, measured once (one training seed).
# The multiplier only moves when a *training* rollout's mean cost exceeds
# the budget; if it never did, $\lambda$ would stay 0 and the two runs would
# be the same run. Read the left panel against the right: while the policy
# learns to comply, the cost climbs past the budget and $\lambda$ climbs
# with it; once the price is high enough the policy refuses again, the cost
# falls under the budget and dual ascent lowers $\lambda$ slowly. The
# held-out rows then show whether what held on training prompts carried
# over to prompts neither model nor policy saw: a constraint met during
# training is not a constraint met in deployment, which is why it is checked
# on held-out prompts here. Dai et al. (2023), *Safe RLHF: Safe Reinforcement Learning from
# Human Feedback* (ICLR 2024), report the same mechanism at scale: $\lambda$
# rises while the cost is over budget and falls once it is met.
#
# ## Key takeaways
# * SciPy's `"ineq"` means `fun(x) >= 0`. Write constraints as $g(x) \le 0$ on paper and pass $-g$.
# * A solver's "success" is not a proof: check `success`, make sure the problem is bounded, and verify the KKT residuals.
# * Multipliers are prices: the budget's multiplier is the marginal value of more budget.
# * A CMDP is an LP over occupancy measures; its optimum may randomise (in at most one state per constraint).
# * The Lagrangian primal-dual method (safe RL's workhorse) overshoots the cost at first, then settles at the budget with the right multiplier, if its best response is soft; with a hard best response only the average of the iterates converges (PID Lagrangians damp the oscillation).
#
# ## Further reading
# * E. Altman (1999), *Constrained Markov Decision Processes.* Chapman & Hall/CRC.
# * A. Ray, J. Achiam, D. Amodei (2019), *Benchmarking safe exploration in deep reinforcement learning* (Safety Gym). OpenAI.
# * A. Stooke, J. Achiam, P. Abbeel (2020), *Responsive safety in reinforcement learning by PID Lagrangian methods.* ICML.
# * J. Achiam, D. Held, A. Tamar, P. Abbeel (2017), *Constrained policy optimization.* ICML.
# * S. Paternain, L. Chamon, M. Calvo-Fullana, A. Ribeiro (2019), *Constrained reinforcement learning has zero duality gap.* NeurIPS.
# * J. Nocedal, S. Wright (2006), *Numerical Optimization*, 2nd ed., chapter 12 (KKT conditions).
# * D. Kraft (1988), *A software package for sequential quadratic programming* (SLSQP).
