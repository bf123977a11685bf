"""Per-example gradients, clipping and noise, and DP-SGD (Abadi et al. 2016; lesson 20).

- :func:`per_example_gradients`: one gradient per example at the cost of one
  batched pass, with ``torch.func`` (``vmap`` of ``grad``).
- :func:`clip_and_noise`: the DP-SGD aggregate of Abadi et al. (2016), Alg. 1:
  ``g~ = (sum_i g_i min(1, C / ||g_i||) + N(0, sigma^2 C^2 I)) / (q n)``: each
  example's gradient flat-clipped to norm C over all parameters, summed,
  Gaussian noise added, divided by the expected batch size.
- :func:`poisson_batch` and :func:`train_dp_sgd`: DP-SGD with Poisson sampling
  (every example joins a step's batch independently with probability q),
  which is what the accountant's subsampled Gaussian mechanism assumes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Mapping

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from labkit.privacy.accountant import rdp_epsilon
from labkit.validation import ensure_choice, ensure_float, ensure_int, ensure_tensor


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
