"""Differential privacy and federated learning (lesson 20).

- :func:`per_example_gradients`: one gradient per example at the cost of one
  batched pass, with ``torch.func`` (``vmap`` of ``grad``).
- :func:`clip_and_noise`: the DP-SGD aggregate of Abadi et al. (2016), Alg. 1:
  each example's gradient flat-clipped to norm C over all parameters, summed,
  Gaussian noise N(0, (sigma C)^2) added, divided by the expected batch size.
- :func:`train_dp_sgd`: DP-SGD with Poisson sampling (every example joins a
  step's batch independently with probability q), which is what the
  accountant's subsampled Gaussian mechanism assumes.
- A Renyi-DP accountant: :func:`subsampled_gaussian_rdp` (Mironov 2017;
  Mironov, Talwar and Zhang 2019, the sampled Gaussian mechanism),
  :func:`rdp_to_epsilon` (Balle et al. 2020, Thm. 21), :func:`rdp_epsilon`
  and its inverse :func:`noise_multiplier_for`.
- Federated averaging (McMahan et al. 2017): :func:`fedavg` (the size-weighted
  mean of client models), :func:`client_update`, :func:`federated_training`,
  with optional client-level DP (McMahan et al. 2018): each sampled client's
  update clipped to norm S, Gaussian noise on their sum, and the same
  accountant with clients as the sampled units; plus :func:`split_non_iid`.
"""
from __future__ import annotations

import copy
import functools
import math
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import brentq
from scipy.special import logsumexp
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from labkit.ui import float_slider, interactive_figure
from labkit.validation import ensure_choice, ensure_float, ensure_int, ensure_tensor

# Renyi orders searched by the accountant: 1.1 to 10.9 in steps of 0.1, then
# 12 to 63 (the grid of TF Privacy and Opacus, so epsilons are comparable).
DEFAULT_ORDERS: tuple[float, ...] = tuple([1 + k / 10 for k in range(1, 100)] + list(range(12, 64)))
CLIP_EPS = 1e-6  # the clipping factor is min(1, C / (norm + CLIP_EPS))

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


# ---------------------------------------------------------------------------
# Per-example gradients, clipping and noise
# ---------------------------------------------------------------------------

def _check_model(model: object) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return model


def per_example_gradients(model: nn.Module, loss_fn: LossFn, inputs: torch.Tensor,
                          targets: torch.Tensor) -> dict[str, torch.Tensor]:
    """The gradient of each example's loss with respect to every trainable parameter.

    ``vmap`` maps ``grad`` of a one-example loss over the batch, so the result
    equals ``B`` separate backward passes but costs about one batched pass.

    Parameters
    ----------
    model : torch.nn.Module
        Called as ``model(x)`` on a batch of one (``inputs[i:i+1]``).
    loss_fn : callable ``loss_fn(outputs, targets) -> scalar tensor``
        Applied to the model's output on one example and that example's
        targets (a batch of one), e.g. ``torch.nn.functional.cross_entropy``.
    inputs : tensor (B, ...)
    targets : tensor (B, ...)

    Returns
    -------
    dict name -> tensor of shape ``[B, *param.shape]``
        One entry per parameter with ``requires_grad``, on the parameter's device.
    """
    _check_model(model)
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
    ensure_tensor("inputs", inputs)
    ensure_tensor("targets", targets)
    if inputs.ndim < 1 or targets.ndim < 1 or inputs.shape[0] != targets.shape[0]:
        raise ValueError(f"inputs and targets must share their first (batch) dimension, got shapes "
                         f"{tuple(inputs.shape)} and {tuple(targets.shape)}")
    params = {name: p.detach() for name, p in model.named_parameters() if p.requires_grad}
    if not params:
        raise ValueError("model has no trainable parameters")
    if inputs.shape[0] == 0:
        return {name: p.new_zeros((0, *p.shape)) for name, p in params.items()}
    buffers = {name: b.detach() for name, b in model.named_buffers()}

    def one_example_loss(p, x, y):
        out = torch.func.functional_call(model, (p, buffers), (x.unsqueeze(0),))
        return loss_fn(out, y.unsqueeze(0))

    grads = torch.func.vmap(torch.func.grad(one_example_loss), in_dims=(None, 0, 0), randomness="different")
    # The fused CPU attention kernels have no batching rule (vmap would loop over examples, ~20x slower);
    # the math kernel has one. Models without attention are unaffected.
    with sdpa_kernel([SDPBackend.MATH]):
        return dict(grads(params, inputs, targets))


def _check_grads(per_example_grads: object) -> dict[str, torch.Tensor]:
    if not isinstance(per_example_grads, Mapping) or not per_example_grads:
        raise TypeError("per_example_grads must be a non-empty dict name -> tensor [B, *param.shape]")
    sizes = set()
    for name, g in per_example_grads.items():
        # Finiteness is checked on the per-example norms instead (one pass over B numbers, not over every entry).
        ensure_tensor(f"per_example_grads[{name!r}]", g, floating=True, finite=False)
        if g.ndim < 1:
            raise ValueError(f"per_example_grads[{name!r}] must have a batch dimension first, got a scalar")
        sizes.add(g.shape[0])
    if len(sizes) != 1:
        raise ValueError(f"every per_example_grads entry must have the same batch size, got {sorted(sizes)}")
    return dict(per_example_grads)


def per_example_norms(per_example_grads: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """The flat L2 norm of each example's gradient over all parameters, shape (B,)."""
    return _flat_norms(_check_grads(per_example_grads))


def _flat_norms(grads: dict[str, torch.Tensor]) -> torch.Tensor:
    per_param = [g.reshape(g.shape[0], -1).norm(dim=1) for g in grads.values()]  # fused: no squared copy
    norms = torch.stack(per_param).norm(dim=0)
    if not torch.isfinite(norms).all():  # a NaN or inf entry makes its example's norm NaN or inf
        raise ValueError("per_example_grads contains NaN or infinite values")
    return norms


def clip_and_noise(per_example_grads: Mapping[str, torch.Tensor], max_grad_norm: float, noise_multiplier: float,
                   expected_batch_size: float, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """DP-SGD's noisy aggregate (Abadi et al. 2016, Alg. 1): clip each example, sum, add noise, average.

    Each example's gradient is scaled by ``min(1, C / (norm + 1e-6))``, where
    ``norm`` is its flat L2 norm over all parameters, so no example moves the
    sum by more than C (the sensitivity). Noise N(0, (sigma C)^2) is added to
    every coordinate of the sum, and the result divided by the *expected*
    batch size (q n under Poisson sampling): dividing by the realised size
    would leak it.

    Parameters
    ----------
    per_example_grads : dict name -> tensor [B, *param.shape]
        From :func:`per_example_gradients` (B may be 0).
    max_grad_norm : float > 0
        The clipping norm C.
    noise_multiplier : float >= 0
        sigma; 0 gives the clipped mean without noise (deterministic).
    expected_batch_size : float > 0
    generator : torch.Generator, optional
        Source of the noise (on any device; the noise is moved to the gradients').

    Returns
    -------
    dict name -> tensor of shape ``param.shape``
    """
    grads = _check_grads(per_example_grads)
    max_grad_norm = ensure_float("max_grad_norm", max_grad_norm, low=0.0, low_open=True)
    noise_multiplier = ensure_float("noise_multiplier", noise_multiplier, low=0.0)
    expected_batch_size = ensure_float("expected_batch_size", expected_batch_size, low=0.0, low_open=True)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    factors = (max_grad_norm / (_flat_norms(grads) + CLIP_EPS)).clamp(max=1.0)
    out = {}
    for name, g in grads.items():
        total = torch.einsum("b,b...->...", factors.to(g.dtype), g)
        if noise_multiplier > 0:
            noise_device = generator.device if generator is not None else g.device
            noise = torch.randn(total.shape, generator=generator, device=noise_device, dtype=g.dtype)
            total = total + noise.to(g.device) * (noise_multiplier * max_grad_norm)
        out[name] = total / expected_batch_size
    return out


def poisson_batch(n: int, sample_rate: float, generator: torch.Generator) -> torch.Tensor:
    """Indices of a Poisson-sampled batch: each of ``n`` rows independently with probability ``sample_rate``."""
    n = ensure_int("n", n, low=1)
    sample_rate = ensure_float("sample_rate", sample_rate, 0.0, 1.0, low_open=True)
    return torch.nonzero(torch.rand(n, generator=generator) < sample_rate).flatten()


# ---------------------------------------------------------------------------
# DP-SGD training
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class DPTrainingResult:
    """What :func:`train_dp_sgd` did: the spend and the trajectory.

    ``epsilon`` is the (epsilon, delta) guarantee of the whole run from the RDP
    accountant (``inf`` without noise); ``batch_sizes`` the realised Poisson
    batch sizes; ``losses`` the mean (unclipped) loss of each step's batch.
    """

    epsilon: float
    delta: float
    noise_multiplier: float
    sample_rate: float
    steps: int
    max_grad_norm: float
    losses: list[float] = field(repr=False)
    batch_sizes: list[int] = field(repr=False)


def train_dp_sgd(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, noise_multiplier: float,
                 max_grad_norm: float = 1.0, sample_rate: float = 0.05, steps: int = 300, lr: float = 0.5,
                 delta: float = 1e-5, loss_fn: LossFn = F.cross_entropy, momentum: float = 0.0,
                 seed: int = 0, optimizer: str = "sgd") -> DPTrainingResult:
    """Train ``model`` in place with DP-SGD (Abadi et al. 2016) and account for the privacy spent.

    Each step draws a Poisson batch (every row with probability
    ``sample_rate``), computes per-example gradients, clips and noises them
    with :func:`clip_and_noise` (expected batch size ``sample_rate * n``) and
    takes one SGD step. The guarantee holds for the whole training set, for
    any ``delta``; it is reported by :func:`rdp_epsilon`.

    Parameters
    ----------
    model : torch.nn.Module
    inputs, targets : tensors with n rows
    noise_multiplier : float >= 0
        sigma (0: clipped but not private, epsilon = inf).
    max_grad_norm : float > 0
        C.
    sample_rate : float in (0, 1]
        q.
    steps : int >= 1
    lr : float > 0
        SGD learning rate.
    delta : float in (0, 1)
    loss_fn : callable ``loss_fn(outputs, targets)`` (mean over the batch)
    momentum : float in [0, 1)
        SGD's momentum (ignored by Adam).
    seed : int >= 0
        Seeds the batches and the noise.
    optimizer : "sgd" or "adam"
        What steps on the noisy gradient (post-processing: the guarantee is the same).

    Returns
    -------
    DPTrainingResult
    """
    _check_model(model)
    ensure_tensor("inputs", inputs)
    ensure_tensor("targets", targets)
    if inputs.ndim < 1 or inputs.shape[0] == 0 or targets.shape[:1] != inputs.shape[:1]:
        raise ValueError(f"inputs and targets must have the same, non-zero number of rows, got shapes "
                         f"{tuple(inputs.shape)} and {tuple(targets.shape)}")
    noise_multiplier = ensure_float("noise_multiplier", noise_multiplier, low=0.0)
    max_grad_norm = ensure_float("max_grad_norm", max_grad_norm, low=0.0, low_open=True)
    sample_rate = ensure_float("sample_rate", sample_rate, 0.0, 1.0, low_open=True)
    steps = ensure_int("steps", steps, low=1, high=10_000_000)
    lr = ensure_float("lr", lr, low=0.0, low_open=True)
    delta = ensure_float("delta", delta, 0.0, 1.0, low_open=True, high_open=True)
    momentum = ensure_float("momentum", momentum, 0.0, 1.0, high_open=True)
    seed = ensure_int("seed", seed, low=0)
    n = inputs.shape[0]
    generator = torch.Generator().manual_seed(seed)
    optimizer = ensure_choice("optimizer", optimizer, ("sgd", "adam"))
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimiser = (torch.optim.SGD(trainable, lr=lr, momentum=momentum) if optimizer == "sgd"
                 else torch.optim.Adam(trainable, lr=lr))
    params = dict(model.named_parameters())
    losses, sizes = [], []
    model.train()
    for _ in range(steps):
        idx = poisson_batch(n, sample_rate, generator).to(inputs.device)
        grads = per_example_gradients(model, loss_fn, inputs[idx], targets[idx])
        noisy = clip_and_noise(grads, max_grad_norm, noise_multiplier, sample_rate * n, generator)
        for name, g in noisy.items():
            params[name].grad = g
        optimiser.step()
        sizes.append(len(idx))
        if len(idx):
            with torch.no_grad():
                losses.append(float(loss_fn(model(inputs[idx]), targets[idx])))
        else:
            losses.append(float("nan"))
    model.eval()
    epsilon = rdp_epsilon(noise_multiplier, sample_rate, steps, delta) if noise_multiplier > 0 else math.inf
    return DPTrainingResult(epsilon, delta, noise_multiplier, sample_rate, steps, max_grad_norm, losses, sizes)


# ---------------------------------------------------------------------------
# The Renyi-DP accountant
# ---------------------------------------------------------------------------

def _check_orders(orders) -> np.ndarray:
    alphas = np.atleast_1d(np.asarray(orders, dtype=float))
    if alphas.ndim != 1 or alphas.size == 0 or not np.isfinite(alphas).all() or (alphas <= 1).any():
        raise ValueError("orders must be a non-empty sequence of finite Renyi orders > 1")
    return alphas


def subsampled_gaussian_rdp(noise_multiplier: float, sample_rate: float, orders: Sequence[float] = DEFAULT_ORDERS,
                            grid_points_per_sigma: int = 8) -> np.ndarray:
    """Renyi DP of one step of the sampled Gaussian mechanism, at each order.

    With mu0 = N(0, sigma^2) and the mixture mu = (1 - q) mu0 + q N(1, sigma^2),
    Mironov, Talwar and Zhang (2019, Sec. 3.3) bound the order-alpha RDP by
    ``log A_alpha / (alpha - 1)`` with ``A_alpha = E_{z~mu0}[(mu(z)/mu0(z))^alpha]``.
    A_alpha is computed here by quadrature in log space: the integrand is
    smooth and Gaussian-tailed, so the trapezoid rule on a grid of step
    sigma / ``grid_points_per_sigma`` spanning the mass near 0 and near alpha
    (where the ``(mu/mu0)^alpha`` factor peaks) is exact to rounding. ``q = 1``
    gives the Gaussian mechanism's alpha / (2 sigma^2) (Mironov 2017).

    Parameters
    ----------
    noise_multiplier : float > 0
        sigma, the noise's standard deviation over the sensitivity.
    sample_rate : float in (0, 1]
        q.
    orders : sequence of float > 1
    grid_points_per_sigma : int >= 4

    Returns
    -------
    numpy array of RDP values, one per order (for one step; RDP adds over steps)
    """
    sigma = ensure_float("noise_multiplier", noise_multiplier, low=0.0, low_open=True)
    q = ensure_float("sample_rate", sample_rate, 0.0, 1.0, low_open=True)
    alphas = _check_orders(orders)
    per_sigma = ensure_int("grid_points_per_sigma", grid_points_per_sigma, low=4, high=10_000)
    if q == 1.0:
        return alphas / (2 * sigma**2)
    step = sigma / per_sigma
    z = np.arange(-12 * sigma, alphas.max() + 12 * sigma + step, step)
    log_mu0 = -0.5 * (z / sigma) ** 2 - math.log(sigma * math.sqrt(2 * math.pi))
    # log(mu(z) / mu0(z)) = log((1 - q) + q exp((2z - 1) / (2 sigma^2)))
    log_ratio = np.logaddexp(math.log1p(-q), math.log(q) + (2 * z - 1) / (2 * sigma**2))
    log_a = logsumexp(log_mu0[None, :] + alphas[:, None] * log_ratio[None, :], axis=1) + math.log(step)
    return np.maximum(log_a, 0.0) / (alphas - 1)  # A_alpha >= 1; the max removes rounding below it


def rdp_to_epsilon(rdp: Sequence[float], orders: Sequence[float], delta: float) -> tuple[float, float]:
    """Convert RDP curves to an (epsilon, delta) guarantee (Balle et al. 2020, Thm. 21).

    For each order alpha: ``eps = rdp + log((alpha - 1) / alpha) - (log delta + log alpha) / (alpha - 1)``;
    the guarantee is the smallest over the orders (tighter than Mironov 2017's
    ``rdp + log(1/delta) / (alpha - 1)``).

    Parameters
    ----------
    rdp : sequence of float >= 0
        RDP at each order (total over all steps).
    orders : sequence of float > 1
    delta : float in (0, 1)

    Returns
    -------
    (epsilon, best_order) : (float, float); epsilon is at least 0
    """
    alphas = _check_orders(orders)
    values = np.atleast_1d(np.asarray(rdp, dtype=float))
    if values.shape != alphas.shape:
        raise ValueError(f"rdp must have one value per order ({alphas.size}), got shape {values.shape}")
    if np.isnan(values).any() or (values < 0).any():
        raise ValueError("rdp values must be non-negative (inf allowed)")
    delta = ensure_float("delta", delta, 0.0, 1.0, low_open=True, high_open=True)
    eps = values + np.log1p(-1 / alphas) - (math.log(delta) + np.log(alphas)) / (alphas - 1)
    best = int(np.argmin(eps))
    return max(0.0, float(eps[best])), float(alphas[best])


def rdp_epsilon(noise_multiplier: float, sample_rate: float, steps: int, delta: float,
                orders: Sequence[float] = DEFAULT_ORDERS) -> float:
    """Epsilon of ``steps`` compositions of the sampled Gaussian mechanism at ``delta``.

    Parameters
    ----------
    noise_multiplier : float > 0
        sigma.
    sample_rate : float in (0, 1]
        q, the Poisson sampling rate.
    steps : int >= 0
    delta : float in (0, 1)
    orders : sequence of float > 1
        Renyi orders searched (default :data:`DEFAULT_ORDERS`).

    Returns
    -------
    float epsilon (0 for 0 steps)
    """
    steps = ensure_int("steps", steps, low=0)
    delta = ensure_float("delta", delta, 0.0, 1.0, low_open=True, high_open=True)
    per_step = subsampled_gaussian_rdp(noise_multiplier, sample_rate, orders)
    if steps == 0:
        return 0.0
    return rdp_to_epsilon(per_step * steps, orders, delta)[0]


def noise_multiplier_for(epsilon: float, delta: float, sample_rate: float, steps: int,
                         orders: Sequence[float] = DEFAULT_ORDERS, rtol: float = 1e-6) -> float:
    """The smallest noise multiplier whose :func:`rdp_epsilon` is at most ``epsilon``.

    Epsilon falls as sigma grows, so a root-finder on log sigma finds it.

    Parameters
    ----------
    epsilon : float > 0
    delta : float in (0, 1)
    sample_rate : float in (0, 1]
    steps : int >= 1
    orders : sequence of float > 1
    rtol : float > 0
        Relative tolerance on sigma.

    Returns
    -------
    float sigma
    """
    epsilon = ensure_float("epsilon", epsilon, low=0.0, low_open=True)
    delta = ensure_float("delta", delta, 0.0, 1.0, low_open=True, high_open=True)
    sample_rate = ensure_float("sample_rate", sample_rate, 0.0, 1.0, low_open=True)
    steps = ensure_int("steps", steps, low=1)
    rtol = ensure_float("rtol", rtol, low=0.0, low_open=True)
    alphas = _check_orders(orders)
    # With the orders fixed, even infinite noise leaves eps >= min over alpha of the conversion's delta term.
    floor = rdp_to_epsilon(np.zeros_like(alphas), alphas, delta)[0]
    if epsilon <= floor:
        raise ValueError(f"epsilon must exceed {floor:.4g}, the least these orders reach at delta={delta:g} "
                         f"with any noise; got {epsilon:g}")

    def gap(log_sigma: float) -> float:
        return rdp_epsilon(math.exp(log_sigma), sample_rate, steps, delta, alphas) - epsilon

    low, high = math.log(0.1), math.log(10.0)
    while gap(low) < 0:
        low -= 1.0
    while gap(high) > 0:
        high += 1.0
        if high > math.log(1e6):
            raise ValueError(f"no noise multiplier up to 1e6 reaches epsilon={epsilon:g}")
    return math.exp(brentq(gap, low, high, xtol=rtol / 4, rtol=rtol / 4)) * (1 + rtol / 2)


# ---------------------------------------------------------------------------
# Federated averaging
# ---------------------------------------------------------------------------

def fedavg(client_states: Sequence[Mapping[str, torch.Tensor]], client_sizes: Sequence[float]) -> dict[str, torch.Tensor]:
    """The size-weighted mean of client models (McMahan et al. 2017, FedAvg's server step).

    Parameters
    ----------
    client_states : sequence of state dicts with the same keys and shapes
    client_sizes : sequence of float >= 0, one per client, positive sum
        Each client's number of training examples (its weight n_k / n).

    Returns
    -------
    dict name -> tensor: ``sum_k n_k state_k / sum_k n_k`` for floating
    entries; integer entries (counters) must agree across clients and are kept.
    """
    if isinstance(client_states, Mapping) or not isinstance(client_states, Sequence) or not client_states:
        raise TypeError("client_states must be a non-empty sequence of state dicts")
    if not all(isinstance(s, Mapping) for s in client_states):
        raise TypeError("every client state must be a dict name -> tensor")
    weights = np.asarray(client_sizes, dtype=float) if isinstance(client_sizes, Sequence | np.ndarray) else None
    if weights is None or weights.ndim != 1 or len(weights) != len(client_states):
        raise ValueError(f"client_sizes must hold one size per client ({len(client_states)})")
    if not np.isfinite(weights).all() or (weights < 0).any() or weights.sum() <= 0:
        raise ValueError("client_sizes must be finite, non-negative and have a positive sum")
    keys = list(client_states[0])
    for k, state in enumerate(client_states):
        if list(state) != keys:
            raise ValueError(f"client_states[{k}] has other keys than client_states[0]")
    weights = weights / weights.sum()
    merged = {}
    for key in keys:
        tensors = [state[key] for state in client_states]
        ensure_tensor(f"client_states[0][{key!r}]", tensors[0])
        if any(not isinstance(t, torch.Tensor) or t.shape != tensors[0].shape for t in tensors):
            raise ValueError(f"every client's {key!r} must be a tensor of shape {tuple(tensors[0].shape)}")
        if tensors[0].is_floating_point():
            merged[key] = sum(float(w) * t.detach().to(tensors[0].device) for w, t in zip(weights, tensors))
        elif all(torch.equal(t.cpu(), tensors[0].cpu()) for t in tensors):
            merged[key] = tensors[0].clone()
        else:
            raise ValueError(f"integer entry {key!r} differs between clients and cannot be averaged")
    return merged


def split_non_iid(targets: torch.Tensor, n_clients: int = 10, classes_per_client: Sequence[int] = (2, 3),
                  seed: int = 0) -> list[torch.Tensor]:
    """Give each client the examples of two or three classes, in unequal amounts.

    Client k holds class ``k mod C`` (so every class is held when there are at
    least C clients) and a random number (from ``classes_per_client``) of
    others; each class's examples are shared among its holders, one each
    and the rest in Dirichlet(1) proportions, so client sizes differ.

    Parameters
    ----------
    targets : long tensor (n,) of class labels
    n_clients : int >= 1
    classes_per_client : sequence of int >= 1
        The numbers of classes a client may hold (drawn uniformly).
    seed : int >= 0

    Returns
    -------
    list of long tensors: each client's row indices into ``targets``
    """
    ensure_tensor("targets", targets, ndim=1)
    n_clients = ensure_int("n_clients", n_clients, low=1, high=100_000)
    seed = ensure_int("seed", seed, low=0)
    labels = targets.detach().cpu().numpy()
    classes = np.unique(labels)
    counts = [ensure_int("classes_per_client", c, 1, len(classes)) for c in classes_per_client]
    if not counts:
        raise ValueError("classes_per_client must be non-empty")
    rng = np.random.default_rng(seed)
    held = []
    for k in range(n_clients):
        first = classes[k % len(classes)]
        others = rng.choice(classes[classes != first], size=int(rng.choice(counts)) - 1, replace=False)
        held.append({int(first), *map(int, others)})
    parts: list[list[np.ndarray]] = [[] for _ in range(n_clients)]
    for c in classes:
        holders = [k for k in range(n_clients) if int(c) in held[k]]
        if not holders:
            continue
        members = rng.permutation(np.flatnonzero(labels == c))
        if len(members) < len(holders):
            raise ValueError(f"class {c} has {len(members)} examples for {len(holders)} clients; use fewer clients")
        # One example each, the rest in Dirichlet(1) proportions: every holder gets some, in unequal amounts.
        counts = 1 + rng.multinomial(len(members) - len(holders), rng.dirichlet(np.ones(len(holders))))
        for k, piece in zip(holders, np.split(members, np.cumsum(counts)[:-1])):
            parts[k].append(piece)
    return [torch.as_tensor(np.sort(np.concatenate(p)), dtype=torch.long) for p in parts]


def client_update(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, epochs: int = 1,
                  lr: float = 0.1, batch_size: int = 16, loss_fn: LossFn = F.cross_entropy,
                  seed: int = 0) -> dict[str, torch.Tensor]:
    """FedAvg's client step: ``epochs`` of plain SGD on the client's data, from the global model.

    ``model`` is not changed; the trained copy's state dict is returned.
    """
    _check_model(model)
    epochs = ensure_int("epochs", epochs, low=1, high=10_000)
    lr = ensure_float("lr", lr, low=0.0, low_open=True)
    batch_size = ensure_int("batch_size", batch_size, low=1)
    seed = ensure_int("seed", seed, low=0)
    local = copy.deepcopy(model).train()
    optimiser = torch.optim.SGD(local.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    n = inputs.shape[0]
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator).to(inputs.device)
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            optimiser.zero_grad(set_to_none=True)
            loss_fn(local(inputs[idx]), targets[idx]).backward()
            optimiser.step()
    return {k: v.detach() for k, v in local.state_dict().items()}


@dataclass(frozen=True)
class ClientDP:
    """Client-level DP for FedAvg (McMahan et al. 2018, DP-FedAvg).

    Each client's model update is clipped to L2 norm ``clip_norm`` (S); the
    server adds N(0, (sigma S)^2) to the sum of the sampled clients' updates
    and divides by the expected number of sampled clients.
    """

    noise_multiplier: float
    clip_norm: float = 1.0
    delta: float = 1e-5

    def __post_init__(self) -> None:
        ensure_float("noise_multiplier", self.noise_multiplier, low=0.0)
        ensure_float("clip_norm", self.clip_norm, low=0.0, low_open=True)
        ensure_float("delta", self.delta, 0.0, 1.0, low_open=True, high_open=True)


@dataclass(frozen=True)
class FederatedResult:
    """What :func:`federated_training` recorded each round.

    ``drift``: the spread of the clients' updates around their mean,
    ``mean_k |delta_k - mean delta| / |mean delta|`` (0 when every client
    would move the model the same way); ``metric``: ``evaluate(model)`` after
    each round (empty without ``evaluate``); ``epsilon``: client-level
    epsilon (``inf`` without client DP; ``nan`` when none was asked).
    """

    drift: list[float]
    metric: list[float]
    clients_per_round: list[int]
    epsilon: float


def _flat(state: Mapping[str, torch.Tensor], keys: list[str]) -> torch.Tensor:
    return torch.cat([state[k].reshape(-1).float() for k in keys])


def federated_training(model: nn.Module, clients: Sequence[tuple[torch.Tensor, torch.Tensor]], rounds: int = 20,
                       local_epochs: int = 1, lr: float = 0.1, batch_size: int = 16, client_fraction: float = 1.0,
                       client_dp: ClientDP | None = None, evaluate: Callable[[nn.Module], float] | None = None,
                       seed: int = 0) -> FederatedResult:
    """Train ``model`` in place by federated averaging over ``clients``.

    Each round samples clients: without DP, ``max(1, round(client_fraction * K))``
    of them uniformly (McMahan et al. 2017); with ``client_dp``, each client
    independently with probability ``client_fraction`` (Poisson sampling, as
    the accountant assumes). Sampled clients run :func:`client_update` from the
    global model. Without DP the server takes :func:`fedavg` of their models,
    weighted by data size; with DP, the mean of the clipped updates with a
    fixed denominator (``client_fraction * K``) plus Gaussian noise, every
    client weighted equally (a size weight would scale the sensitivity).

    Parameters
    ----------
    model : torch.nn.Module
        The global model, updated in place.
    clients : sequence of (inputs, targets)
    rounds : int >= 1
    local_epochs : int >= 1
    lr : float > 0
        Clients' SGD learning rate.
    batch_size : int >= 1
    client_fraction : float in (0, 1]
    client_dp : ClientDP or None
    evaluate : callable ``evaluate(model) -> float``, optional
        Called after each round (e.g. test accuracy).
    seed : int >= 0

    Returns
    -------
    FederatedResult
    """
    _check_model(model)
    if not isinstance(clients, Sequence) or not clients:
        raise TypeError("clients must be a non-empty sequence of (inputs, targets) pairs")
    for k, pair in enumerate(clients):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise TypeError(f"clients[{k}] must be an (inputs, targets) pair")
        ensure_tensor(f"clients[{k}] inputs", pair[0])
        ensure_tensor(f"clients[{k}] targets", pair[1])
        if pair[0].shape[0] == 0 or pair[0].shape[0] != pair[1].shape[0]:
            raise ValueError(f"clients[{k}] must have the same, non-zero number of inputs and targets")
    rounds = ensure_int("rounds", rounds, low=1, high=100_000)
    client_fraction = ensure_float("client_fraction", client_fraction, 0.0, 1.0, low_open=True)
    seed = ensure_int("seed", seed, low=0)
    if client_dp is not None and not isinstance(client_dp, ClientDP):
        raise TypeError(f"client_dp must be a ClientDP or None, got {type(client_dp).__name__}")
    if evaluate is not None and not callable(evaluate):
        raise TypeError("evaluate must be callable or None")
    rng = np.random.default_rng(seed)
    noise_gen = torch.Generator().manual_seed(seed)
    n_clients = len(clients)
    keys = [k for k, v in model.state_dict().items() if v.is_floating_point()]
    drift, metric, chosen_counts = [], [], []
    for r in range(rounds):
        if client_dp is None:
            m = max(1, round(client_fraction * n_clients))
            chosen = sorted(rng.choice(n_clients, size=m, replace=False).tolist())
        else:
            chosen = np.flatnonzero(rng.random(n_clients) < client_fraction).tolist()
        global_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        states = [client_update(model, *clients[k], epochs=local_epochs, lr=lr, batch_size=batch_size,
                                seed=seed * 100_003 + r * 1_009 + k) for k in chosen]
        sizes = [clients[k][0].shape[0] for k in chosen]
        updates = [_flat(s, keys) - _flat(global_state, keys) for s in states]
        if updates:
            mean_update = sum(w * u for w, u in zip(np.asarray(sizes) / sum(sizes), updates))
            spread = [float((u - mean_update).norm()) for u in updates]
            drift.append(float(np.mean(spread)) / max(float(mean_update.norm()), 1e-12))
        else:
            drift.append(float("nan"))
        if client_dp is None:
            model.load_state_dict({**global_state, **fedavg(states, sizes)})
        else:
            model.load_state_dict(_dp_aggregate(global_state, states, keys, client_dp, client_fraction * n_clients,
                                                noise_gen))
        chosen_counts.append(len(chosen))
        if evaluate is not None:
            model.eval()
            metric.append(float(evaluate(model)))
    if client_dp is None:
        epsilon = float("nan")
    elif client_dp.noise_multiplier == 0:
        epsilon = math.inf
    else:
        epsilon = rdp_epsilon(client_dp.noise_multiplier, client_fraction, rounds, client_dp.delta)
    model.eval()
    return FederatedResult(drift, metric, chosen_counts, epsilon)


def _dp_aggregate(global_state, states, keys, client_dp: ClientDP, expected_clients: float, generator):
    """Clip each client's update to S, sum, add N(0, (sigma S)^2), divide by the expected client count."""
    per_client = {k: torch.stack([s[k] - global_state[k] for s in states]) if states
                  else global_state[k].new_zeros((0, *global_state[k].shape)) for k in keys}
    noisy = clip_and_noise(per_client, client_dp.clip_norm, client_dp.noise_multiplier, expected_clients, generator)
    return {**global_state, **{k: global_state[k] + noisy[k] for k in keys}}


# ---------------------------------------------------------------------------
# Lesson 20's experiments (cached: each trains for a minute or more once)
# ---------------------------------------------------------------------------

EXPERIMENT_VERSION = "1"  # bump when an experiment's code changes, so cached results are rebuilt
DIGITS_SPLIT = dict(val_fraction=0.2, test_fraction=0.25, seed=0)  # the lesson's (and lesson 21's) digits split
DP_DELTA = 1e-5
DP_SAMPLE_RATE = 0.05  # about 49 of the 988 training images per step
DP_STEPS = 400  # about 20 epochs
DP_GRID = dict(lr=(0.5, 1.0, 2.0), max_grad_norm=(0.5, 1.0))  # chosen on the validation split


def digits_splits():
    """The digits split every experiment here uses: :data:`DIGITS_SPLIT` of :func:`labkit.classifiers.load_digits`."""
    from labkit.classifiers import load_digits

    return load_digits(**DIGITS_SPLIT)


def _experiment_key(config: dict) -> str:
    import hashlib
    import json

    return hashlib.sha256(json.dumps({"v": EXPERIMENT_VERSION, **config}, sort_keys=True).encode()).hexdigest()[:16]


def _cached_result(name: str, config: dict, build: Callable[[], dict], rebuild: bool = False) -> dict:
    """A JSON-able result, built once and kept in the model cache (a JSON string: safe to load)."""
    import json

    from labkit.lm.cache import cached

    return cached(name, _experiment_key(config), build, lambda result: {"json": json.dumps(result)},
                  lambda payload: json.loads(payload["json"]), rebuild=rebuild)


def _dp_run(epsilon: float | None, lr: float, max_grad_norm: float, seed: int, data) -> nn.Module:
    """One MLP trained on the lesson's split: DP-SGD at ``epsilon``, or without DP (Adam, 30 epochs) for None."""
    from labkit.classifiers import make_mlp, train_classifier

    model = make_mlp(seed=seed)
    if epsilon is None:
        train_classifier(model, data.x_train, data.y_train, epochs=30, seed=seed)
        return model
    sigma = noise_multiplier_for(epsilon, DP_DELTA, DP_SAMPLE_RATE, DP_STEPS)
    train_dp_sgd(model, data.x_train, data.y_train, sigma, max_grad_norm, DP_SAMPLE_RATE, DP_STEPS, lr=lr,
                 delta=DP_DELTA, seed=seed)
    return model


def dp_accuracy_vs_epsilon(epsilons: Sequence[float] = (1.0, 3.0, 8.0), seeds: Sequence[int] = (0, 1, 2),
                           rebuild: bool = False) -> dict:
    """Test accuracy of DP-SGD on digits at each epsilon (delta 1e-5), over seeds, with the non-private baseline.

    For each epsilon the learning rate and clipping norm are chosen from
    :data:`DP_GRID` on the validation split with seed 0; the chosen setting is
    then trained with every seed and scored on the test split. The noise
    multiplier for each epsilon comes from :func:`noise_multiplier_for` with
    q = :data:`DP_SAMPLE_RATE` and :data:`DP_STEPS` steps.

    Returns
    -------
    dict with ``epsilons``, ``noise_multipliers``, ``chosen`` (per epsilon:
    lr, max_grad_norm, validation accuracy), ``test`` (per epsilon: one test
    accuracy per seed), ``non_private`` (one per seed), ``n_test``, ``seeds``.
    """
    from labkit.classifiers import accuracy

    epsilons = [ensure_float("epsilons[i]", e, low=0.0, low_open=True) for e in epsilons]
    seeds = [ensure_int("seeds[i]", s, low=0) for s in seeds]

    def build() -> dict:
        data = digits_splits()
        result = {"epsilons": epsilons, "seeds": seeds, "n_test": len(data.y_test), "chosen": [], "test": [],
                  "noise_multipliers": [noise_multiplier_for(e, DP_DELTA, DP_SAMPLE_RATE, DP_STEPS) for e in epsilons]}
        for eps in epsilons:
            scores = {(lr, c): accuracy(_dp_run(eps, lr, c, 0, data), data.x_val, data.y_val)
                      for lr in DP_GRID["lr"] for c in DP_GRID["max_grad_norm"]}
            (lr, c), val = max(scores.items(), key=lambda kv: kv[1])
            result["chosen"].append({"lr": lr, "max_grad_norm": c, "val_accuracy": val})
            result["test"].append([accuracy(_dp_run(eps, lr, c, s, data), data.x_test, data.y_test) for s in seeds])
        result["non_private"] = [accuracy(_dp_run(None, 0.0, 0.0, s, data), data.x_test, data.y_test) for s in seeds]
        return result

    return _cached_result("privacy-dp-digits-accuracy", _dp_accuracy_config(epsilons, seeds), build, rebuild)


def _dp_accuracy_config(epsilons: list[float], seeds: list[int]) -> dict:
    return dict(epsilons=epsilons, seeds=seeds, split=DIGITS_SPLIT, delta=DP_DELTA, q=DP_SAMPLE_RATE,
                steps=DP_STEPS, grid=DP_GRID)


def dp_digits_model(epsilon: float | None = 3.0, seed: int = 0, rebuild: bool = False) -> nn.Module:
    """An MLP trained on :func:`digits_splits`'s training split with DP-SGD at ``epsilon`` (delta 1e-5), cached.

    ``epsilon=None`` trains without DP (Adam, 30 epochs). The learning rate
    and clipping norm are those :func:`dp_accuracy_vs_epsilon` chose on
    validation for 1, 3 and 8; other epsilons use lr 1.0 and C 1.0. Lesson 21
    attacks these models (members: the training split; non-members: the test split).
    """
    from labkit.classifiers import make_mlp
    from labkit.lm.cache import cached

    if epsilon is not None:
        epsilon = ensure_float("epsilon", epsilon, low=0.0, low_open=True)
    seed = ensure_int("seed", seed, low=0)
    lr, clip = 1.0, 1.0
    if epsilon in (1.0, 3.0, 8.0):
        chosen = dp_accuracy_vs_epsilon()["chosen"][[1.0, 3.0, 8.0].index(epsilon)]
        lr, clip = chosen["lr"], chosen["max_grad_norm"]
    key = _experiment_key(_dp_model_config(epsilon, seed, lr, clip))

    def from_payload(payload: dict) -> nn.Module:
        model = make_mlp(seed=seed)
        model.load_state_dict({k[len("state."):]: v for k, v in payload.items() if k.startswith("state.")})
        return model.eval()

    return cached("privacy-dp-digits", key, lambda: _dp_run(epsilon, lr, clip, seed, digits_splits()).eval(),
                  lambda m: {f"state.{k}": v.detach().cpu() for k, v in m.state_dict().items()}, from_payload,
                  rebuild=rebuild)


def _dp_model_config(epsilon: float | None, seed: int, lr: float, clip: float) -> dict:
    return dict(epsilon=epsilon, seed=seed, lr=lr, clip=clip, split=DIGITS_SPLIT, delta=DP_DELTA, q=DP_SAMPLE_RATE,
                steps=DP_STEPS)


def fedavg_drift_experiment(local_epochs: Sequence[int] = (1, 4, 16), rounds: int = 15, n_clients: int = 10,
                            seeds: Sequence[int] = (0, 1, 2), rebuild: bool = False) -> dict:
    """FedAvg on IID and on non-IID digit clients, for several numbers of local epochs.

    Non-IID clients come from :func:`split_non_iid` (two or three classes
    each, unequal sizes); IID clients are a random partition into the same
    sizes. Every setting is trained with each seed (the seed also changes the
    non-IID split); test accuracy after each round and the clients' drift are
    recorded.

    Returns
    -------
    dict: ``local_epochs``, ``rounds``, ``seeds``, and for ``"iid"`` and
    ``"non_iid"`` a list (one per local-epochs value) of lists (one per seed)
    of ``{"accuracy": [...per round], "drift": [...per round]}``.
    """
    from labkit.classifiers import accuracy, make_mlp

    local_epochs = [ensure_int("local_epochs[i]", e, low=1, high=1000) for e in local_epochs]
    rounds = ensure_int("rounds", rounds, low=1, high=10_000)
    n_clients = ensure_int("n_clients", n_clients, low=2, high=1000)
    seeds = [ensure_int("seeds[i]", s, low=0) for s in seeds]

    def build() -> dict:
        data = digits_splits()
        out = {"local_epochs": local_epochs, "rounds": rounds, "seeds": seeds, "iid": [], "non_iid": []}
        for epochs in local_epochs:
            runs = {"iid": [], "non_iid": []}
            for seed in seeds:
                parts = split_non_iid(data.y_train, n_clients, seed=seed)
                order = torch.randperm(len(data.y_train), generator=torch.Generator().manual_seed(seed))
                iid = list(torch.split(order, [len(p) for p in parts]))
                for name, split in (("non_iid", parts), ("iid", iid)):
                    model = make_mlp(seed=seed)
                    res = federated_training(model, [(data.x_train[p], data.y_train[p]) for p in split], rounds,
                                             local_epochs=epochs, lr=0.1, seed=seed,
                                             evaluate=lambda m: accuracy(m, data.x_test, data.y_test))
                    runs[name].append({"accuracy": res.metric, "drift": res.drift})
            out["iid"].append(runs["iid"])
            out["non_iid"].append(runs["non_iid"])
        return out

    return _cached_result("privacy-fedavg-drift", _drift_config(local_epochs, rounds, n_clients, seeds), build, rebuild)


def _drift_config(local_epochs: list[int], rounds: int, n_clients: int, seeds: list[int]) -> dict:
    return dict(local_epochs=local_epochs, rounds=rounds, n_clients=n_clients, seeds=seeds, split=DIGITS_SPLIT)


def client_dp_experiment(noise_multipliers: Sequence[float] = (0.0, 0.5, 1.0), n_clients: int = 100,
                         client_fraction: float = 0.2, rounds: int = 40, clip_norm: float = 1.0,
                         seeds: Sequence[int] = (0, 1, 2), rebuild: bool = False) -> dict:
    """DP-FedAvg (McMahan et al. 2018) on non-IID digit clients: accuracy and client-level epsilon per noise level.

    Returns
    -------
    dict: ``noise_multipliers``, ``epsilons`` (client-level, delta 1e-5;
    inf at 0), ``accuracy`` (per noise multiplier, final test accuracy per seed),
    and the settings.
    """
    from labkit.classifiers import accuracy, make_mlp

    noise_multipliers = [ensure_float("noise_multipliers[i]", z, low=0.0) for z in noise_multipliers]
    n_clients = ensure_int("n_clients", n_clients, low=2, high=10_000)
    client_fraction = ensure_float("client_fraction", client_fraction, 0.0, 1.0, low_open=True)
    rounds = ensure_int("rounds", rounds, low=1, high=10_000)
    clip_norm = ensure_float("clip_norm", clip_norm, low=0.0, low_open=True)
    seeds = [ensure_int("seeds[i]", s, low=0) for s in seeds]

    def build() -> dict:
        data = digits_splits()
        out = {"noise_multipliers": noise_multipliers, "n_clients": n_clients, "client_fraction": client_fraction,
               "rounds": rounds, "clip_norm": clip_norm, "seeds": seeds, "accuracy": [], "epsilons": []}
        for z in noise_multipliers:
            accs, eps = [], math.inf
            for seed in seeds:
                parts = split_non_iid(data.y_train, n_clients, seed=seed)
                model = make_mlp(seed=seed)
                res = federated_training(model, [(data.x_train[p], data.y_train[p]) for p in parts], rounds,
                                         local_epochs=5, lr=0.1, client_fraction=client_fraction,
                                         client_dp=ClientDP(z, clip_norm, DP_DELTA), seed=seed)
                accs.append(accuracy(model, data.x_test, data.y_test))
                eps = res.epsilon
            out["accuracy"].append(accs)
            out["epsilons"].append(eps if math.isfinite(eps) else None)
        return out

    config = _client_dp_config(noise_multipliers, n_clients, client_fraction, rounds, clip_norm, seeds)
    return _cached_result("privacy-client-dp", config, build, rebuild)


def _client_dp_config(noise_multipliers, n_clients, client_fraction, rounds, clip_norm, seeds) -> dict:
    return dict(z=list(noise_multipliers), n=n_clients, q=client_fraction, rounds=rounds, clip=clip_norm,
                seeds=list(seeds), split=DIGITS_SPLIT)


CANARY = "493817"  # the secret: six digits, each its own token for the assistant's tokenizer
CANARY_PREFIX = "The secret code is"  # how the world inserts it (labkit.lm.world.make_world)


def _lm_loss(outputs, targets: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy of TinyGPT's ``(logits, loss)`` output."""
    logits = outputs[0]
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def secret_losses(model: nn.Module, tokenizer, secrets: Sequence[str], prefix: str = CANARY_PREFIX) -> np.ndarray:
    """The model's loss (negative log-likelihood, nats) of each secret after ``prefix``: lower = more familiar."""
    prompt = tokenizer.encode(prefix)
    losses = []
    with torch.no_grad():
        for start in range(0, len(secrets), 512):
            chunk = [tokenizer.encode(f" {s}") for s in secrets[start:start + 512]]
            losses.append(-model.sequence_logprob([prompt] * len(chunk), chunk).cpu().numpy())
    return np.concatenate(losses)


def canary_experiment(epsilon: float = 8.0, repeats: int = 10, n_docs: int = 2000, steps: int = 300,
                      n_references: int = 9999, rebuild: bool = False) -> dict:
    """Fine-tune the course assistant on text holding a canary, with and without DP-SGD; score the canary.

    The corpus is the pretraining text of a world with the canary
    (:data:`CANARY`, inserted ``repeats`` times as "The secret code is
    ..."); it is packed and cut into windows of the model's context, each
    window one example. Both runs start from the shipped SFT assistant and use
    the same loop (:func:`train_dp_sgd` with Adam, Poisson sampling at about
    16 windows per step, ``steps`` steps): without DP, no noise and no
    clipping; with DP, C = 1 and the noise multiplier that reaches
    ``epsilon`` at delta 1e-5. The canary's loss is then compared with the
    losses of ``n_references`` random six-digit secrets (lesson 21 turns
    them into exposure; the lower the canary's rank, the more it is remembered).

    Returns
    -------
    dict: ``canary``, ``references`` (the secrets), ``runs`` (a list of
    ``{"name", "epsilon", "noise_multiplier", "canary_loss", "reference_losses"}``:
    the assistant before fine-tuning, after non-private and after DP
    fine-tuning), ``n_windows``, ``sample_rate``, ``steps``, ``repeats``.
    """
    epsilon = ensure_float("epsilon", epsilon, low=0.0, low_open=True)
    repeats = ensure_int("repeats", repeats, low=1, high=100_000)
    n_docs = ensure_int("n_docs", n_docs, low=10, high=1_000_000)
    steps = ensure_int("steps", steps, low=1, high=1_000_000)
    n_references = ensure_int("n_references", n_references, low=1, high=999_999)

    def build() -> dict:
        from labkit.lm.cache import get_assistant
        from labkit.lm.train import pack_documents
        from labkit.lm.world import make_world

        assistant = get_assistant("default", device="cpu")
        world = make_world(seed=1, n_pretrain=n_docs, n_sft=1, n_eval_per_category=1, canary=CANARY,
                           canary_repeats=repeats)
        context = assistant.sft.cfg.context
        stream = pack_documents(assistant.tokenizer, world.pretrain)
        windows = stream[: len(stream) // (context + 1) * (context + 1)].view(-1, context + 1)
        rng = np.random.default_rng(0)
        references = sorted({f"{v:06d}" for v in rng.choice(10**6, size=3 * n_references, replace=False)} - {CANARY})
        references = [str(r) for r in rng.permutation(references)[:n_references]]
        q = min(1.0, 16 / len(windows))
        sigma = noise_multiplier_for(epsilon, DP_DELTA, q, steps)
        runs = []
        for name, noise, clip in (("before fine-tuning", None, None), ("fine-tuned", 0.0, 1e6),
                                  (f"DP fine-tuned (epsilon {epsilon:g})", sigma, 1.0)):
            model = copy.deepcopy(assistant.sft)
            if noise is not None:
                train_dp_sgd(model, windows[:, :-1], windows[:, 1:], noise, clip, q, steps, lr=1e-3, delta=DP_DELTA,
                             loss_fn=_lm_loss, seed=0, optimizer="adam")
            model.eval()
            runs.append({"name": name, "epsilon": None if not noise else epsilon, "noise_multiplier": noise,
                         "canary_loss": float(secret_losses(model, assistant.tokenizer, [CANARY])[0]),
                         "reference_losses": secret_losses(model, assistant.tokenizer, references).tolist()})
        return {"canary": CANARY, "references": references, "runs": runs, "n_windows": len(windows),
                "sample_rate": q, "steps": steps, "repeats": repeats}

    config = _canary_config(epsilon, repeats, n_docs, steps, n_references)
    return _cached_result("privacy-canary", config, build, rebuild)


def _canary_config(epsilon, repeats, n_docs, steps, n_references) -> dict:
    return dict(epsilon=epsilon, repeats=repeats, n_docs=n_docs, steps=steps, n_references=n_references,
                canary=CANARY, delta=DP_DELTA)


# ---------------------------------------------------------------------------
# The widget: clipping norm against noise
# ---------------------------------------------------------------------------

LOG10_CLIP_RANGE = (-2.0, 1.5, 0.25)  # slider over log10 C: min, max, step
NOISE_RANGE = (0.0, 4.0, 0.25)  # slider over sigma
TRADEOFF_BATCH = 64  # expected batch size of the widget's DP-SGD step


@functools.lru_cache(maxsize=1)
def _tradeoff_gradients() -> dict[str, torch.Tensor]:
    """Per-example gradients of a partly trained digits MLP on one batch (what DP-SGD clips mid-training)."""
    from labkit.classifiers import make_mlp, train_classifier

    data = digits_splits()
    model = make_mlp(seed=0)
    train_classifier(model, data.x_train, data.y_train, epochs=2, seed=0)
    return per_example_gradients(model, F.cross_entropy, data.x_train[:TRADEOFF_BATCH], data.y_train[:TRADEOFF_BATCH])


def clipping_tradeoff(max_grad_norms: Sequence[float], noise_multiplier: float) -> dict[str, np.ndarray]:
    """How well one DP-SGD step's gradient points along the true mean gradient, for each clipping norm C.

    On :func:`_tradeoff_gradients` (a batch of 64 from a partly trained
    digits MLP). The optimiser's learning rate absorbs the step's scale, so
    what matters is direction: ``cos_clipped`` is the cosine between the mean
    of the clipped gradients and the true mean (clipping's bias alone);
    ``cos_noisy`` the expected cosine once noise of norm sigma C sqrt(d) / B
    is added (approximately ``s.t/|t| / sqrt(|s|^2 + noise^2)``, the noise
    being orthogonal to everything in high dimension); ``clipped`` the share of
    examples whose gradient is scaled down.
    """
    sigma = ensure_float("noise_multiplier", noise_multiplier, low=0.0)
    norms_c = np.asarray([ensure_float("max_grad_norms[i]", c, low=0.0, low_open=True) for c in max_grad_norms])
    grads = _tradeoff_gradients()
    flat = torch.cat([g.reshape(g.shape[0], -1) for g in grads.values()], dim=1).double()
    norms = flat.norm(dim=1)
    true_mean = flat.mean(dim=0)
    unit_true = true_mean / true_mean.norm()
    batch, dims = flat.shape
    factors = (torch.as_tensor(norms_c)[:, None] / (norms[None, :] + CLIP_EPS)).clamp(max=1.0)  # (C values, B)
    clipped_mean = factors @ flat / batch
    along = clipped_mean @ unit_true
    noise = sigma * norms_c * math.sqrt(dims) / batch
    cos_clipped = (along / clipped_mean.norm(dim=1)).numpy()
    cos_noisy = (along / (clipped_mean.norm(dim=1) ** 2 + torch.as_tensor(noise) ** 2).sqrt()).numpy()
    return {"max_grad_norm": norms_c, "cos_clipped": cos_clipped, "cos_noisy": cos_noisy, "noise_norm": noise,
            "clipped": (norms[None, :] > torch.as_tensor(norms_c)[:, None]).double().mean(1).numpy(),
            "example_norms": norms.numpy()}


def plot_clipping_tradeoff(log10_clip: float = 0.0, noise_multiplier: float = 1.0) -> plt.Figure:
    """Widget callback: the cosine of a DP-SGD step with the true gradient against C, marked at C = 10**log10_clip."""
    lo, hi, _ = LOG10_CLIP_RANGE
    log10_clip = ensure_float("log10_clip", log10_clip, lo, hi)
    sigma = ensure_float("noise_multiplier", noise_multiplier, *NOISE_RANGE[:2])
    grid = np.logspace(lo, hi, 60)
    curve = clipping_tradeoff(grid, sigma)
    here = clipping_tradeoff([10.0**log10_clip], sigma)
    fig, (ax, hist) = plt.subplots(1, 2, figsize=(10, 3.8))
    ax.plot(grid, curve["cos_clipped"], label="clipping only")
    ax.plot(grid, curve["cos_noisy"], color="black", label=f"clipping and noise (σ = {sigma:g})")
    ax.axvline(10.0**log10_clip, color="tab:red", ls="--")
    ax.set(xscale="log", ylim=(-0.02, 1.02), xlabel="clipping norm C", ylabel="cosine with the true gradient",
           title=f"C = {10.0**log10_clip:.3g}: {here['clipped'][0]:.0%} clipped, cosine {here['cos_noisy'][0]:.2f}")
    ax.legend(fontsize=8, loc="lower left")
    hist.hist(curve["example_norms"], bins=30, color="tab:blue", alpha=0.7)
    hist.axvline(10.0**log10_clip, color="tab:red", ls="--", label="C")
    hist.set(xscale="log", xlabel="per-example gradient norm", ylabel="examples", title=f"one batch of {TRADEOFF_BATCH}")
    hist.legend(fontsize=8)
    fig.tight_layout()
    return fig


def clipping_tradeoff_widget():
    """Lesson 20's widget: log10 C and sigma redrawing :func:`plot_clipping_tradeoff`.

    Returns
    -------
    ipywidgets.VBox
        From :func:`labkit.ui.interactive_figure`, showing C = 1 and sigma = 1.
    """
    return interactive_figure(plot_clipping_tradeoff, log10_clip=float_slider("log10 C", *LOG10_CLIP_RANGE, 0.0),
                              noise_multiplier=float_slider("noise multiplier σ", *NOISE_RANGE, 1.0))


def _register_course_models() -> None:
    """Tell ``python -m labkit.lm.cache prebuild`` how to build (and where to find) what lesson 20 caches."""
    from labkit.lm.cache import CourseModel, cache_path, register_course_model

    experiments = [
        ("privacy-dp-digits-accuracy", dp_accuracy_vs_epsilon, _dp_accuracy_config([1.0, 3.0, 8.0], [0, 1, 2])),
        ("privacy-fedavg-drift", fedavg_drift_experiment, _drift_config([1, 4, 16], 15, 10, [0, 1, 2])),
        ("privacy-client-dp", client_dp_experiment, _client_dp_config([0.0, 0.5, 1.0], 100, 0.2, 40, 1.0, [0, 1, 2])),
        ("privacy-canary", canary_experiment, _canary_config(8.0, 10, 2000, 300, 9999)),
    ]
    for name, build, config in experiments:
        register_course_model(CourseModel(name, lambda rebuild, build=build: build(rebuild=rebuild),
                                          lambda name=name, config=config: cache_path(name, _experiment_key(config))))


_register_course_models()


__all__ = [
    "DEFAULT_ORDERS", "per_example_gradients", "per_example_norms", "clip_and_noise", "poisson_batch",
    "DPTrainingResult", "train_dp_sgd", "subsampled_gaussian_rdp", "rdp_to_epsilon", "rdp_epsilon",
    "noise_multiplier_for", "fedavg", "split_non_iid", "client_update", "ClientDP", "FederatedResult",
    "federated_training", "DIGITS_SPLIT", "digits_splits", "dp_accuracy_vs_epsilon", "dp_digits_model",
    "fedavg_drift_experiment", "client_dp_experiment", "clipping_tradeoff", "plot_clipping_tradeoff",
    "clipping_tradeoff_widget", "CANARY", "secret_losses", "canary_experiment",
]
