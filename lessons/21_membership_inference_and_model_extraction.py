# %% [markdown]
# # 21 · Membership inference, memorisation and model extraction
#
# Seed 002 lists two privacy threats to a deployed model, each with a
# one-line defence: *membership inference* ("was this record in the training
# data?"), answered by "don't let the model be too confident", and *model
# extraction* ("copy the model through its API"), answered by "round the
# outputs" or "limit the queries". This lesson builds what the seed only
# names, and measures whether the defences hold.
#
# **In this lesson you will**
# 1. run the seed-style confidence check and see why accuracy and AUC hide what matters;
# 2. compute the ROC of the loss-threshold attack (Yeom et al. 2018) yourself (exercise), then attack
#    overfit and regularised digit classifiers with shadow models (Shokri et al. 2017) and a
#    likelihood-ratio attack with reference models (in the spirit of LiRA, Carlini et al. 2022),
#    judged by the true-positive rate at 0.1 % and 1 % false positives on log-scale ROC curves;
# 3. insert a canary into the course assistant's pretraining text k times and measure its
#    *exposure* (Carlini et al. 2019, exercise), extract it by sampling, and measure the fake
#    personal data the shipped assistant already saw;
# 4. copy lesson 15's input guard through its answers (Tramèr et al. 2016), with rounded scores,
#    labels only and a rate limit.

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import labkit
from labkit import chatbot, leakage
from labkit.exercises import card, check
from labkit.lm.cache import get_assistant

device = labkit.setup(seed=0)
pd.set_option("display.width", 140)
pd.set_option("display.precision", 3)

# %% [markdown]
# ## 1. The seed's approach, in a few lines
#
# A membership test in the seed's spirit: the model is "too confident" on a
# record, so the record was probably in the training set. We take sixteen
# small digit classifiers that labkit trained on random halves of the same
# pool of 1,347 digits (`leakage.digits_population`, a wide MLP trained to zero
# training loss, cached), pick one as the target, and apply the rule to every
# pool digit: half of them are its members.

# %%
overfit = leakage.digits_population("overfit")
target = 0
log_probs = overfit.log_probs[target].numpy()
confidence = np.exp(log_probs.max(axis=1))          # the top softmax probability
is_member = overfit.is_in[target].numpy()

says_member = confidence > 0.9                         # the seed-style rule
accuracy = np.mean(says_member == is_member)
print(f"target: train accuracy {overfit.train_accuracy[target]:.3f}, test accuracy {overfit.test_accuracy[target]:.3f}")
print(f"rule 'member when confidence > 0.9': accuracy {accuracy:.3f} on {len(is_member)} digits, half of them members")
print(f"AUC of the confidence as a score: {leakage.roc(confidence, is_member)[2]:.3f}")

# %% [markdown]
# Near a coin flip: the seed would conclude that this model leaks nothing.
# The bug hunt:
#
# 1. **Averages hide the damage.** Accuracy and AUC average over every
#    record. Privacy is about the records an attacker can single out with
#    confidence: the right question is how many members are found at a
#    false-positive rate of 0.1 % or 1 % (Carlini et al. 2022), read on a ROC
#    curve with **log** axes.
# 2. **One threshold for every record.** Easy digits get high confidence
#    whether or not they were trained on, hard ones low: a single global
#    threshold confuses difficulty with membership. Calibrating per record,
#    with models that did and did not see it, removes that confusion.
# 3. **The top probability throws the label away.** A confident *wrong*
#    answer counts as "member". The loss of the true label does not.
# 4. **"Round the outputs" and "limit the queries" are untested.** Section 5
#    tests them.
#
# Bug 1 first: at a low false-positive rate the seed's score finds few members.

# %%
for fpr in (0.001, 0.01):
    print(f"confidence score: TPR at {fpr:.1%} FPR = {leakage.tpr_at_fpr(confidence, is_member, fpr):.3f}")

# %% [markdown]
# ## 2. The loss-threshold attack and its ROC (exercise)
#
# Yeom et al. (2018) call a record a member when its loss is at most a
# threshold `t`. Sweeping `t` over every value gives the ROC curve: at each
# distinct loss, the share of members (TPR) and of non-members (FPR) with a loss
# at most that value. Tied losses must move together: a threshold cannot put
# one of two equal losses on each side.

# %%
card("21.loss_threshold_roc")

# %% [markdown]
# Write `loss_threshold_roc(losses, is_member)` returning `(fpr, tpr, auc)`:
# one point per distinct loss, lowest loss first, starting at `(0, 0)` and
# ending at `(1, 1)`, and the trapezoidal area under it. Raise `ValueError`
# when `is_member` does not hold both classes or has another length.

# %%
def loss_threshold_roc(losses, is_member):
    ### BEGIN SOLUTION
    s = np.asarray(losses, dtype=float)
    m = np.asarray(is_member, dtype=bool)
    if s.ndim != 1 or m.shape != s.shape or m.all() or not m.any():
        raise ValueError("is_member must hold both classes, one per loss")
    order = np.argsort(s, kind="stable")
    s, m = s[order], m[order]
    ends = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]  # last index of each group of equal losses
    tpr = np.r_[0.0, np.cumsum(m)[ends] / m.sum()]
    fpr = np.r_[0.0, np.cumsum(~m)[ends] / (~m).sum()]
    return fpr, tpr, float(np.trapezoid(tpr, fpr))
    ### END SOLUTION

# %%
check("21.loss_threshold_roc", loss_threshold_roc)

# %% [markdown]
# ## 3. Three attacks, three training recipes
#
# labkit's attacks (`labkit.leakage`), each against one target model while the
# other fifteen models of the population belong to the attacker, who knows the
# training recipe and has data from the same pool:
#
# * **loss threshold** (Yeom et al. 2018): the score is minus the loss;
# * **shadow models** (Shokri et al. 2017): the other models are shadows whose
#   members the attacker knows; per class, a logistic regression learns from
#   their outputs what a member's output looks like;
# * **likelihood ratio** (LiRA-style, Carlini et al. 2022): for each record,
#   Gaussians fitted to the logit-scaled confidence `log(p / (1 - p))` of the
#   reference models that trained on it and of those that did not; the score
#   is the log-likelihood ratio of the target's confidence. This is bug 2's fix.
#
# Three recipes, set by hand before any attack ran: **overfit** (a wide MLP,
# 150 epochs of Adam, zero training loss), **regularised** (20 epochs with an
# L2 penalty) and **DP**: DP-SGD from lesson 20 (`labkit.privacy`), per-example
# clipping and Gaussian noise calibrated so that each model's training is
# (8, 1e-5)-differentially private. Every number is the mean over three target
# models (the range beside it); 673 non-members per target, so the smallest
# non-zero FPR is about 0.15 %, and "TPR at 0.1 % FPR" means "TPR with no false
# positive".

# %%
populations = {"overfit": overfit, "regularised": leakage.digits_population("regularised"),
               "dp": leakage.digits_population("dp")}
print({name: pop.recipe.epsilon for name, pop in populations.items()}, "(epsilon; None: no guarantee)")
table = leakage.attack_table(populations, targets=(0, 1, 2))
table[["model", "train acc", "test acc", "attack", "AUC", "AUC range", "TPR@0.1% FPR", "TPR@1.0% FPR",
       "TPR@1.0% FPR range"]]

# %%
fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
for ax, (name, pop) in zip(axes, populations.items()):
    curves = {leakage.ATTACK_NAMES[a]: leakage.attack_target(pop, 0, a) for a in leakage.ATTACKS}
    leakage.plot_roc_curves(curves, f"{name}, target #0", ax=ax)
plt.show()

# %% [markdown]
# Read the table and the curves at the left edge. On the overfit model the
# AUCs are modest, closer to a coin flip than to a working attack; but at 1 % FPR the
# likelihood-ratio attack finds several times more members than the loss
# attack, and several times more than chance (TPR = FPR = 0.01):

# %%
row = table.set_index(["model", "attack"])
for name in populations:
    loss_tpr, lira_tpr = row.loc[(name, "loss"), "TPR@1.0% FPR"], row.loc[(name, "lira"), "TPR@1.0% FPR"]
    print(f"{name:<12} TPR at 1% FPR: loss {loss_tpr:.3f}, likelihood ratio {lira_tpr:.3f} "
          f"({lira_tpr / max(loss_tpr, 1e-9):.1f}x); AUC {row.loc[(name, 'loss'), 'AUC']:.3f} vs "
          f"{row.loc[(name, 'lira'), 'AUC']:.3f}")

# %% [markdown]
# That is the miniature of Carlini et al.'s (2022) argument: the average
# (AUC) says the attacks barely work; the low-FPR corner says one of them
# singles out some members with few false alarms.
#
# Down the table, regularisation and then DP-SGD lower what the shadow-model
# and likelihood-ratio attacks find, and each costs test accuracy (the
# table's `test acc`). The loss attack cannot show this: it is at chance on
# all three models, because a model that generalises well gives members and
# non-members similar losses *on average*.
# Only DP comes with a *guarantee*: for any attack, at any threshold,
# TPR <= e^epsilon * FPR + delta (Kairouz et al. 2015's hypothesis-testing
# view). At epsilon = 8 that bound is loose (e^8 is about 3,000); the measured
# leakage is far below it, which is what empirical attacks can and cannot tell
# you: they give a lower bound on leakage, DP an upper bound.
#
# ### Interactively
#
# Pick a recipe and a target model; the curves are the three attacks against
# it.

# %% tags=["nbval-ignore-output"]
leakage.membership_roc_widget(populations)

# %% [markdown]
# ## 4. Memorisation in the assistant
#
# Carlini et al. (2019, *The Secret Sharer*) measure memorisation with a
# **canary**: a random secret inserted into the training text. After
# training, rank the canary's loss among the losses of many random secrets of
# the same format the model never saw. Its **exposure** is
# `log2(|R|) - log2(rank)`, where `|R|` counts all candidates: 0 bits when the
# canary is the least likely, `log2 |R|` when it is the most likely.

# %%
card("21.exposure")

# %% [markdown]
# Write `exposure(canary_loss, reference_losses)`: `|R|` is the number of
# references plus one (the canary), and the rank is 1-based, lowest loss
# first, with references of exactly the canary's loss ranked **ahead** of it
# (a tie must not flatter the model). Raise `ValueError` when there are no
# references.

# %%
import math

def exposure(canary_loss, reference_losses):
    ### BEGIN SOLUTION
    ref = np.asarray(reference_losses, dtype=float)
    if ref.size == 0:
        raise ValueError("reference_losses must not be empty")
    rank = 1 + int(np.count_nonzero(ref <= canary_loss))
    return math.log2(ref.size + 1) - math.log2(rank)
    ### END SOLUTION

# %%
check("21.exposure", exposure)

# %% [markdown]
# The canary: six random digits after the words "The secret code is", put at
# the start of `k` of the world's 3,000 pretraining documents (the world's
# `canary` option). The course's shipped base model then continues
# pretraining for 200 steps on that text (about three passes); `k = 0` trains
# the same way without the canary, the control. The canary is ranked among
# 5,000 random codes (at most `log2(5001)` = 12.3 bits), and sampled 200 times
# at temperature 1 after the prefix.

# %%
assistant = get_assistant("default")
print("canary:", leakage.the_canary())
canaries = leakage.canary_study()
canaries

# %%
fig, ax = plt.subplots(figsize=(5.5, 3.4))
ax.plot(canaries["k"].clip(lower=0.5), canaries["exposure"], "o-")
ax.axhline(math.log2(5001), color="k", ls=":", lw=1, label="maximum (rank 1 of 5,001)")
ax.set(xscale="log", xlabel="insertions k (k = 0 drawn at 0.5)", ylabel="exposure (bits)",
       title="Canary exposure after continued pretraining")
ax.legend(fontsize=8)
plt.show()
k0 = canaries.set_index("k")["exposure"]
print(f"exposure without the canary in the text: {k0.loc[0]:.2f} bits; inserted once: {k0.loc[1]:.2f} bits")

# %% [markdown]
# Two honest caveats. Even the control is above the 1.4 bits expected of a
# random code: this canary happens to use only small digits, which the
# world's arithmetic makes likely anyway; exposure is always relative to the
# model's prior, hence the control. And exposure estimated from 5,000
# references saturates at 12.3 bits: beyond that, extraction by sampling is
# the better measure, and the table shows when sampling starts writing the
# secret verbatim.
#
# ### With and without differential privacy
#
# Lesson 20 fine-tuned the assistant on text holding another canary (ten
# insertions), once plainly and once with DP-SGD at epsilon = 8, and kept the
# canary's loss and the losses of 9,999 random codes (`privacy.canary_experiment`,
# cached). Their exposure:

# %%
from labkit import privacy

dp_canary = privacy.canary_experiment()
for run in dp_canary["runs"]:
    bits = leakage.exposure(run["canary_loss"], run["reference_losses"])
    print(f"{run['name']:<28} exposure {bits:5.2f} bits (maximum {math.log2(len(run['reference_losses']) + 1):.2f})")

# %% [markdown]
# Plain fine-tuning puts the canary at the top of the ranking; DP-SGD's
# clipping and noise keep it near where the model before fine-tuning had it: one
# example's ten copies cannot move a model whose every update is bounded and
# blurred.
#
# ### The realistic case: fake personal data
#
# The world's pretraining text already contains about 150 fake people ("You
# can reach Elin Moreau at elin.moreau@example.com or 555-598-1302."), each
# usually **once**. Nobody inserted them as canaries; the shipped assistant
# simply trained on them. Rank each phone number after its sentence's prefix
# among 200 random numbers of the same format, and do the same for people the
# model never saw.

# %%
pii = leakage.pii_study()
summary = pii.groupby("seen")["exposure"].agg(["count", "mean", "median"])
summary["share above 5 bits"] = pii.groupby("seen")["exposure"].apply(lambda e: float(np.mean(e > 5)))
print(summary)
fpr, tpr, auc = leakage.roc(pii["exposure"], pii["seen"])
print(f"exposure as a membership score for a person's record: AUC {auc:.3f}, "
      f"TPR at 1% FPR {leakage.tpr_at_fpr(pii['exposure'], pii['seen'], 0.01):.3f}")

# %% [markdown]
# A phone number seen once in three thousand documents is already ranked
# well above chance: memorisation does not need repetition, it needs the
# model to have read the record.
#
# ## 5. Model extraction of the input guard
#
# Tramèr et al. (2016) copy a model through its prediction API: send inputs,
# record the answers, fit a model of your own to them. The target here is
# lesson 15's input guard (a character n-gram TF-IDF logistic regression).
# The attacker sends ordinary-looking requests, up to 3,000, and fits a
# surrogate of the same kind to the answers; **agreement** is the share of
# held-out requests (the world's *test* wordings, seen by neither) on which the
# surrogate and the guard decide alike. Three kinds of answer: the score, the
# score rounded to one decimal, or only the decision.

# %%
extraction = leakage.guard_extraction_study()
curve = extraction.pivot(index="queries", columns="output", values="agreement")
print(curve)
fig, ax = plt.subplots(figsize=(5.5, 3.4))
for output in curve.columns:
    ax.plot(curve.index, curve[output], "o-", label=output)
ax.set(xscale="log", xlabel="queries answered", ylabel="agreement on held-out requests", ylim=(0.5, 1.01),
       title="Extracting the input guard")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# Rounding and labels-only barely slow the copy down here: the guard's scores
# on ordinary requests are close to 0 or 1, so the rounded score and the
# decision carry almost everything the exact score did. Tramèr et al. found
# the same for label-only answers: they need more queries, not impossible
# ones.
#
# The rate limit of lesson 15 (`chatbot.RateLimiter`) turns a query budget
# into *time*. With 100 queries per hour, an attacker sending one request
# every two seconds for an hour gets 100 answers; the same attacker pacing
# 3,000 requests over 30 hours gets them all.

# %%
guard = chatbot.train_input_guard(max_false_positive_rate=0.02)
queries, held_out = leakage.extraction_texts()
for hours, spacing in ((1, 2.0), (30, 36.0)):
    box = leakage.BlackBox(guard, "label", rate_limiter=chatbot.RateLimiter(100, 3600.0))
    sent = queries[: int(hours * 3600 / spacing)]
    surrogate = leakage.extract(box, sent, times=np.arange(len(sent)) * spacing)
    print(f"{hours:>2} h, one request every {spacing:.0f} s: {len(sent)} sent, {box.n_answered} answered, "
          f"agreement {leakage.agreement(surrogate, guard, held_out):.3f}")

# %% [markdown]
# A rate limit bounds what one account extracts per hour; it does not bound
# what patience (or many accounts) extracts. Real defences are about the
# *value* of a copy (watermarking, monitoring query patterns, not exposing
# a model whose copy would do harm), which are beyond this lesson.
#
# ## Key takeaways
# * Judge a membership attack by its true-positive rate at a low false-positive rate on a log-scale ROC, not by accuracy or AUC: averages hide the records that leak.
# * Calibrating per record with reference models (LiRA-style) finds far more members at low FPR than a global loss threshold, on the same model.
# * Regularisation and DP-SGD reduce what attacks find, at some cost in accuracy; only DP bounds it, and the bound at epsilon = 8 is loose.
# * Language models memorise rare strings: a canary seen a handful of times, and fake personal data seen once, rank far above chance; measure exposure against a control.
# * Rounded scores and label-only APIs barely slow model extraction; a rate limit turns a query budget into time.
#
# ## Further reading
# * S. Yeom, I. Giacomelli, M. Fredrikson and S. Jha (2018), *Privacy Risk in Machine Learning: Analyzing the Connection to Overfitting.* IEEE CSF.
# * R. Shokri, M. Stronati, C. Song and V. Shmatikov (2017), *Membership Inference Attacks Against Machine Learning Models.* IEEE S&P.
# * N. Carlini, S. Chien, M. Nasr, S. Song, A. Terzis and F. Tramèr (2022), *Membership Inference Attacks From First Principles* (LiRA). IEEE S&P.
# * N. Carlini, C. Liu, Ú. Erlingsson, J. Kos and D. Song (2019), *The Secret Sharer: Evaluating and Testing Unintended Memorization in Neural Networks.* USENIX Security.
# * N. Carlini et al. (2021), *Extracting Training Data from Large Language Models.* USENIX Security.
# * F. Tramèr, F. Zhang, A. Juels, M. K. Reiter and T. Ristenpart (2016), *Stealing Machine Learning Models via Prediction APIs.* USENIX Security.
# * M. Abadi et al. (2016), *Deep Learning with Differential Privacy.* ACM CCS (lesson 20).
# * P. Kairouz, S. Oh and P. Viswanath (2015), *The Composition Theorem for Differential Privacy.* ICML.
