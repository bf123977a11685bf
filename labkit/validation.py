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


def ensure_same_shape(name_a: str, a: Any, name_b: str, b: Any) -> None:
    """Raise if two arrays or tensors differ in shape."""
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(f"{name_a} and {name_b} must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")


__all__ = [
    "ensure_float", "ensure_int", "ensure_probability", "ensure_choice", "ensure_weights",
    "ensure_tensor", "ensure_array", "ensure_same_shape",
]
