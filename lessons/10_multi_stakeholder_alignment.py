# %% [markdown]
# # 10 · Multi-stakeholder alignment: social choice
#
# An assistant deployed by a company, used by a person, and living in a society
# answers to all three, and they want different things. Slide 10 adds up
# everyone's satisfaction and picks the largest total. That is one answer to an
# old question, *how to turn many preferences into one choice*, and social
# choice theory has shown it is neither the only answer nor a neutral one.
#
# **In this lesson you will**
# 1. reproduce the slide's weighted-sum chooser and hunt its bugs, silent ones demonstrated;
# 2. compute the utilitarian sum, Rawlsian maximin, Nash welfare, the Borda count, the Condorcet winner and the Pareto front with `labkit.social_choice`;
# 3. meet a Condorcet cycle, design a profile on which Borda and Condorcet disagree (exercise), and a profile on which four rules pick four different options;
# 4. see how majority-vote labels erase annotator disagreement in preference data, after Bakker et al. (2022).

# %%
import matplotlib.pyplot as plt
import numpy as np

import labkit
from labkit import social_choice as sc
from labkit.exercises import card, check

device = labkit.setup(seed=0)
rng = np.random.default_rng(0)

# %% [markdown]
# ## 1. The slide's approach
#
# Each stakeholder scores a decision as a weighted sum of the decision's
# attributes it cares about; the chooser adds the stakeholders' scores and
# keeps the best. In a few lines:

# %%
def slide_score(prefs, decision):
    return sum(weight * decision.get(attr, 0) for attr, weight in prefs.items())

def slide_choose(stakeholders, decisions):
    best, best_score = None, float("-inf")
    for decision in decisions:
        score = sum(slide_score(prefs, decision) for prefs in stakeholders.values())
        if score > best_score:
            best, best_score = decision, score
    return best

options = list(sc.SLIDE_OPTIONS.values())
names = list(sc.SLIDE_OPTIONS)
print("slide picks:", names[options.index(slide_choose(sc.SLIDE_STAKEHOLDERS, options[:2]))], "(of the slide's two options)")

# %% [markdown]
# ## 2. Bug hunt
#
# 1. **A missing attribute counts as 0** (silent). `decision.get(attr, 0)`
#    turns a typo or a forgotten field into "this stakeholder gets nothing".
# 2. **NaN makes an option invisible** (silent). `score > best_score` is
#    `False` for NaN, so an option with one unknown attribute is never chosen, and
#    if every score is NaN the function returns `None`.
# 3. **Ties go to whoever comes first**: the order of the list is a hidden parameter.
# 4. **The sum trades people off against each other.** A large gain for two
#    stakeholders outweighs a large loss for the third; nothing protects the
#    worst-off, and scales are compared across people as if they meant the same.
#
# Bugs 1 and 2, demonstrated: a capitalised key and a missing measurement.

# %%
typo = dict(options[0]); typo["Privacy"] = typo.pop("privacy")   # one capital letter
print("user's score for A:", round(slide_score(sc.SLIDE_STAKEHOLDERS["User"], options[0]), 3),
      "-> with the typo:", round(slide_score(sc.SLIDE_STAKEHOLDERS["User"], typo), 3))
unknown = dict(options[3]); unknown["profit"] = float("nan")
picked = slide_choose(sc.SLIDE_STAKEHOLDERS, [unknown])
print("choosing among one option whose profit is unknown returns:", picked)
try:
    sc.stakeholder_utilities(sc.SLIDE_STAKEHOLDERS, {"A with typo": typo})
except ValueError as exc:
    print("labkit:", exc)

# %% [markdown]
# labkit turns the stakeholders' preferences into a **utility matrix**
# `U[i, j]` (stakeholder i, option j) and refuses missing attributes. With the
# slide's two options plus two more (an ad-funded and a nonprofit design):

# %%
U = sc.stakeholder_utilities(sc.SLIDE_STAKEHOLDERS, sc.SLIDE_OPTIONS)
print(f"{'':<10}" + "".join(f"{n:>13}" for n in names))
for who, row in zip(sc.SLIDE_STAKEHOLDERS, U):
    print(f"{who:<10}" + "".join(f"{v:>13.3f}" for v in row))
for rule, idx in sc.all_winners(U).items():
    print(f"{rule:<12} -> {names[idx] if idx is not None else 'none'}")

# %% [markdown]
# Bug 4, demonstrated: the sum picks the nonprofit design, whose company
# utility is 0.27, while maximin picks A, which gives everyone at least 0.5.
#
# ## 3. The rules, side by side
#
# * **Utilitarian** (Harsanyi 1955): maximise $\sum_i w_i U_{ij}$.
# * **Rawlsian maximin** (Rawls 1971): maximise $\min_i U_{ij}$, ties broken by leximin.
# * **Nash welfare** (Nash 1950): maximise $\sum_i w_i \log(U_{ij} - d_i)$, the log of the Nash product; it rewards balanced gains and scores $-\infty$ if anyone ends at or below the disagreement point $d$.
# * **Borda** (1781): from each ranking of $m$ options, position $p$ earns $m-1-p$ points.
# * **Condorcet** (1785): the option that beats every other in head-to-head majority votes, if one exists.
# * **Pareto front**: options that no other option makes at least as good for everyone and better for someone. Every sensible rule picks from it.

# %%
card("10.borda_scores")

# %% [markdown]
# Write `borda_scores(rankings)`. `rankings` has one row per voter listing
# option indices from best to worst; return a float array with each option's
# Borda points. Raise `ValueError` when a row is not a permutation of `0..m-1`.

# %%
def borda_scores(rankings):
    ### BEGIN SOLUTION
    r = np.asarray(rankings)
    n, m = r.shape
    if not (np.sort(r, axis=1) == np.arange(m)).all():
        raise ValueError("each row must be a permutation of 0..m-1")
    scores = np.zeros(m)
    for row in r:
        scores[row] += np.arange(m - 1, -1, -1)
    return scores
    ### END SOLUTION

# %%
check("10.borda_scores", borda_scores)

# %%
card("10.pareto_front")

# %% [markdown]
# Write `pareto_front(utilities)` returning a boolean mask over the options
# (columns): `True` when no other option is at least as good for every
# stakeholder and strictly better for one. Identical options do not dominate each other.

# %%
def pareto_front(utilities):
    ### BEGIN SOLUTION
    u = np.asarray(utilities, dtype=float)
    m = u.shape[1]
    keep = np.ones(m, dtype=bool)
    for j in range(m):
        for k in range(m):
            if np.all(u[:, k] >= u[:, j]) and np.any(u[:, k] > u[:, j]):
                keep[j] = False
    return keep
    ### END SOLUTION

# %%
check("10.pareto_front", pareto_front)

# %% [markdown]
# ### Four rules, four winners
#
# One profile of three stakeholders (rows 0 to 2) and four options (columns 0 to
# 3), every option on the Pareto front (so none is simply bad):

# %%
profile = np.array([[7.0, 5.0, 4.0, 8.0],
                    [1.0, 3.0, 4.0, 6.0],
                    [9.0, 7.0, 6.0, 1.0]])
print("Pareto front:", sc.pareto_front(profile))
for rule in sc.RULES:
    print(f"{rule:<12} scores {np.round(sc.welfare(profile, rule), 3)} -> option {sc.choose(profile, rule)}")
ranks = sc.rankings_from_utilities(profile)
print(f"{'borda':<12} scores {sc.borda_scores(ranks)} -> option {int(np.argmax(sc.borda_scores(ranks)))}")
print(f"{'condorcet':<12} winner option {sc.condorcet_winner(ranks)}")

# %% [markdown]
# The sum likes option 0 (a big total, but stakeholder 1 gets 1), maximin likes
# option 2 (nobody below 4), Nash likes the balanced option 1, and Borda and
# Condorcet, which only see *rankings*, pick option 3 (stakeholder 2's worst).
# Choosing the aggregation rule *is* a value judgement; write it down.
#
# ### A Condorcet cycle
#
# Three voters with rankings A>B>C, B>C>A and C>A>B: every option loses a
# head-to-head vote 1 to 2, so majority preference is not transitive and there
# is no Condorcet winner; Borda calls it a three-way tie.

# %%
cycle = np.array([[0, 1, 2], [1, 2, 0], [2, 0, 1]])
print("pairwise margins (row beats column by):\n", sc.pairwise_margins(cycle))
print("Condorcet winner:", sc.condorcet_winner(cycle), "  Borda:", sc.borda_scores(cycle))

# %% [markdown]
# When a Condorcet winner does exist, must Borda pick it? A design exercise:
# the check accepts any profile that answers the question.

# %%
card("10.borda_condorcet_disagree")

# %% [markdown]
# Write `borda_condorcet_disagree()` returning a profile (one row per voter,
# options listed from best to worst) that has a Condorcet winner and a unique
# Borda winner, and the two are different options. Hint: Borda counts how
# *strongly* the minority dislikes the majority's favourite.

# %%
def borda_condorcet_disagree():
    ### BEGIN SOLUTION
    return np.array([[0, 1, 2]] * 3 + [[1, 2, 0]] * 2)
    ### END SOLUTION

# %%
check("10.borda_condorcet_disagree", borda_condorcet_disagree)

# %% [markdown]
# Arrow (1951) proved that with three or more options no rule that turns
# voters' *rankings* into a social ranking is simultaneously Pareto,
# independent of irrelevant alternatives and non-dictatorial. The theorem is
# about ordinal information only: Borda and majority (Condorcet) fall under it
# and each gives up something (Borda gives up independence of irrelevant
# alternatives; majority gives up a transitive, complete ranking, as the cycle
# shows). The utilitarian, maximin and Nash rules are outside it: they use
# *cardinal* utilities that are comparable across people, which is exactly the
# extra information Arrow's setting rules out (Sen 1970). They escape the
# theorem by assuming comparisons that someone has to justify: the sum needs
# everyone's utility on one scale, maximin needs levels comparable across
# people, and Nash welfare (unchanged when one person's utility is rescaled)
# needs a disagreement point.
#
# ### Interactive: stakeholder weights
#
# Move the weights of the user, the company and society (normalised to sum to
# 1). Utilitarian, Nash and Borda winners move with the weights; maximin does
# not, because Rawls' rule ignores weights by design.

# %% tags=["nbval-ignore-output"]
sc.stakeholder_weights_widget()

# %% [markdown]
# ## 4. Reproducing a reference result: annotator disagreement (Bakker et al. 2022)
#
# Preference data for aligning language models comes from annotators who
# disagree. Bakker et al. (2022) fine-tuned a language model to write
# *consensus statements* for groups of people with diverse views: a reward model
# predicts **each** participant's rating of a candidate statement, and candidates
# are ranked by a social welfare function of those individual predictions, not
# by a single "average annotator".
#
# In miniature: 20 annotators, 14 in a majority group and 6 in a minority, rate 5
# candidate statements. First the common shortcut, majority-vote labels on every
# pair of statements, and how many of each group's own judgements the labels contradict.

# %%
group_means = np.array([[0.90, 0.70, 0.60, 0.30, 0.50],    # majority
                        [0.10, 0.50, 0.60, 0.90, 0.30]])   # minority
group = np.repeat([0, 1], [14, 6])
ratings = np.clip(group_means[group] + rng.normal(0, 0.05, size=(20, 5)), 0.01, 1.0)

pairs = [(a, b) for a in range(5) for b in range(a + 1, 5)]
prefers_a = np.array([[r[a] > r[b] for a, b in pairs] for r in ratings])   # (annotator, pair)
majority_label = prefers_a.mean(axis=0) > 0.5
contradicted = prefers_a != majority_label
for g, label in enumerate(("majority", "minority")):
    print(f"{label} group: majority-vote labels contradict {contradicted[group == g].mean():.3f} of its judgements")

# %% [markdown]
# Majority labels are the crude version. RLHF usually keeps every comparison
# and fits one Bradley–Terry reward model (lesson 05) to the pooled data, which
# does not say who made which comparison. What does that model learn?
# Siththaranjan, Laidlaw and Hadfield-Menell (2023) prove that preference
# learning with such *hidden context* aggregates like the **Borda count**. We fit
# a Bradley–Terry reward (one score per statement, `labkit.reward`'s Newton
# fit on one-hot features) to all 200 comparisons and set it beside Borda:

# %%
from labkit import reward as rw

one_hot = np.eye(5)
pooled = rw.Preferences(features_a=np.array([one_hot[a] for a, _ in pairs] * len(ratings)),
                        features_b=np.array([one_hot[b] for _, b in pairs] * len(ratings)),
                        prefers_a=prefers_a.reshape(-1), gold_prefers_a=prefers_a.reshape(-1))
bt_reward = rw.fit_bradley_terry(pooled)
borda_pooled = sc.borda_scores(sc.rankings_from_utilities(ratings))
print("Bradley-Terry reward per statement (centred):", np.round(bt_reward - bt_reward.mean(), 3))
print("Borda scores per statement                 :", borda_pooled)
print("ranking by Bradley-Terry:", np.argsort(-bt_reward).tolist(), "  by Borda:", np.argsort(-borda_pooled).tolist(),
      f"  correlation {np.corrcoef(bt_reward, borda_pooled)[0, 1]:.4f}")
minority_favourite = int(np.argmax(ratings[group == 1].mean(axis=0)))
print(f"the minority's favourite, statement {minority_favourite}, is ranked "
      f"{int(np.flatnonzero(np.argsort(-bt_reward) == minority_favourite)[0]) + 1} of 5 by the reward model")

# %% [markdown]
# The pooled reward model ranks the statements exactly as Borda does. It does
# not ignore the minority (it is not the majority vote), but it weighs each
# comparison once: the statement the minority likes most comes fourth, and the
# one it rejects comes first. Nothing in the pooled data says that six people
# disagree systematically; Siththaranjan et al.'s remedy is to learn a
# *distribution* of rewards per response, which exposes that hidden context.
# Aggregating individual ratings with an explicit welfare function keeps the
# groups visible, and the choice of function decides what happens to them:

# %%
picks = {rule: sc.choose(ratings, rule) for rule in sc.RULES}
for rule, pick in picks.items():
    print(f"{rule:<12} picks statement {pick}:  majority mean {ratings[group == 0, pick].mean():.3f}, "
          f"minority mean {ratings[group == 1, pick].mean():.3f}")

fig, ax = plt.subplots(figsize=(7, 3))
x = np.arange(5)
for g, label in enumerate(("majority (14 annotators)", "minority (6 annotators)")):
    ax.bar(x + (g - 0.5) * 0.35, ratings[group == g].mean(axis=0), 0.35, label=label)
ax.set_xticks(x, [f"statement {j}\n" + "\n".join(r for r, p in picks.items() if p == j) for j in x], fontsize=8)
ax.set(ylabel="mean rating", ylim=(0, 1), title="Who each welfare function serves")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# The utilitarian sum picks statement 0, which the majority loves and the
# minority rejects (mean ratings 0.889 and 0.102); maximin picks statement 2,
# which both groups rate about 0.6; Nash welfare settles between them on
# statement 1 (0.711 and 0.514). This is the mechanism, not the paper's result: Bakker et al.
# measured real participants' endorsement of model-written statements, which a
# simulation cannot reproduce.
#
# ## Key takeaways
# * Summing satisfaction is one rule (utilitarian) among several; each encodes a value judgement about trade-offs between people.
# * Make missing data an error, not a zero; NaN silently hides options from a `>` comparison.
# * Maximin protects the worst-off, Nash welfare rewards balanced gains, Borda and Condorcet use only rankings; a Condorcet winner may not exist.
# * Pick from the Pareto front, then argue for the rule that chooses within it.
# * Majority-vote preference labels erase minority annotators; a Bradley–Terry reward model on pooled comparisons aggregates like Borda (Siththaranjan et al. 2023); aggregate individual preferences explicitly.
#
# ## Further reading
# * M. Bakker et al. (2022), *Fine-tuning language models to find agreement among humans with diverse preferences.* NeurIPS. arXiv:2211.15006.
# * A. Siththaranjan, C. Laidlaw, D. Hadfield-Menell (2023), *Distributional preference learning: understanding and accounting for hidden context in RLHF.* arXiv:2312.08358 (ICLR 2024).
# * K. Arrow (1951), *Social Choice and Individual Values.*
# * A. Sen (1970), *Collective Choice and Social Welfare* (what interpersonal comparisons of utility add to Arrow's setting).
# * J. Rawls (1971), *A Theory of Justice*; J. Harsanyi (1955), *Cardinal welfare, individualistic ethics, and interpersonal comparisons of utility.* JPE 63(4).
# * J. Nash (1950), *The bargaining problem.* Econometrica 18(2).
# * F. Brandt, V. Conitzer, U. Endriss, J. Lang, A. Procaccia (eds., 2016), *Handbook of Computational Social Choice.*
# * V. Conitzer et al. (2024), *Social Choice Should Guide AI Alignment in Dealing with Diverse Human Feedback.* arXiv:2404.10271.
