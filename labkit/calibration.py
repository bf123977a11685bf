"""Lesson 03: knowing when not to answer.

The slide's ``handle_edge_case`` falls back to a canned answer only when the
code raises ``ValueError``. A classifier never raises on a strange input: it
answers, often confidently. This module measures and uses the model's own
uncertainty instead.

- :func:`expected_calibration_error` and :func:`reliability_bins`
  (Naeini et al. 2015; Guo et al. 2017, eq. 3): do confidences match accuracy?
- :func:`fit_temperature`: temperature scaling (Guo et al. 2017, sec. 4.2),
  one scalar T fitted by NLL on held-out data; argmax, hence accuracy, unchanged.
- :func:`risk_coverage_curve` and :func:`selective_risk`: selective prediction
  (El-Yaniv and Wiener 2010; Geifman and El-Yaniv 2017): answer only the
  inputs whose confidence clears a threshold.
- :func:`auroc`: area under the ROC curve as the Mann-Whitney statistic, used
  for max-softmax out-of-distribution detection (Hendrycks and Gimpel 2017).
- :func:`make_digits_task`, :func:`train_task_classifier`, :func:`run_demo`: the
  lesson's miniature on scikit-learn's bundled digits (no download): classes
  0-7 in distribution, 8-9 held out, and corrupted copies of the test images.
"""
from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax

from labkit.basics import softmax
from labkit.ui import float_slider, interactive_figure
from labkit.classifiers import load_digits, make_mlp, train_classifier
from labkit.lm.cache import CourseModel, cache_path, cached, config_key, register_course_model
from labkit.lm.train import get_config
from labkit.validation import (
    ensure_array, ensure_choice, ensure_distributions, ensure_float, ensure_instance, ensure_int, ensure_probabilities,
)

FALLBACK = "I'm not confident enough to answer this; a human will take a look."


def _probs_labels(probs, labels) -> tuple[np.ndarray, np.ndarray]:
    p = ensure_distributions("probs", probs)
    y = ensure_array("labels", labels, ndim=1, dtype=float)
    if y.shape[0] != p.shape[0]:
        raise ValueError(f"labels must have one entry per row of probs ({p.shape[0]}), got {y.shape[0]}")
    if (y != np.round(y)).any() or (y < 0).any() or (y >= p.shape[1]).any():
        raise ValueError(f"labels must be integers in [0, {p.shape[1] - 1}]")
    return p, y.astype(int)


def _confidence_outcome(probs, labels) -> tuple[np.ndarray, np.ndarray]:
    """Confidence and 0/1 outcome per sample: top-class confidence and correctness for
    class probabilities (n, k); the probability itself and whether the event happened for (n,)."""
    p = ensure_array("probs", probs, ndim=(1, 2), min_len=1)
    if p.ndim == 2:
        p, y = _probs_labels(p, labels)
        return p.max(axis=1), (p.argmax(axis=1) == y).astype(float)
    return _conf_correct(p, labels, "probs", "labels")


def _bin_edges(n_bins: int) -> np.ndarray:
    # m / M correctly rounded; linspace's m * (1 / M) can miss it by an ulp (0.7000000000000001).
    return np.arange(n_bins + 1) / n_bins


def _bin_index(confidence: np.ndarray, n_bins: int) -> np.ndarray:
    # Bin m holds confidences in ((m-1)/M, m/M] (Guo et al. 2017, sec. 2); 0 joins the first bin.
    # Compared with the edges, not ceil(c * M): 0.7 * 10 rounds to 7.000000000000001.
    return np.clip(np.searchsorted(_bin_edges(n_bins), confidence, side="left") - 1, 0, n_bins - 1)


def reliability_bins(probs, labels, n_bins: int = 15) -> dict[str, np.ndarray]:
    """Per-bin statistics of a reliability diagram (Guo et al. 2017, fig. 1).

    Bin m (1-based) holds the samples whose confidence lies in ((m-1)/M, m/M],
    M = ``n_bins``; a confidence of exactly 0 joins the first bin.

    Parameters
    ----------
    probs : array-like, shape (n, k) or (n,)
        Predicted class probabilities, rows summing to 1 (the confidence is the
        top-class probability); or, 1-D, predicted probabilities of a binary
        event (the confidence is the probability itself).
    labels : array-like of int, shape (n,)
        True classes in ``[0, k-1]``; for 1-D ``probs``, 1 if the event happened, else 0.
    n_bins : int in [1, 1000]
        Equal-width confidence bins on [0, 1].

    Returns
    -------
    dict with arrays of length ``n_bins``
        ``count`` (samples per bin), ``accuracy`` (mean outcome: fraction
        correct, or frequency of the event) and ``confidence`` (bin means; 0
        for empty bins), ``edges`` (length ``n_bins + 1``).
    """
    conf, outcome = _confidence_outcome(probs, labels)
    n_bins = ensure_int("n_bins", n_bins, low=1, high=1000)
    b = _bin_index(conf, n_bins)
    count = np.bincount(b, minlength=n_bins).astype(float)
    safe = np.maximum(count, 1.0)
    return {
        "count": count,
        "accuracy": np.bincount(b, weights=outcome, minlength=n_bins) / safe,
        "confidence": np.bincount(b, weights=conf, minlength=n_bins) / safe,
        "edges": _bin_edges(n_bins),
    }


def expected_calibration_error(probs, labels, n_bins: int = 15) -> float:
    """Expected calibration error, ECE = sum_m |B_m|/n * |acc(B_m) - conf(B_m)|.

    Guo et al. (2017), eq. (3), with M = ``n_bins`` equal-width bins on the
    confidence, B_m the samples whose confidence falls in ((m-1)/M, m/M]. 0
    means that, in every bin, the average confidence equals the accuracy.
    The one ECE of the course: lesson 03 bins top-class confidences, lesson 05
    the probabilities of a preference (1-D ``probs``).

    Parameters
    ----------
    probs : array-like, shape (n, k) or (n,)
        Class probabilities, or probabilities of a binary event (see :func:`reliability_bins`).
    labels : array-like of int, shape (n,)
    n_bins : int in [1, 1000]

    Returns
    -------
    float in [0, 1]
    """
    bins = reliability_bins(probs, labels, n_bins)
    n = bins["count"].sum()
    return float(np.sum(bins["count"] / n * np.abs(bins["accuracy"] - bins["confidence"])))


def _logits_labels(logits, labels) -> tuple[np.ndarray, np.ndarray]:
    z = ensure_array("logits", logits, ndim=2, min_len=1)
    if z.shape[1] < 2:
        raise ValueError(f"logits must have at least 2 classes (columns), got {z.shape[1]}")
    y = ensure_array("labels", labels, ndim=1)
    if y.shape[0] != z.shape[0] or (y != np.round(y)).any() or (y < 0).any() or (y >= z.shape[1]).any():
        raise ValueError(f"labels must hold {z.shape[0]} integers in [0, {z.shape[1] - 1}]")
    return z, y.astype(int)


def negative_log_likelihood(logits, labels, temperature: float = 1.0) -> float:
    """Mean NLL of ``labels`` under ``softmax(logits / temperature)``."""
    z, y = _logits_labels(logits, labels)
    t = ensure_float("temperature", temperature, low=0.0, low_open=True)
    return float(-log_softmax(z / t, axis=1)[np.arange(len(y)), y].mean())


TEMPERATURE_BOUNDS = (0.05, 20.0)


def fit_temperature(logits, labels) -> float:
    """Temperature scaling: the T > 0 minimising validation NLL (Guo et al. 2017, sec. 4.2).

    ``softmax(z / T)`` keeps the argmax, so accuracy is unchanged; T > 1
    softens an over-confident model, T < 1 sharpens an under-confident one.
    The NLL is convex in 1/T, so a bounded 1-D search over log T finds the optimum.

    Parameters
    ----------
    logits : array-like, shape (n, k)
        Held-out (validation) logits, never the training set's.
    labels : array-like of int, shape (n,)

    Returns
    -------
    float
        The fitted temperature, inside ``TEMPERATURE_BOUNDS``.
    """
    z, y = _logits_labels(logits, labels)
    lo, hi = np.log(TEMPERATURE_BOUNDS)
    res = minimize_scalar(
        lambda log_t: -log_softmax(z / np.exp(log_t), axis=1)[np.arange(len(y)), y].mean(),
        bounds=(lo, hi), method="bounded", options={"xatol": 1e-6},
    )
    return float(np.exp(res.x))


def _conf_correct(confidence, correct, conf_name: str = "confidence", correct_name: str = "correct"):
    c = ensure_probabilities(conf_name, confidence, ndim=1)
    ok = ensure_array(correct_name, correct, ndim=1)
    if ok.shape != c.shape:
        raise ValueError(f"{correct_name} must have the same length as {conf_name} ({c.shape[0]}), got {ok.shape[0]}")
    if not np.isin(ok, (0.0, 1.0)).all():
        raise ValueError(f"{correct_name} must hold booleans (or 0/1)")
    return c, ok


def selective_risk(confidence, correct, threshold: float) -> tuple[float, float]:
    """Coverage and selective risk when answering only if ``confidence >= threshold``.

    Coverage is the fraction answered; risk is the error rate among answered
    inputs (Geifman and El-Yaniv 2017, sec. 2). Answering nothing makes no
    mistakes, so risk is 0 at coverage 0.

    Parameters
    ----------
    confidence : array-like, shape (n,)
    correct : array-like of bool, shape (n,)
    threshold : float in [0, 1]

    Returns
    -------
    (coverage, risk) : tuple of float in [0, 1]
    """
    c, ok = _conf_correct(confidence, correct)
    thr = ensure_float("threshold", threshold, 0.0, 1.0)
    answered = c >= thr
    coverage = float(answered.mean())
    risk = float((1.0 - ok[answered]).mean()) if answered.any() else 0.0
    return coverage, risk


def risk_coverage_curve(confidence, correct) -> tuple[np.ndarray, np.ndarray]:
    """Risk at every coverage k/n, answering the k most confident inputs.

    Ties are broken by a stable sort, so the curve is deterministic. The area
    under it (mean risk, AURC) summarises the ranking: lower is better.

    Returns
    -------
    coverage, risk : np.ndarray, shape (n,)
    """
    c, ok = _conf_correct(confidence, correct)
    order = np.argsort(-c, kind="stable")
    errors = np.cumsum(1.0 - ok[order])
    k = np.arange(1, len(c) + 1)
    return k / len(c), errors / k


def auroc(positive_scores, negative_scores) -> float:
    """Area under the ROC curve: P(score of a positive > score of a negative).

    The Mann-Whitney U statistic divided by n_pos * n_neg, ties counted 1/2.
    Hendrycks and Gimpel (2017) treat in-distribution inputs as positives and
    the maximum softmax probability as the score: 0.5 is chance, 1 is perfect.

    Parameters
    ----------
    positive_scores, negative_scores : array-like, shape (n_pos,), (n_neg,)

    Returns
    -------
    float in [0, 1]
    """
    pos = ensure_array("positive_scores", positive_scores, ndim=1, min_len=1)
    neg = ensure_array("negative_scores", negative_scores, ndim=1, min_len=1)
    # Rank-based: O((n+m) log(n+m)) instead of comparing every pair.
    both = np.concatenate([pos, neg])
    order = np.argsort(both, kind="stable")
    sorted_scores = both[order]
    ranks = np.empty(len(both))
    # Average ranks over ties (1-based).
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    u = ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2.0
    return float(u / (len(pos) * len(neg)))


def answer_or_abstain(probs, threshold: float) -> list[int | str]:
    """The corrected ``handle_edge_case``: the predicted class, or the fallback when unsure.

    Parameters
    ----------
    probs : array-like, shape (n, k)
    threshold : float in [0, 1]
        Minimum top-class probability needed to answer.

    Returns
    -------
    list
        For each row, the predicted class (int) or :data:`FALLBACK`.
    """
    p = ensure_distributions("probs", probs)
    thr = ensure_float("threshold", threshold, 0.0, 1.0)
    return [int(row.argmax()) if row.max() >= thr else FALLBACK for row in p]


# ---------------------------------------------------------------------------
# The lesson's miniature: noisy digits, held-out classes, corrupted inputs.

IN_CLASSES = tuple(range(8))   # the model is trained on digits 0-7
OOD_CLASSES = (8, 9)           # never seen in training


@dataclass(frozen=True)
class DigitsTask:
    """Splits of the digits task (features in [0, 1], 64 pixels)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    x_ood: np.ndarray          # digits 8 and 9
    x_corrupt: np.ndarray      # test images with heavy extra noise and a blanked half
    y_corrupt: np.ndarray


def make_digits_task(seed: int = 0, noise: float = 0.35, val_fraction: float = 0.2, test_fraction: float = 0.5) -> DigitsTask:
    """Build the lesson's task from scikit-learn's bundled 8x8 digits.

    The stratified split of :func:`labkit.classifiers.load_digits` with a
    small training share (the model should have something to be unsure
    about); every image gets Gaussian sensor noise of std ``noise``; digits 8
    and 9 are taken out of every split and become the out-of-distribution
    inputs; corrupted copies of the test images
    have three times the noise and their left half blanked.

    Parameters
    ----------
    seed : int >= 0
        Seeds the split and the noise.
    noise : float in [0, 1]
    val_fraction, test_fraction : float
        Shares of each digit in the validation and test splits (the rest trains).

    Returns
    -------
    DigitsTask
    """
    seed = ensure_int("seed", seed, low=0)
    noise = ensure_float("noise", noise, 0.0, 1.0)
    digits = load_digits(val_fraction=val_fraction, test_fraction=test_fraction, seed=seed)
    rng = np.random.default_rng(seed)

    def noisy(x: np.ndarray) -> np.ndarray:
        return np.clip(x + rng.normal(0.0, noise, x.shape), 0.0, 1.0)

    splits, ood = {}, []
    for name in ("train", "val", "test"):
        x, y = getattr(digits, f"x_{name}").numpy().astype(np.float64), getattr(digits, f"y_{name}").numpy()
        inside = np.isin(y, IN_CLASSES)
        splits[name] = (noisy(x[inside]), y[inside])
        ood.append(noisy(x[~inside]))
    x_ood = np.concatenate(ood)  # every 8 and 9: none is ever trained on
    x_test, y_test = splits["test"]
    x_corrupt = np.clip(x_test + rng.normal(0.0, 3 * noise, x_test.shape), 0.0, 1.0).reshape(-1, 8, 8)
    x_corrupt[:, :, :4] = 0.0
    return DigitsTask(*splits["train"], *splits["val"], x_test, y_test, x_ood, x_corrupt.reshape(-1, 64), y_test.copy())


def train_task_classifier(task: DigitsTask, epochs: int = 100, hidden: int = 128, lr: float = 1e-2, seed: int = 0,
                          device: torch.device | str = "cpu") -> torch.nn.Module:
    """A one-hidden-layer MLP trained full-batch with Adam to near-zero training loss.

    Training far past the point of fitting the data is what makes networks
    over-confident (Guo et al. 2017, sec. 3: NLL overfitting). One epoch is
    one full-batch step of :func:`labkit.classifiers.train_classifier`.

    Returns
    -------
    torch.nn.Module
        The trained network on ``device``, in eval mode.
    """
    if not isinstance(task, DigitsTask):
        raise TypeError(f"task must be a DigitsTask, got {type(task).__name__}")
    net = make_mlp(task.x_train.shape[1], hidden=hidden, n_classes=len(IN_CLASSES), seed=seed, device=device)
    x = torch.tensor(task.x_train, dtype=torch.float32, device=next(net.parameters()).device)
    y = torch.tensor(task.y_train, dtype=torch.long, device=x.device)
    train_classifier(net, x, y, epochs=epochs, batch_size=len(x), lr=lr, seed=seed)
    return net


def logits_of(net: torch.nn.Module, x) -> np.ndarray:
    """Logits of ``net`` on ``x`` as a float64 numpy array (any device)."""
    ensure_instance("net", net, torch.nn.Module)
    xa = ensure_array("x", x, ndim=2)
    device = next(net.parameters()).device
    with torch.no_grad():
        out = net(torch.tensor(xa, dtype=torch.float32, device=device))
    return out.cpu().numpy().astype(np.float64)


@functools.lru_cache(maxsize=2)
def run_demo(seed: int = 0) -> dict:
    """Train the lesson's classifier and compute every quantity the lesson plots.

    Returns
    -------
    dict
        ``task``, ``net`` (the trained network), ``temperature``, and logits/probabilities for test, OOD and
        corrupted inputs, before (``probs_*``) and after (``cal_*``) temperature scaling.
    """
    task = make_digits_task(seed)
    net = train_task_classifier(task, seed=seed)
    logits = {name: logits_of(net, x) for name, x in
              (("val", task.x_val), ("test", task.x_test), ("ood", task.x_ood), ("corrupt", task.x_corrupt))}
    temperature = fit_temperature(logits["val"], task.y_val)
    out = {"task": task, "net": net, "temperature": temperature, "logits": logits}
    for name, z in logits.items():
        out[f"probs_{name}"] = softmax(z)
        out[f"cal_{name}"] = softmax(z, temperature)
    return out


def plot_reliability(probs, labels, n_bins: int = 15, ax=None, label: str = "model"):
    """Reliability diagram: accuracy per confidence bin against the diagonal, and under it
    the confidence histogram (share of inputs per bin), so an empty or nearly empty bin
    is seen for what it is (Guo et al. 2017, fig. 1).

    Parameters
    ----------
    probs, labels, n_bins
        As in :func:`reliability_bins`.
    ax : matplotlib Axes or None
        Where to draw the diagram; the histogram is appended below it. None makes a new figure.
    label : str
        Title prefix.

    Returns
    -------
    (ax, hist_ax) : the diagram's axes and the histogram's
    """
    from mpl_toolkits.axes_grid1 import make_axes_locatable

    bins = reliability_bins(probs, labels, n_bins)
    ece = expected_calibration_error(probs, labels, n_bins)
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 5))
    centres = (bins["edges"][:-1] + bins["edges"][1:]) / 2
    full = bins["count"] > 0
    ax.bar(centres[full], bins["accuracy"][full], width=1.0 / n_bins, edgecolor="k", alpha=0.7, label="accuracy")
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
    ax.set(xlim=(0, 1), ylim=(0, 1), ylabel="accuracy", title=f"{label}: ECE {ece:.3f}")
    ax.tick_params(labelbottom=False)
    ax.legend(loc="upper left", fontsize=8)
    hist_ax = make_axes_locatable(ax).append_axes("bottom", size="35%", pad=0.1, sharex=ax)
    hist_ax.bar(centres, bins["count"] / bins["count"].sum(), width=1.0 / n_bins, edgecolor="k", color="tab:gray")
    hist_ax.set(xlim=(0, 1), xlabel="confidence", ylabel="share")
    return ax, hist_ax


def best_threshold(confidence, correct) -> float:
    """The abstention threshold with the fewest mistakes: wrong answers given plus right answers withheld.

    Answer when ``confidence >= threshold``. The candidates are 0, every
    observed confidence (a threshold between two of them does the same) and
    the next float above the largest (answer nothing); ties go to the lowest
    threshold (answer more). Choose it on validation data.

    Parameters
    ----------
    confidence : array-like, shape (n,)
    correct : array-like of bool, shape (n,)
        Whether the answer would be right (a hallucinated answer to an
        unanswerable question is wrong).

    Returns
    -------
    float
        In [0, 1], or just above the largest confidence when answering nothing is best.
    """
    c, ok = _conf_correct(confidence, correct)
    candidates = np.unique(np.concatenate([[0.0], c, [np.nextafter(c.max(), np.inf)]]))
    answered = c[None, :] >= candidates[:, None]
    mistakes = (answered & (ok == 0)).sum(1) + (~answered & (ok == 1)).sum(1)
    return float(candidates[int(np.argmin(mistakes))])


# ---------------------------------------------------------------------------
# The course's assistant: is its answer confidence calibrated?

ASSISTANT_ANSWERS_VERSION = "2"  # bump when how answers are generated or scored changes
ANSWER_KINDS = ("benign", "unanswerable")
# Kadavath et al.'s (2022) self-evaluation, in the world's chat format: the
# model is shown the question and its own reply and asked whether it is true;
# P(True) = p("True.") / (p("True.") + p("False.")) as its next reply.
P_TRUE_QUESTION = "Question: {question} Proposed answer: {answer} Is the proposed answer true or false?"


@dataclass(frozen=True)
class AssistantAnswers:
    """The assistant's greedy replies to one split's benign and unanswerable prompts.

    ``token_logits[i]`` holds the logits (len_i, vocab) that produced each
    token of reply i (its end tag included when it stopped), ``tokens[i]``
    those tokens. ``correct`` is the harness's exact-answer check (False for
    unanswerable prompts, which have no answer); ``idk`` says whether the reply
    admits not knowing; ``p_true`` is the model's self-evaluation P(True) of its
    own reply (Kadavath et al. 2022), see :data:`P_TRUE_QUESTION`.
    """

    split: str
    prompts: list[str]
    kinds: np.ndarray
    replies: list[str]
    correct: np.ndarray
    idk: np.ndarray
    token_logits: list[np.ndarray]
    tokens: list[np.ndarray]
    p_true: np.ndarray


def sequence_confidence(token_logits, tokens, temperature: float = 1.0) -> np.ndarray:
    """Probability of each reply under the model with its logits divided by ``temperature``.

    ``prod_t softmax(z_t / T)[y_t]``: the sequence probability of the greedy
    answer, the simplest confidence a language model has in what it said.
    T > 1 lowers it (softer next-token distributions), T < 1 raises it; the
    reply itself is unchanged.

    Parameters
    ----------
    token_logits : sequence of array-like, each (len_i, vocab)
    tokens : sequence of array-like of int, each (len_i,)
    temperature : float > 0

    Returns
    -------
    np.ndarray, shape (n,), in [0, 1]
    """
    t = ensure_float("temperature", temperature, low=0.0, low_open=True)
    z, y, starts = _stack_replies(token_logits, tokens)
    return np.exp(np.add.reduceat(log_softmax(z / t, axis=1)[np.arange(len(y)), y], starts))


def _stack_replies(token_logits, tokens) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All replies' token logits and tokens one under the other, and where each reply starts."""
    if len(token_logits) != len(tokens) or not len(tokens):
        raise ValueError(f"token_logits and tokens must be non-empty and of the same length, got {len(token_logits)} "
                         f"and {len(tokens)}")
    zs, ys = [], []
    for i, (z, y) in enumerate(zip(token_logits, tokens)):
        z = ensure_array("token_logits", z, ndim=2, min_len=1)
        y = ensure_array("tokens", y, ndim=1, dtype=float)
        if y.shape[0] != z.shape[0] or (y != np.round(y)).any() or (y < 0).any() or (y >= z.shape[1]).any():
            raise ValueError(f"tokens[{i}] must hold {z.shape[0]} integer ids in [0, {z.shape[1] - 1}]")
        if zs and z.shape[1] != zs[0].shape[1]:
            raise ValueError(f"token_logits[{i}] has {z.shape[1]} columns, token_logits[0] {zs[0].shape[1]}: one vocabulary")
        zs.append(z)
        ys.append(y.astype(int))
    starts = np.cumsum([0] + [len(y) for y in ys[:-1]])
    return np.concatenate(zs), np.concatenate(ys), starts


def fit_sequence_temperature(token_logits, tokens, correct) -> float:
    """Temperature scaling for answers: the T minimising the binary NLL of ``correct`` under
    :func:`sequence_confidence` (the sequence analogue of :func:`fit_temperature`).

    Fit on validation answers, report on test ones. Returns a T inside :data:`TEMPERATURE_BOUNDS`.
    """
    _, ok = _conf_correct(np.full(len(tokens), 0.5), correct)
    z, y, starts = _stack_replies(token_logits, tokens)
    rows = np.arange(len(y))
    lo, hi = np.log(TEMPERATURE_BOUNDS)
    eps = 1e-12

    def nll(log_t: float) -> float:
        log_c = np.add.reduceat(log_softmax(z / np.exp(log_t), axis=1)[rows, y], starts)
        c = np.clip(np.exp(log_c), eps, 1 - eps)
        return float(-np.mean(ok * np.log(c) + (1 - ok) * np.log1p(-c)))

    return float(np.exp(minimize_scalar(nll, bounds=(lo, hi), method="bounded", options={"xatol": 1e-4}).x))


def _generate_answers(split: str) -> AssistantAnswers:
    from labkit.lm.cache import get_assistant
    from labkit.lm.harness import is_correct, is_idk
    from labkit.lm.world import prompt_text, reply_text

    assistant = get_assistant("default")
    model, tok = assistant.sft, assistant.tokenizer
    examples = [e for e in assistant.world.prompts(split) if e.kind in ANSWER_KINDS]
    ids = [tok.encode(prompt_text(e.prompt)) for e in examples]
    max_new = 24  # the harness's reply length
    tokens, logits = [], []
    with torch.no_grad():
        for start in range(0, len(ids), 64):  # the harness's batches, so the replies are the harness's
            new = model.generate(ids[start:start + 64], max_new, stop_id=tok.end_id, pad_id=tok.pad_id)
            for prompt, reply_ids in zip(ids[start:start + 64], new):
                reply_ids = reply_ids + ([tok.end_id] if len(reply_ids) < max_new else [])
                seq = torch.tensor([prompt + reply_ids[:-1]], dtype=torch.long)
                logits.append(model.run(seq).logits[0, len(prompt) - 1:].double().numpy())
                tokens.append(np.array(reply_ids))
    replies = [tok.decode([int(t) for t in y], skip_special=True).strip() for y in tokens]
    asks = [tok.encode(prompt_text(P_TRUE_QUESTION.format(question=e.prompt, answer=r))) for e, r in zip(examples, replies)]
    with torch.no_grad():
        log_true, log_false = (model.sequence_logprob(asks, [tok.encode(reply_text(v))] * len(asks), pad_id=tok.pad_id)
                               .double().numpy() for v in ("True.", "False."))
    p_true = 1.0 / (1.0 + np.exp(log_false - log_true))
    correct = np.array([e.kind == "benign" and is_correct(r, e.answer) for r, e in zip(replies, examples)])
    return AssistantAnswers(split, [e.prompt for e in examples], np.array([e.kind for e in examples]), replies, correct,
                            np.array([is_idk(r) for r in replies]), logits, tokens, p_true)


def _answers_payload(a: AssistantAnswers) -> dict:
    lengths = [len(y) for y in a.tokens]
    z = torch.zeros(len(lengths), max(lengths), a.token_logits[0].shape[1], dtype=torch.float64)
    y = torch.zeros(len(lengths), max(lengths), dtype=torch.long)
    for i, (zi, yi) in enumerate(zip(a.token_logits, a.tokens)):
        z[i, : len(yi)], y[i, : len(yi)] = torch.from_numpy(zi), torch.from_numpy(yi)
    return {"text": json.dumps({"split": a.split, "prompts": a.prompts, "kinds": a.kinds.tolist(), "replies": a.replies}),
            "lengths": torch.tensor(lengths), "logits": z, "tokens": y, "correct": torch.from_numpy(a.correct),
            "idk": torch.from_numpy(a.idk), "p_true": torch.from_numpy(a.p_true)}


def _answers_from_payload(p: dict) -> AssistantAnswers:
    text = json.loads(p["text"])
    lengths = p["lengths"].tolist()
    return AssistantAnswers(text["split"], text["prompts"], np.array(text["kinds"]), text["replies"],
                            p["correct"].numpy(), p["idk"].numpy(),
                            [p["logits"][i, :n].numpy() for i, n in enumerate(lengths)],
                            [p["tokens"][i, :n].numpy() for i, n in enumerate(lengths)], p["p_true"].numpy())


def assistant_answers(split: str = "test", rebuild: bool = False) -> AssistantAnswers:
    """The default assistant's greedy replies to ``split``'s benign and unanswerable prompts, with
    the logits behind every reply token and its P(True) (cached, so a lesson reads them in a second).

    Parameters
    ----------
    split : {"validation", "test"}
        Fit temperatures and thresholds on "validation", report on "test".
    rebuild : bool
        Regenerate even when cached.

    Returns
    -------
    AssistantAnswers
    """
    split = ensure_choice("split", split, ("validation", "test"))
    return cached(f"calibration-answers-{split}", _answers_key(split), lambda: _generate_answers(split), _answers_payload,
                  _answers_from_payload, rebuild=rebuild)


def _answers_key(split: str) -> str:
    blob = f"{config_key(get_config('default'))}-{split}-{ASSISTANT_ANSWERS_VERSION}"
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


for _split in ("validation", "test"):  # prebuilt with the course models, so lesson 03 reads them from the cache
    register_course_model(CourseModel(f"calibration-answers-{_split}",
                                      lambda rebuild, split=_split: assistant_answers(split, rebuild),
                                      lambda split=_split: cache_path(f"calibration-answers-{split}", _answers_key(split))))


THRESHOLD_RANGE = (0.0, 1.0, 0.01)  # min, max, step of the abstention slider


def plot_abstention(threshold: float) -> plt.Figure:
    """The widget: answer only when the calibrated confidence clears ``threshold``.

    Left: confidence histograms of correct, wrong, held-out-class and corrupted
    inputs with the threshold. Right: the risk-coverage curve of the test set
    with the operating point, and how many OOD/corrupted inputs still get an answer.
    """
    thr = ensure_float("threshold", threshold, 0.0, 1.0)
    demo = run_demo()
    task = demo["task"]
    p_test = demo["cal_test"]
    conf = p_test.max(axis=1)
    correct = p_test.argmax(axis=1) == task.y_test
    conf_ood = demo["cal_ood"].max(axis=1)
    conf_cor = demo["cal_corrupt"].max(axis=1)
    coverage, risk = selective_risk(conf, correct, thr)
    cov_curve, risk_curve = risk_coverage_curve(conf, correct)

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    edges = np.linspace(0, 1, 26)
    for values, name in ((conf[correct], "test, correct"), (conf[~correct], "test, wrong"),
                         (conf_ood, "digits 8-9 (OOD)"), (conf_cor, "corrupted")):
        ax1.hist(values, bins=edges, histtype="step", lw=1.5, density=True, label=name)
    ax1.axvline(thr, color="k", ls="--", lw=1)
    ax1.set(xlabel="calibrated confidence (max softmax)", ylabel="density", title=f"threshold {thr:.2f}")
    ax1.legend(fontsize=8, loc="upper left")

    ax2.plot(cov_curve, risk_curve, color="tab:blue", label="test risk-coverage")
    ax2.plot([coverage], [risk], "o", color="tab:red", label="operating point")
    ax2.set(xlim=(0, 1.02), ylim=(0, max(0.05, float(risk_curve.max()) * 1.1)), xlabel="coverage (fraction answered)",
            ylabel="risk (error rate when answering)")
    answered_ood = float((conf_ood >= thr).mean())
    answered_cor = float((conf_cor >= thr).mean())
    ax2.set_title(f"coverage {coverage:.2f}, risk {risk:.3f}\nanswered: OOD {answered_ood:.2f}, corrupted {answered_cor:.2f}",
                  fontsize=10)
    ax2.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig


def abstention_widget():
    """Lesson 03's widget: the abstention threshold (:data:`THRESHOLD_RANGE`) redrawing :func:`plot_abstention`.

    Returns
    -------
    ipywidgets.VBox
        From :func:`labkit.ui.interactive_figure`, showing threshold 0.9.
    """
    return interactive_figure(plot_abstention, threshold=float_slider("threshold", *THRESHOLD_RANGE, 0.9))


__all__ = [
    "FALLBACK", "reliability_bins", "expected_calibration_error", "negative_log_likelihood", "fit_temperature",
    "selective_risk", "risk_coverage_curve", "auroc", "answer_or_abstain", "DigitsTask", "make_digits_task",
    "train_task_classifier", "logits_of", "run_demo", "AssistantAnswers", "sequence_confidence",
    "fit_sequence_temperature", "assistant_answers", "best_threshold", "P_TRUE_QUESTION", "plot_reliability", "plot_abstention", "THRESHOLD_RANGE", "abstention_widget",
]
