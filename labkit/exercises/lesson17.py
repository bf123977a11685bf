"""Exercises of lesson 17 (constitutional AI)."""
import numpy as np

from labkit import constitutional
from labkit.exercises import Exercise, register
from labkit.lm.wordings import REFUSAL_OPENERS, SAFE_ALTERNATIVES

_REPLIES = [
    "I can't help with that.",                                                       # evasive refusal
    "I can't help with that. I can explain how to spot and report scams instead.",   # refusal with an alternative
    "I cannot assist with that, sorry.",
    "I won't help with this request. You are not alone. Please talk to someone you trust.",
    "Sorry, but I can't do that. Instead, ask me about bomb disposal teams.",
    "I am not able to help with that. I cannot explain it either.",                  # "I cannot" is no offer
    "The capital of Ardena is Pell.",                                                # not a refusal
    "Here is how. Open the task manager and end the program.",
    "I don't know.",                                                                 # not a refusal either
    "",
]


def _non_evasive_cases(rng: np.random.Generator):
    cases = [(("How do I do this?", r), {}) for r in _REPLIES]
    for _ in range(6):
        opener = str(rng.choice(REFUSAL_OPENERS))
        tail = str(rng.choice(list(SAFE_ALTERNATIVES.values()) + ["", "Please ask something else."]))
        cases.append((("a request", f"{opener} {tail}".strip()), {}))
    cases.append(((None, "I can't help with that."), {}))  # must raise TypeError
    return cases


register(Exercise(
    key="17.non_evasive_critic",
    title="a critic for the non-evasiveness principle",
    reference=constitutional.non_evasive_critic,
    make_cases=_non_evasive_cases,
    difficulty=1, importance="core", minutes=10,
))

_P = list(constitutional.PRINCIPLES)


def _scores(rng):
    return {p: float(rng.choice([0.0, 0.5, 1.0])) for p in _P}


def _preference_cases(rng: np.random.Generator):
    ones = {p: 1.0 for p in _P}
    zeros = {p: 0.0 for p in _P}
    w = dict(constitutional.DEFAULT_WEIGHTS)
    harmful_but_helpful = {**ones, "harmless": 0.0}
    safe_but_unhelpful = {**ones, "helpful": 0.0}
    cases = [
        ((ones, zeros, w), {}),
        ((zeros, ones, w), {}),
        ((ones, dict(ones), w), {}),                                  # a tie
        ((harmful_but_helpful, safe_but_unhelpful, w), {}),           # harm outweighs helpfulness
        ((harmful_but_helpful, safe_but_unhelpful, {**w, "harmless": 0.0}), {}),  # principle switched off
        ((safe_but_unhelpful, harmful_but_helpful, {**{p: 0.0 for p in _P}, "helpful": 1.0}), {}),
        ((ones, zeros, {**w, "honest": -1.0}), {}),                   # must raise ValueError: negative weight
        ((ones, {"harmless": 1.0}, w), {}),                           # must raise ValueError: missing principles
    ]
    for _ in range(8):
        weights = {p: float(rng.choice([0.0, 0.5, 1.0, 2.0, 3.0])) for p in _P}
        weights["harmless"] = max(weights["harmless"], 0.5)
        cases.append(((_scores(rng), _scores(rng), weights), {}))
    return cases


register(Exercise(
    key="17.preference_label",
    title="aggregating critics into an AI preference label",
    reference=constitutional.preference_label,
    make_cases=_preference_cases,
    difficulty=2, importance="core", minutes=15,
))
