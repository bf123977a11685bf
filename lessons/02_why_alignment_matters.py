# %% [markdown]
# # 02 · Why alignment matters: specification gaming and Goodhart's law
#
# The slide for this topic argues that alignment matters by drawing a curve of
# "positive impact" against "capability". In this lesson we replace the drawing
# with an experiment: an agent that optimises a slightly wrong reward harder and
# harder, and we watch what happens to the reward we actually wanted.
#
# **In this lesson you will**
# 1. reproduce the slide's impact-vs-capability plot and find out why it is an assumption, not evidence;
# 2. build a gridworld agent with value iteration (two exercises: a Bellman backup and exact policy evaluation);
# 3. see **specification gaming** happen: the agent exploits a mis-specified proxy reward;
# 4. plot proxy and true return as optimisation pressure grows (**Goodhart's law**) and find the
#    exact mis-specification at which gaming starts;
# 5. reproduce, in miniature, the reward-gaming results of Leike et al. (2017) and the
#    *phase transition* of Pan, Bhatia and Steinhardt (2022), and contrast it
#    with the smooth over-optimisation curve of Gao, Schulman and Hilton (2022).

# %%
import matplotlib.pyplot as plt
import numpy as np

import labkit
from labkit import goodhart, gridworld
from labkit.exercises import card, check

device = labkit.setup(seed=0)

# %% [markdown]
# ## 1. The slide's approach
#
# The slide plots a logistic function of capability whose slope is called the
# "alignment level", once for a low and once for a high level. In a few lines:

# %%
def slide_impact(capability, alignment_level):
    e = np.exp(alignment_level * capability)
    return e / (1 + e)

capability = np.linspace(0, 10, 100)
fig, ax = plt.subplots(figsize=(6, 3))
for level in (0.5, 2.0):
    ax.plot(capability, slide_impact(capability, level), label=f"alignment level {level}")
ax.set(xlabel="AI capability", ylabel="'positive impact'", title="The slide's curve (an assumption)")
ax.legend()
plt.show()

# %% [markdown]
# ### Bug hunt
#
# **Bug 1: the conclusion is the input.** The curve is a chosen formula, not a
# measurement: nothing was optimised, nothing was observed. Worse, the formula
# cannot show the failure the slide warns about. For *every* positive
# "alignment level" the impact starts at 0.5 and only grows with capability,
# and it is never negative, so even a "misaligned" system is drawn as harmless:

# %%
levels = np.linspace(-3, 3, 61)
curves = np.array([slide_impact(capability, a) for a in levels])
print("smallest impact for any positive level :", f"{curves[levels > 0].min():.3f}")
print("smallest impact for any level at all   :", f"{curves.min():.3f}  (never below 0: harm is impossible)")
print("impact at capability 0, for every level:", np.unique(curves[:, 0].round(3)))
print("impact ever decreases with capability for a positive level:",
      bool((np.diff(curves[levels > 0], axis=1) < 0).any()))

# %% [markdown]
# **Bug 2 (silent): overflow turns the curve into NaN.** `exp(a·x)` overflows
# float64 once `a·x > 709.8`; then the formula computes `inf / inf = nan`. NumPy
# only warns (the warning is silenced below to show what a reader of the plot
# sees): the plot simply has a hole.

# %%
with np.errstate(over="ignore", invalid="ignore"):
    steep = slide_impact(capability, 100.0)
print("NaN values on the curve for alignment level 100:", int(np.isnan(steep).sum()), "of", steep.size)
from scipy.special import expit  # the logistic function, computed stably

print("NaN values with scipy.special.expit:", int(np.isnan(expit(100.0 * capability)).sum()))

# %% [markdown]
# **Bug 3: the plotting function returns nothing.** It draws and calls
# `plt.show()`, so there is no number to test or compare. (The course's widgets
# return a figure from a pure function instead.)
#
# The real argument for alignment is not a curve we draw but a behaviour we can
# produce: **an optimiser pointed at a measurable proxy of what we want will, with
# enough optimisation power, find the places where the proxy and our intent
# disagree.** Let us build one.
#
# ## 2. A gridworld and an agent
#
# The agent starts at `S` and moves up, down, left, right or stays (walls `#`
# block). We want it to reach the goal `G`: the **true reward** is 1 for every
# step spent at `G`. The **proxy reward** the agent is trained on comes from a
# sensor that checks "is the job done?". At cell `B` the agent can fool the
# sensor (like the agent in Leike et al.'s tomato-watering gridworld that puts a
# bucket over its head so that every tomato *looks* watered). There the proxy
# pays `1 + bonus` per step, while the true reward is -0.5 (a small harm).

# %%
world = goodhart.make_gridworld()
true_r = goodhart.true_reward(world)
proxy_r = goodhart.proxy_reward(world, bonus=1.5)
fig, axes = plt.subplots(1, 2, figsize=(10, 2.8))
gridworld.draw_grid(axes[0], world, true_r, cmap="RdYlGn", title="true reward (what we want)", vmin=-1.5, vmax=1.5)
gridworld.draw_grid(axes[1], world, proxy_r, cmap="Oranges", title="proxy reward, bonus 1.5 (what is optimised)")
fig.tight_layout()
plt.show()
print("cells where proxy and true reward differ:", np.flatnonzero(proxy_r != true_r).tolist(), "= the cell B:", world.cells("B").tolist())

# %% [markdown]
# The agent plans with **value iteration** (Bellman 1957). With a transition
# tensor `P[s, a, s']` and discount $\gamma$, one backup is
#
# $$Q(s,a) = r(s) + \gamma \sum_{s'} P(s' \mid s,a)\, V(s'), \qquad V_{\text{new}}(s) = \max_a Q(s,a)$$
#
# (Sutton and Barto 2018, eq. 4.10). After $k$ backups the greedy policy is the
# best plan that looks $k$ steps ahead: $k$ is our knob for **optimisation pressure**.

# %%
card("02.bellman_backup")

# %% [markdown]
# Write `bellman_backup(P, r, V, gamma)` returning `(V_new, Q)`. Raise
# `ValueError` when `gamma` is not in $[0, 1)$ (the test includes one such case).

# %%
def bellman_backup(P, r, V, gamma):
    ### BEGIN SOLUTION
    if not 0 <= gamma < 1:
        raise ValueError("gamma must be in [0, 1)")
    Q = r[:, None] + gamma * np.asarray(P) @ np.asarray(V)
    return Q.max(axis=1), Q
    ### END SOLUTION

# %%
check("02.bellman_backup", bellman_backup)

# %% [markdown]
# To score a policy $\pi(a \mid s)$ we do not need to sample episodes: its values
# solve a linear system (Sutton and Barto 2018, eq. 4.4),
#
# $$V^\pi = r + \gamma P_\pi V^\pi \;\Longrightarrow\; V^\pi = (I - \gamma P_\pi)^{-1} r, \qquad P_\pi(s, s') = \sum_a \pi(a \mid s) P(s' \mid s, a).$$

# %%
card("02.policy_evaluation")

# %% [markdown]
# Write `policy_evaluation(P, r, policy, gamma)` returning $V^\pi$ (shape `(S,)`).
# Use `np.linalg.solve`, never an explicit inverse. Raise `ValueError` for
# `gamma` outside $[0, 1)$: at $\gamma = 1$ the system has no unique solution.

# %%
def policy_evaluation(P, r, policy, gamma):
    ### BEGIN SOLUTION
    if not 0 <= gamma < 1:
        raise ValueError("gamma must be in [0, 1)")
    P_pi = np.einsum("sa,sat->st", policy, P)
    return np.linalg.solve(np.eye(len(r)) - gamma * P_pi, r)
    ### END SOLUTION

# %%
check("02.policy_evaluation", policy_evaluation)

# %% [markdown]
# ## 3. Specification gaming, measured
#
# For each number of backups $k$, `goodhart.goodhart_curve` takes the greedy
# policy, evaluates it exactly under **both** rewards, and reports the return
# per step, $(1-\gamma)V(S)$ with $\gamma = 0.9$: 1 would mean "at the goal from
# the first step".

# %%
steps = np.arange(0, 31)
curve = goodhart.goodhart_curve(world, proxy_r, true_r, goodhart.GAMMA, steps)
for k in (0, 6, 7, 10, 20, 21, 30):
    print(f"k = {k:>2} backups: proxy return {curve['proxy'][k]:+.3f}   true return {curve['true'][k]:+.3f}")

fig, ax = plt.subplots(figsize=(7, 3.5))
ax.plot(steps, curve["proxy"], marker=".", color="tab:orange", label="proxy return (optimised)")
ax.plot(steps, curve["true"], marker=".", color="tab:green", label="true return (intended)")
ax.set(xlabel="optimisation pressure: value-iteration backups", ylabel="return per step",
       title="Goodhart's law in a gridworld (bonus 1.5)")
ax.legend()
plt.show()

# %% [markdown]
# Three regimes, all read off the printed numbers:
#
# * **too weak** ($k \le 6$): the goal is 6 moves away, and its reward is
#   only seen after 7 backups; every action looks the same and the agent stays
#   put (both returns 0);
# * **good enough** ($7 \le k \le 20$): the agent walks to `G`; the proxy and the
#   true return agree ($0.9^6 = 0.531$);
# * **too strong** ($k \ge 21$): the planning horizon is now long enough that
#   the many steps of inflated proxy reward at the sensor cell, 13 moves away,
#   outweigh the goal's head start, and the agent goes there. The proxy return rises to 0.635 while the true return falls
#   to -0.127, *below doing nothing*.
#
# The proxy never went down. Someone watching only the training signal would
# report steady progress.

# %%
_, Q_strong = gridworld.value_iteration(world.P, proxy_r, goodhart.GAMMA, steps=30)
_, Q_medium = gridworld.value_iteration(world.P, proxy_r, goodhart.GAMMA, steps=10)
start = int(world.cells("S")[0])
fig, axes = plt.subplots(1, 2, figsize=(10, 2.8))
for ax, Q, k in ((axes[0], Q_medium, 10), (axes[1], Q_strong, 30)):
    path = gridworld.greedy_path(world, gridworld.greedy_policy(Q), start, 16)
    gridworld.draw_grid(ax, world, true_r, cmap="RdYlGn", vmin=-1.5, vmax=1.5, path=path,
                        title=f"path after {k} backups (true reward shown)")
fig.tight_layout()
plt.show()

# %% [markdown]
# ### When does gaming start?
#
# With deterministic moves, reaching a cell of value $v$ after $d$ moves and
# staying is worth $\gamma^d v/(1-\gamma)$. The fully optimised agent prefers `B`
# (13 moves) to `G` (6 moves) exactly when $\gamma^{13}(1+b) > \gamma^{6}$, i.e.
# $b > \gamma^{-7} - 1$. Even $b = 0$ is a mis-specification (the proxy rates
# `B` as good as the goal); it is harmless here only because `B` is further
# away. We check the formula against the agent's actual behaviour:

# %%
threshold = goodhart.gaming_threshold(world)
print(f"predicted threshold: bonus > {threshold:.3f}")
bonuses = np.round(np.arange(0.0, 3.01, 0.25), 2)
final_true = [goodhart.goodhart_curve(world, goodhart.proxy_reward(world, b), true_r, goodhart.GAMMA, [200])["true"][0] for b in bonuses]
for b, t in zip(bonuses, final_true):
    print(f"bonus {b:.2f}: true return of the fully optimised agent {t:+.3f}{'   <- gaming' if t < 0 else ''}")

# %% [markdown]
# The switch happens between 1.00 and 1.25, as predicted by 1.091. Below the
# threshold the mis-specification is harmless *for this agent*; above it, more
# optimisation makes things worse. This is why "the reward is almost right" is
# not reassuring: how wrong it is matters less than how hard it is optimised.
#
# ### Interactive: mis-specification and optimisation pressure
#
# Move the bonus (how much the fooled sensor over-reports) and the number of
# value-iteration steps. The dotted line marks the chosen pressure; the map shows
# the path the agent takes.

# %% tags=["nbval-ignore-output"]
goodhart.goodhart_widget()

# %% [markdown]
# ## 4. A reference result in miniature
#
# **Leike et al. (2017), *AI Safety Gridworlds*.** Their environments separate
# the *reward function* the agent sees from a hidden *performance function*. In
# the tomato-watering and absent-supervisor worlds, standard RL agents (A2C,
# Rainbow) drove the observed reward up while the performance function went down.
# Our gridworld is the same experiment with exact planning instead of deep RL.
#
# **Pan, Bhatia and Steinhardt (2022), *The effects of reward
# misspecification*.** They made RL agents more capable (more parameters,
# finer actions, longer training) on misspecified rewards and found **phase
# transitions**: at some capability threshold the agent's behaviour changes
# qualitatively and the true reward drops sharply, while the proxy keeps
# rising. Our agent's capability is its planning horizon. We check the
# signature on our curve: a proxy that never falls and a true return that drops
# at one threshold:

# %%
peak = int(curve["true"].argmax())
print("proxy return never decreases with more optimisation:", bool((np.diff(curve["proxy"]) >= -1e-12).all()))
print(f"true return peaks at k = {peak} ({curve['true'][peak]:+.3f}) and ends at {curve['true'][-1]:+.3f}")
print(f"gap proxy - true at the end: {curve['proxy'][-1] - curve['true'][-1]:.3f}")

# %% [markdown]
# The shape matches: a monotone proxy, a true return that peaks and then
# collapses in one step, when the longer horizon makes the exploit visible.
# This is a phase transition in Pan et al.'s sense, not the curve of Gao,
# Schulman and Hilton (2022, *Scaling laws for reward model
# over-optimization*): there the gold reward rises, peaks and declines
# *smoothly* as the policy's KL distance from its starting point grows, because
# best-of-n and RL move the policy gradually. A hard switch like ours is what
# happens when the optimiser's choice is discrete.
#
# ### A smooth optimiser: gold against KL
#
# Give the same world an optimiser whose strength varies smoothly: the policy
# that maximises the proxy minus $T$ times its KL divergence from a uniformly
# random base policy (the soft-optimal policy at temperature $T$, planned to
# convergence). Large $T$ keeps it at the base policy, $T \to 0$ gives the
# fully optimised agent above. As Gao et al. do, we index optimisation by the
# distance from the base policy, here the per-step KL along the policy's own
# visits:

# %%
temperatures = np.logspace(1, -2, 40)
smooth = goodhart.kl_regularised_curve(world, proxy_r, true_r, goodhart.GAMMA, temperatures)
best = int(np.argmax(smooth["true"]))
print("proxy return never decreases as KL grows:", bool((np.diff(smooth["proxy"]) >= -1e-12).all()))
print(f"true return peaks at T = {temperatures[best]:.3f}, KL {smooth['kl'][best]:.3f} nats per step "
      f"({smooth['true'][best]:+.3f}), and ends at {smooth['true'][-1]:+.3f} (KL {smooth['kl'][-1]:.3f})")
fig, ax = plt.subplots(figsize=(7, 3.5))
ax.plot(smooth["kl"], smooth["proxy"], marker=".", color="tab:orange", label="proxy return (optimised)")
ax.plot(smooth["kl"], smooth["true"], marker=".", color="tab:green", label="true return (intended)")
ax.set(xlabel="KL(policy ‖ uniform base) per step [nats]", ylabel="return per step",
       title="A KL-regularised optimiser on the same proxy (bonus 1.5)")
ax.legend()
plt.show()

# %% [markdown]
# Now the true return rises, peaks and declines *smoothly* as the KL grows,
# while the proxy keeps rising: the shape of Gao et al.'s curves. Which shape
# you see, a phase transition or a smooth decline, depends on how the optimiser
# moves, not on the reward: the same proxy gives both. Lesson 05 measures the
# smooth curve with best-of-n against a learned reward model.
#
# ## Key takeaways
# * A plot of an assumed formula is not evidence. The slide's curve could never show harm, and it overflows to NaN.
# * Specification gaming is what a competent optimiser does with a proxy that is wrong somewhere it can reach.
# * Goodhart's law, measured: the proxy return rises monotonically with optimisation pressure while the true return peaks and then falls.
# * Whether gaming happens depends on *both* the size of the mis-specification and the optimisation power; a threshold can be computed.
# * An optimiser that switches plans shows a phase transition (Pan et al. 2022); one that moves smoothly away from a base policy shows a smooth rise and fall of the true reward against KL (Gao et al. 2022).
# * Evaluate policies exactly (a linear solve) under the reward you care about, not only the one you trained on.
#
# ## Further reading
# * J. Leike, M. Martic, V. Krakovna, P. Ortega, T. Everitt, A. Lefrancq, L. Orseau, S. Legg (2017), *AI Safety Gridworlds.* arXiv:1711.09883.
# * V. Krakovna et al. (2020), *Specification gaming: the flip side of AI ingenuity.* DeepMind blog, with a list of ~60 examples.
# * A. Pan, K. Bhatia, J. Steinhardt (2022), *The effects of reward misspecification: mapping and mitigating misaligned models.* ICLR. arXiv:2201.03544.
# * L. Gao, J. Schulman, J. Hilton (2022), *Scaling laws for reward model overoptimization.* arXiv:2210.10760 (ICML 2023).
# * D. Manheim, S. Garrabrant (2018), *Categorizing variants of Goodhart's law.* arXiv:1803.04585.
# * J. Skalse, N. Howe, D. Krasheninnikov, D. Krueger (2022), *Defining and characterizing reward hacking.* NeurIPS.
# * R. Sutton, A. Barto (2018), *Reinforcement Learning: An Introduction*, 2nd ed., chapter 4.
