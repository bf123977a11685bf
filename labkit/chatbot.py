"""Lesson 15: from the slide's keyword chatbot to a guarded tiny assistant.

The slide's chatbot looks for substrings: "hello" fires inside "Othello",
"bye" inside "maybe", "politics" inside "geopolitics"; it has no context and
only canned answers. This module keeps the fix for the matching bug
(:func:`contains_word`) and builds the guarded pipeline of seed 002's
``safe_generate`` monitor, done properly:

1. **rate limit** per user (sliding window, :class:`RateLimiter`);
2. **input guard**: :class:`labkit.moderation.TextClassifier` (char n-gram
   TF-IDF + logistic regression) trained on generated labelled requests, with
   a threshold calibrated for a target false-positive rate on separate data;
3. the **TinyGPT assistant** (SFT model);
4. **output guard**: harmful-content detection, and PII redaction
   (:func:`labkit.moderation.redact_pii`);
5. a **safe fallback** when anything fails (the error is kept in the turn and
   the audit log, never swallowed), an **audit log** of every turn, and
   **escalation** to a human for grey-zone inputs and repeat offenders.
"""
from __future__ import annotations

import re
from collections import defaultdict, deque
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from labkit.lm.harness import is_harmful
from labkit.moderation import TextClassifier, normalize, redact_pii
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


@dataclass
class Turn:
    """One audited turn of the guarded assistant.

    ``error`` names what went wrong when the pipeline fell back (exception type
    and message), and is empty otherwise.
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


class GuardedAssistant:
    """Rate limit, input guard, TinyGPT, output guard, fallback, audit log, escalation.

    Parameters
    ----------
    model, tokenizer : the assistant (normally the SFT model).
    input_guard : fitted :class:`labkit.moderation.TextClassifier` (its threshold is used).
    rate_limiter : :class:`RateLimiter` or None.
    review_margin : float in [0, 1)
        Inputs scoring in ``[threshold * (1 - review_margin), threshold)`` are
        answered but escalated for human review (the grey zone).
    max_flags : int >= 1
        A user whose inputs were refused this many times is escalated.
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
                 max_new_tokens: int = 24, raise_errors: bool = False):
        self.model, self.tokenizer, self.guard = model, tokenizer, input_guard
        self.rate_limiter = rate_limiter
        self.review_margin = ensure_float("review_margin", review_margin, 0.0, 1.0, high_open=True)
        self.max_flags = ensure_int("max_flags", max_flags, low=1)
        self.max_new_tokens = ensure_int("max_new_tokens", max_new_tokens, low=1)
        if not isinstance(raise_errors, bool):
            raise TypeError(f"raise_errors must be a bool, got {type(raise_errors).__name__}")
        self.raise_errors = raise_errors
        self.audit_log: list[Turn] = []
        self.escalations: list[Turn] = []
        self._flags: dict[str, int] = defaultdict(int)

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

    def process(self, prompts: Sequence[str], user: str = "anonymous", now: float = 0.0) -> list[Turn]:
        """Run a batch of prompts from one user at time ``now`` through the pipeline.

        Returns one :class:`Turn` per prompt, also appended to the audit log.
        When generation fails, the turns that needed the model fall back, with
        the error in ``Turn.error`` (or it propagates, with ``raise_errors``).
        """
        prompts = list(prompts)
        if not all(isinstance(p, str) for p in prompts):
            raise TypeError("prompts must be strings")
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
        for i, s in zip(todo, scores):
            s = float(s)
            grey = threshold * (1 - self.review_margin) <= s < threshold
            if s >= threshold:
                self._flags[user] += 1
                d = Turn(user, now, prompts[i], "refused_input", s, False, 0, False, REFUSAL_MESSAGE)
            elif not replies.get(i):
                why = error or "EmptyReply: the model produced no text"
                d = Turn(user, now, prompts[i], "fallback", s, False, 0, grey, FALLBACK_MESSAGE, why)
            elif is_harmful(replies[i]):
                self._flags[user] += 1
                d = Turn(user, now, prompts[i], "refused_output", s, True, 0, grey, REFUSAL_MESSAGE)
            else:
                text, spans = redact_pii(replies[i])
                d = Turn(user, now, prompts[i], "answered", s, False, len(spans), grey, text)
            if self._flags[user] >= self.max_flags:
                d.escalated = True
            turns[i] = d
        for d in turns:
            if d.escalated:
                d.reply = f"{d.reply} {ESCALATION_NOTE}"
                self.escalations.append(d)
            self.audit_log.append(d)
        return turns

    def chat(self, text: str, user: str = "anonymous", now: float = 0.0) -> Turn:
        """One message from ``user`` at time ``now`` (seconds); returns the audited turn."""
        return self.process([text], user, now)[0]

    def respond(self, prompts: Sequence[str]) -> list[str]:
        """Replies only (for :func:`labkit.lm.harness.evaluate_assistant`); rate limiting is skipped for evaluation."""
        limiter, self.rate_limiter = self.rate_limiter, None
        try:
            return [d.reply for d in self.process(prompts, user="evaluation")]
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


__all__ = ["contains_word", "rate_limit", "RateLimiter", "train_input_guard", "Turn", "GuardedAssistant", "guard_rates",
           "REFUSAL_MESSAGE", "FALLBACK_MESSAGE", "plot_guard_threshold", "chat_widget", "THRESHOLD_RANGE",
           "guard_threshold_widget"]
