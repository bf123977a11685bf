"""Auto-checked exercises.

A lesson shows an exercise card, the student fills in a function in a stub
cell, and the next cell calls :func:`check`. The check runs the student's
function and the labkit reference on the same inputs (edge cases first, then
seeded random cases) and prints exactly one of

- ``passed``,
- ``failed``, with the first failing input and expected vs got,
- ``not attempted yet`` (the stub still raises ``NotImplementedError``).

A check never raises, so an unsolved notebook runs top to bottom; the lesson
then continues with the labkit reference, not the student's code.

Exercises are registered per lesson in ``labkit/exercises/lessonNN.py`` and
addressed by key, ``"NN.name"``.
"""
from __future__ import annotations

import copy
import importlib
import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

Case = tuple[tuple, dict]


@dataclass(frozen=True)
class Exercise:
    """One checked exercise.

    Parameters
    ----------
    key : str
        ``"NN.name"``: lesson number and the function the student writes.
    title : str
        One line shown on the card.
    reference : callable
        The labkit implementation the student's function must agree with.
    make_cases : callable
        ``make_cases(rng) -> list[(args, kwargs)]``: edge cases first, then
        random ones drawn from the numpy ``Generator``.
    difficulty : int
        1 (warm-up) to 3 (challenging).
    importance : str
        ``"core"`` (later lessons rely on it) or ``"practice"``.
    minutes : int
        Expected time for a student.
    rtol, atol : float
        Tolerances for numeric comparison.
    compare : callable or None
        Custom ``compare(expected, got) -> str | None`` returning a reason
        when they differ; ``None`` uses :func:`compare_values`.
    """

    key: str
    title: str
    reference: Callable[..., Any]
    make_cases: Callable[[np.random.Generator], list[Case]]
    difficulty: int
    importance: str
    minutes: int
    rtol: float = 1e-5
    atol: float = 1e-6
    compare: Callable[[Any, Any], str | None] | None = field(default=None, compare=False)
    # A design task has many right answers: ``accept(args, kwargs, got)`` returns
    # None when ``got`` meets the task's specification, else the reason; the
    # reference is then one right answer, shown when a check fails.
    accept: Callable[[tuple, dict, Any], str | None] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.difficulty not in (1, 2, 3):
            raise ValueError(f"difficulty must be 1, 2 or 3, got {self.difficulty!r}")
        if self.importance not in ("core", "practice"):
            raise ValueError(f"importance must be 'core' or 'practice', got {self.importance!r}")
        if not 1 <= self.minutes <= 120:
            raise ValueError(f"minutes must be in [1, 120], got {self.minutes!r}")


@dataclass(frozen=True)
class CheckResult:
    """What :func:`run_check` found: ``status`` is passed, failed or not attempted."""

    key: str
    status: str
    message: str

    @property
    def passed(self) -> bool:
        return self.status == "passed"


_REGISTRY: dict[str, Exercise] = {}


def register(exercise: Exercise) -> Exercise:
    """Add an exercise to the registry (lesson modules call this at import)."""
    if exercise.key in _REGISTRY and _REGISTRY[exercise.key] is not exercise:
        raise ValueError(f"exercise {exercise.key!r} is registered twice")
    _REGISTRY[exercise.key] = exercise
    return exercise


def get(key: str) -> Exercise:
    """Return the registered exercise ``key`` (``"NN.name"``), loading its lesson module."""
    if not isinstance(key, str) or "." not in key:
        raise ValueError(f"key must look like 'NN.name', got {key!r}")
    if key not in _REGISTRY:
        lesson = key.split(".", 1)[0]
        try:
            importlib.import_module(f"labkit.exercises.lesson{lesson}")
        except ModuleNotFoundError:
            pass
    if key not in _REGISTRY:
        raise ValueError(f"no exercise named {key!r}; known: {', '.join(sorted(_REGISTRY)) or 'none loaded'}")
    return _REGISTRY[key]


def all_exercises() -> dict[str, Exercise]:
    """Load every lesson module and return the whole registry."""
    import pkgutil

    import labkit.exercises as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name.startswith("lesson"):
            importlib.import_module(f"labkit.exercises.{info.name}")
    return dict(sorted(_REGISTRY.items()))


def card(key: str):
    """Markdown card for an exercise: title, difficulty, importance, minutes."""
    from IPython.display import Markdown

    ex = get(key)
    stars = "★" * ex.difficulty + "☆" * (3 - ex.difficulty)
    return Markdown(
        f"**Exercise `{ex.key}`: {ex.title}**  \n"
        f"difficulty {stars} · importance: {ex.importance} · about {ex.minutes} min"
    )


def _to_numpy(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return value


def compare_values(expected: Any, got: Any, rtol: float = 1e-5, atol: float = 1e-6) -> str | None:
    """Return ``None`` when ``got`` matches ``expected``, else a short reason.

    Handles numbers, numpy arrays, torch tensors, strings, and (nested) lists,
    tuples and dicts of those.
    """
    if isinstance(expected, dict):
        if not isinstance(got, dict):
            return f"expected a dict, got {type(got).__name__}"
        if set(expected) != set(got):
            return f"expected keys {sorted(map(str, expected))}, got {sorted(map(str, got))}"
        for k in expected:
            reason = compare_values(expected[k], got[k], rtol, atol)
            if reason:
                return f"[{k!r}]: {reason}"
        return None
    if isinstance(expected, (list, tuple)) and not isinstance(got, (np.ndarray, torch.Tensor)):
        if not isinstance(got, (list, tuple)):
            return f"expected a {type(expected).__name__}, got {type(got).__name__}"
        if len(expected) != len(got):
            return f"expected {len(expected)} items, got {len(got)}"
        for i, (e, g) in enumerate(zip(expected, got)):
            reason = compare_values(e, g, rtol, atol)
            if reason:
                return f"item {i}: {reason}"
        return None
    if isinstance(expected, str) or isinstance(got, str):
        return None if expected == got else f"expected {expected!r}, got {got!r}"
    if expected is None or got is None or isinstance(expected, bool):
        return None if expected == got else f"expected {expected!r}, got {got!r}"
    e, g = _to_numpy(expected), _to_numpy(got)
    try:
        e_arr = np.asarray(e, dtype=float)
        g_arr = np.asarray(g, dtype=float)
    except (TypeError, ValueError):
        return None if e == g else f"expected {e!r}, got {g!r}"
    if e_arr.shape != g_arr.shape:
        return f"expected shape {e_arr.shape}, got shape {g_arr.shape}"
    if not np.allclose(g_arr, e_arr, rtol=rtol, atol=atol, equal_nan=True):
        diff = np.abs(g_arr - e_arr)
        diff = np.where(np.isnan(diff), np.inf, diff)
        where = np.unravel_index(int(np.argmax(diff)), diff.shape) if diff.ndim else ()
        return f"values differ (largest gap {float(diff.max()):.4g} at index {where})"
    return None


def _short(value: Any, limit: int = 160) -> str:
    if isinstance(value, torch.Tensor):
        text = f"tensor(shape={tuple(value.shape)}, values={np.array2string(value.detach().cpu().numpy(), precision=4, threshold=8)})"
    elif isinstance(value, np.ndarray):
        text = f"array(shape={value.shape}, values={np.array2string(value, precision=4, threshold=8)})"
    elif isinstance(value, float):
        text = f"{value:.6g}"
    else:
        text = repr(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _describe_case(args: tuple, kwargs: dict) -> str:
    parts = [_short(a, 100) for a in args] + [f"{k}={_short(v, 100)}" for k, v in kwargs.items()]
    return ", ".join(parts)


def _accepts(ex: Exercise, args: tuple, kwargs: dict, got: Any) -> str | None:
    try:
        return ex.accept(copy.deepcopy(args), copy.deepcopy(kwargs), got)
    except Exception as exc:  # a malformed answer is a failed check, not a crash
        return f"the answer does not have the required form ({type(exc).__name__}: {exc})"


def run_check(key: str, student_fn: Callable[..., Any], seed: int = 0) -> CheckResult:
    """Run the student's function against the reference; never raises."""
    try:
        ex = get(key)
    except ValueError as exc:
        return CheckResult(str(key), "failed", f"[failed] {exc}")
    if not callable(student_fn):
        return CheckResult(key, "failed", f"[failed] {key}: expected a function, got {type(student_fn).__name__}")
    cases = ex.make_cases(np.random.default_rng(seed))
    compare = ex.compare or (lambda e, g: compare_values(e, g, ex.rtol, ex.atol))
    for i, (args, kwargs) in enumerate(cases, start=1):
        # An edge case may expect an error: the student must raise the same type.
        expected_error: type[BaseException] | None = None
        try:
            expected = ex.reference(*copy.deepcopy(args), **copy.deepcopy(kwargs))
        except (ValueError, TypeError) as exc:
            expected_error, expected = type(exc), f"{type(exc).__name__} ({exc})"
        head = f"[failed] {key}, case {i} of {len(cases)}"
        body = f"\n  input:    {_describe_case(args, kwargs)}\n  expected: {_short(expected) if expected_error is None else expected}"
        try:
            got = student_fn(*copy.deepcopy(args), **copy.deepcopy(kwargs))
        except NotImplementedError:
            return CheckResult(key, "not attempted", f"[not attempted yet] {key}: fill in the function above, then run this cell again.")
        except Exception as exc:  # a check reports, it never raises
            if expected_error is not None and isinstance(exc, expected_error):
                continue
            return CheckResult(key, "failed", f"{head}{body}\n  got:      {type(exc).__name__}: {exc}")
        if expected_error is not None:
            return CheckResult(key, "failed", f"{head}: this input must raise {expected_error.__name__}{body}\n  got:      {_short(got)}")
        reason = _accepts(ex, args, kwargs, got) if ex.accept else compare(expected, got)
        if reason:
            return CheckResult(key, "failed", f"{head}: {reason}{body}\n  got:      {_short(got)}")
    return CheckResult(key, "passed", f"[passed] {key}: all {len(cases)} cases agree with the reference.")


def check(key: str, student_fn: Callable[..., Any], seed: int = 0) -> None:
    """Print whether ``student_fn`` solves exercise ``key``; never raises."""
    print(run_check(key, student_fn, seed).message)


__all__ = ["Exercise", "CheckResult", "register", "get", "all_exercises", "card", "check", "run_check", "compare_values"]
