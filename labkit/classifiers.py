"""Small classifiers on scikit-learn's 8x8 digits, shared by the lessons that train them.

A substrate of lessons 03 (calibration), 09 (adversarial robustness) and 11
(continual learning), and of the later lessons that train small models:

- :func:`load_digits`: the 1,797 bundled images (no download) scaled to
  [0, 1], flattened to 64 features, split train/validation/test stratified by
  class with a seeded generator; float32 and long tensors on ``device``.
- :func:`make_mlp`: a ReLU multilayer perceptron initialised from a seed,
  without touching the global random state.
- :func:`train_classifier`: Adam on shuffled minibatches for a number of
  epochs, with a pluggable loss (cross-entropy by default; adversarial, IBP,
  penalised or replayed losses in the lessons); returns the mean loss of each
  epoch.
- :func:`accuracy`: the fraction of inputs classified correctly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from labkit.validation import ensure_class_indices, ensure_float, ensure_int, ensure_tensor

N_FEATURES = 64   # 8 x 8 pixels
N_CLASSES = 10    # digits 0-9


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------

def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """Pixels (1797, 64) with values 0..16 and labels, from scikit-learn's bundled file.

    Reads ``sklearn/datasets/data/digits.csv.gz`` directly when it is there:
    importing ``sklearn.datasets`` costs several seconds, the file a few ms.
    """
    import gzip
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("sklearn")
    if spec is not None and spec.submodule_search_locations:
        path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            with gzip.open(path, "rt") as handle:
                table = np.loadtxt(handle, delimiter=",")
            return table[:, :-1], table[:, -1].astype(np.int64)
    from sklearn.datasets import load_digits as sk_load_digits  # the documented route, slower to import

    digits = sk_load_digits()
    return digits.data, digits.target.astype(np.int64)


@dataclass(frozen=True)
class DigitsSplits:
    """Train, validation and test splits: ``x_*`` float32 (n, 64) in [0, 1], ``y_*`` long (n,)."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def _check_classes(classes) -> np.ndarray:
    if classes is None:
        return np.arange(N_CLASSES)
    if isinstance(classes, (str, bytes)) or not isinstance(classes, Sequence | range | np.ndarray):
        raise TypeError(f"classes must be a sequence of digits in [0, 9], got {type(classes).__name__}")
    chosen = [ensure_int("classes[i]", c, 0, N_CLASSES - 1) for c in classes]
    if not chosen or len(set(chosen)) != len(chosen):
        raise ValueError(f"classes must be non-empty distinct digits in [0, 9], got {list(classes)}")
    return np.array(chosen)


def load_digits(
    val_fraction: float = 0.0,
    test_fraction: float = 0.25,
    seed: int = 0,
    classes: Sequence[int] | None = None,
    device: torch.device | str = "cpu",
) -> DigitsSplits:
    """scikit-learn's bundled 8x8 digits, scaled to [0, 1] and split stratified by class.

    Within each class a seeded permutation sends the first
    ``round(test_fraction * n_c)`` images to the test split, the next
    ``round(val_fraction * n_c)`` to validation and the rest to training; a
    second permutation interleaves the classes inside every split.

    Parameters
    ----------
    val_fraction : float in [0, 1)
        Share of each class held out for validation (0: an empty validation split).
    test_fraction : float in (0, 1)
        Share of each class held out for testing.
    seed : int >= 0
        Seed of the split.
    classes : sequence of int in [0, 9], optional
        Keep only these digits (default all ten); labels keep their digit value.
    device : torch device of the returned tensors

    Returns
    -------
    DigitsSplits
        ``x_*`` float32 of shape (n, 64) in [0, 1], ``y_*`` long of shape (n,).
    """
    val_fraction = ensure_float("val_fraction", val_fraction, 0.0, 1.0, high_open=True)
    test_fraction = ensure_float("test_fraction", test_fraction, 0.0, 1.0, low_open=True, high_open=True)
    if val_fraction + test_fraction >= 1.0:
        raise ValueError(f"val_fraction + test_fraction must be below 1 to leave training data, got {val_fraction + test_fraction:g}")
    rng = np.random.default_rng(ensure_int("seed", seed, low=0))
    keep = _check_classes(classes)
    device = torch.device(device)
    pixels, labels = _digits_arrays()
    pixels = pixels.astype(np.float32) / 16.0  # intensities 0..16 -> [0, 1]
    split = np.zeros(len(labels), dtype=np.int64)   # 0 train, 1 validation, 2 test, -1 not kept
    split[~np.isin(labels, keep)] = -1
    for cls in np.unique(labels[split >= 0]):  # stratified: the same shares of every digit in every split
        members = rng.permutation(np.flatnonzero(labels == cls))
        n_test = int(round(test_fraction * len(members)))
        n_val = int(round(val_fraction * len(members)))
        split[members[:n_test]] = 2
        split[members[n_test:n_test + n_val]] = 1
    order = rng.permutation(len(labels))  # shuffle so classes are interleaved
    parts = []
    for part in (0, 1, 2):
        idx = order[split[order] == part]
        parts += [torch.tensor(pixels[idx], dtype=torch.float32, device=device),
                  torch.tensor(labels[idx], dtype=torch.long, device=device)]
    return DigitsSplits(*parts)


# ---------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------

def make_mlp(
    n_inputs: int = N_FEATURES,
    hidden: int | Sequence[int] = (64,),
    n_classes: int = N_CLASSES,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> nn.Sequential:
    """Flatten, then ``Linear -> ReLU`` for each hidden width, then a Linear to the logits.

    Initialised with PyTorch's default (uniform, bound 1/sqrt(fan_in)) from
    ``seed``; the global random state is left as it was.

    Parameters
    ----------
    n_inputs : int >= 1
        Features per input (inputs of any shape are flattened).
    hidden : int or sequence of int >= 1
        Widths of the hidden layers, input side first.
    n_classes : int >= 2
    seed : int >= 0
    device : torch device of the parameters

    Returns
    -------
    torch.nn.Sequential
    """
    n_inputs = ensure_int("n_inputs", n_inputs, low=1, high=1_000_000)
    widths = [hidden] if isinstance(hidden, (int, np.integer)) and not isinstance(hidden, bool) else hidden
    if isinstance(widths, (str, bytes)) or not isinstance(widths, Sequence):
        raise TypeError(f"hidden must be an int or a sequence of ints, got {type(hidden).__name__}")
    widths = [ensure_int("hidden", w, low=1, high=4096) for w in widths]
    n_classes = ensure_int("n_classes", n_classes, low=2, high=100_000)
    seed = ensure_int("seed", seed, low=0)
    sizes = [n_inputs, *widths]
    layers: list[nn.Module] = [nn.Flatten()]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(fan_in, fan_out), nn.ReLU()]
        layers.append(nn.Linear(sizes[-1], n_classes))
    return nn.Sequential(*layers).to(device)


# ---------------------------------------------------------------------------
# Training and evaluation
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Batch:
    """What a loss function sees at one optimiser step.

    ``x``, ``y``: the minibatch; ``step``: optimiser steps taken so far (0 at
    the first); ``total_steps``: steps in the whole run; ``generator``: the
    run's seeded generator (for random draws inside the loss, such as a PGD
    start), shared with the batch order.
    """

    x: torch.Tensor
    y: torch.Tensor
    step: int
    total_steps: int
    generator: torch.Generator


LossFn = Callable[[nn.Module, Batch], torch.Tensor]


def cross_entropy_loss(model: nn.Module, batch: Batch) -> torch.Tensor:
    """The default loss: mean cross-entropy of the model's logits on the batch."""
    return F.cross_entropy(model(batch.x), batch.y)


def _check_data(x: object, y: object) -> None:
    ensure_tensor("x", x, floating=True)
    if x.ndim < 2 or x.shape[0] == 0:
        raise ValueError(f"x must be a non-empty batch (n, features...), got shape {tuple(x.shape)}")
    ensure_tensor("y", y, ndim=1)
    if y.dtype != torch.long:
        raise TypeError(f"y must hold class indices as torch.long, got dtype {y.dtype}")
    if y.shape[0] != x.shape[0]:
        raise ValueError(f"x and y must have the same number of rows, got {x.shape[0]} and {y.shape[0]}")


def train_classifier(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    epochs: int = 30,
    batch_size: int = 128,
    lr: float = 1e-2,
    loss_fn: LossFn = cross_entropy_loss,
    seed: int = 0,
    on_epoch_end: Callable[[int], None] | None = None,
) -> list[float]:
    """Train ``model`` in place with Adam on shuffled minibatches; return each epoch's mean loss.

    Every epoch draws a fresh permutation of the rows from a generator seeded
    with ``seed`` and walks it in batches of ``batch_size`` (the last one may
    be smaller); each batch is one ``zero_grad``, one ``backward`` and one
    optimiser step. ``batch_size >= len(x)`` gives full-batch training, one
    step per epoch.

    Parameters
    ----------
    model : torch.nn.Module
        Maps a batch of ``x`` to logits; left in eval mode on return.
    x : float tensor (n, features...)
    y : long tensor (n,)
    epochs : int >= 1
    batch_size : int >= 1
    lr : float > 0
        Adam's learning rate.
    loss_fn : callable ``loss_fn(model, batch) -> scalar tensor``
        Receives a :class:`Batch`; default :func:`cross_entropy_loss`.
    seed : int >= 0
        Seeds the batch order and ``batch.generator``.
    on_epoch_end : callable ``f(epoch)``, optional
        Called after each epoch with its number (1-based), e.g. to record accuracy.

    Returns
    -------
    list of float
        The mean training loss of each epoch (``epochs`` entries), the batch
        losses weighted by batch size.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    _check_data(x, y)
    epochs = ensure_int("epochs", epochs, low=1, high=100_000)
    batch_size = ensure_int("batch_size", batch_size, low=1)
    lr = ensure_float("lr", lr, low=0.0, low_open=True)
    seed = ensure_int("seed", seed, low=0)
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
    if on_epoch_end is not None and not callable(on_epoch_end):
        raise TypeError(f"on_epoch_end must be callable or None, got {type(on_epoch_end).__name__}")
    with torch.no_grad():
        ensure_class_indices("y", y, model(x[:1]).shape[-1])
    generator = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    n = x.shape[0]
    total_steps = epochs * math.ceil(n / batch_size)
    history, step = [], 0
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(n, generator=generator).to(x.device)
        epoch_loss = 0.0
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            loss = loss_fn(model, Batch(x[idx], y[idx], step, total_steps, generator))
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            epoch_loss += float(loss.detach()) * len(idx)
            step += 1
        history.append(epoch_loss / n)
        if on_epoch_end is not None:
            on_epoch_end(epoch + 1)
    model.eval()
    return history


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of the rows of ``x`` that ``model`` classifies as ``y``."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    _check_data(x, y)
    logits = model(x)
    ensure_class_indices("y", y, logits.shape[-1])
    return float(logits.argmax(dim=1).eq(y).float().mean())


__all__ = [
    "N_FEATURES", "N_CLASSES", "DigitsSplits", "load_digits", "make_mlp", "Batch", "LossFn",
    "cross_entropy_loss", "train_classifier", "accuracy",
]
