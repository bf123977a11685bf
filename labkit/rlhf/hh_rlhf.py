"""Real text: a linear Bradley-Terry reward on Anthropic's HH-RLHF harmless-base pairs (Bai et al. 2022).

``P(chosen > rejected) = sigmoid(w . (x_chosen - x_rejected))`` (Bradley and
Terry 1952), with ``x`` the word 1- and 2-gram TF-IDF features of the last
assistant turn, fitted by logistic regression on a seeded train split, its
regularisation chosen on validation and its accuracy measured on test.
:func:`hh_rlhf_study` is the cached study on the registered dataset.
"""
from __future__ import annotations

import json
from typing import Sequence

import numpy as np

from labkit.intervals import wilson_interval
from labkit.lm.cache import cached
from labkit.validation import ensure_int

from labkit.rlhf.pipeline import _key


# ---------------------------------------------------------------- real text: HH-RLHF with n-gram features
HH_SPLIT = (0.6, 0.2, 0.2)  # train, validation, test shares of the 2,312 harmless-base test pairs
HH_C_GRID = (0.01, 0.1, 1.0, 10.0)


def last_assistant_turn(dialogue: str) -> str:
    """The text after the last ``Assistant:`` tag of an HH-RLHF dialogue (where chosen and rejected differ)."""
    if not isinstance(dialogue, str):
        raise TypeError(f"dialogue must be a str, got {type(dialogue).__name__}")
    head, tag, tail = dialogue.rpartition("\n\nAssistant:")
    return tail.strip() if tag else dialogue.strip()


def text_bradley_terry(chosen: Sequence[str], rejected: Sequence[str], seed: int = 0, c_grid=HH_C_GRID) -> dict:
    """A linear Bradley-Terry reward over word 1- and 2-gram TF-IDF features, on a seeded split of the pairs.

    ``P(chosen > rejected) = sigmoid(w . (x_chosen - x_rejected))``: logistic
    regression without intercept on the feature differences, each pair
    entered in both orders. The pairs are shuffled with ``seed`` and split
    :data:`HH_SPLIT` into train, validation and test; the vocabulary is
    learned on the training replies only; the regularisation ``C`` is the
    one of ``c_grid`` with the best validation accuracy. Returns the test
    accuracy with its Wilson interval, the validation accuracies, and the
    heaviest n-grams each way.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    if len(chosen) != len(rejected) or len(chosen) < 10:
        raise ValueError("chosen and rejected must be equally long, with at least 10 pairs")
    order = np.random.default_rng(ensure_int("seed", seed, low=0)).permutation(len(chosen))
    n_train, n_val = int(HH_SPLIT[0] * len(order)), int(HH_SPLIT[1] * len(order))
    parts = {"train": order[:n_train], "validation": order[n_train:n_train + n_val], "test": order[n_train + n_val:]}
    c_texts, r_texts = [last_assistant_turn(t) for t in chosen], [last_assistant_turn(t) for t in rejected]
    vec = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    vec.fit([c_texts[i] for i in parts["train"]] + [r_texts[i] for i in parts["train"]])

    def diffs(split):
        idx = parts[split]
        return vec.transform([c_texts[i] for i in idx]) - vec.transform([r_texts[i] for i in idx])

    d_train = diffs("train")
    x = _vstack(d_train, -d_train)
    y = np.r_[np.ones(d_train.shape[0]), np.zeros(d_train.shape[0])]
    val_acc, models = {}, {}
    for c in c_grid:
        models[c] = LogisticRegression(C=c, fit_intercept=False, max_iter=2000).fit(x, y)
        val_acc[c] = float((models[c].decision_function(diffs("validation")) > 0).mean())
    best = max(c_grid, key=lambda c: (val_acc[c], -c))  # ties: the stronger regularisation
    wins = models[best].decision_function(diffs("test")) > 0
    low, high = wilson_interval(int(wins.sum()), len(wins))
    weights, names = models[best].coef_[0], vec.get_feature_names_out()
    top = np.argsort(weights)
    return {"n": {k: len(v) for k, v in parts.items()}, "validation_accuracy": val_acc, "C": best,
            "test_accuracy": float(wins.mean()), "ci_low": low, "ci_high": high,
            "chosen_ngrams": [str(names[i]) for i in top[::-1][:10]],
            "rejected_ngrams": [str(names[i]) for i in top[:10]]}


def _vstack(a, b):
    from scipy.sparse import vstack

    return vstack([a, b]).tocsr()


def hh_rlhf_study(seed: int = 0, rebuild: bool = False) -> dict:
    """:func:`text_bradley_terry` on HH-RLHF harmless-base (``labkit.datasets``' ``hh_rlhf_harmless``), cached.

    Call it only when ``datasets.require("hh_rlhf_harmless")`` is true.
    """
    from labkit import datasets

    seed = ensure_int("seed", seed, low=0)
    key = _key(f"hh-{seed}-{HH_SPLIT}-{HH_C_GRID}-{datasets.REGISTRY['hh_rlhf_harmless'].sha256}")

    def build() -> dict:
        pairs = datasets.load("hh_rlhf_harmless")
        return text_bradley_terry(pairs.chosen.tolist(), pairs.rejected.tolist(), seed)

    return cached("rlhf-hh-ngram", key, build, lambda r: {"json": json.dumps(r)},
                  lambda payload: json.loads(payload["json"]), rebuild=rebuild)
