"""Federated averaging, with optional client-level DP (lesson 20).

- :func:`fedavg`: the size-weighted mean of client models (McMahan et al.
  2017): ``w = sum_k (n_k / n) w_k``.
- :func:`client_update` (local SGD epochs), :func:`federated_training` and
  :func:`split_non_iid` (each client sees a few classes).
- Client-level DP (McMahan et al. 2018): each sampled client's update clipped
  to norm S, Gaussian noise N(0, (sigma S)^2) on their sum, divided by the
  expected number of clients; accounted with :func:`labkit.privacy.accountant.rdp_epsilon`,
  the clients being the sampled units.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from labkit.privacy.accountant import rdp_epsilon
from labkit.privacy.dp_sgd import LossFn, _check_model, clip_and_noise
from labkit.validation import ensure_float, ensure_int, ensure_tensor


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
    _check_clients(clients)
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


def _check_clients(clients: object) -> None:
    if not isinstance(clients, Sequence) or not clients:
        raise TypeError("clients must be a non-empty sequence of (inputs, targets) pairs")
    for k, pair in enumerate(clients):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise TypeError(f"clients[{k}] must be an (inputs, targets) pair")
        ensure_tensor(f"clients[{k}] inputs", pair[0])
        ensure_tensor(f"clients[{k}] targets", pair[1])
        if pair[0].shape[0] == 0 or pair[0].shape[0] != pair[1].shape[0]:
            raise ValueError(f"clients[{k}] must have the same, non-zero number of inputs and targets")


def _dp_aggregate(global_state, states, keys, client_dp: ClientDP, expected_clients: float, generator):
    """Clip each client's update to S, sum, add N(0, (sigma S)^2), divide by the expected client count."""
    per_client = {k: torch.stack([s[k] - global_state[k] for s in states]) if states
                  else global_state[k].new_zeros((0, *global_state[k].shape)) for k in keys}
    noisy = clip_and_noise(per_client, client_dp.clip_norm, client_dp.noise_multiplier, expected_clients, generator)
    return {**global_state, **{k: global_state[k] + noisy[k] for k in keys}}
