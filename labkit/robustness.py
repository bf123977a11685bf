"""Lesson 09: adversarial examples, adversarial training and certified bounds.

- :func:`fgsm`: the fast gradient sign method (Goodfellow, Shlens and Szegedy
  2015, eq. 3), one signed gradient step of size ε, clamped to the valid range.
- :func:`pgd`: projected gradient descent on the loss, L∞ threat model
  (Madry et al. 2018, eq. 2 and §2.1): a uniform random start in the ε-ball,
  then ``steps`` signed steps of size α, each followed by the projection onto
  the ε-ball intersected with the valid input range.
- :func:`ibp_bounds`: interval bound propagation (Gowal et al. 2018, eqs. 6
  and 7) through a ``torch.nn.Sequential`` of Linear, ReLU and Flatten layers,
  giving lower and upper bounds on every logit over the whole ε-ball.
- :func:`robust_loss`: the loss of standard, PGD-adversarial (Madry et al.
  2018, eq. 2.1's saddle point) or IBP training (Gowal et al. 2018, eq. 8), for
  the shared training loop :func:`labkit.classifiers.train_classifier`.

All functions take tensors on any device and never touch the model's
parameter gradients: attacks use ``torch.autograd.grad`` with respect to the
input only.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linprog
from torch import nn

from labkit.ui import dropdown, float_slider, int_slider, interactive_figure
from labkit import classifiers
from labkit.classifiers import Batch, LossFn
from labkit.validation import ensure_choice, ensure_class_indices, ensure_float, ensure_int, ensure_tensor

Clamp = tuple[float, float] | None


# ---------------------------------------------------------------------------
# Argument checks shared by the attacks and the bounds
# ---------------------------------------------------------------------------

def _check_model(model: object) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return model


def _check_clamp(clamp: Clamp, x: torch.Tensor | None = None) -> Clamp:
    """Check the (low, high) pair and that the clean input ``x`` lies inside it (else no valid x' exists near x)."""
    if clamp is None:
        return None
    if not isinstance(clamp, (tuple, list)) or len(clamp) != 2:
        raise TypeError(f"clamp must be a (low, high) pair or None, got {clamp!r}")
    low = ensure_float("clamp[0]", clamp[0])
    high = ensure_float("clamp[1]", clamp[1])
    if not low < high:
        raise ValueError(f"clamp must satisfy low < high, got ({low:g}, {high:g})")
    if x is not None and x.numel() and (float(x.min()) < low or float(x.max()) > high):
        raise ValueError(f"x must lie inside clamp [{low:g}, {high:g}], got values in [{float(x.min()):g}, {float(x.max()):g}]")
    return low, high


def _check_inputs(x: object, y: object | None = None) -> None:
    ensure_tensor("x", x, floating=True)
    if x.ndim < 2:
        raise ValueError(f"x must be a batch with at least 2 dimensions (batch, features...), got shape {tuple(x.shape)}")
    if y is not None:
        ensure_tensor("y", y, ndim=1)
        if y.dtype != torch.long:
            raise TypeError(f"y must hold class indices as torch.long, got dtype {y.dtype}")
        if y.shape[0] != x.shape[0]:
            raise ValueError(f"x and y must have the same batch size, got {x.shape[0]} and {y.shape[0]}")


def project_linf(x_adv: torch.Tensor, x: torch.Tensor, eps: float, clamp: Clamp = (0.0, 1.0)) -> torch.Tensor:
    """Euclidean projection onto {x' : ||x' - x||∞ <= eps} ∩ [low, high]^d.

    Both sets are boxes, so their intersection is a box and the projection is
    a coordinatewise clip: first to [x - eps, x + eps], then to [low, high]
    (the clean ``x`` lies in [low, high], so the result lies in both).

    Parameters
    ----------
    x_adv : torch.Tensor
        Candidate adversarial inputs.
    x : torch.Tensor, same shape
        Clean inputs, the centres of the balls.
    eps : float in [0, inf)
    clamp : (low, high) or None

    Returns
    -------
    torch.Tensor
    """
    ensure_tensor("x_adv", x_adv, floating=True)
    ensure_tensor("x", x, floating=True)
    if x_adv.shape != x.shape:
        raise ValueError(f"x_adv and x must have the same shape, got {tuple(x_adv.shape)} and {tuple(x.shape)}")
    return _project(x_adv, x, ensure_float("eps", eps, low=0.0), _check_clamp(clamp, x))


def _project(x_adv: torch.Tensor, x: torch.Tensor, eps: float, clamp: Clamp) -> torch.Tensor:
    x_adv = torch.max(torch.min(x_adv, x + eps), x - eps)
    if clamp is not None:
        x_adv = x_adv.clamp(clamp[0], clamp[1])
    return x_adv


def _input_gradient(model: nn.Module, x_adv: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """∇ₓ of the summed cross-entropy; parameter .grad fields stay untouched."""
    x_adv = x_adv.detach().requires_grad_(True)
    # Summed (not averaged) loss: each sample's gradient is independent of the batch size.
    logits = model(x_adv)
    ensure_class_indices("y", y, logits.shape[-1])
    loss = F.cross_entropy(logits, y, reduction="sum")
    (grad,) = torch.autograd.grad(loss, x_adv)
    return grad


# ---------------------------------------------------------------------------
# Attacks
# ---------------------------------------------------------------------------

def fgsm(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, clamp: Clamp = (0.0, 1.0)) -> torch.Tensor:
    """Fast gradient sign method (Goodfellow et al. 2015, eq. 3).

    x_adv = clamp(x + eps · sign(∇ₓ L(f(x), y))).

    Parameters
    ----------
    model : torch.nn.Module
        Maps a batch of inputs to logits. Its mode (train/eval) is left as is;
        put it in eval mode first if it has dropout or batch norm.
    x : torch.Tensor, float, shape (batch, ...)
        Clean inputs inside the valid range.
    y : torch.Tensor, long, shape (batch,)
        True class indices.
    eps : float in [0, inf)
        L∞ radius of the perturbation.
    clamp : (low, high) or None
        Valid input range; ``None`` disables clamping.

    Returns
    -------
    torch.Tensor
        Adversarial inputs, detached, same shape and device as ``x``.
    """
    _check_model(model)
    _check_inputs(x, y)
    eps = ensure_float("eps", eps, low=0.0)
    clamp = _check_clamp(clamp, x)
    x = x.detach()
    if eps == 0:
        return x.clone()
    grad = _input_gradient(model, x, y)
    return _project(x + eps * grad.sign(), x, eps, clamp).detach()


def pgd(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    alpha: float,
    steps: int,
    random_start: bool = True,
    clamp: Clamp = (0.0, 1.0),
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Projected gradient descent, L∞ (Madry et al. 2018, eq. 2 and §2.1).

    x⁰ = x + U(-eps, eps) (random start), then
    xᵗ⁺¹ = Π_{B∞(x, eps) ∩ [low, high]}(xᵗ + alpha · sign(∇ₓ L(f(xᵗ), y))).

    One forward and one backward pass per step, vectorised over the batch.
    With ``random_start=False``, ``steps=1`` and ``alpha=eps`` it equals
    :func:`fgsm` exactly.

    Parameters
    ----------
    model : torch.nn.Module
        Maps inputs to logits (mode left as is).
    x : torch.Tensor, float, shape (batch, ...)
    y : torch.Tensor, long, shape (batch,)
    eps : float in [0, inf)
        L∞ radius.
    alpha : float in (0, inf)
        Step size; Madry et al. use about 2.5 · eps / steps.
    steps : int in [1, 10000]
    random_start : bool
        Start from a uniform point of the ε-ball (recommended: it avoids the
        flat-gradient point at x itself).
    clamp : (low, high) or None
        Valid input range.
    generator : torch.Generator or None
        CPU generator for the random start, for reproducible attacks on any device.

    Returns
    -------
    torch.Tensor
        Adversarial inputs, detached, inside the ε-ball and the valid range.
    """
    _check_model(model)
    _check_inputs(x, y)
    eps = ensure_float("eps", eps, low=0.0)
    alpha = ensure_float("alpha", alpha, low=0.0, low_open=True)
    steps = ensure_int("steps", steps, low=1, high=10_000)
    if not isinstance(random_start, bool):
        raise TypeError(f"random_start must be a bool, got {type(random_start).__name__}")
    clamp = _check_clamp(clamp, x)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    x = x.detach()
    if eps == 0:
        return x.clone()
    # The feasible set is the box [x - eps, x + eps] ∩ [low, high]: compute its
    # corners once, so each projection is a single clamp (same values as _project).
    lo, hi = x - eps, x + eps
    if clamp is not None:
        lo, hi = lo.clamp_min(clamp[0]), hi.clamp_max(clamp[1])
    x_adv = x.clone()
    if random_start:
        # Drawn on the CPU and moved: the same generator gives the same start on every device.
        noise = torch.rand(x.shape, generator=generator, dtype=x.dtype)
        x_adv = torch.clamp(x + (2 * noise.to(x.device) - 1) * eps, lo, hi)
    for _ in range(steps):
        grad = _input_gradient(model, x_adv, y)
        x_adv = torch.clamp(x_adv.add_(grad.sign_(), alpha=alpha), lo, hi)
    return x_adv.detach()


# ---------------------------------------------------------------------------
# Interval bound propagation
# ---------------------------------------------------------------------------

def ibp_bounds(model: nn.Sequential, x: torch.Tensor, eps: float, clamp: Clamp = (0.0, 1.0)) -> tuple[torch.Tensor, torch.Tensor]:
    """Interval bounds on the logits over the L∞ ball (Gowal et al. 2018, eqs. 6-7).

    The input box is [clamp(x - eps), clamp(x + eps)]. Through an affine layer
    with centre μ = (u + l)/2 and radius r = (u - l)/2:
    μ' = W μ + b, r' = |W| r (eq. 6); monotone activations such as ReLU map
    the bounds elementwise (eq. 7). Every logit of every input in the ball lies
    in [lower, upper].

    Parameters
    ----------
    model : torch.nn.Sequential
        Of ``nn.Linear``, ``nn.ReLU`` and ``nn.Flatten`` layers only.
    x : torch.Tensor, float, shape (batch, ...)
    eps : float in [0, inf)
    clamp : (low, high) or None
        Valid input range, intersected with the ball.

    Returns
    -------
    (lower, upper) : tuple of torch.Tensor, shape (batch, n_logits)
        Differentiable in the model's parameters (usable as a training loss).
    """
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"model must be a torch.nn.Sequential of Linear, ReLU and Flatten layers, got {type(model).__name__}")
    for i, layer in enumerate(model):
        if not isinstance(layer, (nn.Linear, nn.ReLU, nn.Flatten)):
            raise TypeError(f"ibp_bounds supports Linear, ReLU and Flatten layers; layer {i} is {type(layer).__name__}")
    _check_inputs(x)
    eps = ensure_float("eps", eps, low=0.0)
    clamp = _check_clamp(clamp, x)
    lower, upper = x - eps, x + eps
    if clamp is not None:
        lower, upper = lower.clamp(*clamp), upper.clamp(*clamp)
    for layer in model:
        if isinstance(layer, nn.Linear):
            lower, upper = _ibp_linear(lower, upper, layer.weight, layer.bias)
        else:  # ReLU is monotone, Flatten only reshapes
            lower, upper = layer(lower), layer(upper)
    return lower, upper


def ibp_linear(lower: torch.Tensor, upper: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Bounds of W z + b over the box lower <= z <= upper (Gowal et al. 2018, eq. 6).

    μ = (upper + lower)/2, r = (upper - lower)/2, μ' = W μ + b, r' = |W| r;
    returns (μ' - r', μ' + r'), the tightest box containing the image.

    Parameters
    ----------
    lower, upper : torch.Tensor, shape (batch, n_in), lower <= upper
    weight : torch.Tensor, shape (n_out, n_in)
    bias : torch.Tensor of shape (n_out,) or None

    Returns
    -------
    (lower, upper) : tuple of torch.Tensor, shape (batch, n_out)
    """
    ensure_tensor("lower", lower, ndim=2, floating=True)
    ensure_tensor("upper", upper, ndim=2, floating=True)
    ensure_tensor("weight", weight, ndim=2, floating=True)
    if lower.shape != upper.shape:
        raise ValueError(f"lower and upper must have the same shape, got {tuple(lower.shape)} and {tuple(upper.shape)}")
    if weight.shape[1] != lower.shape[1]:
        raise ValueError(f"weight must have shape (n_out, {lower.shape[1]}), got {tuple(weight.shape)}")
    if bias is not None:
        ensure_tensor("bias", bias, ndim=1, floating=True)
        if bias.shape[0] != weight.shape[0]:
            raise ValueError(f"bias must have {weight.shape[0]} entries, got {bias.shape[0]}")
    if (lower > upper).any():
        raise ValueError("lower must be <= upper everywhere")
    return _ibp_linear(lower, upper, weight, bias)


def _ibp_linear(lower, upper, weight, bias):
    centre, radius = (upper + lower) / 2, (upper - lower) / 2
    centre = centre @ weight.t()                # W μ
    if bias is not None:
        centre = centre + bias                  # + b
    radius = radius @ weight.abs().t()          # |W| r
    return centre - radius, centre + radius


def ibp_worst_logits(model: nn.Sequential, x: torch.Tensor, y: torch.Tensor, eps: float, clamp: Clamp = (0.0, 1.0)) -> torch.Tensor:
    """Worst-case logits ẑ: the lower bound for the true class, upper for the others (Gowal et al. 2018, eq. 8)."""
    _check_inputs(x, y)
    lower, upper = ibp_bounds(model, x, eps, clamp)
    ensure_class_indices("y", y, upper.shape[1])
    true_class = F.one_hot(y, upper.shape[1]).bool()
    return torch.where(true_class, lower, upper)


@torch.no_grad()
def certified(model: nn.Sequential, x: torch.Tensor, y: torch.Tensor, eps: float, clamp: Clamp = (0.0, 1.0)) -> torch.Tensor:
    """Boolean per input: IBP proves the prediction is ``y`` everywhere in the ball.

    Certified when the lower bound of the true logit exceeds the upper bound of
    every other logit. Sound but incomplete: a ``False`` is not an attack.
    """
    worst = ibp_worst_logits(model, x, y, eps, clamp)
    true_lower = worst.gather(1, y[:, None])[:, 0]
    other_upper = worst.scatter(1, y[:, None], float("-inf")).max(dim=1).values
    return true_lower > other_upper


def _lp_blocks(model: nn.Sequential, x: np.ndarray, eps: float, clamp: Clamp):
    """The triangle-relaxation LP of one input: (bounds, equality rows, inequality rows, logit slice)."""
    lower = x - eps if clamp is None else np.clip(x - eps, *clamp)
    upper = x + eps if clamp is None else np.clip(x + eps, *clamp)
    bounds = list(zip(lower, upper))
    prev = slice(0, len(x))
    eq, ineq = [], []                      # (coefficients {var: coef}, rhs)
    for layer in model:
        if isinstance(layer, nn.Flatten):
            continue
        start = len(bounds)
        if isinstance(layer, nn.Linear):
            W = layer.weight.detach().double().cpu().numpy()
            b = layer.bias.detach().double().cpu().numpy() if layer.bias is not None else np.zeros(W.shape[0])
            centre, radius = (upper + lower) / 2, (upper - lower) / 2
            lower, upper = W @ centre + b - np.abs(W) @ radius, W @ centre + b + np.abs(W) @ radius   # IBP (eq. 6)
            for i in range(W.shape[0]):    # z_i - W_i . v = b_i
                row = {prev.start + j: -W[i, j] for j in range(W.shape[1]) if W[i, j] != 0.0}
                row[start + i] = 1.0
                eq.append((row, b[i]))
        else:                              # ReLU: the convex hull of a = max(0, z) on [l, u]
            for i, (lo, up) in enumerate(zip(lower, upper)):
                z, a = prev.start + i, start + i
                if lo >= 0:
                    eq.append(({a: 1.0, z: -1.0}, 0.0))
                elif up > 0:
                    ineq.append(({z: 1.0, a: -1.0}, 0.0))                              # a >= z
                    ineq.append(({a: 1.0, z: -up / (up - lo)}, -up * lo / (up - lo)))  # a <= u (z - l) / (u - l)
            lower, upper = np.maximum(lower, 0.0), np.maximum(upper, 0.0)
        bounds += list(zip(lower, upper))
        prev = slice(start, len(bounds))
    return bounds, eq, ineq, prev


def _dense(rows, n_vars):
    matrix = np.zeros((len(rows), n_vars))
    for r, (coefs, _) in enumerate(rows):
        for j, value in coefs.items():
            matrix[r, j] = value
    return matrix, np.array([rhs for _, rhs in rows])


def lp_certified(model: nn.Sequential, x: torch.Tensor, y: torch.Tensor, eps: float, clamp: Clamp = (0.0, 1.0)) -> torch.Tensor:
    """Boolean per input: a linear-programming relaxation proves the prediction is ``y`` in the ball.

    Each ReLU whose input bounds (from IBP) straddle 0 is replaced by its convex
    hull, the "triangle" a >= 0, a >= z, a <= u (z - l) / (u - l) (Ehlers 2017;
    Wong and Kolter 2018); then, for each other class j, a linear programme
    minimises logit_y - logit_j over the relaxed network. Certified when every
    minimum is positive. Sound, tighter than IBP (whose box contains the
    relaxation), and slower: a few small LPs per input, so use it on a handful
    of inputs. Exact verification would replace the triangle by a binary
    variable per unstable ReLU (mixed-integer programming, Tjeng et al. 2019).

    Parameters
    ----------
    model : torch.nn.Sequential of Linear, ReLU and Flatten layers
    x : torch.Tensor, float, shape (batch, ...)
    y : torch.Tensor, long, shape (batch,)
    eps : float in [0, inf)
    clamp : (low, high) or None

    Returns
    -------
    torch.Tensor, bool, shape (batch,)
    """
    ibp_bounds(model, x[:1], 0.0)                       # validates the layers
    _check_inputs(x, y)
    eps = ensure_float("eps", eps, low=0.0)
    clamp = _check_clamp(clamp, x)
    flat = x.detach().double().cpu().reshape(len(x), -1).numpy()
    out = []
    for xi, yi in zip(flat, y.tolist()):
        bounds, eq, ineq, logits = _lp_blocks(model, xi, eps, clamp)
        n_vars = len(bounds)
        A_eq, b_eq = _dense(eq, n_vars)
        A_ub, b_ub = _dense(ineq, n_vars) if ineq else (None, None)
        proved = True
        for j in range(logits.stop - logits.start):
            if j == yi:
                continue
            c = np.zeros(n_vars)
            c[logits.start + yi], c[logits.start + j] = 1.0, -1.0
            res = linprog(c, A_ub=A_ub, b_ub=b_ub, A_eq=A_eq, b_eq=b_eq, bounds=bounds, method="highs")
            if res.status != 0 or res.fun <= 1e-6:
                proved = False
                break
        out.append(proved)
    return torch.tensor(out, dtype=torch.bool, device=x.device)


# ---------------------------------------------------------------------------
# Data, models, training and evaluation
# ---------------------------------------------------------------------------

TRAIN_METHODS = ("standard", "pgd", "ibp")


def robust_loss(method: str = "pgd", eps: float = 0.1, pgd_steps: int = 5) -> LossFn:
    """The training loss of ``method``, for :func:`labkit.classifiers.train_classifier`.

    - ``"standard"``: cross-entropy on clean inputs;
    - ``"pgd"``: cross-entropy on PGD examples made against the current model
      (Madry et al. 2018: the inner maximisation of the saddle-point problem),
      α = 2.5 · eps / pgd_steps, the random start drawn from the run's generator;
    - ``"ibp"``: κ · CE(clean) + (1 − κ) · CE(worst-case IBP logits) (Gowal et
      al. 2018, eq. 8), with ε ramped linearly from 0 over the first half of
      training and κ from 1 down to 0.5, as in the paper's schedule.

    Returns
    -------
    callable ``loss(model, batch) -> scalar tensor``
    """
    method = ensure_choice("method", method, TRAIN_METHODS)
    eps = ensure_float("eps", eps, low=0.0)
    pgd_steps = ensure_int("pgd_steps", pgd_steps, low=1, high=1000)

    def loss(model: nn.Module, batch: Batch) -> torch.Tensor:
        xb, yb = batch.x, batch.y
        if method == "pgd" and eps > 0:
            xb = pgd(model, xb, yb, eps, 2.5 * eps / pgd_steps, pgd_steps, generator=batch.generator)
        clean = F.cross_entropy(model(xb), yb)
        if method != "ibp":
            return clean
        frac = min(1.0, batch.step / max(1, batch.total_steps // 2))
        kappa = 1.0 - 0.5 * frac
        worst = ibp_worst_logits(model, xb, yb, eps * frac)
        return kappa * clean + (1 - kappa) * F.cross_entropy(worst, yb)

    return loss


def robust_accuracy(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    attack: str = "pgd",
    steps: int = 20,
    seed: int = 0,
) -> float:
    """Accuracy under an L∞ attack of radius ``eps`` (``"fgsm"`` or ``"pgd"``, α = 2.5·eps/steps)."""
    attack = ensure_choice("attack", attack, ("fgsm", "pgd"))
    eps = ensure_float("eps", eps, low=0.0)
    if attack == "fgsm":
        x_adv = fgsm(model, x, y, eps)
    else:
        steps = ensure_int("steps", steps, low=1, high=10_000)
        gen = torch.Generator().manual_seed(ensure_int("seed", seed, low=0))
        x_adv = pgd(model, x, y, eps, alpha=2.5 * max(eps, 1e-12) / steps, steps=steps, generator=gen)
    return classifiers.accuracy(model, x_adv, y)


def certified_accuracy(model: nn.Sequential, x: torch.Tensor, y: torch.Tensor, eps: float) -> float:
    """Fraction of inputs that IBP certifies at radius ``eps`` (a lower bound on robust accuracy)."""
    return float(certified(model, x, y, eps).float().mean())


# ---------------------------------------------------------------------------
# The lesson's widget: a digit, the perturbation and the prediction
# ---------------------------------------------------------------------------

EPS_RANGE = (0.0, 0.4, 0.02)  # min, max, step of the lesson's ε slider


class AttackViewer:
    """Draw callback for the ε widget: ``viewer(eps, index, model)`` returns a Figure.

    Parameters
    ----------
    models : dict of str to torch.nn.Module
        The models a student can pick (e.g. standard and adversarially trained).
    x, y : torch.Tensor
        A fixed batch of 8x8 images in [0, 1], shape (n, 8, 8) or (n, 64), and their labels.
    steps : int
        PGD steps of the attack; the random start uses a fixed seed, so a
        position of the controls always draws the same picture.
    """

    def __init__(self, models: dict[str, nn.Module], x: torch.Tensor, y: torch.Tensor, steps: int = 20):
        if not isinstance(models, dict) or not models:
            raise TypeError("models must be a non-empty dict of name -> torch.nn.Module")
        for name, model in models.items():
            _check_model(model)
        _check_inputs(x, y)
        self.models, self.x, self.y = models, x, y
        self.steps = ensure_int("steps", steps, low=1, high=1000)

    @property
    def n_images(self) -> int:
        return int(self.x.shape[0])

    def __call__(self, eps: float, index: int, model: str) -> plt.Figure:
        eps = ensure_float("eps", eps, low=0.0, high=1.0)
        index = ensure_int("index", index, low=0, high=self.n_images - 1)
        net = self.models[ensure_choice("model", model, list(self.models))]
        x, y = self.x[index:index + 1], self.y[index:index + 1]
        gen = torch.Generator().manual_seed(0)
        x_adv = pgd(net, x, y, eps, alpha=2.5 * max(eps, 1e-6) / self.steps, steps=self.steps, generator=gen) if eps > 0 else x
        with torch.no_grad():
            p_clean = F.softmax(net(x), dim=1)[0].cpu()
            p_adv = F.softmax(net(x_adv), dim=1)[0].cpu()
        delta = (x_adv - x)[0].reshape(8, 8).cpu().numpy()
        fig, axes = plt.subplots(1, 3, figsize=(8.4, 3.0))
        panels = [
            (x[0].reshape(8, 8).cpu().numpy(), "gray_r", 0.0, 1.0, f"clean: predicts {int(p_clean.argmax())} ({float(p_clean.max()):.2f})"),
            (delta, "RdBu_r", -EPS_RANGE[1], EPS_RANGE[1], f"perturbation, ε = {eps:.2f}"),
            (x_adv[0].reshape(8, 8).cpu().numpy(), "gray_r", 0.0, 1.0, f"attacked: predicts {int(p_adv.argmax())} ({float(p_adv.max()):.2f})"),
        ]
        for ax, (img, cmap, vmin, vmax, title) in zip(axes, panels):
            ax.imshow(img, cmap=cmap, vmin=vmin, vmax=vmax)
            ax.set_title(title, fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
        fooled = int(p_adv.argmax()) != int(y)
        fig.suptitle(f"{model} model, true label {int(y)}: {'fooled' if fooled else 'still correct'}", fontsize=10)
        fig.tight_layout()
        return fig


def attack_widget(models: dict[str, nn.Module], x: torch.Tensor, y: torch.Tensor, steps: int = 20):
    """Lesson 09's widget: ε (:data:`EPS_RANGE`), a test image and a model redrawing an :class:`AttackViewer`.

    Parameters
    ----------
    models : dict of str to torch.nn.Module
        The models a student can pick; the first is shown first.
    x, y : torch.Tensor
        The images (n, 8, 8) in [0, 1] and their labels.
    steps : int
        PGD steps of the viewer's attack.

    Returns
    -------
    ipywidgets.VBox
        From :func:`labkit.ui.interactive_figure`, showing image 0 at ε = 0.1.
    """
    viewer = AttackViewer(models, x, y, steps=steps)
    return interactive_figure(
        viewer,
        eps=float_slider("ε", *EPS_RANGE, 0.1),
        index=int_slider("test image", 0, viewer.n_images - 1, 0),
        model=dropdown("model", list(viewer.models)),
    )


def plot_robustness_curves(curves: dict[str, list[float]], eps_grid, title: str, ylabel: str = "accuracy", ax=None) -> plt.Figure:
    """Line plot of accuracy against ε for several models or methods."""
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 3.5))
    else:
        fig = ax.figure
    for name, values in curves.items():
        ax.plot(eps_grid, values, marker="o", ms=3, label=name)
    ax.set(xlabel="ε (L∞, pixels in [0, 1])", ylabel=ylabel, ylim=(-0.02, 1.02), title=title)
    ax.legend(fontsize=8)
    return fig


__all__ = [
    "fgsm", "pgd", "project_linf", "ibp_bounds", "ibp_linear", "ibp_worst_logits", "certified", "lp_certified", "robust_loss",
    "robust_accuracy", "certified_accuracy", "AttackViewer",
    "plot_robustness_curves", "EPS_RANGE", "TRAIN_METHODS",
    "attack_widget",
]
