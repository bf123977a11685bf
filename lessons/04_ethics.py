# %% [markdown]
# # 04 · Ethics made measurable: fairness metrics and their tensions
#
# Slide 4 lists fairness, transparency, accountability and respect for human
# rights, and sketches an `EthicalAI` class whose ethical check is left empty.
# This lesson fills the gap with things that can be measured and audited: on a
# generated lending data set whose bias mechanism we know, we measure fairness,
# meet the theorems that say not every fairness criterion can hold at once, try
# two mitigations and pay their accuracy cost, and record the run in a model
# card. (The append-only, tamper-evident log that accountability needs is built
# in lesson 13, on a monitor's alerts.)
#
# **In this lesson you will**
# 1. reproduce the slide's `EthicalAI` and find its defects;
# 2. compute demographic parity and equalized odds differences, and calibration within groups;
# 3. see the impossibility results of Kleinberg et al. (2016) and Chouldechova (2017) on the data;
# 4. mitigate with reweighing and group thresholds, and measure what they cost;
# 5. write a model card from the run.

# %%
import matplotlib.pyplot as plt
import numpy as np

import labkit
from labkit import fairness as fair
from labkit.exercises import card, check

device = labkit.setup(seed=0)

# %% [markdown]
# ## 1. The slide's approach
#
# In a few lines of our own: a class lists its principles, processes an input
# into a decision, keeps it if an `is_ethical` check passes and revises it otherwise.
# We add the `process_input` the slide forgets, approving an applicant when a
# score clears 0.5.

# %%
class SlideEthicalAI:
    principles = ["fairness", "transparency", "accountability", "respect_for_human_rights"]

    def make_decision(self, applicant):
        decision = self.process_input(applicant)
        return decision if self.is_ethical(decision) else self.revise(decision)

    def is_ethical(self, decision):
        pass  # "implement ethical checks here"

    def revise(self, decision):
        pass  # "implement decision revision logic"

class WithProcessing(SlideEthicalAI):
    def process_input(self, applicant):
        return "approve" if applicant["score"] >= 0.5 else "reject"

# %% [markdown]
# ### Bug hunt
#
# **Bug 1: `process_input` is never defined**, so the slide's class cannot make
# a single decision.

# %%
try:
    SlideEthicalAI().make_decision({"score": 0.9})
except AttributeError as err:
    print("AttributeError:", err)

# %% [markdown]
# **Bug 2 (silent): the empty check returns `None`, which is falsy, so every
# decision is "revised", and the empty revision returns `None`.** Every
# applicant, strong or weak, gets no decision at all, and nothing complains.

# %%
print([WithProcessing().make_decision({"score": s}) for s in (0.1, 0.5, 0.9)])

# %% [markdown]
# **Bug 3 (silent): the principles are decoration.** Nothing reads
# `principles`; replacing them changes no decision.

# %%
class NoPrinciples(WithProcessing):
    principles = []

applicants = [{"score": s} for s in np.linspace(0, 1, 11)]
same = all(NoPrinciples().make_decision(a) == WithProcessing().make_decision(a) for a in applicants)
print("same decisions with no principles at all:", same)

# %% [markdown]
# **Bug 4 (design): fairness cannot be checked one decision at a time.** "Reject,
# score 0.45" is identical whoever receives it. Whether a *policy* is fair
# depends on how its decisions fall across groups, so the check must look at a
# whole set of decisions, and at the outcomes they should have predicted. That
# is what the rest of the lesson does.
#
# ## 2. A lending data set with a known bias mechanism
#
# `fair.make_lending_data` generates applicants with a latent repayment ability,
# a repaid/defaulted outcome, and two features: a credit score and an income.
# Two mechanisms make group 1 worse off, and we control both:
#
# * **structural:** group 1's ability is lower on average (`ability_gap = 0.5`), so its repayment base rate is lower;
# * **measurement bias:** at equal ability, group 1's *recorded* credit score is 0.8 lower (`score_bias`), as with thin credit files.
#
# A logistic regression is trained on the features only (it is *group-blind*)
# and approves applicants whose predicted repayment probability is at least 0.5.

# %%
demo = fair.run_demo(seed=0)
test = demo["test"]
scores = demo["scores"]
approved = (scores >= 0.5).astype(int)
rates = fair.group_rates(test.y, approved, test.group)
print(f"test applicants {len(test.y)}, group 1 share {test.group.mean():.3f}")
print(f"{'group':<6}{'base rate':>10}{'selected':>10}{'TPR':>8}{'FPR':>8}{'PPV':>8}{'accuracy':>10}")
for k, r in rates.items():
    print(f"{k:<6}{r['base_rate']:>10.3f}{r['selection_rate']:>10.3f}{r['tpr']:>8.3f}{r['fpr']:>8.3f}{r['ppv']:>8.3f}{r['accuracy']:>10.3f}")

# %% [markdown]
# Group 1's qualified applicants (those who would repay) are approved far less
# often than group 0's: compare the TPR column.
#
# ## 3. Measuring fairness
#
# **Demographic parity** asks that every group be selected at the same rate;
# its difference is $\max_g P(\hat y = 1 \mid g) - \min_g P(\hat y = 1 \mid g)$.

# %%
card("04.demographic_parity_difference")

# %% [markdown]
# Write `demographic_parity_difference(y_pred, group)`. Group labels can be any
# integers; raise `ValueError` when fewer than two groups are present.

# %%
def demographic_parity_difference(y_pred, group):
    ### BEGIN SOLUTION
    y_pred, group = np.asarray(y_pred), np.asarray(group)
    labels = np.unique(group)
    if len(labels) < 2:
        raise ValueError("need at least two groups")
    rates = [y_pred[group == g].mean() for g in labels]
    return float(max(rates) - min(rates))
    ### END SOLUTION

# %%
check("04.demographic_parity_difference", demographic_parity_difference)

# %% [markdown]
# **Equalized odds** (Hardt, Price and Srebro 2016, def. 2.1) asks instead that
# the decision be independent of the group *given the true outcome*: equal true
# positive rates (TPR, qualified applicants approved) and equal false positive
# rates (FPR, unqualified applicants approved). Its difference is the larger of
# the TPR gap and the FPR gap.

# %%
card("04.equalized_odds_difference")

# %% [markdown]
# Write `equalized_odds_difference(y_true, y_pred, group)`. Raise `ValueError`
# when some group has no positives or no negatives (its TPR or FPR is undefined).

# %%
def equalized_odds_difference(y_true, y_pred, group):
    ### BEGIN SOLUTION
    y_true, y_pred, group = np.asarray(y_true), np.asarray(y_pred), np.asarray(group)
    tpr, fpr = [], []
    for g in np.unique(group):
        t, p = y_true[group == g], y_pred[group == g]
        if t.min() == t.max():
            raise ValueError(f"group {g} needs both outcomes")
        tpr.append(p[t == 1].mean())
        fpr.append(p[t == 0].mean())
    return float(max(max(tpr) - min(tpr), max(fpr) - min(fpr)))
    ### END SOLUTION

# %%
check("04.equalized_odds_difference", equalized_odds_difference)

# %%
print(f"demographic parity difference {fair.demographic_parity_difference(approved, test.group):.3f}")
print(f"equalized odds difference     {fair.equalized_odds_difference(test.y, approved, test.group):.3f}")

# %% [markdown]
# ### Calibration within groups
#
# A third criterion looks at the scores, not the decisions: among applicants
# scored $s$, a fraction $s$ should repay, *in every group* (Kleinberg,
# Mullainathan and Raghavan 2016). The group-blind model reads group 1's
# under-measured credit score at face value. The second model below also sees
# the group, so it can learn the measurement shift.

# %%
fig, axes = plt.subplots(1, 2, figsize=(9, 3.8), sharey=True)
for ax, key, title in ((axes[0], "scores", "group-blind model"), (axes[1], "scores_aware", "group-aware model")):
    cal = fair.calibration_by_group(test.y, demo[key], test.group, n_bins=10)
    for k, colour in ((0, "tab:blue"), (1, "tab:orange")):
        full = cal[k]["count"] >= 10  # skip nearly empty bins
        ax.plot(cal[k]["mean_score"][full], cal[k]["outcome_rate"][full], "o-", color=colour,
                label=f"group {k}: gap {cal[k]['gap']:.3f}")
    ax.plot([0, 1], [0, 1], "k--", lw=1)
    ax.set(title=title, xlabel="predicted repayment probability", xlim=(0, 1), ylim=(0, 1))
    ax.legend(fontsize=8, loc="upper left")
axes[0].set_ylabel("observed repayment rate")
fig.tight_layout()
plt.show()

# %% [markdown]
# The group-blind model's curve for group 1 lies **above** the diagonal over
# most of the range: group 1's applicants repay more often than their scores
# say (they are under-rated), while group 0's mid-range applicants are
# over-rated. The group-aware model is close to calibrated in both groups (the
# gaps in the legends are the count-weighted mean distance from the diagonal).
#
# ## 4. The impossibility tension, on the data
#
# Is the group-aware, calibrated model fair, then? Kleinberg et al. (2016,
# Theorem 1.1) prove that calibration within groups and *balance* (equal mean
# score for the repayers of every group, and for the defaulters) cannot hold
# together unless base rates are equal or prediction is perfect. Chouldechova
# (2017, eq. 2.6) gives the decision-level version, an identity of any confusion matrix:
#
# $$\mathrm{FPR} = \frac{p}{1-p}\cdot\frac{1-\mathrm{PPV}}{\mathrm{PPV}}\cdot(1-\mathrm{FNR}),$$
#
# where $p$ is the group's base rate. With different base rates, equal PPV
# ("an approval means the same in both groups") and equal FNR force different FPRs.

# %%
aware = demo["scores_aware"]
gaps = fair.balance_gaps(test.y, aware, test.group)
print(f"base rates: group 0 {rates[0]['base_rate']:.3f}, group 1 {rates[1]['base_rate']:.3f}")
print(f"group-aware model, mean-score gap among repayers {gaps['positive_class']:.3f}, "
      f"among defaulters {gaps['negative_class']:.3f}")

# Equalise the FNR (equal opportunity): with unequal base rates, eq. 2.6 says PPV and FPR cannot both stay equal.
thresholds = fair.group_thresholds(aware, test.group, "equal_opportunity", 0.8, y_true=test.y)
eo_rates = fair.group_rates(test.y, fair.decide(aware, test.group, thresholds), test.group)
print(f"\nequal-opportunity thresholds on the group-aware score: "
      f"group 0 {thresholds[0]:.3f}, group 1 {thresholds[1]:.3f}")
print(f"{'group':<6}{'FNR':>8}{'PPV':>8}{'FPR':>8}{'FPR from eq. 2.6':>18}")
for k, r in eo_rates.items():
    implied = fair.chouldechova_fpr(r["base_rate"], r["ppv"], r["fnr"])
    print(f"{k:<6}{r['fnr']:>8.3f}{r['ppv']:>8.3f}{r['fpr']:>8.3f}{implied:>18.3f}")

# %% [markdown]
# The identity holds to the printed digits in both groups. Here the FNRs are
# equal and the FPRs nearly so (equalized odds holds), so the identity pushes
# the base-rate difference into the PPV: an approval of a group 1 applicant
# means a markedly lower chance of repayment than an approval in group 0.
# Equalising the PPV instead would pull the FPRs or FNRs apart; no choice of
# thresholds equalises all three while base rates differ. Which criterion to
# satisfy is a value judgement the data cannot make for us; a model card must
# state it.
#
# ## 5. Mitigations and their cost
#
# * **Reweighing** (Kamiran and Calders 2012) trains on weights
#   $w(g, y) = P(g)P(y)/P(g, y)$, which make the label independent of the group in the training data.
# * **Group thresholds** keep the group-blind scores but choose a cut-off per
#   group: equal selection rates (demographic parity), or equal TPR (equal
#   opportunity, Hardt et al. 2016).

# %%
card("04.reweighing_weights")

# %% [markdown]
# Write `reweighing_weights(y_true, group)` returning one weight per applicant.
# Raise `ValueError` when `y_true` holds anything but 0 and 1.

# %%
def reweighing_weights(y_true, group):
    ### BEGIN SOLUTION
    y_true, group = np.asarray(y_true), np.asarray(group)
    if not np.isin(y_true, (0, 1)).all():
        raise ValueError("y_true must be 0/1")
    w = np.empty(len(y_true))
    for g in np.unique(group):
        for y in (0, 1):
            cell = (group == g) & (y_true == y)
            if cell.any():
                w[cell] = (group == g).mean() * (y_true == y).mean() / cell.mean()
    return w
    ### END SOLUTION

# %%
check("04.reweighing_weights", reweighing_weights)

# %%
parity_cut = fair.group_thresholds(scores, test.group, "parity", float(approved.mean()))
opportunity_cut = fair.group_thresholds(scores, test.group, "equal_opportunity",
                                        float(approved[test.y == 1].mean()), y_true=test.y)
variants = {
    "group-blind, threshold 0.5": (scores >= 0.5).astype(int),
    "reweighed, threshold 0.5": (demo["scores_reweighed"] >= 0.5).astype(int),
    "group-blind, parity thresholds": fair.decide(scores, test.group, parity_cut),
    "group-blind, equal-opportunity thresholds": fair.decide(scores, test.group, opportunity_cut),
    "group-aware, threshold 0.5": (aware >= 0.5).astype(int),
}
results = {}
for name, pred in variants.items():
    r = fair.group_rates(test.y, pred, test.group)
    results[name] = {
        "accuracy": float((pred == test.y).mean()),
        "DP diff": fair.demographic_parity_difference(pred, test.group),
        "EO diff": fair.equalized_odds_difference(test.y, pred, test.group),
        "TPR gap": abs(r[0]["tpr"] - r[1]["tpr"]),
        "PPV gap": abs(r[0]["ppv"] - r[1]["ppv"]),
    }
print(f"{'variant':<44}" + "".join(f"{m:>10}" for m in next(iter(results.values()))))
for name, m in results.items():
    print(f"{name:<44}" + "".join(f"{v:>10.3f}" for v in m.values()))

# %% [markdown]
# What the table says:
#
# * **Reweighing barely helps here.** It removes the label–group correlation
#   from training, but this data set's unfairness comes mostly from a biased
#   *feature*, and the group-blind model still reads the under-measured score
#   at face value. A mitigation must match the mechanism.
# * **Group thresholds** reach their target (DP difference 0, or a TPR gap
#   near 0). Parity thresholds cost about one point of accuracy; the
#   equal-opportunity thresholds cost nothing here, because the single 0.5
#   cut-off was too strict for group 1's under-rated applicants. Both widen the
#   PPV gap from under 0.02 to over 0.13: the tension of section 4 again.
# * **The group-aware model** has the highest accuracy and a much smaller
#   equalized-odds gap than the group-blind one, because it can correct the
#   measurement bias; using the group as an input is, however, legally
#   restricted in lending in many jurisdictions (disparate treatment).
#
# ### Widget: per-group thresholds
#
# Move the two cut-offs on the group-blind score and watch the selection rate,
# TPR, FPR and PPV of each group, with the overall accuracy and both fairness
# gaps in the title. Try to bring both gaps under 0.05 at once.

# %% tags=["nbval-ignore-output"]
fair.group_thresholds_widget()

# %% [markdown]
# The search can be done exhaustively: every pair of thresholds on the
# slider's grid, vectorised by `fair.threshold_grid`. For each tolerance, the
# best accuracy among the pairs whose demographic parity *and* equalized odds
# differences both stay below it:

# %%
lo, hi, step = fair.THRESHOLD_RANGE
grid = np.round(np.arange(lo, hi + step / 2, step), 2)
sweep = fair.threshold_grid(test.y, scores, test.group, grid)
worst_gap = np.maximum(sweep["dp_diff"], sweep["eo_diff"])
print(f"{grid.size ** 2} threshold pairs; smallest achievable larger gap {worst_gap.min():.3f}")
print(f"{'tolerance':>10}{'pairs':>7}{'thresholds':>14}{'accuracy':>10}")
for tolerance in (1.0, 0.1, 0.05, 0.03, 0.02, 0.015):
    ok = worst_gap < tolerance
    i, j = np.unravel_index(np.argmax(np.where(ok, sweep["accuracy"], -1.0)), ok.shape)
    print(f"{tolerance:>10.3f}{int(ok.sum()):>7}{f'({grid[i]:.2f}, {grid[j]:.2f})':>14}{sweep['accuracy'][i, j]:>10.3f}")

# %% [markdown]
# Both gaps can be brought under 0.05 for less than two points of accuracy, by
# splitting the difference between the two criteria. Tightening further costs
# fast: under 0.02, accuracy falls below 0.6, and neither gap can reach zero
# together with the other. The reason is arithmetic: a group's selection rate
# is $\mathrm{FPR} + (\mathrm{TPR} - \mathrm{FPR})\,p$, so with equal TPR and
# FPR but base rates 0.577 and 0.409 the selection rates differ by
# $0.168\,(\mathrm{TPR} - \mathrm{FPR})$, which vanishes only when the
# decisions no longer depend on who will repay.
#
# ## 6. Transparency: a model card written from the run
#
# A model card (Mitchell et al. 2019) states what a model is for, what it was
# trained on, how it performs for each group, and its caveats. Generating the
# metrics section from the run keeps the card honest: it cannot drift from the numbers.

# %%
from IPython.display import Markdown

Markdown(fair.model_card(
    name="lending-logreg (course demo)",
    intended_use="Teaching: a loan-approval score on generated data. Not for real lending decisions.",
    data_description=(f"{len(demo['train'].y)} generated training applicants, {len(test.y)} test applicants; "
                      "group 1's credit score is under-measured by 0.8 and its base rate is lower."),
    metrics_by_variant=results,
    caveats=[
        "Calibration within groups, equal error rates and equal PPV cannot all hold when base rates differ (Kleinberg et al. 2016; Chouldechova 2017).",
        "Which fairness criterion to enforce is a policy decision; this card reports all of them.",
        "Generated data with one known bias mechanism; real data hides its mechanisms.",
    ],
))

# %% [markdown]
# ## Key takeaways
# * An empty `is_ethical` check approves nothing and warns about nothing; fairness is a property of many decisions, so measure it on a whole run.
# * Demographic parity, equalized odds and calibration within groups ask different things; with unequal base rates they cannot all hold (Kleinberg et al. 2016; Chouldechova 2017).
# * A mitigation must match the bias mechanism: reweighing does little against a biased feature; group thresholds hit their target and move the other metrics.
# * Transparency is an artefact: a model card generated from the run. (Accountability's artefact, a tamper-evident log of decisions, is built in lesson 13.)
#
# ## Further reading
# * J. Kleinberg, S. Mullainathan, M. Raghavan (2016), *Inherent trade-offs in the fair determination of risk scores.* arXiv:1609.05807 (ITCS 2017).
# * A. Chouldechova (2017), *Fair prediction with disparate impact: a study of bias in recidivism prediction instruments.* Big Data 5(2).
# * M. Hardt, E. Price, N. Srebro (2016), *Equality of opportunity in supervised learning.* NeurIPS.
# * F. Kamiran, T. Calders (2012), *Data preprocessing techniques for classification without discrimination.* Knowledge and Information Systems 33.
# * C. Dwork, M. Hardt, T. Pitassi, O. Reingold, R. Zemel (2012), *Fairness through awareness.* ITCS.
# * M. Mitchell et al. (2019), *Model cards for model reporting.* FAT\*.
# * S. Barocas, M. Hardt, A. Narayanan (2023), *Fairness and Machine Learning: Limitations and Opportunities.* MIT Press (fairmlbook.org).
