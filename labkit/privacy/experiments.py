"""Lesson 20's experiments, cached through :func:`labkit.lm.cache.cached` and registered for ``prebuild``.

- :func:`dp_accuracy_vs_epsilon`, :func:`fedavg_drift_experiment`,
  :func:`client_dp_experiment`, :func:`canary_experiment`;
- :func:`dp_digits_model` (the DP models lesson 21 attacks);
- the widget :func:`clipping_tradeoff_widget`.

Cache keys (names and configs) are those of the single-module ``labkit.privacy``
this package replaced, so existing caches stay valid.
"""
from __future__ import annotations

import copy
import functools
import math
from typing import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from labkit.privacy.accountant import noise_multiplier_for
from labkit.privacy.dp_sgd import CLIP_EPS, per_example_gradients, train_dp_sgd
from labkit.privacy.federated import ClientDP, federated_training, split_non_iid
from labkit.ui import float_slider, interactive_figure
from labkit.validation import ensure_float, ensure_int


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
