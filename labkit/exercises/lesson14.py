"""Exercises of lesson 14 (content moderation)."""
import functools

import numpy as np

from labkit import moderation
from labkit.exercises import Exercise, register


def _luhn_cases(rng: np.random.Generator):
    cases = [
        (("4111 1111 1111 1111",), {}),   # the classic Visa test number: valid
        (("4111 1111 1111 1112",), {}),   # last digit changed: invalid
        (("79927398713",), {}),           # Luhn's textbook example: valid
        (("79927398710",), {}),
        (("0",), {}),                     # a single zero passes the checksum
        (("",), {}),                      # no digits: not a number
        (("4111-1111-1111-1111",), {}),   # dashes are ignored
        (("4111a111111111111",), {}),     # a letter: invalid
        (("378282246310005",), {}),       # American Express test number
        (("6011111111111117",), {}),
    ]
    for _ in range(6):
        digits = "".join(str(d) for d in rng.integers(0, 10, size=int(rng.integers(12, 20))))
        cases.append(((digits,), {}))
        # a valid number: append the check digit that makes the sum 0 mod 10
        body = digits[:-1]
        for check in "0123456789":
            if moderation.luhn_valid(body + check):
                cases.append(((body + check,), {}))
                break
    return cases


register(Exercise(
    key="14.luhn_valid",
    title="the Luhn check digit test for card numbers",
    reference=moderation.luhn_valid,
    make_cases=_luhn_cases,
    difficulty=1, importance="core", minutes=10,
))


def _threshold_cases(rng: np.random.Generator):
    cases = [
        ((np.array([0.1, 0.2, 0.3, 0.4]), 0.25), {}),   # one of four may be flagged
        ((np.array([0.1, 0.2, 0.3, 0.4]), 0.0), {}),    # none may be flagged
        ((np.array([0.1, 0.2, 0.3, 0.4]), 1.0), {}),    # all may be flagged: threshold 0
        ((np.array([0.5, 0.5, 0.5]), 0.5), {}),         # ties: flag none of them
        ((np.array([0.9]), 0.05), {}),
        ((np.array([0.2, 0.7]), 1.5), {}),              # must raise ValueError
    ]
    for _ in range(5):
        n = int(rng.integers(5, 200))
        cases.append(((rng.beta(1, 5, size=n), float(rng.uniform(0, 0.3))), {}))
    return cases


register(Exercise(
    key="14.threshold_for_fpr",
    title="a decision threshold for a target false-positive rate",
    reference=moderation.threshold_for_fpr,
    make_cases=_threshold_cases,
    difficulty=2, importance="core", minutes=15,
    rtol=0.0, atol=0.0,  # the exact next float above the k-th benign score
))


@functools.lru_cache(maxsize=1)
def _moderator():
    return moderation.train_moderator()  # the lesson's moderator: same data, same seed


def _evade_cases(rng: np.random.Generator):
    cases = [(("i will kill you tonight",), {}), (("You are a worthless idiot!",), {}), (("I will h u r t you",), {})]
    texts, labels, _ = moderation.generate_messages(60, seed=int(rng.integers(1000, 2000)))
    cases += [((t.rstrip(".!?"),), {}) for t, harmful in zip(texts, labels) if harmful][:8]
    return cases


def _evasion_compare(expected, got):
    original = expected[: len(expected) - len(moderation.dilute(""))]  # the reference appends a fixed text
    return moderation.evasion_problem(original, got, _moderator().classifier)


register(Exercise(
    key="14.evade",
    title="evade the moderator without changing the message (an adaptive attacker)",
    reference=moderation.dilute,
    make_cases=_evade_cases,
    difficulty=2, importance="practice", minutes=15,
    compare=_evasion_compare,
))
