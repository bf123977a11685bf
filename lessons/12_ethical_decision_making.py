# %% [markdown]
# # 12 · Ethical decision-making: MCDA and rank reversal
#
# Slide 12 proposes an "ethical framework": four principles (beneficence,
# non-maleficence, autonomy, justice) with weights, and the action with the
# highest weighted score wins. This is multi-criteria decision analysis (MCDA),
# a field with sixty years of results about exactly where such a framework goes
# wrong. This lesson repairs the slide's code and then asks how much its
# decision depends on choices nobody wrote down.
#
# **In this lesson you will**
# 1. run the slide's framework, watch it crash, and find the silent bugs hiding behind the crash;
# 2. score each principle with an explicit function, normalise, and aggregate three ways: weighted sum, lexicographic priority, and non-maleficence as a hard constraint;
# 3. map which weight changes flip the decision (sensitivity analysis);
# 4. reproduce rank reversal (Belton and Gear 1983): adding a copy of an option changes which of the *other* options wins.

# %%
import matplotlib.pyplot as plt
import numpy as np

import labkit
from labkit import mcda
from labkit.exercises import card, check

device = labkit.setup(seed=0)
names = [a["name"] for a in mcda.ACTIONS]

# %% [markdown]
# ## 1. The slide's approach
#
# Each principle has a name and a weight, `evaluate(action)` is left as `pass`,
# and the framework sums `weight * evaluate(action)`:

# %%
class SlidePrinciple:
    def __init__(self, name, weight):
        self.name, self.weight = name, weight

    def evaluate(self, action):
        pass  # as on the slide

def slide_decide(principles, actions):
    best, best_score = None, float("-inf")
    for action in actions:
        score = sum(p.weight * p.evaluate(action) for p in principles)
        if score > best_score:
            best, best_score = action, score
    return best

slide_principles = [SlidePrinciple(n, w) for n, w in
                    [("Beneficence", 0.3), ("Non-maleficence", 0.3), ("Autonomy", 0.2), ("Justice", 0.2)]]
try:
    slide_decide(slide_principles, mcda.ACTIONS[:2])
except TypeError as exc:
    print("TypeError:", exc)

# %% [markdown]
# ## 2. Bug hunt
#
# 1. **`evaluate` returns `None`** (loud): `0.3 * None` raises `TypeError`, above.
# 2. **Harm counted as a benefit** (silent). The obvious fill-in,
#    `return action[attribute]`, adds the action's *harm* to its score, so the
#    most harmful action gains the most from "non-maleficence".
# 3. **Names do not match the data** (silent). The principles are called
#    `Justice` and `Non-maleficence`, the actions store `fairness` and `harm`;
#    `action.get(name.lower(), 0)` quietly scores them 0.
# 4. **Compensation**: in a weighted sum, enough benefit buys any amount of
#    harm. Non-maleficence is usually meant as a constraint, not a preference.
# 5. **`score > best_score` with NaN** never selects, and with no winner
#    `best_action['name']` raises on `None`; ties go to the first action listed.
#
# Bugs 2 and 3, demonstrated on the slide's two actions plus C (very beneficial,
# very harmful) and D (cautious):

# %%
for a in mcda.ACTIONS:
    print(a)

def fill_in_sign_error(action):     # bug 2: every attribute treated as "more is better"
    attrs = {"Beneficence": "benefit", "Non-maleficence": "harm", "Autonomy": "autonomy", "Justice": "fairness"}
    return sum(p.weight * action[attrs[p.name]] for p in slide_principles)

def fill_in_by_name(action):        # bug 3: principle names looked up as attribute names
    return sum(p.weight * action.get(p.name.lower(), 0) for p in slide_principles)

for label, fn in (("sign error", fill_in_sign_error), ("lookup by name", fill_in_by_name)):
    scores = [round(fn(a), 3) for a in mcda.ACTIONS]
    print(f"{label:<15} scores {scores} -> picks {names[int(np.argmax(scores))]}")

# %% [markdown]
# With the sign error the most harmful action, C (harm 0.7), wins. Looking
# principles up by name finds only `autonomy`; beneficence, non-maleficence and
# justice silently score 0, and B wins on autonomy alone.
#
# ## 3. The corrected framework
#
# `mcda.Principle` names the attribute it reads and whether it is a benefit or a
# cost (non-maleficence scores `1 - harm`); a missing or out-of-range attribute
# raises. `mcda.score_matrix` gives one row per action, one column per principle.

# %%
S = mcda.score_matrix(mcda.ACTIONS)
w = mcda.SLIDE_WEIGHTS
print("principles:", [p.name for p in mcda.PRINCIPLES], " weights:", w)
print(S)
try:
    mcda.score_matrix([{"name": "E", "benefit": 0.9, "harm": 1.4, "autonomy": 0.5, "fairness": 0.5}])
except ValueError as exc:
    print("labkit:", exc)

# %% [markdown]
# ### Normalisation
#
# The scores share the scale [0, 1], but a criterion on which all actions are
# nearly equal still adds the same to each. **Min-max normalisation** stretches
# each criterion to span [0, 1] over the actions at hand, so every criterion
# separates the best action from the worst by exactly its weight.

# %%
card("12.minmax_normalise")

# %% [markdown]
# Write `minmax_normalise(scores)`: rescale each **column** of a 2-d array to
# $(x - \min)/(\max - \min)$. A constant column becomes all zeros. Raise
# `ValueError` if the array contains NaN or infinity.

# %%
def minmax_normalise(scores):
    ### BEGIN SOLUTION
    s = np.asarray(scores, dtype=float)
    if not np.isfinite(s).all():
        raise ValueError("scores must be finite")
    low, span = s.min(axis=0), s.max(axis=0) - s.min(axis=0)
    out = np.zeros_like(s)
    varies = span > 0
    out[:, varies] = (s[:, varies] - low[varies]) / span[varies]
    return out
    ### END SOLUTION

# %%
check("12.minmax_normalise", minmax_normalise)

# %% [markdown]
# ### Three ways to aggregate
#
# * **Weighted sum** (the additive value model, Keeney and Raiffa 1976): compensatory.
# * **Lexicographic** (Fishburn 1974): a strict priority order; a lower principle only breaks ties of the higher ones.
# * **Hard constraint**: drop every action whose harm exceeds a limit, then take the weighted sum; if nothing is left, refuse.

# %%
card("12.lexicographic_choice")

# %% [markdown]
# Write `lexicographic_choice(scores, order, tol=1e-9)`: keep the actions within
# `tol` of the best on criterion `order[0]`, then among them those within `tol`
# of the best on `order[1]`, and so on; return the lowest surviving index. Raise
# `ValueError` when `order` repeats a criterion or names one that does not exist.

# %%
def lexicographic_choice(scores, order, tol=1e-9):
    ### BEGIN SOLUTION
    s = np.asarray(scores, dtype=float)
    if len(set(order)) != len(order) or not all(0 <= k < s.shape[1] for k in order):
        raise ValueError("order must list distinct existing criteria")
    alive = np.arange(s.shape[0])
    for k in order:
        col = s[alive, k]
        alive = alive[col >= col.max() - tol]
    return int(alive[0])
    ### END SOLUTION

# %%
check("12.lexicographic_choice", lexicographic_choice)

# %%
raw_value = mcda.weighted_sum(S, w)
norm_value = mcda.weighted_sum(mcda.minmax_normalise(S), w)
for label, value in (("raw scores      ", raw_value), ("min-max scores  ", norm_value)):
    runner_up, best = np.sort(value)[-2:]
    print(f"weighted sum, {label} :", np.round(value, 3), "->", names[int(np.argmax(value))], f"by {best - runner_up:.3f}")
print("lexicographic, harm first      :", names[mcda.lexicographic_choice(S, [1, 0, 2, 3])])
print("lexicographic, benefit first   :", names[mcda.lexicographic_choice(S, [0, 1, 2, 3])])
pick = mcda.constrained_choice(S, w, [0.0, 0.7, 0.0, 0.0])   # non-maleficence >= 0.7 means harm <= 0.3
print("harm <= 0.3, then weighted sum :", names[pick])

# %% [markdown]
# Five reasonable procedures, three different answers. On the raw scores A beats B by 0.010.
# After min-max normalisation the **most harmful** action, C, wins by 0.002:
# stretching the benefit column rewards C's top benefit with the full weight
# 0.3. Putting harm first lexicographically picks the harmless but least
# beneficial D; benefit first picks C. With non-maleficence as a hard
# constraint (harm at most 0.3), C is out before any trade-off is made and A wins.
#
# ## 4. Sensitivity: which weight changes flip the decision?
#
# Move one principle's weight $t$ from 0 to 1 while the others keep their
# proportions. Each action's value is then linear in $t$, so the winner can only
# change where two lines cross; `mcda.flip_points` finds those crossings exactly.

# %%
for k, p in enumerate(mcda.PRINCIPLES):
    flips = mcda.flip_points(S, w, k)
    where = ", ".join(f"t={t:.3f}: {names[a]}->{names[b]}" for t, a, b in flips) or "none"
    nearest = min((abs(t - w[k]) for t, _, _ in flips), default=float("nan"))
    print(f"{p.name:<16} weight {w[k]:.2f}  flips at {where}   (nearest {nearest:.3f} away)")

k = 3  # justice: every action's value is a straight line in its weight t
ts = np.linspace(0, 1, 101)
others = np.delete(w, k) / np.delete(w, k).sum()
values = np.array([S @ np.insert(others * (1 - t), k, t) for t in ts])   # (t, action)
fig, ax = plt.subplots(figsize=(7, 3.2))
for a, name in enumerate(names):
    ax.plot(ts, values[:, a], label=name)
for t, _, _ in mcda.flip_points(S, w, k):
    ax.axvline(t, color="k", ls=":", lw=1)
ax.axvline(w[k], color="k", lw=1.5, label="slide's weight")
ax.set(xlabel="weight of justice (others keep their ratio)", ylabel="weighted-sum value", title="Flip points for justice")
ax.legend(fontsize=8, ncol=5)
fig.tight_layout()
plt.show()

# %% [markdown]
# In the plot the lines cross at the dotted flip points, and the solid line marks
# the slide's weight. A's win at the slide's weights is fragile: raising autonomy from 0.20 to
# 0.226 hands the decision to B, and so does lowering justice to 0.158;
# lowering non-maleficence from 0.30 to 0.222 hands it to C, the harmful action.
# Rank reversals this close to the stated weights mean the weights, not the
# principles, are making the decision; report them with the decision.
#
# ### Interactive: weights, decisions and the stability map
#
# The sliders set the four weights (normalised to sum 1) and the harm limit of
# the constrained rule. The left panel shows each action's weighted sum and each
# method's decision; the right panel colours every (beneficence,
# non-maleficence) weight pair by the weighted-sum winner, with the star at your weights.

# %% tags=["nbval-ignore-output"]
mcda.decision_widget()

# %% [markdown]
# ## 5. Reproducing a reference result: rank reversal (Belton and Gear 1983)
#
# Belton and Gear showed that Saaty's analytic hierarchy process, which
# normalises each criterion by its sum, can reverse the order of two options
# when a third is added, even an exact copy of one of them. The same happens
# with any normalisation that depends on the set of options. Three options,
# three equally weighted criteria (ratio-scale values, as in AHP):

# %%
values = np.array([[1.0, 9.0, 8.0],    # option X
                   [9.0, 1.0, 9.0],    # option Y
                   [1.0, 1.0, 8.0]])   # option Z
equal = np.ones(3)
before = mcda.weighted_sum(mcda.sum_normalise(values), equal)
with_copy = np.vstack([values, values[1]])              # add Y', a copy of Y
after = mcda.weighted_sum(mcda.sum_normalise(with_copy), equal)
print("X, Y, Z       :", np.round(before, 3), "-> X vs Y:", "X" if before[0] > before[1] else "Y")
print("X, Y, Z, Y'   :", np.round(after, 3), "-> X vs Y:", "X" if after[0] > after[1] else "Y")

# %% [markdown]
# The copy splits each criterion's total between Y and Y', shrinking Y's share
# most on the criteria Y is good at, and X overtakes Y. Nothing about X or Y changed. For an ethical framework that
# means the verdict between two actions can depend on which *other* actions
# someone thought to list. Remedies: normalise against fixed reference levels
# rather than the current set (an "ideal" mode), or use a method without
# set-dependent normalisation, and always test whether adding or removing an
# option flips the verdict.
#
# ## 6. Moral uncertainty: credences over theories
#
# The weighted sum treats principles as ingredients of one theory. A different
# kind of uncertainty is *which ethical theory is right*. Suppose we give 40 %
# credence to a utilitarian theory (choiceworthiness = benefit − harm), 35 % to
# a deontological one (any harm above 0.15 is forbidden, scored −1; among
# permitted acts, respect for autonomy counts) and 25 % to an egalitarian one
# (fairness). Each theory scores the same four actions:

# %%
credences = np.array([0.40, 0.35, 0.25])
cw = mcda.choiceworthiness(mcda.ACTIONS)
print(f"credences {credences.tolist()}; the deontological theory forbids harm above {mcda.DEONTIC_HARM_LIMIT}")
for theory, row in zip(mcda.THEORIES, cw):
    print(f"{theory:<14} choiceworthiness {np.round(row, 2)} -> best {names[int(np.argmax(row))]}")
print()
print(f"{'weighted sum of principles (section 3)':<46} -> {names[int(np.argmax(raw_value))]}")
print(f"{'my favourite theory (most credible only)':<46} -> {names[mcda.favourite_theory_choice(cw, credences)]}")
for normalise in mcda.NORMALISATIONS:
    mec = mcda.expected_choiceworthiness(cw, credences, normalise)
    print(f"{'expected choiceworthiness, ' + normalise + ' normalisation':<46} -> {names[int(np.argmax(mec))]}  {np.round(mec, 3)}")
borda_mu = mcda.credence_weighted_borda(cw, credences)
print(f"{'credence-weighted Borda (rankings only)':<46} -> {names[int(np.argmax(borda_mu))]}  {np.round(borda_mu, 3)}")

# %% [markdown]
# **Maximising expected choiceworthiness** (MEC; MacAskill, Bykvist and Ord
# 2020) is the natural analogue of expected utility, but it adds numbers from
# different theories, so it needs an exchange rate between them that no theory
# supplies. Taken at face value, the deontological theory's −1 for a forbidden
# act outweighs everything and MEC picks B; with each theory rescaled to the
# same range, B still wins narrowly; with each rescaled to the same variance,
# A wins. The choice of normalisation is the choice of how loud each theory
# may shout. Using only the theories' rankings (credence-weighted Borda,
# MacAskill 2016) sidesteps the exchange rate and picks A, ignoring how much
# the deontologist objects to A. A **moral parliament** (Bostrom 2009; Newberry
# and Ord 2021) gives each theory delegates in proportion to its credence and
# lets them bargain and vote; the Borda count is its simplest voting rule, not
# a model of the bargaining. Weights over principles and credences over
# theories answer different questions, and here they can disagree: write down
# which one a system uses.
#
# ## Key takeaways
# * Make every principle an explicit, validated scoring function with a direction; a missing attribute is an error, never a zero.
# * Weighted sums are compensatory: enough benefit buys any harm. Encode non-maleficence as a hard constraint when it is meant as one.
# * Normalisation, aggregation rule and weights each can flip the decision; report the decision with its flip points.
# * Set-dependent normalisation causes rank reversal: adding an option (even a copy) can reorder the others.
# * Under uncertainty between ethical theories, expected choiceworthiness depends on an intertheoretic normalisation that must be stated; rank-based rules need none but ignore stakes.
#
# ## Further reading
# * V. Belton, T. Gear (1983), *On a short-coming of Saaty's method of analytic hierarchies.* Omega 11(3).
# * R. Keeney, H. Raiffa (1976), *Decisions with Multiple Objectives: Preferences and Value Tradeoffs.*
# * P. Fishburn (1974), *Lexicographic orders, utilities and decision rules: a survey.* Management Science 20(11).
# * T. Beauchamp, J. Childress (1979, 8th ed. 2019), *Principles of Biomedical Ethics*: the four principles of the slide.
# * W. MacAskill, K. Bykvist, T. Ord (2020), *Moral Uncertainty.* Oxford University Press (expected choiceworthiness, intertheoretic comparisons).
# * W. MacAskill (2016), *Normative uncertainty as a voting problem.* Mind 125(500).
# * W. MacAskill, O. Cotton-Barratt, T. Ord (2020), *Statistical normalization methods in interpersonal and intertheoretic comparisons.* Journal of Philosophy 117(2).
# * N. Bostrom (2009), *Moral uncertainty: towards a solution?* Overcoming Bias; T. Newberry, T. Ord (2021), *The parliamentary approach to moral uncertainty.* FHI technical report.
# * E. Triantaphyllou (2000), *Multi-Criteria Decision Making Methods: A Comparative Study.*
