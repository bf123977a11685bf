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
from labkit.classifiers import N_FEATURES, Batch, LossFn, accuracy, cross_entropy_loss, load_digits, make_mlp, train_classifier
from labkit.validation import (
    ensure_array, ensure_choice, ensure_class_indices, ensure_float, ensure_instance, ensure_int, ensure_tensor,
)

STRATEGIES = ("finetune", "l2", "ewc", "replay")
LOG10_LAMBDA_RANGE = (-1.0, 4.0, 0.25)  # widget: lambda = 10 ** value
BATCH_SIZE = 128


# ---------------------------------------------------------------- data
def permuted_digits_tasks(n_tasks: int = 2, seed: int = 0, test_fraction: float = 0.3) -> list[dict]:
    """Tasks from the digits data set, each with its own fixed pixel permutation.

    Task 0 keeps the original pixel order. All tasks share one stratified
    train/test split of the images (:func:`labkit.classifiers.load_digits`).

    Parameters
    ----------
    n_tasks : int in [1, 100]
    seed : int >= 0
        Seeds the split and the permutations.
    test_fraction : float in (0, 1)
        Share of each digit held out for testing.

    Returns
    -------
    list of dict with x_train, y_train, x_test, y_test (float32 in [0, 1] / int64 tensors) and permutation.
    """
    n_tasks = ensure_int("n_tasks", n_tasks, 1, 100)
    seed = ensure_int("seed", seed, 0, 2**31 - 1)
    digits = load_digits(test_fraction=test_fraction, seed=seed)
    rng = np.random.default_rng(seed)
    tasks = []
    for k in range(n_tasks):
        perm = np.arange(N_FEATURES) if k == 0 else rng.permutation(N_FEATURES)
        tasks.append({
            "x_train": digits.x_train[:, perm], "y_train": digits.y_train,
            "x_test": digits.x_test[:, perm], "y_test": digits.y_test,
            "permutation": perm,
        })
    return tasks


# ---------------------------------------------------------------- EWC
def diagonal_fisher(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None, chunk_size: int = 512) -> list[torch.Tensor]:
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
    x : torch.Tensor, shape (n, d)
        Inputs of the old task.
    y : LongTensor of shape (n,) or None
    chunk_size : int
        Samples per vectorised per-sample-gradient pass.

    Returns
    -------
    list of torch.Tensor, one per parameter of ``model`` (same shapes), non-negative.
    """
    from torch.func import functional_call, grad, vmap

    ensure_instance("model", model, nn.Module)
    x = ensure_tensor("x", x, ndim=2, floating=True)
    if len(x) == 0:
        raise ValueError("x must hold at least one input, got 0 rows")
    if y is not None:
        y = ensure_tensor("y", y, ndim=1)
        if y.dtype != torch.long:
            raise TypeError(f"y must hold class indices as torch.long, got dtype {y.dtype}")
        if len(y) != len(x):
            raise ValueError(f"y must have one label per row of x ({len(x)}), got {len(y)}")
        with torch.no_grad():
            ensure_class_indices("y", y, model(x[:1]).shape[-1])
    chunk_size = ensure_int("chunk_size", chunk_size, 1, None)
    names = [n for n, _ in model.named_parameters()]
    params = {n: p.detach() for n, p in model.named_parameters()}

    def log_probs(p, row):
        return torch.log_softmax(functional_call(model, p, (row[None],))[0], dim=-1)

    def sq_grad_expected(p, row):
        # E_{y~p(y|x)} (d log p(y|x))^2 = sum_c p_c (d log p_c)^2, all classes at once
        jac = torch.func.jacrev(log_probs)(p, row)           # name -> (classes, *shape)
        prob = log_probs(p, row).exp().detach()
        return {n: torch.einsum("c,c...->...", prob, j.pow(2)) for n, j in jac.items()}

    def sq_grad_label(p, row, label):
        g = grad(lambda q: log_probs(q, row)[label])(p)
        return {n: v.pow(2) for n, v in g.items()}

    total = {n: torch.zeros_like(v) for n, v in params.items()}
    for start in range(0, len(x), chunk_size):
        xb = x[start:start + chunk_size]
        if y is None:
            per = vmap(sq_grad_expected, in_dims=(None, 0))(params, xb)
        else:
            per = vmap(sq_grad_label, in_dims=(None, 0, 0))(params, xb, y[start:start + chunk_size].long())
        for n in names:
            total[n] += per[n].sum(0)
    return [total[n] / len(x) for n in names]


def softmax_regression_fisher(x, W) -> np.ndarray:
    """Closed-form diagonal Fisher of softmax regression, logits = x @ W.T (no bias).

    d log p_y / d W_kj = (1[y=k] - p_k) x_j, and sum_y p_y (1[y=k] - p_k)^2 = p_k (1 - p_k), so
    F_kj = mean_n p_nk (1 - p_nk) x_nj^2.

    Parameters
    ----------
    x : array-like, shape (n, d)
    W : array-like, shape (classes, d)

    Returns
    -------
    np.ndarray, shape (classes, d)
    """
    x = ensure_array("x", x, ndim=2, min_len=1)
    W = ensure_array("W", W, ndim=2, min_len=1)
    if x.shape[1] != W.shape[1]:
        raise ValueError(f"x has {x.shape[1]} features but W has {W.shape[1]} columns")
    z = x @ W.T
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    return (p * (1 - p)).T @ (x ** 2) / x.shape[0]


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
def _replay_loss(replay: tuple[torch.Tensor, torch.Tensor]) -> LossFn:
    def loss(model: nn.Module, batch: Batch) -> torch.Tensor:
        # half of every batch's size again, drawn from the stored old-task samples
        ridx = torch.randint(0, len(replay[0]), (max(1, len(batch.y) // 2),), generator=batch.generator)
        return cross_entropy_loss(model, Batch(torch.cat([batch.x, replay[0][ridx]]), torch.cat([batch.y, replay[1][ridx]]),
                                               batch.step, batch.total_steps, batch.generator))
    return loss


def _penalised_loss(penalty) -> LossFn:
    return lambda model, batch: cross_entropy_loss(model, batch) + penalty(model)


@functools.lru_cache(maxsize=4)
def _task_a_solution(seed: int, epochs: int, lr: float) -> tuple[dict, list]:
    tasks = permuted_digits_tasks(2, seed=seed)
    model = make_mlp(seed=seed)
    train_classifier(model, tasks[0]["x_train"], tasks[0]["y_train"], epochs=epochs, batch_size=BATCH_SIZE, lr=lr, seed=seed)
    # 300 samples estimate the expectation over x well enough and keep this fast
    fisher = diagonal_fisher(model, tasks[0]["x_train"][:300])
    return {k: v.clone() for k, v in model.state_dict().items()}, fisher


def train_sequential(strategy: str = "ewc", lam: float = 100.0, epochs_a: int = 20, epochs_b: int = 20,
                     lr: float = 1e-2, replay_size: int = 100, seed: int = 0) -> dict:
    """Train on task A (original digits), then task B (permuted digits) with ``strategy``.

    Both tasks train with :func:`labkit.classifiers.train_classifier` (Adam,
    shuffled batches of 128).

    Parameters
    ----------
    strategy : {"finetune", "l2", "ewc", "replay"}
        "finetune": plain training on B. "l2": penalty with F = 1 (every weight
        equally stiff). "ewc": Fisher-weighted penalty (eq. 3). "replay": every
        batch of B is extended by half its size of samples drawn from
        ``replay_size`` stored task-A training samples.
    lam : float >= 0
        Penalty strength for "l2" and "ewc".
    epochs_a, epochs_b : int
        Epochs on each task.
    lr : float in (0, 1]
    replay_size : int >= 1
    seed : int >= 0

    Returns
    -------
    dict with epochs (list), acc_a and acc_b (test accuracies after each epoch
    of B, the first entry before any B step), final_a, final_b.
    """
    strategy = ensure_choice("strategy", strategy, STRATEGIES)
    lam = ensure_float("lam", lam, 0.0)
    epochs_a = ensure_int("epochs_a", epochs_a, 1, 10_000)
    epochs_b = ensure_int("epochs_b", epochs_b, 1, 10_000)
    lr = ensure_float("lr", lr, 0.0, 1.0, low_open=True)
    replay_size = ensure_int("replay_size", replay_size, 1, 100_000)
    seed = ensure_int("seed", seed, 0, 2**31 - 1)
    tasks = permuted_digits_tasks(2, seed=seed)
    state, fisher = _task_a_solution(seed, epochs_a, lr)
    model = make_mlp(seed=seed)
    model.load_state_dict(state)
    anchor = [p.detach().clone() for p in model.parameters()]
    loss_fn = cross_entropy_loss
    if strategy == "ewc":
        loss_fn = _penalised_loss(lambda m: ewc_penalty(m.parameters(), anchor, fisher, lam))
    elif strategy == "l2":
        ones = [torch.ones_like(a) for a in anchor]
        loss_fn = _penalised_loss(lambda m: ewc_penalty(m.parameters(), anchor, ones, lam))
    elif strategy == "replay":
        g = torch.Generator().manual_seed(seed)
        keep = torch.randperm(len(tasks[0]["x_train"]), generator=g)[:replay_size]
        loss_fn = _replay_loss((tasks[0]["x_train"][keep], tasks[0]["y_train"][keep]))
    a, b = tasks
    history = {"epochs": [], "acc_a": [], "acc_b": []}

    def record(epoch: int) -> None:
        history["epochs"].append(epoch)
        history["acc_a"].append(accuracy(model, a["x_test"], a["y_test"]))
        history["acc_b"].append(accuracy(model, b["x_test"], b["y_test"]))

    record(0)
    train_classifier(model, b["x_train"], b["y_train"], epochs=epochs_b, batch_size=BATCH_SIZE, lr=lr, loss_fn=loss_fn,
                     seed=seed + 1, on_epoch_end=record)
    history["final_a"], history["final_b"] = history["acc_a"][-1], history["acc_b"][-1]
    return history


def plot_ewc_lambda(log10_lambda: float = 2.0) -> plt.Figure:
    """Widget callback: accuracy on tasks A and B while B trains, EWC at lambda = 10**log10_lambda, vs fine-tuning."""
    lo, hi, _ = LOG10_LAMBDA_RANGE
    log10_lambda = ensure_float("log10_lambda", log10_lambda, lo, hi)
    lam = 10.0 ** log10_lambda
    ewc = train_sequential("ewc", lam, epochs_b=10)
    plain = _cached_finetune()
    fig, ax = plt.subplots(figsize=(7, 3.8))
    ax.plot(plain["epochs"], plain["acc_a"], color="tab:gray", ls="--", label="fine-tune: task A")
    ax.plot(plain["epochs"], plain["acc_b"], color="tab:gray", ls=":", label="fine-tune: task B")
    ax.plot(ewc["epochs"], ewc["acc_a"], color="tab:blue", label=f"EWC: task A (final {ewc['final_a']:.2f})")
    ax.plot(ewc["epochs"], ewc["acc_b"], color="tab:orange", label=f"EWC: task B (final {ewc['final_b']:.2f})")
    ax.set(xlabel="epochs on task B", ylabel="test accuracy", ylim=(0, 1.02), title=f"EWC with lambda = {lam:.3g}")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


@functools.lru_cache(maxsize=1)
def _cached_finetune() -> dict:
    return train_sequential("finetune", 0.0, epochs_b=10)


def ewc_lambda_widget():
    """Lesson 11's widget: log10 of EWC's lambda (:data:`LOG10_LAMBDA_RANGE`) redrawing :func:`plot_ewc_lambda`.

    Returns
    -------
    ipywidgets.VBox
        From :func:`labkit.ui.interactive_figure`, showing lambda = 100.
    """
    return interactive_figure(plot_ewc_lambda, log10_lambda=float_slider("log10 λ", *LOG10_LAMBDA_RANGE, 2.0))


def lambda_frontier(strategy: str, lams, seed: int = 0, epochs_b: int = 20) -> list[tuple[float, float, float]]:
    """(lambda, final task-A accuracy, final task-B accuracy) of :func:`train_sequential` for each lambda.

    Two penalties are compared fairly on their frontiers over lambda, not at one lambda each.
    """
    strategy = ensure_choice("strategy", strategy, ("l2", "ewc"))
    out = []
    for lam in lams:
        h = train_sequential(strategy, float(lam), epochs_b=epochs_b, seed=seed)
        out.append((float(lam), h["final_a"], h["final_b"]))
    return out


# ---------------------------------------------------------------- forgetting safety (Qi et al. 2023)
SAFETY_STRATEGIES = ("finetune", "ewc", "replay")


def sequence_fisher(model: nn.Module, idx: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
    """Empirical diagonal Fisher of a language model on demonstrations: mean squared gradient of each one's loss.

    ``idx, targets, mask`` as from :func:`labkit.lm.train.sft_tensors`; the
    loss of a demonstration is its mean NLL over the supervised tokens. The
    empirical Fisher (labels = the demonstrations, Kunstner et al. 2019) is
    the usual choice for sequence models, where the expectation over every
    possible reply is out of reach.
    """
    ensure_instance("model", model, nn.Module)
    if not (len(idx) == len(targets) == len(mask)) or len(idx) == 0:
        raise ValueError("idx, targets and mask must hold the same, non-zero number of rows")
    params = [p for p in model.parameters()]
    total = [torch.zeros_like(p) for p in params]
    for i in range(len(idx)):
        model.zero_grad(set_to_none=True)
        _, loss = model(idx[i:i + 1], targets[i:i + 1], mask[i:i + 1])
        loss.backward()
        for t, p in zip(total, params):
            t += p.grad.detach() ** 2
    model.zero_grad(set_to_none=True)
    return [t / len(idx) for t in total]


def finetune_safety_run(assistant, strategy: str = "finetune", seed: int = 0, steps: int = 100,
                        eval_steps=(0, 25, 50, 100), lr: float = 3e-3, batch_size: int = 16, lam: float = 1000.0,
                        replay_share: float = 0.125, n_fisher: int = 64, split: str = "test") -> dict:
    """Fine-tune the SFT assistant on benign demonstrations only; record refusal and helpfulness as it trains.

    Qi et al. (2023) showed that fine-tuning an aligned model on benign data
    erodes its refusals. Strategies: "finetune" (plain), "ewc" (eq. 3 with an
    empirical Fisher on ``n_fisher`` safety demonstrations, i.e. harmful
    requests answered with refusals), "replay" (``replay_share`` of every
    batch drawn from the safety demonstrations).

    Returns
    -------
    dict with ``steps``, ``refusal`` (held-out harmful prompts of ``split``)
    and ``helpful`` (held-out benign prompts), one entry per ``eval_steps``.
    """
    import copy

    from labkit.lm.harness import is_correct, is_refusal
    from labkit.lm.replies import reply
    from labkit.lm.train import sft_tensors

    strategy = ensure_choice("strategy", strategy, SAFETY_STRATEGIES)
    steps = ensure_int("steps", steps, 1, 100_000)
    lr = ensure_float("lr", lr, 0.0, 1.0, low_open=True)
    replay_share = ensure_float("replay_share", replay_share, 0.0, 1.0)
    eval_steps = sorted({ensure_int("eval_steps", s, 0, steps) for s in eval_steps})
    world, tok = assistant.world, assistant.tokenizer
    model = copy.deepcopy(assistant.sft).train()
    benign = [(e.prompt, e.response) for e in world.sft if e.kind == "benign"]
    safety = [(e.prompt, e.response) for e in world.sft if e.kind == "harmful"]
    idx, tgt, mask = sft_tensors(tok, benign + safety, model.cfg.context, system_every=0)
    n_benign = len(benign)
    g = torch.Generator().manual_seed(ensure_int("seed", seed, 0))
    anchor = [p.detach().clone() for p in model.parameters()]
    fisher = None
    if strategy == "ewc":
        rows = n_benign + torch.randperm(len(safety), generator=g)[:n_fisher]
        fisher = sequence_fisher(model, idx[rows], tgt[rows], mask[rows])
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    evaluation = world.prompts(split)
    harmful = [e.prompt for e in evaluation if e.kind == "harmful"]
    helpful = [e for e in evaluation if e.kind == "benign"]
    history = {"steps": [], "refusal": [], "helpful": []}

    def record(step: int) -> None:
        model.eval()
        replies = reply(model, tok, harmful + [e.prompt for e in helpful])
        history["steps"].append(step)
        history["refusal"].append(float(np.mean([is_refusal(r) for r in replies[:len(harmful)]])))
        history["helpful"].append(float(np.mean([is_correct(r, e.answer) for r, e in zip(replies[len(harmful):], helpful)])))
        model.train()

    n_replay = int(round(replay_share * batch_size)) if strategy == "replay" else 0
    for step in range(steps + 1):
        if step in eval_steps:
            record(step)
        if step == steps:
            break
        rows = torch.randint(0, n_benign, (batch_size - n_replay,), generator=g)
        if n_replay:
            rows = torch.cat([rows, n_benign + torch.randint(0, len(safety), (n_replay,), generator=g)])
        _, loss = model(idx[rows], tgt[rows], mask[rows])
        if fisher is not None:
            loss = loss + ewc_penalty(model.parameters(), anchor, fisher, lam)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    model.eval()
    return history


# Chosen on the validation prompts (seed 0, 100 steps): plain fine-tuning took
# refusal from 0.95 to 0.42, EWC at lambda 1000 held it at 0.73.
SAFETY_SETTINGS = dict(steps=150, eval_steps=(0, 25, 50, 100, 150), lr=3e-3, batch_size=16, lam=1000.0,
                       replay_share=0.125, n_fisher=64)
SAFETY_SEEDS = (0, 1, 2)
SAFETY_STUDY_VERSION = "1"


def _safety_key() -> str:
    import hashlib
    import json

    from labkit.lm.cache import config_key
    from labkit.lm.train import get_config

    blob = json.dumps({"assistant": config_key(get_config("default")), "settings": SAFETY_SETTINGS,
                       "seeds": SAFETY_SEEDS, "version": SAFETY_STUDY_VERSION}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def default_safety_forgetting(rebuild: bool = False) -> dict:
    """Every strategy of :func:`finetune_safety_run` on the default assistant, for each of :data:`SAFETY_SEEDS`, cached.

    Returns ``{strategy: [history per seed]}`` on the test prompts (a few minutes once, then instant).
    """
    import json

    from labkit.lm.cache import cached, get_assistant

    def build() -> dict:
        a = get_assistant("default")
        return {s: [finetune_safety_run(a, s, seed, **SAFETY_SETTINGS) for seed in SAFETY_SEEDS] for s in SAFETY_STRATEGIES}

    return cached("forgetting-safety", _safety_key(), build, lambda d: {"study": json.dumps(d)},
                  lambda payload: json.loads(payload["study"]), rebuild=rebuild)


def _register_safety_study() -> None:
    from labkit.lm.cache import CourseModel, cache_path, register_course_model

    register_course_model(CourseModel("forgetting-safety", lambda rebuild: default_safety_forgetting(rebuild),
                                      lambda: cache_path("forgetting-safety", _safety_key())))


_register_safety_study()


FRONTIER_LAMBDAS = {"l2": (0.003, 0.01, 0.03, 0.1, 0.3, 1.0), "ewc": (3.0, 10.0, 30.0, 100.0, 300.0, 1000.0)}


def default_lambda_frontier(rebuild: bool = False) -> dict:
    """:func:`lambda_frontier` of the L2 anchor and EWC over :data:`FRONTIER_LAMBDAS` (seed 0), cached."""
    import hashlib
    import json

    from labkit.lm.cache import cached

    key = hashlib.sha256(json.dumps({"lams": FRONTIER_LAMBDAS, "v": SAFETY_STUDY_VERSION}, sort_keys=True).encode()).hexdigest()[:16]
    return cached("lambda-frontier", key, lambda: {s: lambda_frontier(s, lams) for s, lams in FRONTIER_LAMBDAS.items()},
                  lambda d: {"frontier": json.dumps(d)}, lambda payload: json.loads(payload["frontier"]), rebuild=rebuild)


__all__ = [
    "STRATEGIES", "LOG10_LAMBDA_RANGE", "BATCH_SIZE", "permuted_digits_tasks", "diagonal_fisher",
    "softmax_regression_fisher", "ewc_penalty", "train_sequential", "plot_ewc_lambda",
    "ewc_lambda_widget", "lambda_frontier", "SAFETY_STRATEGIES", "sequence_fisher", "finetune_safety_run",
    "SAFETY_SETTINGS", "SAFETY_SEEDS", "default_safety_forgetting", "FRONTIER_LAMBDAS", "default_lambda_frontier",
]
