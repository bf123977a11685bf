"""Differential privacy and federated learning (lesson 20).

One idea per module, read bottom-up (each imports only the ones above it):

- :mod:`labkit.privacy.accountant`: the Renyi-DP accountant:
  :func:`subsampled_gaussian_rdp` (Mironov 2017; Mironov, Talwar and Zhang
  2019, the sampled Gaussian mechanism), :func:`rdp_to_epsilon` (Balle et al.
  2020, Thm. 21), :func:`rdp_epsilon` and its inverse :func:`noise_multiplier_for`.
- :mod:`labkit.privacy.dp_sgd`: :func:`per_example_gradients` (one gradient
  per example at the cost of one batched pass, ``torch.func``'s ``vmap`` of
  ``grad``); :func:`clip_and_noise`, the DP-SGD aggregate of Abadi et al.
  (2016), Alg. 1: each example's gradient flat-clipped to norm C over all
  parameters, summed, Gaussian noise N(0, (sigma C)^2) added, divided by the
  expected batch size; :func:`train_dp_sgd` with Poisson sampling (every
  example joins a step's batch independently with probability q), which is
  what the accountant's subsampled Gaussian mechanism assumes.
- :mod:`labkit.privacy.federated`: federated averaging (McMahan et al. 2017):
  :func:`fedavg` (the size-weighted mean of client models),
  :func:`client_update`, :func:`federated_training`, with optional
  client-level DP (McMahan et al. 2018): each sampled client's update clipped
  to norm S, Gaussian noise on their sum, and the same accountant with clients
  as the sampled units; plus :func:`split_non_iid`.
- :mod:`labkit.privacy.experiments`: lesson 20's experiments, cached through
  :func:`labkit.lm.cache.cached` and registered for ``prebuild`` at import:
  :func:`dp_accuracy_vs_epsilon`, :func:`fedavg_drift_experiment`,
  :func:`client_dp_experiment`, :func:`canary_experiment`;
  :func:`dp_digits_model` (the DP models lesson 21 attacks); the widget
  :func:`clipping_tradeoff_widget`.

Every name is re-exported here: ``from labkit.privacy import clip_and_noise``.
"""
from labkit.privacy.accountant import (  # noqa: F401
    DEFAULT_ORDERS, subsampled_gaussian_rdp, rdp_to_epsilon, rdp_epsilon, noise_multiplier_for,
)
from labkit.privacy.dp_sgd import (  # noqa: F401
    CLIP_EPS, LossFn, per_example_gradients, per_example_norms, clip_and_noise, poisson_batch, DPTrainingResult,
    train_dp_sgd,
)
from labkit.privacy.federated import (  # noqa: F401
    fedavg, split_non_iid, client_update, ClientDP, FederatedResult, federated_training,
)
from labkit.privacy.experiments import (  # noqa: F401
    EXPERIMENT_VERSION, DIGITS_SPLIT, DP_DELTA, DP_SAMPLE_RATE, DP_STEPS, DP_GRID, digits_splits,
    dp_accuracy_vs_epsilon, dp_digits_model, fedavg_drift_experiment, client_dp_experiment, CANARY, CANARY_PREFIX,
    secret_losses, canary_experiment, LOG10_CLIP_RANGE, NOISE_RANGE, TRADEOFF_BATCH, clipping_tradeoff,
    plot_clipping_tradeoff, clipping_tradeoff_widget, _lm_loss,
)

__all__ = [
    "DEFAULT_ORDERS", "per_example_gradients", "per_example_norms", "clip_and_noise", "poisson_batch",
    "DPTrainingResult", "train_dp_sgd", "subsampled_gaussian_rdp", "rdp_to_epsilon", "rdp_epsilon",
    "noise_multiplier_for", "fedavg", "split_non_iid", "client_update", "ClientDP", "FederatedResult",
    "federated_training", "DIGITS_SPLIT", "digits_splits", "dp_accuracy_vs_epsilon", "dp_digits_model",
    "fedavg_drift_experiment", "client_dp_experiment", "clipping_tradeoff", "plot_clipping_tradeoff",
    "clipping_tradeoff_widget", "CANARY", "secret_losses", "canary_experiment",
]
