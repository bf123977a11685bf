"""Lesson 11: catastrophic forgetting and Elastic Weight Consolidation.

- :func:`permuted_digits_tasks`: a sequence of tasks built from scikit-learn's
  bundled 8x8 digits, task k applying its own fixed pixel permutation
  (the "permuted MNIST" protocol of Goodfellow et al. 2013, used by Kirkpatrick et al. 2017).
- :func:`diagonal_fisher`: the diagonal of the Fisher information
  F_i = E_x E_{y ~ p_theta(y|x)} [(d log p_theta(y|x) / d theta_i)^2]
  at the old task's solution (Kirkpatrick et al. 2017, sec. 2), exact over the
  classes and vectorised with ``torch.func`` per-sample gradients.
- :func:`ewc_penalty`: (lambda / 2) sum_i F_i (theta_i - theta*_i)^2, their eq. 3,
  with the anchor theta* *stored* (a detached copy), not ``param.data``.
- :func:`train_sequential`: fine-tuning, an L2 anchor (F = 1), EWC and
  experience replay on task B after task A, recording accuracy on both tasks
  while B trains.
"""
from __future__ import annotations

import functools

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from labkit.ui import float_slider, interactive_figure
from labkit.validation import ensure_choice, ensure_float, ensure_int, ensure_tensor

STRATEGIES = ("finetune", "l2", "ewc", "replay")
LOG10_LAMBDA_RANGE = (-1.0, 4.0, 0.25)  # widget: lambda = 10 ** value


# ---------------------------------------------------------------- data and model
def permuted_digits_tasks(n_tasks: int = 2, seed: int = 0, test_size: float = 0.3) -> list[dict]:
    """Tasks from the digits data set, each with its own fixed pixel permutation.

    Task 0 keeps the original pixel order. Pixels are scaled to [0, 1]. All
    tasks share one train/test split of the images.

    Returns
    -------
    list of dict with X_train, y_train, X_test, y_test (float32 / int64 tensors) and permutation.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    n_tasks = ensure_int("n_tasks", n_tasks, 1, 100)
    test_size = ensure_float("test_size", test_size, 0.0, 1.0, low_open=True, high_open=True)
    digits = load_digits()
    X = (digits.data / 16.0).astype(np.float32)
    X_tr, X_te, y_tr, y_te = train_test_split(X, digits.target, test_size=test_size, random_state=seed, stratify=digits.target)
    rng = np.random.default_rng(seed)
    tasks = []
    for k in range(n_tasks):
        perm = np.arange(X.shape[1]) if k == 0 else rng.permutation(X.shape[1])
        tasks.append({
            "X_train": torch.from_numpy(X_tr[:, perm].copy()), "y_train": torch.from_numpy(y_tr).long(),
            "X_test": torch.from_numpy(X_te[:, perm].copy()), "y_test": torch.from_numpy(y_te).long(),
            "permutation": perm,
        })
    return tasks


def make_mlp(n_in: int = 64, hidden: int = 64, n_out: int = 10, seed: int = 0) -> nn.Sequential:
    """A two-layer ReLU MLP with seeded initialisation."""
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(ensure_int("seed", seed, 0, 2**63 - 1))
    try:
        model = nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, n_out))
    finally:
        torch.random.set_rng_state(gen_state)
    return model


def accuracy(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of rows of ``X`` classified as ``y``."""
    with torch.no_grad():
        return float((model(X).argmax(1) == y).float().mean())


# ---------------------------------------------------------------- EWC
def diagonal_fisher(model: nn.Module, X: torch.Tensor, y: torch.Tensor | None = None, chunk_size: int = 512) -> list[torch.Tensor]:
    """Diagonal Fisher information of a classifier at its current parameters.

    With ``y=None`` (default) the *true* Fisher of Kirkpatrick et al. (2017):
    the expectation over y ~ p_theta(y|x) is taken exactly, summing over the
    classes weighted by the model's probabilities. With labels ``y``, the
    "empirical Fisher" (squared gradients of log p(y_n|x_n)), a common but
    different quantity (Kunstner et al. 2019).

    Parameters
    ----------
    model : nn.Module
        Maps (n, d) to logits (n, classes).
    X : torch.Tensor, shape (n, d)
        Inputs of the old task.
    y : LongTensor of shape (n,) or None
    chunk_size : int
        Samples per vectorised per-sample-gradient pass.

    Returns
    -------
    list of torch.Tensor, one per parameter of ``model`` (same shapes), non-negative.
    """
    from torch.func import functional_call, grad, vmap

    X = ensure_tensor("X", X, ndim=2, floating=True)
    if y is not None:
        y = ensure_tensor("y", y, ndim=1)
        if len(y) != len(X):
            raise ValueError(f"y must have one label per row of X ({len(X)}), got {len(y)}")
    chunk_size = ensure_int("chunk_size", chunk_size, 1, None)
    names = [n for n, _ in model.named_parameters()]
    params = {n: p.detach() for n, p in model.named_parameters()}

    def log_probs(p, x):
        return torch.log_softmax(functional_call(model, p, (x[None],))[0], dim=-1)

    def sq_grad_expected(p, x):
        # E_{y~p(y|x)} (d log p(y|x))^2 = sum_c p_c (d log p_c)^2, all classes at once
        jac = torch.func.jacrev(log_probs)(p, x)           # name -> (classes, *shape)
        prob = log_probs(p, x).exp().detach()
        return {n: torch.einsum("c,c...->...", prob, j.pow(2)) for n, j in jac.items()}

    def sq_grad_label(p, x, label):
        g = grad(lambda q: log_probs(q, x)[label])(p)
        return {n: v.pow(2) for n, v in g.items()}

    total = {n: torch.zeros_like(v) for n, v in params.items()}
    for start in range(0, len(X), chunk_size):
        xb = X[start:start + chunk_size]
        if y is None:
            per = vmap(sq_grad_expected, in_dims=(None, 0))(params, xb)
        else:
            per = vmap(sq_grad_label, in_dims=(None, 0, 0))(params, xb, y[start:start + chunk_size].long())
        for n in names:
            total[n] += per[n].sum(0)
    return [total[n] / len(X) for n in names]


def softmax_regression_fisher(X, W) -> np.ndarray:
    """Closed-form diagonal Fisher of softmax regression, logits = X @ W.T (no bias).

    d log p_y / d W_kj = (1[y=k] - p_k) x_j, and sum_y p_y (1[y=k] - p_k)^2 = p_k (1 - p_k), so
    F_kj = mean_n p_nk (1 - p_nk) x_nj^2.

    Parameters
    ----------
    X : array-like, shape (n, d)
    W : array-like, shape (classes, d)

    Returns
    -------
    np.ndarray, shape (classes, d)
    """
    from labkit.validation import ensure_array

    X = ensure_array("X", X, ndim=2, min_len=1)
    W = ensure_array("W", W, ndim=2, min_len=1)
    if X.shape[1] != W.shape[1]:
        raise ValueError(f"X has {X.shape[1]} features but W has {W.shape[1]} columns")
    z = X @ W.T
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    return (p * (1 - p)).T @ (X ** 2) / X.shape[0]


def ewc_penalty(params, anchor, fisher, lam: float) -> torch.Tensor:
    """EWC penalty (lambda / 2) * sum_i F_i (theta_i - theta*_i)^2 (Kirkpatrick et al. 2017, eq. 3).

    Parameters
    ----------
    params : list of torch.Tensor
        Current parameters (gradients flow through them).
    anchor : list of torch.Tensor
        theta*, the old task's solution, stored as detached copies.
    fisher : list of torch.Tensor
        Diagonal Fisher at theta* (non-negative); all ones gives a plain L2 anchor.
    lam : float >= 0

    Returns
    -------
    torch.Tensor, a scalar.
    """
    lam = ensure_float("lam", lam, 0.0)
    params, anchor, fisher = list(params), list(anchor), list(fisher)
    if not (len(params) == len(anchor) == len(fisher)) or not params:
        raise ValueError(f"params, anchor and fisher must be non-empty lists of equal length, got {len(params)}, {len(anchor)}, {len(fisher)}")
    total = params[0].new_zeros(())
    for i, (p, a, f) in enumerate(zip(params, anchor, fisher)):
        if p.shape != a.shape or p.shape != f.shape:
            raise ValueError(f"entry {i}: params, anchor and fisher shapes differ: {tuple(p.shape)}, {tuple(a.shape)}, {tuple(f.shape)}")
        total = total + (f * (p - a.detach()).pow(2)).sum()
    return 0.5 * lam * total


# ---------------------------------------------------------------- sequential training
def _train(model, X, y, steps, lr, penalty=None, replay=None, batch=128, seed=0, record=None, every=10):
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    for step in range(steps):
        idx = torch.randint(0, len(X), (batch,), generator=g)
        xb, yb = X[idx], y[idx]
        if replay is not None:  # half of every batch drawn from the stored old-task samples
            ridx = torch.randint(0, len(replay[0]), (batch // 2,), generator=g)
            xb, yb = torch.cat([xb, replay[0][ridx]]), torch.cat([yb, replay[1][ridx]])
        loss = nn.functional.cross_entropy(model(xb), yb)
        if penalty is not None:
            loss = loss + penalty(model)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if record is not None and (step + 1) % every == 0:
            record(step + 1)


@functools.lru_cache(maxsize=4)
def _task_a_solution(seed: int, steps: int, lr: float) -> tuple[dict, list]:
    tasks = permuted_digits_tasks(2, seed=seed)
    model = make_mlp(seed=seed)
    _train(model, tasks[0]["X_train"], tasks[0]["y_train"], steps, lr, seed=seed)
    # 300 samples estimate the expectation over x well enough and keep this fast
    fisher = diagonal_fisher(model, tasks[0]["X_train"][:300])
    return {k: v.clone() for k, v in model.state_dict().items()}, fisher


def train_sequential(strategy: str = "ewc", lam: float = 100.0, steps_a: int = 200, steps_b: int = 200,
                     lr: float = 1e-2, replay_size: int = 100, every: int = 20, seed: int = 0) -> dict:
    """Train on task A (original digits), then task B (permuted digits) with ``strategy``.

    Parameters
    ----------
    strategy : {"finetune", "l2", "ewc", "replay"}
        "finetune": plain training on B. "l2": penalty with F = 1 (every weight
        equally stiff). "ewc": Fisher-weighted penalty (eq. 3). "replay": half of
        each batch from ``replay_size`` stored task-A training samples.
    lam : float >= 0
        Penalty strength for "l2" and "ewc".
    steps_a, steps_b : int
        Adam steps (batches of 128) on each task.
    every : int
        Record accuracies every ``every`` steps of task B.

    Returns
    -------
    dict with steps (list), acc_a and acc_b (test accuracies while B trains, the
    first entry before any B step), final_a, final_b.
    """
    strategy = ensure_choice("strategy", strategy, STRATEGIES)
    lam = ensure_float("lam", lam, 0.0)
    steps_a = ensure_int("steps_a", steps_a, 1, 100_000)
    steps_b = ensure_int("steps_b", steps_b, 1, 100_000)
    lr = ensure_float("lr", lr, 0.0, 1.0, low_open=True)
    every = ensure_int("every", every, 1, steps_b)
    replay_size = ensure_int("replay_size", replay_size, 1, 100_000)
    seed = ensure_int("seed", seed, 0, 2**31 - 1)
    tasks = permuted_digits_tasks(2, seed=seed)
    state, fisher = _task_a_solution(seed, steps_a, lr)
    model = make_mlp(seed=seed)
    model.load_state_dict(state)
    anchor = [p.detach().clone() for p in model.parameters()]
    penalty, replay = None, None
    if strategy == "ewc":
        penalty = lambda m: ewc_penalty(m.parameters(), anchor, fisher, lam)  # noqa: E731
    elif strategy == "l2":
        ones = [torch.ones_like(a) for a in anchor]
        penalty = lambda m: ewc_penalty(m.parameters(), anchor, ones, lam)  # noqa: E731
    elif strategy == "replay":
        g = torch.Generator().manual_seed(seed)
        keep = torch.randperm(len(tasks[0]["X_train"]), generator=g)[:replay_size]
        replay = (tasks[0]["X_train"][keep], tasks[0]["y_train"][keep])
    a, b = tasks
    history = {"steps": [0], "acc_a": [accuracy(model, a["X_test"], a["y_test"])], "acc_b": [accuracy(model, b["X_test"], b["y_test"])]}

    def record(step):
        history["steps"].append(step)
        history["acc_a"].append(accuracy(model, a["X_test"], a["y_test"]))
        history["acc_b"].append(accuracy(model, b["X_test"], b["y_test"]))

    _train(model, b["X_train"], b["y_train"], steps_b, lr, penalty, replay, seed=seed + 1, record=record, every=every)
    history["final_a"], history["final_b"] = history["acc_a"][-1], history["acc_b"][-1]
    return history


def plot_ewc_lambda(log10_lambda: float = 2.0) -> plt.Figure:
    """Widget callback: accuracy on tasks A and B while B trains, EWC at lambda = 10**log10_lambda, vs fine-tuning."""
    lo, hi, _ = LOG10_LAMBDA_RANGE
    log10_lambda = ensure_float("log10_lambda", log10_lambda, lo, hi)
    lam = 10.0 ** log10_lambda
    ewc = train_sequential("ewc", lam, steps_b=100, every=10)
    plain = _cached_finetune()
    fig, ax = plt.subplots(figsize=(7, 3.8))
    ax.plot(plain["steps"], plain["acc_a"], color="tab:gray", ls="--", label="fine-tune: task A")
    ax.plot(plain["steps"], plain["acc_b"], color="tab:gray", ls=":", label="fine-tune: task B")
    ax.plot(ewc["steps"], ewc["acc_a"], color="tab:blue", label=f"EWC: task A (final {ewc['final_a']:.2f})")
    ax.plot(ewc["steps"], ewc["acc_b"], color="tab:orange", label=f"EWC: task B (final {ewc['final_b']:.2f})")
    ax.set(xlabel="training steps on task B", ylabel="test accuracy", ylim=(0, 1.02), title=f"EWC with lambda = {lam:.3g}")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


@functools.lru_cache(maxsize=1)
def _cached_finetune() -> dict:
    return train_sequential("finetune", 0.0, steps_b=100, every=10)


def ewc_lambda_widget():
    """Lesson 11's widget: log10 of EWC's lambda (:data:`LOG10_LAMBDA_RANGE`) redrawing :func:`plot_ewc_lambda`.

    Returns
    -------
    ipywidgets.VBox
        From :func:`labkit.ui.interactive_figure`, showing lambda = 100.
    """
    return interactive_figure(plot_ewc_lambda, log10_lambda=float_slider("log10 λ", *LOG10_LAMBDA_RANGE, 2.0))


__all__ = [
    "STRATEGIES", "LOG10_LAMBDA_RANGE", "permuted_digits_tasks", "make_mlp", "accuracy", "diagonal_fisher",
    "softmax_regression_fisher", "ewc_penalty", "train_sequential", "plot_ewc_lambda",
    "ewc_lambda_widget",
]
