# %% [markdown]
# # 14 · Content moderation: normalisation, classifiers, PII
#
# Slide 14 moderates chat with a keyword regex. Keyword filters are the first
# thing every platform tries and the first thing every user learns to evade.
# This lesson measures how badly, builds a small pipeline that does better,
# and evaluates it on real data that nobody here wrote.
#
# **In this lesson you will**
# 1. reproduce the slide's moderator and find its bugs by running it;
# 2. undo obfuscation (Unicode tricks, homoglyphs, leetspeak, spaced letters) with a linear-time normaliser;
# 3. find and redact personal data (e-mails, phones, cards with the Luhn check, IBANs...) with regexes that stay linear on hostile input;
# 4. train a character n-gram classifier on synthetic messages and calibrate its threshold for a target false-positive rate;
# 5. see it fail on real tweets, retrain it on the Davidson et al. (2017) tweets (train / validation / test), and
#    reproduce Röttger et al.'s (2021) HateCheck finding per functionality, with intervals;
# 6. attack the normaliser with a transformation it does not invert (exercise), and measure PII detection on presidio's labelled data.

# %%
import re

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import display
from sklearn.metrics import roc_auc_score

import labkit
from labkit import datasets
from labkit import moderation as mod
from labkit.exercises import card, check

device = labkit.setup(seed=0)

# %% [markdown]
# ## 1. The slide's moderator
#
# The slide lower-cases the message and searches two keyword patterns. In a few
# lines of our own:

# %%
SLIDE_PATTERNS = [r"\b(hate|offensive|abuse)\b", r"\b(violence|threat)\b"]


def slide_flag(texts):
    return np.array([any(re.search(p, t.lower()) for p in SLIDE_PATTERNS) for t in texts])


probes = ["This is a friendly message.", "I hate you and will hurt you.", "I hate Mondays.",
          "I will hurt you.", "I will k1ll you.", "I will h u r t you.", "You are a worthless idiot.",
          "I would never hurt you.", "Mail me at jane.doe@example.com"]
for text, flagged in zip(probes, slide_flag(probes)):
    print(f"{'FLAG ' if flagged else 'allow'}  {text}")

# %% [markdown]
# ### Bug hunt
#
# 1. **Keywords without context.** "I hate Mondays." is flagged, exactly like
#    the threat: the word *hate* decides, not the meaning.
# 2. **Its own example passes by luck.** "I hate you and will hurt you." is flagged for
#    *hate*; drop that word and "I will hurt you." is allowed: *hurt* is in no pattern.
# 3. **Trivially evaded.** "k1ll", "h u r t", homoglyphs and zero-width spaces all pass
#    (silently: nothing says a message was obfuscated). "h a t e" is unmatchable
#    because of its spaces, with or without the `\b` anchors.
# 4. **`\b` misses inflections.** `\b(hate|...)\b` demands the bare word, so
#    "hates", "hated", "threats" and "threatening" pass; drop the anchors and
#    "whatever" (w-hate-ver) is flagged instead. A word list cannot get both right.
# 5. **Insults are invisible**: no pattern covers them, so "You are a worthless idiot." is allowed.
# 6. **A binary answer with no score**: there is no threshold to trade false alarms for
#    misses, so the false-positive rate cannot be set or even measured.
# 7. **Personal data goes through untouched**: the e-mail address is neither found nor redacted.
#
# Defects 3 and 4, run:

# %%
for text in ["h a t e", "she hates them", "these are threats", "whatever you say"]:
    with_b = bool(re.search(SLIDE_PATTERNS[0], text) or re.search(SLIDE_PATTERNS[1], text))
    without_b = bool(re.search(r"(hate|offensive|abuse|violence|threat)", text))
    print(f"{text!r:<22} with \\b: {'FLAG' if with_b else 'allow':<6} without \\b: {'FLAG' if without_b else 'allow'}")

# %% [markdown]
# ## 2. Normalise first
#
# `mod.normalize` folds the usual obfuscations back to plain text in one
# left-to-right pass per step: NFKC (fullwidth and stylised letters), removal
# of invisible format characters and diacritics, Cyrillic and Greek look-alikes
# (Unicode TR #39), spaced letters, leetspeak inside words, long letter repeats.
# Each attack below is `mod.obfuscate(text, attack)`.

# %%
base = "i will kill you"
rows = []
for attack in mod.ATTACKS:
    attacked = mod.obfuscate(base, attack)
    rows.append({"attack": attack, "attacked (ascii view)": ascii(attacked)[1:-1][:46],
                 "normalised": mod.normalize(attacked), "slide regex flags 'kill'": bool(re.search(r"\bkill\b", attacked.lower()))})
pd.DataFrame(rows)

# %% [markdown]
# Every attack folds back to the same letters, apart from a lone leetspeak
# digit (the "1" in "1 will kill you", explained next); spaced-out text also
# loses its word breaks, which character n-grams tolerate. The normaliser is deliberately
# conservative: a lone digit stays a digit ("1" could be *one* or *i*), and
# digits inside numbers stay digits, so "call 555 123 4567 in 2024" is unchanged.

# %%
print(mod.normalize("call 555 123 4567 in 2024"))
print(mod.normalize("Ｙｏｕ ａｒｅ ａ ｗ０ｒｔｈｌｅｓｓ іdіоt!!"))

# %% [markdown]
# ## 3. Personal data: find it, redact it
#
# `mod.find_pii` looks for e-mail addresses, IBANs (with the ISO 13616 mod-97
# check), US social security numbers, payment cards, IPv4 addresses and phone
# numbers. A 16-digit run is only a card when its **Luhn check digit** is right
# (ISO/IEC 7812-1): from the right, double every second digit, subtract 9 from
# doubles above 9, and the sum must be divisible by 10. The check catches every
# single mistyped digit.

# %%
card("14.luhn_valid")

# %% [markdown]
# Write `luhn_valid(number)`: ignore spaces and dashes; return `False` when
# there are no digits or any other character appears.

# %%
def luhn_valid(number):
    ### BEGIN SOLUTION
    digits = number.replace(" ", "").replace("-", "")
    if not digits or not all("0" <= c <= "9" for c in digits):
        return False
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = int(c)
        if i % 2 == 1:
            d = 2 * d - 9 if d > 4 else 2 * d
        total += d
    return total % 10 == 0
    ### END SOLUTION

# %%
check("14.luhn_valid", luhn_valid)

# %% [markdown]
# Regexes for PII are a classic source of **catastrophic backtracking**: the
# textbook e-mail pattern `[\w.]+@[\w.]+\.\w+` is quadratic on a long run of
# letters with no `@`, because the scan restarts at every position and
# re-reads the rest of the run (about $n^2/2$ character visits). labkit's
# patterns bound every repetition and can only start at the beginning of a
# token (a negative lookbehind), so the work is linear; the test suite pushes
# 1 MB hostile strings through the whole pipeline and requires under 2 s.

# %%
text = ("Hi, I'm Jane. Mail jane.doe@example.com or call (555) 123-4567. "
        "Card 4111 1111 1111 1111, IBAN GB82 WEST 1234 5698 7654 32, server 192.168.0.12.")
redacted, spans = mod.redact_pii(text)
print(redacted)
for s in spans:
    print(f"  {s.kind:<14} {s.start:>3}-{s.end:<3} {s.text}")

# %% [markdown]
# ### Evaluation on presidio's labelled PII (real data, held out)
#
# Microsoft presidio's synthetic test set holds 1,500 sentences with labelled
# spans. For the six kinds labkit looks for, we count a labelled span as found
# when a detected span covers it, and a false alarm when a sentence with none
# of those kinds gets a detection.

# %%
if datasets.require("presidio_synth"):
    presidio = datasets.load("presidio_synth")
    p_texts = presidio.full_text.tolist()
    p_gold = [[(s["start_position"], s["end_position"], s["entity_type"]) for s in spans] for spans in presidio.spans]
    recall = mod.pii_span_recall(p_texts, p_gold)
    clean = [t for t, g in zip(p_texts, p_gold) if not any(k in mod.PII_KINDS for _, _, k in g)]
    false_alarms = sum(bool(mod.find_pii(t)) for t in clean)
    for kind, (found, total) in recall.items():
        print(f"{kind:<14} {found:>3}/{total:<3} recall {found / total:.3f}")
    print(f"sentences without these kinds: {len(clean)}, with a false detection: {false_alarms} ({false_alarms / len(clean):.3f})")
    print(datasets.citation("presidio_synth"))

# %% [markdown]
# E-mails, IBANs, SSNs and cards are all found; phone numbers are the hard
# case: bare pairs like "467 3395" are indistinguishable from street numbers
# ("370 3911 Fourth Avenue"), so labkit accepts the missed phones rather than
# redacting every address. The few false alarms are driver's licence and ZIP
# numbers shaped like phones.
#
# ## 4. A trained classifier with a calibrated threshold
#
# We never train on the evaluation sets. The training data come from
# `mod.generate_messages`: template messages in three harmful categories
# (insult, threat, hate; mild and obviously synthetic, no slurs) and benign ones,
# including hard negatives with trigger words ("I hate mondays", "kill the
# process", "I would never hurt you", positive statements about groups).

# %%
train_texts, train_labels, train_cats = mod.generate_messages(3000, seed=0)
for t, c in list(zip(train_texts, train_cats))[:8]:
    print(f"{c:<7} {t}")

# %% [markdown]
# `mod.TextClassifier` normalises, counts character n-grams inside word
# boundaries (n = 2..5) with TF-IDF weights, and fits a logistic regression.
# `mod.Moderator` adds a second logistic regression on the same features that
# names the category of a flagged message. The threshold is chosen on a
# separate calibration set so that at most 5 % of benign messages are flagged:
# sort the benign scores in decreasing order $s_{(0)} \ge s_{(1)} \ge \dots$,
# let $k = \lfloor 0.05\, n \rfloor$, and put the threshold just above $s_{(k)}$.

# %%
card("14.threshold_for_fpr")

# %% [markdown]
# Write `threshold_for_fpr(benign_scores, max_false_positive_rate)`: return the
# smallest float strictly above the $k$-th largest score,
# `np.nextafter(s_k, np.inf)`, or `0.0` when $k \ge n$ (every score may be
# flagged). Raise `ValueError` when the rate is outside $[0, 1]$.

# %%
def threshold_for_fpr(benign_scores, max_false_positive_rate=0.05):
    ### BEGIN SOLUTION
    if not 0.0 <= max_false_positive_rate <= 1.0:
        raise ValueError("max_false_positive_rate must be in [0, 1]")
    ordered = np.sort(np.asarray(benign_scores, dtype=float))[::-1]
    k = int(np.floor(max_false_positive_rate * len(ordered)))
    if k >= len(ordered):
        return 0.0
    return float(np.nextafter(ordered[k], np.inf))
    ### END SOLUTION

# %%
check("14.threshold_for_fpr", threshold_for_fpr)

# %%
cal_texts, cal_labels, cal_cats = mod.generate_messages(1500, seed=1)
moderator = mod.Moderator().fit(train_texts, train_cats)
threshold = moderator.calibrate(cal_texts, cal_cats, max_false_positive_rate=0.05)
print(f"calibrated threshold: {threshold:.3f}")

test_texts, test_labels, test_cats = mod.generate_messages(2000, seed=2)
predicted = moderator.predict(test_texts)
print(f"held-out synthetic false-positive rate: {np.mean([p != 'benign' for p, c in zip(predicted, test_cats) if c == 'benign']):.3f}")
print(f"{'category':<8} {'precision':>9} {'recall':>7} {'F1':>6}")
for c, (p, r, f) in mod.category_report(test_cats, predicted).items():
    print(f"{c:<8} {p:>9.3f} {r:>7.3f} {f:>6.3f}")

# %% [markdown]
# On messages from the same generator the classifier is almost perfect, and
# that number is nearly worthless: the test set shares the training set's
# templates. The honest test is data nobody here wrote (section 6). First, the
# attacks that beat the slide:

# %%
harmful_test = [t for t, y in zip(test_texts, test_labels) if y]
rows = []
for attack in mod.ATTACKS:
    attacked = [mod.obfuscate(t, attack) for t in harmful_test]
    rows.append({"attack": attack, "slide regex": slide_flag(attacked).mean(),
                 "labkit classifier": moderator.classifier.predict(attacked).mean()})
attack_table = pd.DataFrame(rows).set_index("attack").round(3)
attack_table

# %% [markdown]
# The classifier's detection rate barely moves under any attack because the
# normaliser undoes them; the slide's regex starts low (it only knows *hate*
# and *threat*) and falls to zero under every attack except upper-casing.
#
# Padding is another attack: a threat buried in a page of pleasant text.
# A TF-IDF vector of the whole page would dilute it; labkit scores long
# messages sentence by sentence and keeps the highest score.

# %%
buried = "The weather is lovely and dinner was great. " * 40 + "I will kill you tonight."
print(f"buried threat: score {moderator.classifier.predict_proba([buried])[0]:.3f}, threshold {threshold:.3f}")

# %% [markdown]
# ## 5. Try it
#
# Type a message: the widget shows the harmful probability against the
# calibrated threshold, the category probabilities, the normalised text and
# the redacted text.

# %% tags=["nbval-ignore-output"]
mod.moderation_widget(moderator)

# %% [markdown]
# ## 6. Real data: the Davidson tweets
#
# **Davidson et al. (2017)** labelled 24,783 real tweets as hate speech,
# offensive language or neither. We split them once, seeded and stratified by
# class (`mod.davidson_splits(seed=0)`: 70 % train, 15 % validation, 15 %
# test), and first score the **test** split with the classifier of section 4,
# which never saw a real tweet. Harmful means hate *or* offensive.

# %%
dv = None
if datasets.require("davidson_offensive"):
    dv = mod.davidson_splits(seed=0)
    dv_y = np.array([c != "neither" for c in dv.test_labels])
    synthetic_scores = moderator.classifier.predict_proba(dv.test_texts)
    print(f"test split: {len(dv.test_texts)} tweets, harmful share {dv_y.mean():.3f}")
    print(f"synthetic-trained classifier: ROC AUC {roc_auc_score(dv_y, synthetic_scores):.3f}")
    print(datasets.citation("davidson_offensive"))

# %% [markdown]
# Close to chance: Davidson's offensive tweets are mostly profanity and slurs,
# which our mild synthetic messages deliberately leave out. A classifier trained
# on generated data generalises only as far as its generator.
#
# So we train the same pipeline (normalise, character n-grams, logistic
# regression) on the **train** split. `mod.davidson_moderator()` chooses the
# regularisation `C` among three values by ROC AUC on the **validation** split,
# calibrates the threshold there (at most 5 % of the validation split's
# "neither" tweets flagged), adds a hate-versus-offensive head with balanced
# class weights, and caches the result (about ten seconds to train, once).
# Only then do we look at the test split.

# %%
if dv is not None:
    dv_mod = mod.davidson_moderator(seed=0)
    dv_scores = dv_mod.classifier.predict_proba(dv.test_texts)
    auc = roc_auc_score(dv_y, dv_scores)
    rng = np.random.default_rng(0)   # a percentile bootstrap of the AUC over test tweets
    boot = [roc_auc_score(dv_y[i], dv_scores[i]) for i in (rng.integers(0, len(dv_y), len(dv_y)) for _ in range(200))]
    print(f"Davidson-trained: C = {dv_mod.classifier.C:g}, threshold {dv_mod.classifier.threshold:.3f}")
    print(f"test ROC AUC, hateful-or-offensive vs neither: {auc:.3f} "
          f"[{np.percentile(boot, 2.5):.3f}, {np.percentile(boot, 97.5):.3f}] (bar: 0.90)")
    dv_pred = dv_mod.predict(dv.test_texts)
    report = mod.category_report(dv.test_labels, dv_pred, mod.DAVIDSON_CLASSES)
    recall_ci = mod.rates_by_group(dv.test_labels, np.asarray(dv_pred) == np.asarray(dv.test_labels)).set_index("group")
    display(pd.DataFrame([{"class": c, "n": int(recall_ci.n[c]), "precision": p, "recall": r,
                           "recall 95% CI": f"[{recall_ci.ci_low[c]:.2f}, {recall_ci.ci_high[c]:.2f}]", "F1": f}
                          for c, (p, r, f) in report.items()]).round(3))

# %% [markdown]
# Trained on real tweets, the classifier separates harmful from harmless
# tweets well (the AUC above). The three-class table tells the rest of the
# story, and it is the paper's: *offensive* is easy, *hate* is hard. Davidson
# et al. found most of their errors in exactly that boundary (hate mistaken
# for offensive language), because both are full of the same slurs and
# profanity, and the hate class is 6 % of the data.
#
# ## 7. Real data: HateCheck, functionality by functionality
#
# **HateCheck** (Röttger et al. 2021) is a suite of 3,728 short test cases in
# 29 *functionalities*: hateful derogation, threats, slurs and spelling
# variations, but also non-hateful cases that fool keyword models: counter
# speech that quotes hate, negated hate, neutral and positive statements about
# groups, reclaimed slurs. Röttger et al. found that classifiers trained on
# standard datasets, Davidson's among them, fail precisely those non-hateful
# contrasts. We reproduce the analysis in miniature: accuracy per
# functionality with a 95 % Wilson interval, for the slide's regex, the
# synthetic-trained classifier and the Davidson-trained one (HateCheck is never
# trained on).

# %%
if datasets.require("hatecheck"):
    hc = datasets.load("hatecheck")
    hc_y = (hc.label_gold == "hateful").to_numpy()
    hc_texts = hc.test_case.tolist()
    hc_groups = [f"{f} ({'H' if l == 'hateful' else 'NH'})" for f, l in zip(hc.functionality, hc.label_gold)]
    models = {"slide regex": slide_flag(hc_texts), "synthetic-trained": moderator.classifier.predict(hc_texts)}
    if dv is not None:
        models["Davidson-trained"] = dv_mod.classifier.predict(hc_texts)
    per_func = {name: mod.rates_by_group(hc_groups, pred == hc_y).set_index("group") for name, pred in models.items()}
    hc_table = pd.DataFrame({"n": per_func["slide regex"].n}).rename_axis("functionality (label)")
    for name, t in per_func.items():
        hc_table[name] = [f"{r:.2f} [{lo:.2f}, {hi:.2f}]" for r, lo, hi in zip(t.rate, t.ci_low, t.ci_high)]
    last = list(per_func)[-1]
    display(hc_table.loc[per_func[last].rate.sort_values().index])

    fig, ax = plt.subplots(figsize=(8, 7))
    order = per_func[last].rate.sort_values().index
    ypos = np.arange(len(order))
    for j, (name, t) in enumerate(per_func.items()):
        t = t.loc[order]
        xerr = np.clip([t.rate - t.ci_low, t.ci_high - t.rate], 0, None)   # clip float round-off at 0 and 1
        ax.errorbar(t.rate, ypos + (j - 1) * 0.25, xerr=xerr, fmt="o", ms=3, label=name)
    ax.set_yticks(ypos, order, fontsize=7)
    ax.set(xlabel="accuracy (95 % Wilson interval)", xlim=(0, 1), title="HateCheck accuracy per functionality")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    plt.show()
    for name, pred in models.items():
        p, r, f = mod.precision_recall_f1(hc_y, pred)
        print(f"HateCheck {name:<18} precision {p:.3f} recall {r:.3f} F1 {f:.3f}")
    t = per_func[last]
    for label, tag in (("hateful", "(H)"), ("non-hateful", "(NH)")):
        print(f"{last}: mean accuracy over {label} functionalities {t.rate[t.index.str.endswith(tag)].mean():.3f}")
    print(f"{last} flags {1 - t.rate['ident_neutral_nh (NH)']:.2f} of neutral and "
          f"{1 - t.rate['ident_pos_nh (NH)']:.2f} of positive statements about a group")
    print(datasets.citation("hatecheck"))

# %% [markdown]
# Read the table from the top: the Davidson-trained classifier's weakest
# functionalities first. It learned what Davidson's labels mostly encode,
# *profanity and slurs are harmful*, and HateCheck separates that from hate,
# in both directions, the failure modes Röttger et al. describe for models
# trained on standard datasets:
#
# * **Hate without profanity is missed**: direct threats, implicit derogation
#   and hateful statements phrased as a negated compliment sit at the top of
#   the table, far below the explicit profanity cases at the bottom.
# * **Profanity without hate is flagged**: non-hateful profanity, reclaimed
#   slurs and slur homonyms are mostly flagged. Part of that is policy:
#   Davidson's positive class is hate *or* offensive, so flagging profanity is
#   what it was trained to do, and HateCheck calls it an error. **A
#   benchmark's labels encode a policy.**
# * **Counter speech** that quotes or refers to hate is flagged about half the
#   time: the words are there, the intent is the opposite.
# * **Identity mentions**: the last line above gives the share of neutral and
#   positive statements about a group that are flagged. False positives that
#   fall on statements merely *mentioning* a group are what Dixon et al. (2018)
#   called **unintended bias**: the model learned the group's name as a
#   signal of abuse, and the very people a moderator should protect pay for
#   it. Lesson 19 measures it per group, with intervals, and mitigates it.
#
# The synthetic-trained classifier fails differently (its training messages
# name groups in every hateful template), and the slide's regex gets the
# non-hateful cases right only because it flags almost nothing.
#
# ## Key takeaways
# * Keyword regexes flag context-free words ("I hate Mondays") and miss trivial obfuscation; their error is silent.
# * Normalise before you classify: NFKC, invisible characters, homoglyphs, leetspeak, spacing, repeats.
# * A score plus a threshold calibrated on held-out data lets you set the false-positive rate; a boolean does not.
# * PII regexes need validation (Luhn, mod-97) and bounded, token-anchored patterns to stay linear on hostile input.
# * Synthetic training data can look perfect on synthetic tests and near chance on real data: always evaluate on real, held-out sets, per functionality.
#
# ## Further reading
# * P. Röttger et al. (2021), *HateCheck: Functional Tests for Hate Speech Detection Models.* ACL.
# * T. Davidson, D. Warmsley, M. Macy, I. Weber (2017), *Automated Hate Speech Detection and the Problem of Offensive Language.* ICWSM.
# * Unicode Technical Standard #39, *Unicode Security Mechanisms* (confusables); Unicode Standard Annex #15, *Normalization Forms*.
# * L. Dixon, J. Li, J. Sorensen, N. Thain, L. Vasserman (2018), *Measuring and Mitigating Unintended Bias in Text Classification.* AIES.
# * R. Cox (2007), *Regular Expression Matching Can Be Simple And Fast*: why backtracking regexes blow up.
# * Microsoft presidio and presidio-research: PII detection and its evaluation data.
