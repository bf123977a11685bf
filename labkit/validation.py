"""Argument checks shared by every public labkit function.

Each helper returns the (possibly converted) value or raises a ``TypeError``
or ``ValueError`` whose message names the argument and the allowed range, so
a student sees ``eps must be a float in [0, 1], got -0.1`` instead of a stack
trace from deep inside torch.
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Iterable, Sequence

import numpy as np
import torch


def _range_text(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    if low is None and high is None:
        return "any value"
    left = "(" if low_open or low is None else "["
    right = ")" if high_open or high is None else "]"
    lo = "-inf" if low is None else f"{low:g}"
    hi = "inf" if high is None else f"{high:g}"
    return f"{left}{lo}, {hi}{right}"


def ensure_float(
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Return ``value`` as a finite float inside the given interval."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, np.floating, np.integer)):
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            value = value.item()
        else:
            raise TypeError(f"{name} must be a real number in {_range_text(low, high, low_open, high_open)}, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if low is not None and (value < low or (low_open and value == low)):
        raise ValueError(f"{name} must be in {_range_text(low, high, low_open, high_open)}, got {value:g}")
    if high is not None and (value > high or (high_open and value == high)):
        raise ValueError(f"{name} must be in {_range_text(low, high, low_open, high_open)}, got {value:g}")
    return value


def ensure_int(name: str, value: Any, low: int | None = None, high: int | None = None) -> int:
    """Return ``value`` as an int inside ``[low, high]`` (bools are rejected)."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)):
        raise TypeError(f"{name} must be an integer in {_range_text(low, high, False, False)}, got {type(value).__name__}")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{name} must be an integer in {_range_text(low, high, False, False)}, got {value}")
    return value


def ensure_probability(name: str, value: Any) -> float:
    """Return ``value`` as a float in [0, 1]."""
    return ensure_float(name, value, 0.0, 1.0)


def ensure_weights(name: str, value: Any, n: int, per: str) -> np.ndarray:
    """Return ``value`` as a float array of ``n`` non-negative weights (one ``per`` item) with a positive sum."""
    w = ensure_array(name, value, ndim=1)
    if w.shape[0] != n:
        raise ValueError(f"{name} must have one entry per {per} ({n}), got {w.shape[0]}")
    if (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"{name} must be non-negative with a positive sum")
    return w


def ensure_probabilities(name: str, value: Any, ndim: int | Sequence[int] | None = 1, min_len: int = 1) -> np.ndarray:
    """Return ``value`` as a float array of probabilities: finite, every entry in [0, 1]."""
    p = ensure_array(name, value, ndim=ndim, min_len=min_len)
    if ((p < 0) | (p > 1)).any():
        raise ValueError(f"{name} must hold probabilities in [0, 1], got values in [{p.min():g}, {p.max():g}]")
    return p


def ensure_distributions(name: str, value: Any, atol: float = 1e-6) -> np.ndarray:
    """Return ``value`` as a 2-D float array whose rows are probability distributions over at least 2 classes."""
    p = ensure_array(name, value, ndim=2, min_len=1)
    if p.shape[1] < 2:
        raise ValueError(f"{name} must have at least 2 classes (columns), got {p.shape[1]}")
    if (p < 0).any() or not np.allclose(p.sum(axis=1), 1.0, atol=atol):
        raise ValueError(f"{name} must be non-negative with rows summing to 1")
    return p


def ensure_choice(name: str, value: Any, choices: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``choices``."""
    choices = list(choices)
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(repr(c) for c in choices)}; got {value!r}")
    return value


def ensure_tensor(
    name: str,
    value: Any,
    ndim: int | Sequence[int] | None = None,
    floating: bool = False,
    finite: bool = True,
) -> torch.Tensor:
    """Check that ``value`` is a torch tensor with the expected rank and values."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if value.ndim not in allowed:
            raise ValueError(f"{name} must have {' or '.join(map(str, allowed))} dimensions, got shape {tuple(value.shape)}")
    if floating and not value.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {value.dtype}")
    if finite and value.is_floating_point() and value.numel() and not torch.isfinite(value).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return value


def ensure_array(
    name: str,
    value: Any,
    ndim: int | Sequence[int] | None = None,
    dtype: Any = float,
    finite: bool = True,
    min_len: int = 0,
) -> np.ndarray:
    """Convert ``value`` to a numpy array and check its rank and values."""
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{name} must be array-like, got {type(value).__name__}")
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if dtype is not None and np.issubdtype(np.dtype(dtype), np.integer):
        # Casting 2.7 or NaN to int silently truncates: check the values as floats first.
        as_float = ensure_array(name, value, ndim=ndim, dtype=float, finite=True, min_len=min_len)
        if (as_float != np.round(as_float)).any():
            raise ValueError(f"{name} must hold integers, got a non-integer value")
        return as_float.astype(dtype)
    try:
        array = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be array-like of numbers: {exc}") from None
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if array.ndim not in allowed:
            raise ValueError(f"{name} must have {' or '.join(map(str, allowed))} dimensions, got shape {array.shape}")
    if array.ndim >= 1 and array.shape[0] < min_len:
        raise ValueError(f"{name} must have at least {min_len} entries, got {array.shape[0]}")
    if finite and np.issubdtype(array.dtype, np.number) and array.size and not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return array


def ensure_instance(name: str, value: Any, cls: type | tuple[type, ...]) -> Any:
    """Return ``value`` if it is an instance of ``cls``; raise a TypeError naming both otherwise."""
    if not isinstance(value, cls):
        names = " or ".join(c.__name__ for c in (cls if isinstance(cls, tuple) else (cls,)))
        raise TypeError(f"{name} must be a {names}, got {type(value).__name__}")
    return value


def ensure_transitions(name: str, value: Any, atol: float = 1e-8) -> np.ndarray:
    """Return ``value`` as a transition tensor P[s, a, s'] of shape (S, A, S) whose rows are distributions."""
    P = ensure_array(name, value, ndim=3)
    S, A, S2 = P.shape
    if S != S2 or S == 0 or A == 0:
        raise ValueError(f"{name} must have shape (S, A, S) with S, A >= 1, got {P.shape}")
    if (P < -1e-12).any() or not np.allclose(P.sum(axis=2), 1.0, atol=atol):
        raise ValueError(f"{name} must hold probabilities: non-negative, each {name}[s, a, :] summing to 1")
    return P


def ensure_class_indices(name: str, value: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Check that a tensor of class indices lies in ``[0, n_classes - 1]`` (``n_classes``: the model's outputs)."""
    if value.numel() and (int(value.min()) < 0 or int(value.max()) >= n_classes):
        raise ValueError(f"{name} must hold class indices in [0, {n_classes - 1}] (the model has {n_classes} outputs), "
                         f"got values in [{int(value.min())}, {int(value.max())}]")
    return value


def ensure_same_shape(name_a: str, a: Any, name_b: str, b: Any) -> None:
    """Raise if two arrays or tensors differ in shape."""
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(f"{name_a} and {name_b} must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")


__all__ = [
    "ensure_float", "ensure_int", "ensure_probability", "ensure_probabilities", "ensure_distributions",
    "ensure_choice", "ensure_weights",
    "ensure_tensor", "ensure_array", "ensure_instance", "ensure_transitions", "ensure_class_indices",
    "ensure_same_shape",
]
