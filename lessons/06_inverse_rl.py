# %% [markdown]
# # 06 · Inverse RL: maximum-entropy IRL on a gridworld
#
# Inverse reinforcement learning (IRL) turns the usual question around: given
# demonstrations of what an agent *does*, which reward is it optimising? For
# alignment this is the promise of learning human values from human behaviour
# instead of writing them down (and getting them wrong, as in lesson 02).
#
# **In this lesson you will**
# 1. reproduce the slide's IRL code and hunt down its bugs (one crash, four silent);
# 2. write the two building blocks of maximum-entropy IRL as exercises, the soft
#    Bellman backup and the expected state-visitation frequencies, then the
#    whole gradient-ascent loop;
# 3. recover a reward map from 50 noisy demonstrations with labkit's corrected
#    maximum causal entropy IRL (Ziebart 2010; Ziebart, Bagnell and Dey 2010),
#    and check that the policy it implies
#    visits the same states as the expert;
# 4. explore how the number of demonstrations, the discount and the
#    demonstrator's noise change what can be recovered.

# %%
import matplotlib.pyplot as plt
import numpy as np

import labkit
from labkit import gridworld, irl
from labkit.exercises import card, check

device = labkit.setup(seed=0)

# %% [markdown]
# ## 1. The slide's approach
#
# The slide fits reward weights $\theta$ (reward $= \Phi\theta$ for a state-feature
# matrix $\Phi$) by minimising a "likelihood" with L-BFGS. Its value iteration and
# likelihood, rewritten in a few lines with the same structure:

# %%
def slide_value_iteration(features, theta, gamma=0.99, n_iter=100):
    V = np.zeros(len(features))
    for _ in range(n_iter):
        Q = features @ theta + gamma * np.max(V)   # max over ALL states, no actions, no dynamics
        V = np.max(Q, axis=1)
    return V

def slide_likelihood(V, trajectories):
    return sum(V[s_next] - V[s] for trajectory in trajectories for s, a, s_next in trajectory)

rng = np.random.default_rng(0)
features = rng.random((10, 5))
try:
    slide_value_iteration(features, rng.random(5))
except np.exceptions.AxisError as err:
    print("crash:", type(err).__name__, "-", err)

# %% [markdown]
# ### Bug hunt
#
# **Bug 1 (crash): shapes.** `Q` is one number per state (shape `(10,)`), so
# `np.max(Q, axis=1)` fails: there is no action axis because the code has no
# actions. Suppose we "fix" it the obvious way, `V = Q`:

# %%
def slide_value_iteration_fixed(features, theta, gamma=0.99, n_iter=100):
    V = np.zeros(len(features))
    for _ in range(n_iter):
        V = features @ theta + gamma * np.max(V)
    return V

theta = rng.random(5)
r = features @ theta
V = slide_value_iteration_fixed(features, theta)
print("V - r is the same constant for every state:", np.round(V - r, 3))

# %% [markdown]
# **Bug 2 (silent): no transition model.** The backup uses $\max_{s'} V(s')$ over
# *all* states instead of the expected value of the *next* state,
# $\sum_{s'} P(s' \mid s, a)V(s')$. Every state is treated as if it could jump
# anywhere, so `V` is the reward plus one constant: the value of a state says
# nothing about where it leads. An IRL method without dynamics cannot tell a
# state that is visited because it is rewarding from one that is visited because
# it is on the way.
#
# **Bug 3 (silent): not converged.** With $\gamma = 0.99$ the constant should be
# $\gamma \max r/(1-\gamma)$. The first iteration only copies the reward, so
# after 100 iterations the constant is the geometric sum of 99 terms and covers
# only $1-0.99^{99}$ of it:

# %%
limit = 0.99 * r.max() / (1 - 0.99)
print(f"constant after 100 iterations: {(V - r)[0]:.3f}, fixed point: {limit:.3f} "
      f"({(V - r)[0] / limit:.3f} of the way; 1 - 0.99^99 = {1 - 0.99**99:.3f})")

# %% [markdown]
# **Bug 4 (silent): the "likelihood" is not one.** The sum
# $\sum_t V(s_{t+1}) - V(s_t)$ telescopes to $V(s_T) - V(s_0)$: it ignores the
# actions and every state in between, so two different trajectories with the
# same endpoints score the same. It is not a log-probability of anything (it is
# not even bounded): scaling $\theta$ scales it, so the minimiser runs off to
# infinity.

# %%
same_ends = [[(0, 1, 2), (2, 0, 5), (5, 2, 8)]], [[(0, 3, 7), (7, 1, 1), (1, 0, 8)]]
print("two different trajectories, same endpoints:", [f"{slide_likelihood(V, t):.3f}" for t in same_ends])
for scale in (1, 10, 100):
    V_scaled = slide_value_iteration_fixed(features, scale * theta)
    print(f"theta x {scale:>3}: negative 'likelihood' = {-slide_likelihood(V_scaled, same_ends[0]):.3f}")

# %% [markdown]
# **Bug 5: not reproducible.** The slide starts L-BFGS from `np.random.rand(...)`
# with no seed and fits random features; every run gives a different "reward".
#
# ## 2. Maximum-entropy IRL, correctly
#
# Ziebart et al. (2008) model a demonstrator whose behaviour is *exponentially
# more likely the more reward it collects*. Their 2008 model puts that weight on
# whole trajectories, so under stochastic dynamics it lets the demonstrator
# "choose" how its moves slip: the policy it implies depends on outcomes the
# agent cannot know when it acts. Our moves slip 10 % of the time, so we use the
# **maximum causal entropy** form (Ziebart 2010; Ziebart, Bagnell and Dey 2010),
# which conditions each action only on the past. Its policy is the
# **soft-optimal** policy computed by *soft value iteration* (Ziebart 2010,
# eqs. 6.1-6.2). With deterministic moves the two models coincide.
#
# $$Q(s,a) = r(s) + \gamma \sum_{s'} P(s' \mid s,a)V(s'), \qquad V(s) = \log \sum_a e^{Q(s,a)}, \qquad \pi(a \mid s) = e^{Q(s,a) - V(s)}.$$
#
# The log-sum-exp is a "soft max" over actions. Computed literally it overflows
# (lesson 00): subtract the largest $Q$ in each row first. With a temperature $T$
# the backup is $V(s) = T\log\sum_a e^{Q(s,a)/T}$.

# %%
card("06.soft_bellman_backup")

# %% [markdown]
# Write `soft_bellman_backup(P, r, V, gamma, temperature=1.0)` returning
# `(V_new, Q)`. `P` has shape `(S, A, S)`. Raise `ValueError` when
# `temperature <= 0`.

# %%
def soft_bellman_backup(P, r, V, gamma, temperature=1.0):
    ### BEGIN SOLUTION
    if temperature <= 0:
        raise ValueError("temperature must be positive")
    Q = r[:, None] + gamma * np.asarray(P) @ np.asarray(V)
    z = Q / temperature
    m = z.max(axis=1, keepdims=True)
    return temperature * (m[:, 0] + np.log(np.exp(z - m).sum(axis=1))), Q
    ### END SOLUTION

# %%
check("06.soft_bellman_backup", soft_bellman_backup)

# %% [markdown]
# The learning signal is a comparison of **how often each state is visited**.
# Starting from the demonstrations' start distribution $D_0$, push the state
# distribution forward through the policy and the dynamics, and add up the
# discounted visits (the forward pass of Ziebart et al. 2008, Algorithm 1,
# run with the causal policy):
#
# $$D_{t+1}(s') = \sum_{s,a} D_t(s)\,\pi(a \mid s)\,P(s' \mid s,a), \qquad D = \sum_{t=0}^{H-1}\gamma^t D_t.$$

# %%
card("06.state_visitation")

# %% [markdown]
# Write `state_visitation(P, policy, start, gamma, horizon)` returning $D$
# (shape `(S,)`). Raise `ValueError` when `horizon < 1`.

# %%
def state_visitation(P, policy, start, gamma, horizon):
    ### BEGIN SOLUTION
    if horizon < 1:
        raise ValueError("horizon must be at least 1")
    P_pi = np.einsum("sa,sat->st", policy, P)
    d, D = np.asarray(start, dtype=float), np.zeros(len(start))
    for t in range(horizon):
        D += gamma**t * d
        d = d @ P_pi
    return D
    ### END SOLUTION

# %%
check("06.state_visitation", state_visitation)

# %% [markdown]
# With these, learning $\theta$ maximises the concave objective
# $g(\theta) = \theta\cdot\mu_E - \sum_s p_0(s)V_\theta(s) - \tfrac{\lambda}{2}\lVert\theta\rVert^2$,
# whose gradient is the famous **expert minus expected feature counts**
# (Ziebart et al. 2008, eq. 6; the same form holds for the causal model,
# Ziebart 2010, ch. 6):
#
# $$\nabla g = \underbrace{\mu_E}_{\text{expert}} - \underbrace{\Phi^\top D_\theta}_{\text{learner}} - \lambda\theta,$$
#
# where $\mu_E$ averages $\sum_t \gamma^t \phi(s_t)$ over the demonstrations and
# $D_\theta$ is the visitation of the soft-optimal policy for $r = \Phi\theta$
# (labkit uses the infinite-horizon visitation, one linear solve). The gradient
# is zero exactly when the learner visits features as often as the expert.
# `labkit.irl.maxent_irl` maximises $g$ with L-BFGS, using this exact gradient.
#
# Before handing the loop to L-BFGS, write it yourself with plain gradient
# ascent: it is the whole algorithm, backward pass, forward pass, step.

# %%
card("06.maxent_gradient_ascent")

# %% [markdown]
# Write `maxent_gradient_ascent(P, features, expert_features, start, gamma, lr=0.1, steps=100, l2=0.0)`.
# Start from $\theta = 0$; at each step get the soft-optimal policy for
# $r = \Phi\theta$ with `gridworld.soft_value_iteration(P, r, gamma, tol=1e-11)`
# (it returns `(V, Q, policy)`), its exact discounted visitation with
# `gridworld.discounted_occupancy(P, policy, start, gamma)`, and move
# $\theta \leftarrow \theta + \text{lr}\,\nabla g$. Return $\theta$; raise
# `ValueError` when `lr <= 0`.

# %%
def maxent_gradient_ascent(P, features, expert_features, start, gamma, lr=0.1, steps=100, l2=0.0):
    ### BEGIN SOLUTION
    if lr <= 0:
        raise ValueError("lr must be > 0")
    theta = np.zeros(features.shape[1])
    for _ in range(steps):
        _, _, policy = gridworld.soft_value_iteration(P, features @ theta, gamma, tol=1e-11)
        D = gridworld.discounted_occupancy(P, policy, start, gamma)
        theta = theta + lr * (expert_features - features.T @ D - l2 * theta)
    return theta
    ### END SOLUTION

# %%
check("06.maxent_gradient_ascent", maxent_gradient_ascent)

# %% [markdown]
# ### The world and the expert
#
# A 10 x 10 world with four terrains: goals `G` (reward 1), lava `L` (-1),
# mud `M` (-0.3) and plain floor (0). Moves slip to a random direction 10 % of
# the time. The features are one-hot terrain indicators, so $\theta$ has four
# entries. The expert is **Boltzmann-rational**: soft-optimal with temperature
# 0.25 (its "noise"), which is exactly the MaxEnt model for the reward
# $r/0.25$. So IRL should recover $\theta_{\text{true}}/0.25$, up to a constant
# (adding a constant to every state's reward changes no behaviour). We compare
# rewards after subtracting their mean.

# %%
out = irl.run_experiment(n_demos=50, gamma=0.9, noise=0.25, seed=0)
world, result = out["world"], out["result"]
print("terrain types              :", list(world.cell_types))
print("true theta (centred)       :", np.round(irl.centred(irl.true_theta(world)), 3))
print("recovered theta x 0.25 (c.):", np.round(irl.centred(result.theta) * 0.25, 3))
print("demonstrations:", out["demos"].shape[0], "trajectories of", out["demos"].shape[1], "steps")
print("expert feature counts  :", np.round(result.expert_features, 3))
print("learner feature counts :", np.round(result.learner_features, 3))

# %%
tv = 0.5 * np.abs(out["expert_visitation"] - out["learner_visitation"]).sum()
uniform = gridworld.discounted_occupancy(world.P, np.full((world.n_states, world.n_actions), 0.2), world.start_distribution(), 0.9)
tv_uniform = 0.5 * np.abs(out["expert_visitation"] - uniform / uniform.sum()).sum()
corr = np.corrcoef(out["true_reward"], result.reward)[0, 1]
print(f"correlation of true and recovered reward over states: {corr:.3f}")
print(f"total-variation distance, expert vs learner visitation: {tv:.3f} (a random-walk policy: {tv_uniform:.3f})")

fig, axes = plt.subplots(1, 4, figsize=(15, 3.4))
gridworld.draw_grid(axes[0], world, irl.centred(out["true_reward"]), cmap="RdYlGn", title="true reward (centred)")
gridworld.draw_grid(axes[1], world, irl.centred(result.reward), cmap="RdYlGn", title="recovered reward (centred)")
vmax = max(out["expert_visitation"].max(), out["learner_visitation"].max())
gridworld.draw_grid(axes[2], world, out["expert_visitation"], cmap="Blues", vmin=0, vmax=vmax, annotate=False, title="expert visitation (50 demos)")
gridworld.draw_grid(axes[3], world, out["learner_visitation"], cmap="Blues", vmin=0, vmax=vmax, annotate=False, title="learner visitation")
fig.tight_layout()
plt.show()

# %% [markdown]
# The recovered reward puts the goal far above everything else and both lava and
# mud below the floor, and the policy it implies visits the grid much as the
# expert does: a total-variation distance of 0.145, against 0.542 for a random
# walk, with feature counts that agree to within 0.04. But it ranks mud
# (-0.591) below lava (-0.362), the wrong way round. The expert spends very
# little discounted time on either (feature counts 0.159 and 0.094 out of about
# 10), so 50 demonstrations say little about *how* bad each one is. Matching
# behaviour does not pin down the reward (Ng and Russell 2000), and the parts
# the demonstrations rarely visit are the least reliable.
#
# ### What the misranking costs: a new map
#
# On the demonstrations' own map the misranking is harmless: the expert avoids
# both terrains, and so does the learner. The point of learning a reward,
# rather than copying behaviour, is to *transfer* it to situations the expert
# never saw. Here is one: from `S` to `G` around a wall, either across three
# lava cells or across three mud cells, routes of equal length. We plan
# optimally (value iteration) with the true reward and with the recovered one,
# starting at `S`, and score both policies with the true reward:

# %%
transfer = gridworld.GridWorld.from_layout([".LLL.", "S###G", ".MMM."], slip=0.1)
start_transfer = np.zeros(transfer.n_states)
start_transfer[int(transfer.cells("S")[0])] = 1.0
weights = {"true reward": dict(irl.TRUE_THETA), "recovered reward": dict(zip(world.cell_types, result.theta))}
true_transfer = transfer.reward_from_types({k: irl.TRUE_THETA.get(k, 0.0) for k in transfer.cell_types})
fig, axes = plt.subplots(1, 2, figsize=(9, 2.6))
for ax, (name, theta_by_type) in zip(axes, weights.items()):
    theta_by_type["S"] = theta_by_type["."]                       # the start cell is plain floor
    planned_r = transfer.reward_from_types({k: float(theta_by_type[k]) for k in transfer.cell_types})
    _, Q = gridworld.value_iteration(transfer.P, planned_r, 0.9, steps=500)
    policy = gridworld.greedy_policy(Q)
    visits = gridworld.discounted_occupancy(transfer.P, policy, start_transfer, 0.9)
    true_return = start_transfer @ gridworld.policy_evaluation(transfer.P, true_transfer, policy, 0.9)
    print(f"planning with the {name:<16}: true return {true_return:.3f}, discounted time in lava "
          f"{visits[transfer.cells('L')].sum():.3f}, in mud {visits[transfer.cells('M')].sum():.3f}")
    path = gridworld.greedy_path(transfer, policy, int(transfer.cells("S")[0]), 8)
    gridworld.draw_grid(ax, transfer, true_transfer, cmap="RdYlGn", vmin=-1, vmax=1, path=path, title=f"planned with the {name}")
fig.tight_layout()
plt.show()

# %% [markdown]
# With the true reward the agent crosses the mud; with the recovered reward,
# which behaves like the expert on the training map, it walks through the lava
# and loses a large share of its true return. Non-identifiability is not a
# technicality: a reward that fits the demonstrations can still be wrong exactly
# where the deployed agent needs it, on terrain the expert never had to choose
# between.
#
# ### Interactive: demonstrations, discount, noise
#
# Fewer demonstrations leave rarely visited terrain (lava) poorly determined; a
# noisier expert visits more of the grid, which helps identify bad terrain but
# shrinks the recovered scale; the discount changes how far ahead the expert
# plans and therefore what its visits reveal.

# %% tags=["nbval-ignore-output"]
irl.irl_widget()

# %% [markdown]
# ## 3. A reference result in miniature
#
# Two properties to check. First, at the optimum the gradient is zero, so the
# fitted model **matches the expert's feature expectations**: this is the
# constraint the maximum (causal) entropy model is built from (Ziebart et al.
# 2008; Ziebart 2010). Second, when the demonstrator really follows the model
# and the features identify the reward, maximum likelihood should get closer to
# the true reward with more data. That is the generic consistency of maximum
# likelihood in a correctly specified, identifiable model, not a theorem of the
# IRL papers, so we measure it rather than cite it. With exact (infinite-data)
# expert feature counts and no regulariser, the recovered $\theta$ times the
# noise equals the true $\theta$:

# %%
phi, start = world.features(), world.start_distribution()
pi_expert = irl.expert_policy(world, out["true_reward"], 0.9, 0.25)
mu_exact = phi.T @ gridworld.discounted_occupancy(world.P, pi_expert, start, 0.9)
exact = irl.fit_reward(world.P, phi, mu_exact, start, 0.9, l2=0.0)
print("infinite data: recovered theta x 0.25 (centred):", np.round(irl.centred(exact.theta) * 0.25, 3))
print("largest feature-count gap:", f"{np.abs(exact.expert_features - exact.learner_features).max():.2e}")
for n in (5, 50, 500):
    run = out if n == 50 else irl.run_experiment(n_demos=n, gamma=0.9, noise=0.25, seed=0)
    err = np.abs(irl.centred(run["result"].theta) * 0.25 - irl.centred(irl.true_theta(world))).max()
    tv_n = 0.5 * np.abs(run["expert_visitation"] - run["learner_visitation"]).sum()
    print(f"{n:>4} demos: largest error in theta {err:.3f}, visitation TV distance {tv_n:.3f}")

# %% [markdown]
# With exact feature counts the true weights come back to three decimals and the
# feature counts match to about 3e-8: the estimator is consistent. With samples,
# the largest weight error shrinks as demonstrations grow (2.127, 0.563, 0.359
# for 5, 50, 500) and the learner's visitation approaches the expert's (TV
# distance 0.401, 0.145, 0.071). What remains is sampling noise plus the small
# L2 prior ($\lambda = 0.01$); both are absent from the infinite-data,
# $\lambda = 0$ check above.
#
# ## Key takeaways
# * The slide's IRL crashes; patched, it has no dynamics, is not converged, and optimises a telescoping sum that is not a likelihood.
# * Maximum causal entropy IRL = soft value iteration (backward) + state visitation (forward) + gradient "expert minus learner feature counts". Under stochastic dynamics it differs from the 2008 trajectory-level MaxEnt model.
# * The reward is identified only up to a constant (and, for a Boltzmann expert, up to its temperature); compare centred rewards.
# * The test that matters for alignment: the policy from the recovered reward visits what the expert visits.
# * Rarely demonstrated situations (here: lava) are where the recovered reward is least reliable, and a transferred reward fails there first: on a new map the recovered reward walks through lava.
#
# ## Further reading
# * B. Ziebart, A. Maas, J. A. Bagnell, A. Dey (2008), *Maximum entropy inverse reinforcement learning.* AAAI.
# * B. Ziebart (2010), *Modeling purposeful adaptive behavior with the principle of maximum causal entropy.* PhD thesis, CMU.
# * B. Ziebart, J. A. Bagnell, A. Dey (2010), *Modeling interaction via the principle of maximum causal entropy.* ICML.
# * A. Ng, S. Russell (2000), *Algorithms for inverse reinforcement learning.* ICML (why the reward is not unique).
# * A. Gleave, S. Toyer (2022), *A primer on maximum causal entropy inverse reinforcement learning.* arXiv:2203.11409.
# * C. Finn, S. Levine, P. Abbeel (2016), *Guided cost learning.* ICML (MaxEnt IRL with neural rewards).
