"""Exercises of lesson 15 (an ethical chatbot)."""
import numpy as np

from labkit import chatbot
from labkit.exercises import Exercise, register

_WORDS = ["hello", "bye", "politics", "Othello", "maybe", "geopolitics", "goodbye", "hell", "shell", "say", "the", "Bye!",
          "HELLO,", "personal", "information", "personal-information", "byebye", "hello-world"]


def _contains_word_cases(rng: np.random.Generator):
    cases = [
        (("Have you read Othello?", "hello"), {}),            # the slide's bug: substring inside a word
        (("maybe later", "bye"), {}),
        (("Bye for now!", "bye"), {}),                         # case and punctuation
        (("I study geopolitics", "politics"), {}),
        (("my personal   information", "personal information"), {}),  # any whitespace between words
        (("my personal-information", "personal information"), {}),
        (("hello", "hello"), {}),
        (("say hello-world", "hello"), {}),                    # a hyphen ends a word
        (("anything", "   "), {}),                             # must raise ValueError
    ]
    for _ in range(8):
        text = " ".join(rng.choice(_WORDS, size=int(rng.integers(1, 7))))
        cases.append(((text, str(rng.choice(["hello", "bye", "politics", "personal information", "say"]))), {}))
    return cases


register(Exercise(
    key="15.contains_word",
    title="keyword matching on whole words, not substrings",
    reference=chatbot.contains_word,
    make_cases=_contains_word_cases,
    difficulty=1, importance="core", minutes=10,
))


def _rate_limit_cases(rng: np.random.Generator):
    cases = [
        (([], 3, 10.0), {}),
        (([0.0, 1.0, 2.0, 3.0], 3, 10.0), {}),
        (([0.0, 10.0, 20.0], 1, 10.0), {}),                   # the window is half-open: (t - window, t]
        (([0.0, 0.0, 0.0, 5.0, 10.0, 10.0], 2, 10.0), {}),
        (([0.0, 1.0, 2.0, 9.5, 10.5, 11.0], 2, 10.0), {}),     # refused requests do not count
        (([0.0, 1.0], 0, 10.0), {}),                           # must raise ValueError
        (([2.0, 1.0], 2, 10.0), {}),                           # must raise ValueError (time goes backwards)
    ]
    for _ in range(8):
        times = np.cumsum(rng.exponential(2.0, size=int(rng.integers(5, 30)))).round(1).tolist()
        cases.append(((times, int(rng.integers(1, 5)), float(rng.choice([3.0, 5.0, 10.0]))), {}))
    return cases


register(Exercise(
    key="15.rate_limit",
    title="a sliding-window rate limiter",
    reference=chatbot.rate_limit,
    make_cases=_rate_limit_cases,
    difficulty=2, importance="practice", minutes=15,
))
