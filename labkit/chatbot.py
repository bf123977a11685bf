"""Lesson 15: from the slide's keyword chatbot to a guarded tiny assistant.

The slide's chatbot looks for substrings: "hello" fires inside "Othello",
"bye" inside "maybe", "politics" inside "geopolitics"; it has no context and
only canned answers. This module keeps the fix for the matching bug
(:func:`contains_word`) and builds the guarded pipeline of seed 002's
``safe_generate`` monitor, done properly:

1. **rate limit** per user (sliding window, :class:`RateLimiter`);
2. **input guard**: :class:`labkit.moderation.TextClassifier` (word and
   character n-gram TF-IDF + logistic regression) trained on a stated, seeded
   mix of real prompts (:func:`real_input_guard`; HarmBench and Do-Not-Answer
   against nine benign sources, CoCoNot's contrast set as hard negatives), the
   design chosen among :data:`GUARD_CANDIDATES` and its threshold calibrated
   on a held-out part of those sources; offline, the character n-gram
   classifier trained on the world's generated requests (:func:`train_input_guard`);
3. the **TinyGPT assistant** (SFT model);
4. **output guard**: a classifier on reply text trained on real model replies
   with human harm labels (Do-Not-Answer; :func:`real_output_guard`), and PII
   redaction (:func:`labkit.moderation.redact_pii`);
5. a **safe fallback** when anything fails (the error is kept in the turn and
   the audit log, never swallowed), an **audit log** of every turn, and
   **escalation** to a human for grey-zone inputs and conversations with
   repeated refusals (counted per conversation).
"""
from __future__ import annotations

import functools
import re
from collections import defaultdict, deque
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from labkit.lm.cache import CourseModel, cache_path, cached, register_course_model
from labkit.moderation import (TextClassifier, classifier_from_payload, classifier_payload,
                               fit_best_C, memoised_model, normalize, redact_pii, threshold_for_fpr)
from labkit.lm.tinygpt import TinyGPT
from labkit.lm.tokenizer import Tokenizer
from labkit.validation import ensure_float, ensure_int
from labkit.lm.replies import reply
from labkit.lm.world import labelled_requests

REFUSAL_MESSAGE = "I can't help with that request. I'm happy to help with something else."
FALLBACK_MESSAGE = "I'm not able to answer that safely right now. Please try rephrasing, or ask a human colleague."
ESCALATION_NOTE = "A human reviewer has been asked to look at this conversation."
RATE_LIMIT_MESSAGE = "You are sending messages too quickly. Please wait a moment."
EMPTY_MESSAGE = "Your message was empty. What would you like to ask?"


def contains_word(text: str, phrase: str) -> bool:
    """True when ``phrase`` occurs in ``text`` as whole words, ignoring case.

    The slide tests ``phrase in text.lower()``, a substring test, so "hello"
    matches "Othello". Here a match may not start or end inside a word, and
    words of a multi-word phrase may be separated by any whitespace.

    Parameters
    ----------
    text : str
    phrase : str
        One or more words; must contain a non-space character.

    Returns
    -------
    bool
    """
    if not isinstance(text, str) or not isinstance(phrase, str):
        raise TypeError("text and phrase must be str")
    words = phrase.casefold().split()
    if not words:
        raise ValueError("phrase must contain at least one non-space character")
    pattern = r"(?<!\w)" + r"\s+".join(re.escape(w) for w in words) + r"(?!\w)"
    return re.search(pattern, text.casefold()) is not None


def rate_limit(times: Sequence[float], max_requests: int, window: float) -> list[bool]:
    """Sliding-window rate limiting: which requests are allowed.

    A request at time ``t`` is allowed when fewer than ``max_requests``
    *allowed* requests happened in ``(t - window, t]``; refused requests do not
    count against the user.

    Parameters
    ----------
    times : sequence of float
        Request times in seconds, non-decreasing.
    max_requests : int >= 1
    window : float > 0
        Window length in seconds.

    Returns
    -------
    list of bool
    """
    max_requests = ensure_int("max_requests", max_requests, low=1)
    window = ensure_float("window", window, low=0.0, low_open=True)
    times = [ensure_float("times[i]", t) for t in times]
    if any(b < a for a, b in zip(times, times[1:])):
        raise ValueError("times must be non-decreasing")
    allowed, recent = [], deque()
    for t in times:
        while recent and recent[0] <= t - window:
            recent.popleft()
        ok = len(recent) < max_requests
        if ok:
            recent.append(t)
        allowed.append(ok)
    return allowed


class RateLimiter:
    """Per-user sliding-window limiter (same rule as :func:`rate_limit`)."""

    def __init__(self, max_requests: int = 5, window: float = 60.0):
        self.max_requests = ensure_int("max_requests", max_requests, low=1)
        self.window = ensure_float("window", window, low=0.0, low_open=True)
        self._recent: dict[str, deque] = defaultdict(deque)

    def allow(self, user: str, now: float) -> bool:
        now = ensure_float("now", now)
        recent = self._recent[user]
        if recent and now < recent[-1]:
            raise ValueError("now must not go backwards for a user")
        while recent and recent[0] <= now - self.window:
            recent.popleft()
        if len(recent) < self.max_requests:
            recent.append(now)
            return True
        return False


def train_input_guard(n_train: int = 4000, n_calibration: int = 1000, max_false_positive_rate: float = 0.02,
                      seed: int = 0, C: float = 16.0, min_threshold: float = 0.5) -> TextClassifier:
    """Fit the moderation classifier on generated labelled requests and calibrate its threshold.

    Training and calibration sets come from the world's *training* templates
    (different seeds); the world's held-out prompts stay untouched. The
    negatives include hard ones (borderline-benign requests with alarming
    words in the very phrasings of harmful requests, and questions about
    harms). ``C`` is the classifier's inverse regularisation strength.

    The threshold is the lowest one whose false-positive rate on the
    calibration set is at most ``max_false_positive_rate``, but never below
    ``min_threshold``. Why the floor: calibration prompts share the training
    prompts' templates, so the classifier separates them almost perfectly and
    the FPR rule alone would pick a threshold near 0.1; on unseen wording that
    refuses many harmless prompts. 0.5 is the classifier's own decision
    boundary (its classes are balanced), so the floor means "never refuse a
    prompt the classifier itself thinks more likely harmless".
    """
    min_threshold = ensure_float("min_threshold", min_threshold, 0.0, 1.0)  # fail before the training, not after
    texts, labels = labelled_requests(n_train, seed=seed)
    guard = TextClassifier(C=C).fit(texts, labels.astype(bool))
    cal_texts, cal_labels = labelled_requests(n_calibration, seed=seed + 1)
    guard.calibrate_threshold(cal_texts, cal_labels.astype(bool), max_false_positive_rate, min_threshold)
    return guard


# ----------------------------------------------------------------------------
# An input guard trained on real prompts
# ----------------------------------------------------------------------------

# The training mix: at most this many prompts from each source, drawn with the
# guard's seed (None: all of them). Harmful: HarmBench's standard and contextual
# behaviours (its copyright behaviours ask for song lyrics and book passages,
# a policy of their own) and Do-Not-Answer's requests for harm (its risk areas
# "Human-Chatbot Interaction Harms" and "Misinformation Harms" hold questions
# such as "I feel lonely, what should I do?" or "How should I invest $50,000?",
# which an assistant should answer with care, not refuse; the disinformation-
# campaign requests among them are kept). Benign: everyday requests, questions
# and tasks; CoCoNot's contrast set is the hard negatives. Never: AdvBench,
# XSTest, PAIR (held out for evaluation), Koala and Self-Instruct's
# user-oriented prompts (their authors ask that they not be trained on).
GUARD_BENIGN_MIX: dict[str, int | None] = {
    "clinc_oos": 1500, "nq_open": 1000, "gsm8k": 400, "mt_bench": None, "vicuna_bench": None, "arena_hard": None,
    "truthfulqa": None, "hh_rlhf_helpful": 1000, "coconot_contrast": None,
}
GUARD_HARMFUL_SOURCES: tuple[str, ...] = ("harmbench_test", "harmbench_val", "do_not_answer")
# Held out for evaluation: a training prompt that also occurs in one of these
# (Koala collected public prompts; one is a TruthfulQA question) is dropped.
GUARD_EVALUATION_DATASETS: tuple[str, ...] = ("advbench", "xstest", "jailbreakbench_pair", "koala_test_set")
GUARD_DATASETS: tuple[str, ...] = GUARD_HARMFUL_SOURCES + tuple(GUARD_BENIGN_MIX) + GUARD_EVALUATION_DATASETS
# Benign requests that look as if they should be refused: weighted up in training (some candidates) and given
# their own false-positive budget in calibration.
GUARD_HARD_NEGATIVES: tuple[str, ...] = ("coconot_contrast",)
GUARD_C_GRID: tuple[float, ...] = (1.0, 4.0, 16.0)   # the output guard's grid
GUARD_C = 16.0                    # the input guard's C: the value session 2's grid chose for the character model
GUARD_CALIBRATION_SHARE = 0.2     # of each source (HarmBench: its own validation split instead)
GUARD_MAX_FPR = 0.05              # of all held-out benign calibration prompts flagged
GUARD_MAX_HARD_NEGATIVE_FPR = 0.10   # of the held-out hard negatives flagged (the over-refusal target of XSTest)
GUARD_MAX_FPR_PER_SOURCE = 0.05   # the previous guard's rule (:func:`calibrate_per_source`), kept for comparison


@dataclass(frozen=True)
class GuardCandidate:
    """One input-guard design: word n-grams besides character n-grams or not, and the hard negatives' weight."""

    word_ngrams: tuple[int, int] | None
    hard_negative_weight: float


GUARD_CANDIDATES: dict[str, GuardCandidate] = {
    "char n-grams": GuardCandidate(None, 1.0),
    "char n-grams, hard negatives x3": GuardCandidate(None, 3.0),
    "word + char n-grams": GuardCandidate((1, 2), 1.0),
    "word + char n-grams, hard negatives x3": GuardCandidate((1, 2), 3.0),
}
_DNA_EXCLUDED_AREAS = ("Human-Chatbot Interaction Harms", "Misinformation Harms")
_DNA_KEPT_TYPES = ("Reducing the cost of disinformation campaigns",)
_GUARD_VERSION = "4"  # the output guard keeps its own version: that model did not change
_OUTPUT_GUARD_VERSION = "2"


def _first_human_turn(dialogue: str) -> str:
    return dialogue.split("\n\nHuman: ", 1)[-1].split("\n\nAssistant:", 1)[0].strip()


def _source_prompts(name: str) -> list[str]:
    """Every usable prompt of one training source, in the file's order."""
    from labkit import datasets

    table = datasets.load(name)
    if name.startswith("harmbench"):
        return table[table.FunctionalCategory != "copyright"].Behavior.str.strip().tolist()
    if name == "do_not_answer":
        keep = ~table.risk_area.isin(_DNA_EXCLUDED_AREAS) | table.types_of_harm.isin(_DNA_KEPT_TYPES)
        return table[keep].question.tolist()
    if name == "clinc_oos":
        return [row[0] for row in table[table.split == "train"].row]
    if name in ("nq_open", "gsm8k"):
        return table.question.tolist()
    if name in ("mt_bench", "vicuna_bench"):
        return [turns[0] for turns in table.turns]
    if name == "arena_hard":
        return [turns[0]["content"] for turns in table.turns]
    if name == "truthfulqa":
        return table.Question.tolist()
    if name == "hh_rlhf_helpful":
        return [_first_human_turn(d) for d in table.chosen]
    if name == "coconot_contrast":
        return table.prompt.tolist()
    raise ValueError(f"{name} is not a guard training source")


@dataclass(frozen=True)
class GuardData:
    """The guard's training and calibration prompts: texts, labels (True = harmful) and source names."""

    train_texts: list[str]
    train_labels: np.ndarray
    train_sources: list[str]
    cal_texts: list[str]
    cal_labels: np.ndarray
    cal_sources: list[str]

    def summary(self) -> pd.DataFrame:
        """Prompts per source in each part."""
        rows = [{"source": src, "harmful": src in GUARD_HARMFUL_SOURCES, "train": self.train_sources.count(src),
                 "calibration": self.cal_sources.count(src)} for src in dict.fromkeys(self.train_sources + self.cal_sources)]
        return pd.DataFrame(rows)


def real_guard_data(seed: int = 0) -> GuardData:
    """The stated, seeded mix of real prompts the input guard is trained and calibrated on.

    HarmBench keeps its own split: its test behaviours train, its validation
    behaviours calibrate. Every other source is capped at its
    :data:`GUARD_BENIGN_MIX` size by a seeded sample, then split, seeded,
    :data:`GUARD_CALIBRATION_SHARE` to calibration. Duplicates (up to case
    and spacing) across sources are dropped (first source wins), and so is any
    prompt of :data:`GUARD_EVALUATION_DATASETS`. Needs :data:`GUARD_DATASETS`.
    """
    from labkit import datasets

    seed = ensure_int("seed", seed, low=0)
    parts = {"train": ([], [], []), "cal": ([], [], [])}
    evaluation = [*datasets.load("advbench").goal, *datasets.load("xstest").prompt,
                  *datasets.load("jailbreakbench_pair").attack_prompt.dropna(), *datasets.load("koala_test_set").prompt]
    seen: set[str] = {" ".join(t.casefold().split()) for t in evaluation}

    def add(part: str, texts: list[str], harmful: bool, source: str) -> None:
        for t in texts:
            key = " ".join(t.casefold().split())
            if t.strip() and key not in seen:
                seen.add(key)
                parts[part][0].append(t)
                parts[part][1].append(harmful)
                parts[part][2].append(source)

    add("train", _source_prompts("harmbench_test"), True, "harmbench_test")
    add("cal", _source_prompts("harmbench_val"), True, "harmbench_val")
    for offset, (name, cap) in enumerate([("do_not_answer", None), *GUARD_BENIGN_MIX.items()]):
        rng = np.random.default_rng([seed, offset])
        texts = _source_prompts(name)
        order = rng.permutation(len(texts))[: cap or len(texts)]
        n_cal = int(round(GUARD_CALIBRATION_SHARE * len(order)))
        harmful = name == "do_not_answer"
        add("cal", [texts[i] for i in order[:n_cal]], harmful, name)
        add("train", [texts[i] for i in order[n_cal:]], harmful, name)
    (tt, tl, ts), (ct, cl, cs) = parts["train"], parts["cal"]
    return GuardData(tt, np.array(tl), ts, ct, np.array(cl), cs)


def calibrate_per_source(guard: TextClassifier, texts: Sequence[str], labels, sources: Sequence[str],
                         max_false_positive_rate: float) -> float:
    """Set ``guard.threshold`` to the lowest value at which no benign source has more than
    ``max_false_positive_rate`` of its prompts flagged; return it.

    The threshold of :func:`labkit.moderation.threshold_for_fpr` for each
    benign source, and the highest of them: a pooled rate would let many easy
    benign prompts hide a source that is refused often.
    """
    fpr = ensure_float("max_false_positive_rate", max_false_positive_rate, 0.0, 1.0)
    texts, labels, sources = list(texts), np.asarray(labels, dtype=bool), list(sources)
    if not (len(texts) == len(labels) == len(sources)):
        raise ValueError("texts, labels and sources must have the same length")
    scores = guard.predict_proba(texts)
    benign_sources = sorted({s for s, y in zip(sources, labels) if not y})
    if not benign_sources:
        raise ValueError("labels must contain benign (False) prompts to calibrate on")
    per_source = [threshold_for_fpr(scores[[s == src and not y for s, y in zip(sources, labels)]], fpr)
                  for src in benign_sources]
    guard.threshold = max(per_source)
    return guard.threshold


def _fit_on(data: GuardData, C: float | None) -> TextClassifier:
    """A classifier fitted on ``data``'s training part; ``C`` from :data:`GUARD_C_GRID` by calibration AUC when None."""
    if not isinstance(data, GuardData):
        raise TypeError(f"data must be a GuardData, got {type(data).__name__}")
    if C is None:  # the grid's best fit is the guard: fitting it again would give the same weights
        return fit_best_C(data.train_texts, data.train_labels, data.cal_texts, data.cal_labels, GUARD_C_GRID)
    return TextClassifier(C=ensure_float("C", C, low=0.0, low_open=True)).fit(data.train_texts, data.train_labels)


def calibrate_guard(guard: TextClassifier, texts: Sequence[str], labels, sources: Sequence[str],
                    max_false_positive_rate: float = GUARD_MAX_FPR,
                    max_hard_negative_rate: float = GUARD_MAX_HARD_NEGATIVE_FPR) -> float:
    """Set ``guard.threshold`` to the lowest value at which at most ``max_false_positive_rate`` of the benign
    prompts, and at most ``max_hard_negative_rate`` of those from :data:`GUARD_HARD_NEGATIVES`, are flagged;
    return it.

    Two budgets because the two kinds of benign prompt differ: everyday
    requests should almost never be refused, while requests built to look
    harmful (CoCoNot's contrast set, like XSTest's safe prompts) are the ones
    a guard refuses by mistake, and the course's target for them is 10 %.
    A pooled rate, unlike :func:`calibrate_per_source`, does not let a source
    of 16 prompts (where 5 % means none) set the threshold alone.
    """
    fpr = ensure_float("max_false_positive_rate", max_false_positive_rate, 0.0, 1.0)
    hard_fpr = ensure_float("max_hard_negative_rate", max_hard_negative_rate, 0.0, 1.0)
    texts, labels, sources = list(texts), np.asarray(labels, dtype=bool), np.asarray(list(sources), dtype=object)
    if not (len(texts) == len(labels) == len(sources)):
        raise ValueError("texts, labels and sources must have the same length")
    if labels.all():
        raise ValueError("labels must contain benign (False) prompts to calibrate on")
    scores = guard.predict_proba(texts)
    hard = ~labels & np.isin(sources, GUARD_HARD_NEGATIVES)
    threshold = threshold_for_fpr(scores[~labels], fpr)
    if hard.any():
        threshold = max(threshold, threshold_for_fpr(scores[hard], hard_fpr))
    guard.threshold = threshold
    return threshold


def fit_guard_candidate(data: GuardData, candidate: GuardCandidate) -> TextClassifier:
    """A :class:`~labkit.moderation.TextClassifier` (``C`` = :data:`GUARD_C`) fitted on ``data``'s training
    prompts as ``candidate`` says; its threshold is not set."""
    if not isinstance(data, GuardData):
        raise TypeError(f"data must be a GuardData, got {type(data).__name__}")
    if not isinstance(candidate, GuardCandidate):
        raise TypeError(f"candidate must be a GuardCandidate, got {type(candidate).__name__}")
    weight = ensure_float("candidate.hard_negative_weight", candidate.hard_negative_weight, low=0.0, low_open=True)
    weights = np.where(np.isin(np.asarray(data.train_sources, dtype=object), GUARD_HARD_NEGATIVES), weight, 1.0)
    return TextClassifier(C=GUARD_C, word_ngrams=candidate.word_ngrams).fit(data.train_texts, data.train_labels, weights)


@dataclass(frozen=True)
class GuardSelection:
    """The chosen input guard, the candidates' validation table, and the previous guard for comparison.

    ``previous`` is session 2's design (character n-grams, threshold by
    :func:`calibrate_per_source`), refitted on the same data.
    """

    guard: TextClassifier
    table: pd.DataFrame
    previous: TextClassifier


def _validation_row(name: str, guard: TextClassifier, data: GuardData) -> dict:
    from sklearn.metrics import roc_auc_score

    scores = guard.predict_proba(data.cal_texts)
    flagged = scores >= guard.threshold
    hard = np.isin(np.asarray(data.cal_sources, dtype=object), GUARD_HARD_NEGATIVES)
    return {"candidate": name, "ROC AUC": roc_auc_score(data.cal_labels, scores), "threshold": guard.threshold,
            "harmful recall": flagged[data.cal_labels].mean(), "benign flagged": flagged[~data.cal_labels].mean(),
            "hard negatives flagged": flagged[hard].mean()}


def select_real_input_guard(data: GuardData) -> GuardSelection:
    """Fit every :data:`GUARD_CANDIDATES`, calibrate each by :func:`calibrate_guard`, and choose one.

    The rule, on the calibration part only: the highest recall on the
    held-out harmful calibration prompts (HarmBench's validation behaviours
    and held-out Do-Not-Answer requests) at the calibrated threshold; ties go
    to the higher ROC AUC, then to the candidate listed first.
    """
    if not isinstance(data, GuardData):
        raise TypeError(f"data must be a GuardData, got {type(data).__name__}")
    rows, fitted = [], {}
    for name, candidate in GUARD_CANDIDATES.items():
        guard = fit_guard_candidate(data, candidate)
        calibrate_guard(guard, data.cal_texts, data.cal_labels, data.cal_sources)
        fitted[name] = guard
        rows.append(_validation_row(name, guard, data))
    table = pd.DataFrame(rows)
    best = max(range(len(rows)), key=lambda i: (rows[i]["harmful recall"], rows[i]["ROC AUC"], -i))
    table["chosen"] = [i == best for i in range(len(rows))]
    previous = fit_guard_candidate(data, GUARD_CANDIDATES["char n-grams"])
    calibrate_per_source(previous, data.cal_texts, data.cal_labels, data.cal_sources, GUARD_MAX_FPR_PER_SOURCE)
    return GuardSelection(fitted[table.candidate[best]], table, previous)


def _selection_payload(selection: GuardSelection) -> dict:
    previous = {f"previous/{k}": v for k, v in classifier_payload(selection.previous).items()}
    return {**classifier_payload(selection.guard), **previous, "table": selection.table.to_json(orient="records")}


def _selection_from_payload(payload: dict) -> GuardSelection:
    import io

    previous = {k.removeprefix("previous/"): v for k, v in payload.items() if k.startswith("previous/")}
    own = {k: v for k, v in payload.items() if not k.startswith("previous/") and k != "table"}
    table = pd.read_json(io.StringIO(payload["table"]), orient="records")
    return GuardSelection(classifier_from_payload(own), table, classifier_from_payload(previous))


def _guard_key(seed: int) -> str:
    import hashlib
    import json

    from labkit import datasets

    blob = json.dumps({"seed": seed, "mix": GUARD_BENIGN_MIX, "C": GUARD_C, "share": GUARD_CALIBRATION_SHARE,
                       "candidates": {k: asdict(v) for k, v in GUARD_CANDIDATES.items()},
                       "hard": GUARD_HARD_NEGATIVES, "fpr": [GUARD_MAX_FPR, GUARD_MAX_HARD_NEGATIVE_FPR,
                                                             GUARD_MAX_FPR_PER_SOURCE],
                       "version": _GUARD_VERSION,
                       "data": [datasets.REGISTRY[n].sha256 for n in GUARD_DATASETS]}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@functools.lru_cache(maxsize=4)
def _real_input_guard(seed: int, rebuild: bool) -> GuardSelection:
    return cached(f"input-guard-real-s{seed}", _guard_key(seed), lambda: select_real_input_guard(real_guard_data(seed)),
                  _selection_payload, _selection_from_payload, rebuild=rebuild)


def real_input_guard_selection(seed: int = 0, rebuild: bool = False) -> GuardSelection:
    """The input guard trained on real prompts with its candidates' validation table
    (:func:`real_guard_data`, :func:`select_real_input_guard`).

    Trained once (the four candidates take under a minute), then loaded from
    labkit's model cache and kept in memory. Needs :data:`GUARD_DATASETS`.
    """
    return memoised_model(_real_input_guard, seed, rebuild)


def real_input_guard(seed: int = 0, rebuild: bool = False) -> TextClassifier:
    """The chosen input guard of :func:`real_input_guard_selection`."""
    return real_input_guard_selection(seed, rebuild).guard


# ----------------------------------------------------------------------------
# An output guard trained on real replies
# ----------------------------------------------------------------------------

DNA_MODELS: tuple[str, ...] = ("GPT4", "ChatGPT", "Claude", "ChatGLM2", "llama2-7b-chat", "vicuna-7b")
OUTPUT_GUARD_DATASETS: tuple[str, ...] = ("do_not_answer", "hh_rlhf_helpful")
OUTPUT_GUARD_HELPFUL_REPLIES = 1000   # benign replies from HH-RLHF helpful (seeded sample)
OUTPUT_GUARD_MAX_FPR = 0.05           # of held-out harmless replies flagged


def _first_assistant_turn(dialogue: str) -> str:
    return dialogue.split("\n\nAssistant: ", 1)[-1].split("\n\nHuman:", 1)[0].strip()


def real_output_guard_data(seed: int = 0) -> GuardData:
    """Reply texts labelled harmful or not, split by prompt (seeded, :data:`GUARD_CALIBRATION_SHARE` held out).

    Do-Not-Answer's six models' replies to its 939 prompts with the human
    label ``<model>_harmful``, and a seeded sample of
    :data:`OUTPUT_GUARD_HELPFUL_REPLIES` first assistant replies from HH-RLHF
    helpful as everyday harmless replies. All replies to one prompt fall in
    the same part. ``sources`` names the replying model (or ``hh_rlhf_helpful``).
    """
    from labkit import datasets

    seed = ensure_int("seed", seed, low=0)
    dna = datasets.load("do_not_answer")
    rng = np.random.default_rng([seed, 100])
    held_out = set(rng.permutation(len(dna))[: int(round(GUARD_CALIBRATION_SHARE * len(dna)))].tolist())
    parts = {"train": ([], [], []), "cal": ([], [], [])}
    for i in range(len(dna)):
        for m in DNA_MODELS:
            text = dna.at[i, f"{m}_response"]
            if isinstance(text, str) and text.strip():
                part = parts["cal" if i in held_out else "train"]
                part[0].append(text)
                part[1].append(bool(dna.at[i, f"{m}_harmful"]))
                part[2].append(m)
    helpful = [_first_assistant_turn(d) for d in datasets.load("hh_rlhf_helpful").chosen]
    order = np.random.default_rng([seed, 101]).permutation(len(helpful))[:OUTPUT_GUARD_HELPFUL_REPLIES]
    n_cal = int(round(GUARD_CALIBRATION_SHARE * len(order)))
    for k, j in enumerate(order):
        if helpful[j]:
            part = parts["cal" if k < n_cal else "train"]
            part[0].append(helpful[j])
            part[1].append(False)
            part[2].append("hh_rlhf_helpful")
    (tt, tl, ts), (ct, cl, cs) = parts["train"], parts["cal"]
    return GuardData(tt, np.array(tl), ts, ct, np.array(cl), cs)


def train_real_output_guard(data: GuardData, C: float | None = None,
                            max_false_positive_rate: float = OUTPUT_GUARD_MAX_FPR) -> TextClassifier:
    """Fit a :class:`~labkit.moderation.TextClassifier` on reply texts; ``C`` by calibration-part ROC AUC
    (:data:`GUARD_C_GRID`), threshold for at most ``max_false_positive_rate`` of its harmless replies flagged."""
    guard = _fit_on(data, C)
    guard.calibrate_threshold(data.cal_texts, data.cal_labels, max_false_positive_rate)
    return guard


@functools.lru_cache(maxsize=4)
def _real_output_guard(seed: int, rebuild: bool) -> TextClassifier:
    import hashlib
    import json

    from labkit import datasets

    key = hashlib.sha256(json.dumps({"seed": seed, "grid": GUARD_C_GRID, "n": OUTPUT_GUARD_HELPFUL_REPLIES,
                                     "fpr": OUTPUT_GUARD_MAX_FPR, "share": GUARD_CALIBRATION_SHARE,
                                     "version": _OUTPUT_GUARD_VERSION,
                                     "data": [datasets.REGISTRY[n].sha256 for n in OUTPUT_GUARD_DATASETS]},
                                    sort_keys=True).encode()).hexdigest()[:16]
    return cached(f"output-guard-real-s{seed}", key, lambda: train_real_output_guard(real_output_guard_data(seed)),
                  classifier_payload, classifier_from_payload, rebuild=rebuild)


def real_output_guard(seed: int = 0, rebuild: bool = False) -> TextClassifier:
    """The output guard: a classifier on reply text trained on real replies (:func:`real_output_guard_data`).

    Cached like :func:`real_input_guard`. Needs :data:`OUTPUT_GUARD_DATASETS`.
    """
    return memoised_model(_real_output_guard, seed, rebuild)


def _build_guards_for_prebuild(rebuild: bool):
    from labkit import datasets

    if not datasets.require(*sorted(set(GUARD_DATASETS) | set(OUTPUT_GUARD_DATASETS))):
        return None  # offline with no mirror: prebuild says so in one line and goes on
    return real_input_guard(0, rebuild), real_output_guard(0, rebuild)


register_course_model(CourseModel("guards-real-s0", _build_guards_for_prebuild,
                                  lambda: cache_path("input-guard-real-s0", _guard_key(0))))


@dataclass
class Turn:
    """One audited turn of the guarded assistant.

    ``error`` names what went wrong when the pipeline fell back (exception type
    and message), and is empty otherwise. ``conversation`` identifies the
    conversation whose refusals count toward escalation.
    """

    user: str
    time: float
    prompt: str
    action: str            # answered, refused_input, refused_output, rate_limited, empty, fallback
    input_score: float
    output_flagged: bool
    pii_redacted: int
    escalated: bool
    reply: str
    error: str = ""
    conversation: str = ""


class GuardedAssistant:
    """Rate limit, input guard, TinyGPT, output guard, fallback, audit log, escalation.

    Parameters
    ----------
    model, tokenizer : the assistant (normally the SFT model).
    input_guard : fitted :class:`labkit.moderation.TextClassifier` (its threshold is used).
    rate_limiter : :class:`RateLimiter` or None.
    output_guard : fitted classifier on reply text or None
        Anything with ``predict(texts) -> booleans`` (e.g. :func:`real_output_guard`);
        a flagged reply is withheld. None: replies are only PII-redacted.
        (Not the world's own marker of harmful content: a guard that reads the
        answer key would make harmful compliance zero by construction.)
    review_margin : float in [0, 1)
        Inputs scoring in ``[threshold * (1 - review_margin), threshold)`` are
        answered but escalated for human review (the grey zone).
    max_flags : int >= 1
        A conversation in which this many messages were refused is escalated.
        Refusals count per conversation, not per user or per process: an
        evaluation that sends a benchmark as one user must not escalate half of it.
    max_new_tokens : int
    raise_errors : bool
        False (deployed): an exception while generating becomes the safe
        fallback reply, with the exception's type and message recorded in the
        turn and the audit log. True (tests, development): it propagates. No
        exception type is trusted to mean "only a runtime failure" (PyTorch
        reports shape bugs as RuntimeError), so the choice is the caller's,
        not a list of types.
    """

    def __init__(self, model: TinyGPT, tokenizer: Tokenizer, input_guard: TextClassifier,
                 rate_limiter: RateLimiter | None = None, review_margin: float = 0.3, max_flags: int = 3,
                 max_new_tokens: int = 24, raise_errors: bool = False, output_guard=None):
        self.model, self.tokenizer, self.guard = model, tokenizer, input_guard
        self.rate_limiter = rate_limiter
        if output_guard is not None and not callable(getattr(output_guard, "predict", None)):
            raise TypeError(f"output_guard must have a predict(texts) method or be None, got {type(output_guard).__name__}")
        self.output_guard = output_guard
        self.review_margin = ensure_float("review_margin", review_margin, 0.0, 1.0, high_open=True)
        self.max_flags = ensure_int("max_flags", max_flags, low=1)
        self.max_new_tokens = ensure_int("max_new_tokens", max_new_tokens, low=1)
        if not isinstance(raise_errors, bool):
            raise TypeError(f"raise_errors must be a bool, got {type(raise_errors).__name__}")
        self.raise_errors = raise_errors
        self.audit_log: list[Turn] = []
        self.escalations: list[Turn] = []
        self._flags: dict[tuple[str, str], int] = defaultdict(int)
        self._evaluations = 0

    def _generate(self, prompts: list[str]) -> list[str]:
        # One batch, as the pipeline has always generated (the batch shapes the logits' last digits).
        return reply(self.model, self.tokenizer, prompts, self.max_new_tokens, batch_size=None)

    def _replies(self, prompts: list[str], indices: list[int]) -> tuple[dict[int, str], str]:
        """The model's reply for each index, and the error that stopped it ("" if none)."""
        if not indices:
            return {}, ""
        try:
            return dict(zip(indices, self._generate([prompts[i] for i in indices]))), ""
        except Exception as exc:  # the fallback: never crash, never show a half answer; keep the error
            if self.raise_errors:
                raise
            return {}, f"{type(exc).__name__}: {exc}"

    def _output_flags(self, replies: dict[int, str]) -> dict[int, bool]:
        if self.output_guard is None or not replies:
            return {i: False for i in replies}
        keys = [i for i, r in replies.items() if r]
        flags = self.output_guard.predict([replies[i] for i in keys]) if keys else []
        return {i: bool(f) for i, f in zip(keys, flags)}

    def process(self, prompts: Sequence[str], user: str = "anonymous", now: float = 0.0,
                conversation: str | Sequence[str] | None = None) -> list[Turn]:
        """Run a batch of prompts from one user at time ``now`` through the pipeline.

        ``conversation``: the conversation of every prompt (a str), of each
        prompt (a sequence), or None for the user's one running conversation.
        Returns one :class:`Turn` per prompt, also appended to the audit log.
        When generation fails, the turns that needed the model fall back, with
        the error in ``Turn.error`` (or it propagates, with ``raise_errors``).
        """
        prompts = list(prompts)
        if not all(isinstance(p, str) for p in prompts):
            raise TypeError("prompts must be strings")
        if conversation is None or isinstance(conversation, str):
            conversations = [user if conversation is None else conversation] * len(prompts)
        else:
            conversations = [str(c) for c in conversation]
            if len(conversations) != len(prompts):
                raise ValueError(f"conversation must name one conversation per prompt ({len(prompts)}), got {len(conversations)}")
        turns: list[Turn | None] = [None] * len(prompts)
        todo = []
        for i, p in enumerate(prompts):
            if self.rate_limiter is not None and not self.rate_limiter.allow(user, now):  # every message counts
                turns[i] = Turn(user, now, p, "rate_limited", 0.0, False, 0, False, RATE_LIMIT_MESSAGE)
            elif not normalize(p).strip():
                turns[i] = Turn(user, now, p, "empty", 0.0, False, 0, False, EMPTY_MESSAGE)
            else:
                todo.append(i)
        scores = self.guard.predict_proba([prompts[i] for i in todo]) if todo else np.zeros(0)
        threshold = self.guard.threshold
        to_model = [i for i, s in zip(todo, scores) if s < threshold]
        replies, error = self._replies(prompts, to_model)
        flagged_output = self._output_flags(replies)
        for i, s in zip(todo, scores):
            s = float(s)
            grey = threshold * (1 - self.review_margin) <= s < threshold
            key = (user, conversations[i])
            if s >= threshold:
                self._flags[key] += 1
                d = Turn(user, now, prompts[i], "refused_input", s, False, 0, False, REFUSAL_MESSAGE)
            elif not replies.get(i):
                why = error or "EmptyReply: the model produced no text"
                d = Turn(user, now, prompts[i], "fallback", s, False, 0, grey, FALLBACK_MESSAGE, why)
            elif flagged_output[i]:
                self._flags[key] += 1
                d = Turn(user, now, prompts[i], "refused_output", s, True, 0, grey, REFUSAL_MESSAGE)
            else:
                text, spans = redact_pii(replies[i])
                d = Turn(user, now, prompts[i], "answered", s, False, len(spans), grey, text)
            if self._flags[key] >= self.max_flags:
                d.escalated = True
            turns[i] = d
        for d, c in zip(turns, conversations):
            d.conversation = c
            if d.escalated:
                d.reply = f"{d.reply} {ESCALATION_NOTE}"
                self.escalations.append(d)
            self.audit_log.append(d)
        return turns

    def chat(self, text: str, user: str = "anonymous", now: float = 0.0, conversation: str | None = None) -> Turn:
        """One message from ``user`` at time ``now`` (seconds) in ``conversation`` (default: the user's); the audited turn."""
        return self.process([text], user, now, conversation)[0]

    def respond(self, prompts: Sequence[str]) -> list[str]:
        """Replies only (for :func:`labkit.lm.harness.evaluate_assistant`).

        Each prompt is a conversation of its own (an evaluation is many
        independent users, not one user sending a benchmark); rate limiting is
        skipped.
        """
        prompts = list(prompts)
        first, self._evaluations = self._evaluations, self._evaluations + len(prompts)
        limiter, self.rate_limiter = self.rate_limiter, None
        try:
            turns = self.process(prompts, user="evaluation",
                                 conversation=[f"evaluation-{first + k}" for k in range(len(prompts))])
            return [d.reply for d in turns]
        finally:
            self.rate_limiter = limiter

    def audit_table(self, last: int | None = None) -> pd.DataFrame:
        """The audit log as a table (the ``last`` entries when given)."""
        rows = [asdict(d) for d in (self.audit_log[-last:] if last else self.audit_log)]
        return pd.DataFrame(rows, columns=list(Turn.__dataclass_fields__))


def guard_rates(guard: TextClassifier, texts: Sequence[str]) -> float:
    """Share of ``texts`` the guard flags."""
    texts = list(texts)
    if not texts:
        raise ValueError("texts must not be empty")
    return float(np.mean(guard.predict(texts)))


def flag_table(guards: dict, sets: dict) -> pd.DataFrame:
    """Share of each set each guard flags, with 95 % Wilson intervals.

    Parameters
    ----------
    guards : dict name -> fitted classifier with ``predict(texts)``
    sets : dict name -> (texts, should_flag)

    Returns
    -------
    pandas.DataFrame
        One row per set: ``set, n, should flag`` and, per guard, the flagged
        share and its interval as ``"rate [low, high]"``.
    """
    from labkit.intervals import wilson_interval

    if not guards or not sets:
        raise ValueError("guards and sets must be non-empty dicts")
    rows = []
    for name, (texts, should_flag) in sets.items():
        texts = list(texts)
        if not texts:
            raise ValueError(f"set {name!r} is empty")
        row = {"set": name, "n": len(texts), "should flag": bool(should_flag)}
        for guard_name, guard in guards.items():
            flagged = np.asarray(guard.predict(texts), dtype=bool)
            low, high = wilson_interval(int(flagged.sum()), len(flagged))
            row[guard_name] = f"{flagged.mean():.3f} [{low:.2f}, {high:.2f}]"
        rows.append(row)
    return pd.DataFrame(rows)


THRESHOLD_RANGE = (0.0, 1.0, 0.01)


def plot_guard_threshold(threshold: float, scores: dict[str, np.ndarray], harmful: dict[str, bool]):
    """Score histograms of the input guard and the flag rate of each set at ``threshold``.

    Parameters
    ----------
    threshold : float in [0, 1]
    scores : dict name -> array of guard scores in [0, 1]
    harmful : dict name -> whether that set is harmful (flagging it is right)

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    threshold = ensure_float("threshold", threshold, 0.0, 1.0)
    if not scores or set(scores) != set(harmful):
        raise ValueError("scores and harmful must be non-empty dicts with the same keys")
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    bins = np.linspace(0, 1, 26)
    names = list(scores)
    for name in names:
        s = np.asarray(scores[name], dtype=float)
        if s.size:  # a density of an empty set is 0/0
            ax1.hist(s, bins=bins, histtype="step", lw=1.5, density=True, label=name)
    ax1.axvline(threshold, color="k", ls="--", lw=1)
    ax1.set(xlabel="guard score P(harmful)", ylabel="density", title="Input-guard scores")
    ax1.legend(fontsize=7)
    rates = [float(np.mean(np.asarray(scores[n]) >= threshold)) if len(scores[n]) else 0.0 for n in names]
    colours = ["tab:red" if harmful[n] else "tab:green" for n in names]
    ax2.barh(names, rates, color=colours)
    for i, r in enumerate(rates):
        ax2.text(min(r + 0.02, 0.85), i, f"{r:.2f}", va="center", fontsize=8)
    ax2.set(xlim=(0, 1), xlabel="share flagged (red: should be 1, green: should be 0)", title=f"threshold = {threshold:.2f}")
    fig.tight_layout()
    return fig


def guard_threshold_widget(scores: dict[str, np.ndarray], harmful: dict[str, bool], threshold: float = 0.5):
    """Lesson 15's threshold widget: the guard's threshold (:data:`THRESHOLD_RANGE`) redrawing
    :func:`plot_guard_threshold` for ``scores``.

    Parameters
    ----------
    scores, harmful : as for :func:`plot_guard_threshold`
    threshold : float in [0, 1]
        Where the slider starts (e.g. the guard's calibrated threshold), rounded to its 0.01 step.

    Returns
    -------
    ipywidgets.VBox
        From :func:`labkit.ui.interactive_figure`, showing ``threshold``.
    """
    from functools import partial

    from labkit.ui import float_slider, interactive_figure

    threshold = ensure_float("threshold", threshold, THRESHOLD_RANGE[0], THRESHOLD_RANGE[1])
    return interactive_figure(partial(plot_guard_threshold, scores=scores, harmful=harmful),
                              threshold=float_slider("threshold", *THRESHOLD_RANGE, round(threshold, 2)))


def chat_widget(bot: GuardedAssistant, user: str = "student"):
    """A text box and a send button; each reply is shown beside the guard's decisions."""
    import ipywidgets as widgets

    box = widgets.Text(placeholder="Ask the assistant something", layout=widgets.Layout(width="60%"))
    send = widgets.Button(description="send")
    log = widgets.Output()
    clock = {"t": 0.0}

    def on_send(_=None):
        if not box.value:
            return
        clock["t"] += 1.0
        d = bot.chat(box.value, user=user, now=clock["t"])
        with log:
            print(f"you: {d.prompt}\nassistant: {d.reply}\n   [action={d.action}, input score={d.input_score:.2f}, "
                  f"threshold={bot.guard.threshold:.2f}, output flagged={d.output_flagged}, escalated={d.escalated}]")
        box.value = ""

    send.on_click(on_send)
    return widgets.VBox([widgets.HBox([box, send]), log])


__all__ = ["flag_table", "GuardData", "real_guard_data", "calibrate_per_source", "calibrate_guard",
           "GuardCandidate", "GUARD_CANDIDATES", "GUARD_HARD_NEGATIVES", "fit_guard_candidate", "GuardSelection",
           "select_real_input_guard", "real_input_guard_selection", "real_input_guard", "threshold_for_fpr", "real_output_guard_data", "train_real_output_guard", "real_output_guard",
           "GUARD_BENIGN_MIX", "GUARD_HARMFUL_SOURCES", "GUARD_EVALUATION_DATASETS", "GUARD_DATASETS",
           "OUTPUT_GUARD_DATASETS", "DNA_MODELS", "contains_word", "rate_limit", "RateLimiter", "train_input_guard", "Turn", "GuardedAssistant", "guard_rates",
           "REFUSAL_MESSAGE", "FALLBACK_MESSAGE", "plot_guard_threshold", "chat_widget", "THRESHOLD_RANGE",
           "guard_threshold_widget"]
