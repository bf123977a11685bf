"""The loss-side building blocks of RLHF, on tensors of any device, each checking its inputs.

- :func:`dpo_loss`: the DPO loss (Rafailov et al. 2023, eq. 7);
- :func:`gae`: generalised advantage estimation (Schulman et al. 2016, eq. 16);
- :func:`ppo_policy_loss`: PPO's clipped surrogate (Schulman et al. 2017, eq. 7);
- :func:`kl_penalized_rewards`: per-token rewards with a KL penalty to the
  reference model (Ziegler et al. 2019, eq. 2);
- :func:`masked_mean`, :func:`whiten`, :func:`last_response_index`: the
  masked reductions the others and the trainers share.

Token layout used throughout: a batch of ``prompt + response`` sequences,
right-padded, is scored at its *action positions* ``t`` (the model's output at
position ``t`` predicts token ``t + 1``); ``mask[b, t]`` is 1 where token
``t + 1`` of row ``b`` is a response token. Every ``[B, T]`` tensor below
(log-probabilities, values, rewards, advantages) uses that layout.

Nothing here imports the rest of :mod:`labkit.rlhf`: the trainers build on it.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from labkit.validation import ensure_float, ensure_tensor


# ------------------------------------------------------------------ checks
def _check_mask(mask, shape: tuple) -> torch.Tensor:
    """``mask`` as a float tensor of 0s and 1s of ``shape``, each row with at least one 1."""
    ensure_tensor("mask", mask)
    if tuple(mask.shape) != tuple(shape):
        raise ValueError(f"mask must have shape {tuple(shape)} (like the other [B, T] inputs), got {tuple(mask.shape)}")
    mask = mask.to(torch.float32) if mask.dtype == torch.bool or not mask.is_floating_point() else mask
    if mask.numel() and not ((mask == 0) | (mask == 1)).all():
        raise ValueError("mask must hold only 0 and 1 (1 on response tokens)")
    if mask.numel() == 0 or (mask.sum(1) == 0).any():
        raise ValueError("mask must mark at least one response token in every row")
    return mask


def _check_bt(name: str, value, shape: tuple | None = None) -> torch.Tensor:
    """A finite floating ``[B, T]`` tensor (of ``shape`` when given)."""
    ensure_tensor(name, value, ndim=2, floating=True)
    if shape is not None and tuple(value.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {tuple(value.shape)}")
    return value


# --------------------------------------------------------------- the losses
def dpo_loss(policy_chosen_logps: torch.Tensor, policy_rejected_logps: torch.Tensor,
             reference_chosen_logps: torch.Tensor, reference_rejected_logps: torch.Tensor,
             beta: float = 0.1) -> torch.Tensor:
    """The DPO loss (Rafailov et al. 2023, eq. 7), averaged over the batch.

    ``-log sigmoid(beta * ((pi_c - ref_c) - (pi_r - ref_r)))`` where each term
    is a sequence log-probability ``log p(response | prompt)`` summed over the
    response tokens. The reference terms are constants (no gradient flows into
    them).

    Parameters
    ----------
    policy_chosen_logps, policy_rejected_logps : Tensor (B,)
        The policy's log-probabilities of the chosen and rejected responses.
    reference_chosen_logps, reference_rejected_logps : Tensor (B,)
        The same under the frozen reference (the SFT model).
    beta : float > 0
        Strength of the implicit KL anchor: small beta lets the policy move far
        from the reference.

    Returns
    -------
    Tensor
        0-dim, differentiable in the policy's log-probabilities.
    """
    names = ("policy_chosen_logps", "policy_rejected_logps", "reference_chosen_logps", "reference_rejected_logps")
    logps = (policy_chosen_logps, policy_rejected_logps, reference_chosen_logps, reference_rejected_logps)
    for name, x in zip(names, logps):
        ensure_tensor(name, x, ndim=1, floating=True)
        if x.shape != policy_chosen_logps.shape:
            raise ValueError(f"{name} must have the shape of policy_chosen_logps {tuple(policy_chosen_logps.shape)}, "
                             f"got {tuple(x.shape)}")
    if policy_chosen_logps.numel() == 0:
        raise ValueError("the log-probabilities must hold at least one pair")
    beta = ensure_float("beta", beta, low=0.0, low_open=True)
    ref_c = reference_chosen_logps.detach().to(policy_chosen_logps.device)
    ref_r = reference_rejected_logps.detach().to(policy_chosen_logps.device)
    margin = (policy_chosen_logps - ref_c) - (policy_rejected_logps - ref_r)
    return -F.logsigmoid(beta * margin).mean()


def gae(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float = 1.0,
        lam: float = 0.95) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation (Schulman et al. 2016, eq. 16) as a backward recursion.

    ``delta_t = r_t + gamma * V_{t+1} - V_t`` and ``A_t = delta_t + gamma * lam * A_{t+1}``,
    where ``V_{t+1}`` and ``A_{t+1}`` are 0 when position ``t + 1`` is not a
    response token: the value after a sequence's last response token is 0
    (the episode has ended). Positions outside the mask get advantage 0.

    Parameters
    ----------
    rewards, values : Tensor [B, T]
        Per-token rewards (e.g. from :func:`kl_penalized_rewards`) and the
        value head's estimates; only masked positions are read.
    mask : Tensor [B, T] of 0/1 (bool or numeric)
        1 on response tokens; every row needs at least one.
    gamma : float in [0, 1]
        Discount.
    lam : float in [0, 1]
        GAE's bias-variance knob: 0 is the one-step TD error, 1 the Monte Carlo return minus the value.

    Returns
    -------
    (advantages, returns) : Tensors [B, T]
        ``returns = advantages + values`` (the value head's regression target).
    """
    _check_bt("rewards", rewards)
    _check_bt("values", values, rewards.shape)
    m = _check_mask(mask, rewards.shape).to(rewards.device, rewards.dtype)
    gamma = ensure_float("gamma", gamma, 0.0, 1.0)
    lam = ensure_float("lam", lam, 0.0, 1.0)
    values = values.detach().to(rewards.device)
    rewards = rewards.detach()
    T = rewards.size(1)
    advantages = torch.zeros_like(rewards)
    next_value = torch.zeros_like(rewards[:, 0])
    next_advantage = torch.zeros_like(rewards[:, 0])
    for t in range(T - 1, -1, -1):
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        advantages[:, t] = (delta + gamma * lam * next_advantage) * m[:, t]
        # What position t - 1 sees next: this position's value and advantage, or 0 past the response.
        next_value = values[:, t] * m[:, t]
        next_advantage = advantages[:, t]
    return advantages, advantages + values


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``x`` over the positions where ``mask`` is 1 (all rows together)."""
    mask = mask.to(x.dtype)
    return (x * mask).sum() / mask.sum().clamp_min(1.0)


def whiten(x: torch.Tensor, mask: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """``x`` shifted and scaled to mean 0 and variance 1 over the masked positions (0 elsewhere).

    Whitening the advantages of a rollout batch (Huang et al. 2024, detail 7)
    keeps the policy's step size independent of the reward's scale.
    """
    mean = masked_mean(x, mask)
    var = masked_mean((x - mean) ** 2, mask)
    return (x - mean) * torch.rsqrt(var + eps) * mask.to(x.dtype)


def ppo_policy_loss(logprobs: torch.Tensor, old_logprobs: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor,
                    clip_range: float = 0.2) -> torch.Tensor:
    """PPO's clipped surrogate (Schulman et al. 2017, eq. 7), as a loss to minimise.

    The mean over every masked token of the batch of
    ``max(-A * rho, -A * clip(rho, 1 - eps, 1 + eps))`` with
    ``rho = exp(logprobs - old_logprobs)``. Where the ratio has left the clip
    range on the side the advantage favours, the clipped term wins and the
    token's gradient is zero: one rollout batch cannot push the policy far.

    Parameters
    ----------
    logprobs : Tensor [B, T]
        The current policy's log-probabilities of the sampled tokens (with gradient).
    old_logprobs : Tensor [B, T]
        The same under the policy that sampled them (constants).
    advantages : Tensor [B, T]
        Per-token advantages (constants).
    mask : Tensor [B, T] of 0/1
        1 on response tokens.
    clip_range : float in (0, 1)
        epsilon.

    Returns
    -------
    Tensor
        0-dim.
    """
    _check_bt("logprobs", logprobs)
    _check_bt("old_logprobs", old_logprobs, logprobs.shape)
    _check_bt("advantages", advantages, logprobs.shape)
    m = _check_mask(mask, logprobs.shape).to(logprobs.device)
    clip_range = ensure_float("clip_range", clip_range, 0.0, 1.0, low_open=True, high_open=True)
    advantages = advantages.detach().to(logprobs.device)
    ratio = torch.exp(logprobs - old_logprobs.detach().to(logprobs.device))
    unclipped = -advantages * ratio
    clipped = -advantages * ratio.clamp(1.0 - clip_range, 1.0 + clip_range)
    return masked_mean(torch.maximum(unclipped, clipped), m)


def kl_penalized_rewards(scores: torch.Tensor, logprobs: torch.Tensor, ref_logprobs: torch.Tensor, mask: torch.Tensor,
                         kl_coef: float) -> torch.Tensor:
    """Per-token RLHF rewards: a KL penalty on every response token plus the score at the last one.

    ``-kl_coef * (logprobs - ref_logprobs)`` on response tokens (a one-sample
    estimate of the KL to the reference; Ziegler et al. 2019, eq. 2; Ouyang
    et al. 2022, eq. 2), plus ``scores[b]`` at row ``b``'s last response token,
    0 elsewhere.

    Parameters
    ----------
    scores : Tensor (B,)
        The reward model's score of each whole response.
    logprobs, ref_logprobs : Tensor [B, T]
        Log-probabilities of the sampled tokens under the policy and the frozen reference.
    mask : Tensor [B, T] of 0/1
        1 on response tokens.
    kl_coef : float >= 0

    Returns
    -------
    Tensor [B, T]
    """
    _check_bt("logprobs", logprobs)
    _check_bt("ref_logprobs", ref_logprobs, logprobs.shape)
    ensure_tensor("scores", scores, ndim=1, floating=True)
    if scores.shape[0] != logprobs.shape[0]:
        raise ValueError(f"scores must have one entry per row of logprobs ({logprobs.shape[0]}), got {scores.shape[0]}")
    m = _check_mask(mask, logprobs.shape).to(logprobs.device, logprobs.dtype)
    kl_coef = ensure_float("kl_coef", kl_coef, low=0.0)
    rewards = -kl_coef * (logprobs - ref_logprobs.to(logprobs.device)) * m
    last = last_response_index(m)
    rows = torch.arange(rewards.size(0), device=rewards.device)
    rewards[rows, last] += scores.to(rewards.device, rewards.dtype)
    return rewards


def last_response_index(mask: torch.Tensor) -> torch.Tensor:
    """Each row's last position where ``mask`` is 1 (LongTensor (B,))."""
    T = mask.size(1)
    positions = torch.arange(T, device=mask.device).expand_as(mask)
    return torch.where(mask > 0, positions, torch.full_like(positions, -1)).max(1).values
