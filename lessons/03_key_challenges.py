# %% [markdown]
# # 03 · Key challenges: knowing when not to answer
#
# Slide 3 names the hard parts of alignment: values that are hard to specify,
# edge cases, and robustness across contexts. Its code answers with a
# `handle_edge_case` wrapper that returns a canned "I'm not sure" message when
# the processing code raises an error. This lesson shows why an exception is
# the wrong signal, and builds the right one: the model's own, *calibrated*
# uncertainty.
#
# **In this lesson you will**
# 1. reproduce the slide's fallback wrapper and find its four defects;
# 2. measure calibration with the expected calibration error (ECE) and a reliability diagram;
# 3. fix an over-confident network with temperature scaling (Guo et al. 2017);
# 4. abstain when unsure, and read the trade-off off a risk–coverage curve;
# 5. detect out-of-distribution inputs with the maximum softmax probability (Hendrycks and Gimpel 2017);
# 6. measure the same things on the course's language-model assistant: answer confidence, temperature scaling, abstention.

# %%
import matplotlib.pyplot as plt
import numpy as np

import labkit
from labkit import calibration as cal
from labkit.exercises import card, check

device = labkit.setup(seed=0)

# %% [markdown]
# ## 1. The task: noisy digits, unseen digits, damaged digits
#
# We use scikit-learn's bundled 8×8 handwritten digits (no download). Every
# image carries sensor noise, so the task is not trivially easy. A small network
# learns digits **0–7**; digits **8 and 9** are never shown to it and play the
# role of out-of-distribution (OOD) requests; **corrupted** copies of the test
# images (three times the noise, left half blanked) play the role of damaged inputs.

# %%
demo = cal.run_demo(seed=0)
task = demo["task"]
print(f"train {len(task.y_train)}, validation {len(task.y_val)}, test {len(task.y_test)}, "
      f"held-out digits {len(task.x_ood)}, corrupted {len(task.x_corrupt)}")

fig, axes = plt.subplots(1, 3, figsize=(6, 2.2))
for ax, img, name in zip(axes, (task.x_test[0], task.x_ood[0], task.x_corrupt[0]), ("test", "held-out digit", "corrupted")):
    ax.imshow(img.reshape(8, 8), cmap="gray_r")
    ax.set(title=name, xticks=[], yticks=[])
plt.show()

# %% [markdown]
# ## 2. The slide's approach
#
# In a few lines of our own, the slide's pattern is: try to process the input,
# and if that raises `ValueError`, log it and return a canned fallback.

# %%
def canned_fallback():
    return "I'm not sure how to handle this safely. Could you rephrase?"

def handle_edge_case(x, process):
    try:
        return process(x)
    except ValueError as err:
        log_error(f"edge case: {err}")  # noqa: F821 -- as on the slide, never defined
        return canned_fallback()

def process_stub(x):
    pass  # the slide's "complex processing logic"

# %% [markdown]
# ### Bug hunt
#
# **Bug 1 (silent): the processing step returns `None`, and so does the
# wrapper.** Nothing raises, so the caller gets `None` instead of either an answer
# or the fallback.

# %%
print("answer:", handle_edge_case(task.x_test[0], process_stub))

# %% [markdown]
# **Bug 2: the fallback path itself crashes.** `log_error` is never defined, so
# the one branch meant to be safe raises `NameError`; the fallback never runs.

# %%
def raises_value_error(x):
    raise ValueError("pixel out of range")

try:
    handle_edge_case(task.x_test[0], raises_value_error)
except NameError as err:
    print("NameError:", err)

# %% [markdown]
# **Bug 3: only `ValueError` counts as an edge case.** A `KeyError`, a
# `TypeError` or a CUDA error sails through the wrapper to the user.

# %%
def raises_key_error(x):
    raise KeyError("feature 'age' missing")

try:
    handle_edge_case(task.x_test[0], raises_key_error)
except KeyError as err:
    print("escaped the wrapper: KeyError", err)

# %% [markdown]
# **Bug 4 (silent, and the important one): a model does not raise on strange
# inputs, it answers them.** Plug the trained network in as the processing step
# and show it a digit 8 or 9, a class it has never seen: no exception, so no
# fallback, and a confident wrong answer. It is no exception either: more than
# half the held-out digits get a confidence of at least 0.9.

# %%
from labkit.basics import softmax

def process_with_model(x):
    p = softmax(cal.logits_of(demo["net"], x[None, :]))[0]
    return int(p.argmax()), float(p.max())

digit, confidence = handle_edge_case(task.x_ood[0], process_with_model)
print(f"a held-out digit answered as {digit} with confidence {confidence:.3f}")
ood_conf = demo["probs_ood"].max(axis=1)
print(f"held-out digits answered with confidence >= 0.9: {np.mean(ood_conf >= 0.9):.3f}")

# %% [markdown]
# Exceptions signal broken code, not an unfamiliar input. The fallback should
# depend on **how sure the model is**, and for that, its confidence must mean
# something: a model that says 90 % should be right about 90 % of the time.
#
# ## 3. Calibration: does 90 % confidence mean 90 % accuracy?
#
# Split the confidences (the top softmax probability) into $M$ equal-width bins
# $B_m = \left(\frac{m-1}{M}, \frac{m}{M}\right]$ (a confidence of exactly 0 goes
# into the first bin). The **expected calibration error** (Guo et al. 2017, eq. 3) is
#
# $$\mathrm{ECE} = \sum_{m=1}^{M} \frac{|B_m|}{n}\,\bigl|\operatorname{acc}(B_m) - \operatorname{conf}(B_m)\bigr|,$$
#
# the average gap between accuracy and confidence, weighted by how many inputs
# fall in each bin.

# %%
card("03.expected_calibration_error")

# %% [markdown]
# Write `expected_calibration_error(probs, labels, n_bins=15)`: `probs` has one
# row of class probabilities per input, `labels` the true classes. Bin $m$ holds
# the confidences in $((m-1)/M, m/M]$ (Guo et al.), so a confidence on an edge
# belongs to the lower bin. Raise
# `ValueError` when a label is not a valid class index. (Hint: `np.ceil(conf * M) - 1`
# is the bin index, clipped to `[0, M-1]`; `np.bincount` sums per bin.)

# %%
def expected_calibration_error(probs, labels, n_bins=15):
    ### BEGIN SOLUTION
    probs, labels = np.asarray(probs, dtype=float), np.asarray(labels)
    if (labels < 0).any() or (labels >= probs.shape[1]).any():
        raise ValueError("labels must be class indices")
    conf = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == labels).astype(float)
    b = np.clip(np.ceil(conf * n_bins).astype(int) - 1, 0, n_bins - 1)
    gap = np.abs(np.bincount(b, weights=correct - conf, minlength=n_bins))
    return float(gap.sum() / len(labels))
    ### END SOLUTION

# %%
check("03.expected_calibration_error", expected_calibration_error)

# %% [markdown]
# ### Temperature scaling (Guo et al. 2017)
#
# Guo et al. found that modern networks trained long past zero training error are
# **over-confident**, and that a single scalar fixes most of it: divide the
# logits by a temperature $T$ fitted by minimising the negative log-likelihood on
# held-out validation data (never the training data, where the model is
# confident and right). Dividing by $T$ keeps the argmax, so accuracy is unchanged.

# %%
y_test = task.y_test
temperature = demo["temperature"]
print(f"fitted temperature T = {temperature:.3f}")
for name, probs in (("before", demo["probs_test"]), ("after", demo["cal_test"])):
    acc = np.mean(probs.argmax(1) == y_test)
    print(f"{name:<6} accuracy {acc:.3f}  mean confidence {probs.max(1).mean():.3f}  "
          f"ECE {cal.expected_calibration_error(probs, y_test):.3f}")

fig, axes = plt.subplots(1, 2, figsize=(8, 5))
cal.plot_reliability(demo["probs_test"], y_test, ax=axes[0], label="before")
cal.plot_reliability(demo["cal_test"], y_test, ax=axes[1], label=f"after, T = {temperature:.2f}")
fig.tight_layout()
plt.show()

# %% [markdown]
# This is the miniature of Guo et al.'s reference result (their Table 1 and
# Figure 4): the network is over-confident (mean confidence above accuracy, bars
# below the diagonal), the fitted $T$ is above 1, and temperature scaling cuts
# the ECE by more than two thirds without changing a single prediction. The
# histogram under each diagram shows how many inputs each bar stands for: most
# test digits sit in the top bin, so a bar far from the diagonal in a sparse bin
# moves the ECE little.
#
# Calibration fitted in distribution does not survive a distribution shift
# (Ovadia et al. 2019): on the corrupted images the calibrated model is still
# far too sure of itself.

# %%
for name, key in (("test", "test"), ("corrupted", "corrupt")):
    probs = demo[f"cal_{key}"]
    print(f"{name:<10} accuracy {np.mean(probs.argmax(1) == y_test):.3f}  "
          f"mean confidence {probs.max(1).mean():.3f}  ECE {cal.expected_calibration_error(probs, y_test):.3f}")

# %% [markdown]
# ## 4. Selective prediction: answer only when confident
#
# The corrected wrapper answers when the top probability clears a threshold and
# returns the fallback otherwise. Raising the threshold lowers **coverage** (the
# fraction answered) and, if confidence ranks inputs well, lowers **risk** (the
# error rate among answered inputs). Sorting by confidence and sweeping the
# threshold traces the **risk–coverage curve** (El-Yaniv and Wiener 2010;
# Geifman and El-Yaniv 2017).

# %%
card("03.selective_risk")

# %% [markdown]
# Write `selective_risk(confidence, correct, threshold)` returning
# `(coverage, risk)`: answer the inputs with `confidence >= threshold`. When
# nothing is answered, return `(0.0, 0.0)`. Raise `ValueError` when `threshold`
# is outside `[0, 1]`.

# %%
def selective_risk(confidence, correct, threshold):
    ### BEGIN SOLUTION
    if not 0.0 <= threshold <= 1.0:
        raise ValueError("threshold must be in [0, 1]")
    confidence, correct = np.asarray(confidence, dtype=float), np.asarray(correct, dtype=bool)
    answered = confidence >= threshold
    if not answered.any():
        return 0.0, 0.0
    return float(answered.mean()), float(1.0 - correct[answered].mean())
    ### END SOLUTION

# %%
check("03.selective_risk", selective_risk)

# %% [markdown]
# The corrected `handle_edge_case` is `cal.answer_or_abstain`: the answer when
# sure, the fallback when not, applied to the *calibrated* probabilities.

# %%
decisions = cal.answer_or_abstain(demo["cal_ood"][:1], threshold=0.9)
print("bug 4's held-out digit now gets:", decisions[0])
for name, key in (("held-out digits", "ood"), ("corrupted images", "corrupt")):
    raw = np.mean(demo[f"probs_{key}"].max(1) >= 0.9)
    calibrated = np.mean(demo[f"cal_{key}"].max(1) >= 0.9)
    print(f"{name:<17} answered at threshold 0.9: uncalibrated {raw:.3f}, calibrated {calibrated:.3f}")

conf_test = demo["cal_test"].max(1)
correct_test = demo["cal_test"].argmax(1) == y_test
for threshold in (0.0, 0.5, 0.8, 0.9, 0.95):
    coverage, risk = cal.selective_risk(conf_test, correct_test, threshold)
    print(f"threshold {threshold:.2f}: coverage {coverage:.3f}, risk {risk:.3f}")

# %% [markdown]
# Answering everything, the model is wrong on 15.0 % of test inputs; at
# threshold 0.9 it answers 56 % of them and is wrong on 2.0 % of those. Calibration
# also cuts the held-out digits answered at this threshold from more than half to
# about a sixth, and the corrupted images from 57 % to 14 %; but one strange
# input in six or seven still gets a confident answer.
#
# ### Widget: the abstention threshold
#
# Move the threshold. Left: where correct, wrong, held-out and corrupted inputs
# fall on the confidence axis. Right: the operating point on the test set's
# risk–coverage curve, and the fraction of held-out and corrupted inputs that
# still get an answer.

# %% tags=["nbval-ignore-output"]
cal.abstention_widget()

# %% [markdown]
# ## 5. Out-of-distribution detection with the maximum softmax probability
#
# Hendrycks and Gimpel (2017) proposed the simplest detector: inputs from the
# training distribution tend to get a higher top softmax probability than
# inputs from elsewhere. They score it with the **AUROC**, the probability that
# a random in-distribution input scores higher than a random OOD one (0.5 is
# chance, 1 is perfect), which is the Mann–Whitney statistic with ties counted one half.

# %%
card("03.auroc")

# %% [markdown]
# Write `auroc(positive_scores, negative_scores)`. A direct version compares
# every pair; a tie counts ½. Raise `ValueError` when either array is empty.

# %%
def auroc(positive_scores, negative_scores):
    ### BEGIN SOLUTION
    pos = np.asarray(positive_scores, dtype=float)[:, None]
    neg = np.asarray(negative_scores, dtype=float)[None, :]
    if pos.size == 0 or neg.size == 0:
        raise ValueError("both score arrays need at least one entry")
    return float(np.mean((pos > neg) + 0.5 * (pos == neg)))
    ### END SOLUTION

# %%
check("03.auroc", auroc)

# %% [markdown]
# Reproducing Hendrycks and Gimpel's baseline in miniature: the max-softmax
# score separates test digits from held-out digits and from corrupted images
# better than chance, but far from perfectly.

# %%
for name, key in (("held-out digits 8-9", "ood"), ("corrupted images", "corrupt")):
    score = cal.auroc(conf_test, demo[f"cal_{key}"].max(1))
    print(f"AUROC, test vs {name:<20} {score:.3f}")

# %% [markdown]
# A detector at AUROC ≈ 0.7–0.8 still lets many strange inputs through at any
# useful threshold: the widget shows it. Max-softmax is a baseline; later lessons
# (09 on robustness, 13 on monitoring) add stronger detectors.
#
# ## 6. The course's assistant: does its confidence mean anything?
#
# The digits network is a classifier; the course's assistant (the tiny
# language model of lessons 15 onwards) writes its answers token by token. Its
# simplest confidence in an answer is the **sequence probability** of the reply
# it gave, $\prod_t p(y_t \mid \text{prompt}, y_{<t})$. Kadavath et al. (2022)
# also ask the model to grade itself: show it the question and its own answer,
# ask "is the proposed answer true or false?", and read $P(\text{True})$.
#
# We take the world's held-out benign questions (with a known answer) and
# unanswerable ones (about things the world never says), reply greedily as the
# harness does, and keep every reply's token logits (cached: generating takes
# a minute or two the first time). Temperature and thresholds are chosen on the **validation**
# questions and reported on the **test** ones. Replies that say "I don't know"
# are abstentions already; the calibration question is about the answers the
# model does give.

# %%
val_answers, test_answers = cal.assistant_answers("validation"), cal.assistant_answers("test")

def given_answers(answers, kind="benign"):
    """Indices of the replies to ``kind`` questions that attempt an answer (not "I don't know")."""
    return np.where((answers.kinds == kind) & ~answers.idk)[0]

def confidence_of(answers, rows, temperature=1.0):
    return cal.sequence_confidence([answers.token_logits[i] for i in rows], [answers.tokens[i] for i in rows],
                                   temperature)

rows_val, rows_test = given_answers(val_answers), given_answers(test_answers)
lm_temperature = cal.fit_sequence_temperature([val_answers.token_logits[i] for i in rows_val],
                                              [val_answers.tokens[i] for i in rows_val], val_answers.correct[rows_val])
right_test = test_answers.correct[rows_test]
n_benign = int(np.sum(test_answers.kinds == "benign"))
print(f"test: {n_benign} benign questions, {len(rows_test)} answered, {int(right_test.sum())} of them correctly "
      f"({right_test.mean():.3f})")
print(f"temperature fitted on validation answers: T = {lm_temperature:.2f}")
fig, axes = plt.subplots(1, 2, figsize=(8, 5))
for ax, t, name in zip(axes, (1.0, lm_temperature), ("sequence probability", f"after, T = {lm_temperature:.2f}")):
    conf = confidence_of(test_answers, rows_test, t)
    print(f"T = {t:.2f}: mean confidence {conf.mean():.3f}, ECE {cal.expected_calibration_error(conf, right_test):.3f}")
    cal.plot_reliability(conf, right_test, ax=ax, label=name)
fig.tight_layout()
plt.show()

conf_test_lm = confidence_of(test_answers, rows_test, lm_temperature)
print(f"AUROC, right vs wrong answers: sequence probability {cal.auroc(conf_test_lm[right_test], conf_test_lm[~right_test]):.3f}, "
      f"P(True) {cal.auroc(test_answers.p_true[rows_test][right_test], test_answers.p_true[rows_test][~right_test]):.3f} "
      f"(mean P(True) {test_answers.p_true[rows_test].mean():.3f})")

# %% [markdown]
# The assistant is **under**-confident on the answers it gives, the opposite of
# the digits network: its mean sequence probability is below its accuracy, the
# bars sit above the diagonal, and the temperature fitted on validation is below
# 1 (sharper). Applied to the test answers it lowers the ECE. The sequence
# probability also *ranks* answers well (its AUROC between right and wrong
# answers is far above 0.5). Self-evaluation does not work at this scale: the
# model says "True" to almost everything, and its P(True) ranks right and wrong
# answers no better than chance. Kadavath et al. found P(True) useful only in
# models of billions of parameters; ours has under two hundred thousand, and never
# saw a question about its own answers in training.
#
# ### Abstaining on questions it cannot answer
#
# An unanswerable question has no right answer, so every answer to it is a
# hallucination. The threshold below is chosen on the validation replies (both
# kinds) to make the fewest mistakes, counting a wrong or hallucinated answer
# given and a right answer withheld as one mistake each.

# %%
offered_val, offered_test = np.where(~val_answers.idk)[0], np.where(~test_answers.idk)[0]
lm_threshold = cal.best_threshold(confidence_of(val_answers, offered_val, lm_temperature), val_answers.correct[offered_val])
answered = confidence_of(test_answers, offered_test, lm_temperature) >= lm_threshold
kind, right = test_answers.kinds[offered_test], test_answers.correct[offered_test]
n_unanswerable = int(np.sum(test_answers.kinds == "unanswerable"))
print(f"threshold chosen on validation: {lm_threshold:.2f}")
print(f"unanswerable test questions: {n_unanswerable}; the model itself says it does not know on "
      f"{n_unanswerable - int(np.sum(kind == 'unanswerable'))}")
for name, group in (("hallucinated answers", kind == "unanswerable"), ("wrong benign answers", (kind == "benign") & ~right),
                    ("right benign answers", (kind == "benign") & right)):
    print(f"{name:<21} withheld by the threshold: {int(np.sum(group & ~answered))} of {int(group.sum())}")

# %% [markdown]
# The threshold withholds about half of the hallucinated answers and most of the
# wrong benign answers at the price of a few right ones (the counts are printed
# above). The rest of the hallucinations come with a confidence as high as a
# right answer's: the model has no signal that tells it apart, which is why the
# world's training data teaches it to say "I don't know" in the first place.
#
# ## Key takeaways
# * Exceptions mean broken code, not an unfamiliar input: a model answers strange inputs confidently and raises nothing.
# * Measure calibration (ECE, reliability diagram) before trusting a confidence; temperature scaling fixes in-distribution over-confidence with one parameter and no accuracy cost.
# * Abstain on low confidence, and choose the threshold from the risk–coverage curve.
# * Calibration and max-softmax OOD detection degrade under distribution shift: they reduce, not remove, the need for a human fallback.
# * A language model's sequence probability is a usable confidence once temperature-scaled on validation data; self-evaluation (P(True)) needs far larger models than ours.
#
# ## Further reading
# * C. Guo, G. Pleiss, Y. Sun, K. Q. Weinberger (2017), *On calibration of modern neural networks.* ICML.
# * D. Hendrycks, K. Gimpel (2017), *A baseline for detecting misclassified and out-of-distribution examples in neural networks.* ICLR.
# * Y. Geifman, R. El-Yaniv (2017), *Selective classification for deep neural networks.* NeurIPS.
# * R. El-Yaniv, Y. Wiener (2010), *On the foundations of noise-free selective classification.* JMLR 11.
# * M. P. Naeini, G. Cooper, M. Hauskrecht (2015), *Obtaining well calibrated probabilities using Bayesian binning.* AAAI.
# * S. Kadavath et al. (2022), *Language models (mostly) know what they know.* arXiv:2207.05221.
# * Y. Ovadia et al. (2019), *Can you trust your model's uncertainty? Evaluating predictive uncertainty under dataset shift.* NeurIPS.
