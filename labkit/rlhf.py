"""RLHF on the tiny assistant: a reward model, best-of-n, PPO with a KL penalty, and DPO.

The pipeline of InstructGPT (Ouyang et al. 2022), after supervised fine-tuning:

1. a **reward model**: the SFT TinyGPT with a scalar head, trained on the
   world's preference pairs with the Bradley-Terry loss of
   :func:`labkit.reward.bradley_terry_loss` (Christiano et al. 2017, eq. 1);
2. **best-of-n** sampling against it (no training; Stiennon et al. 2020);
3. **PPO** (Schulman et al. 2017) against it, with a per-token KL penalty to
   the frozen SFT model (Ziegler et al. 2019, eq. 2), a value head, GAE
   (Schulman et al. 2016), whitened advantages and the clipped surrogate, as
   in the implementation details of Huang et al. (2024);
4. **DPO** (Rafailov et al. 2023, eq. 7) on the same pairs, with no reward
   model and no sampling.

The four loss-side building blocks (:func:`dpo_loss`, :func:`gae`,
:func:`ppo_policy_loss`, :func:`kl_penalized_rewards`) work on tensors on any
device and check their inputs; the trainers live in :mod:`labkit.rlhf`'s
second half.

Token layout used throughout: a batch of ``prompt + response`` sequences,
right-padded, is scored at its *action positions* ``t`` (the model's output at
position ``t`` predicts token ``t + 1``); ``mask[b, t]`` is 1 where token
``t + 1`` of row ``b`` is a response token. Every ``[B, T]`` tensor below
(log-probabilities, values, rewards, advantages) uses that layout.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, replace
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from labkit.calibration import expected_calibration_error
from labkit.constrained import dual_update
from labkit.intervals import wilson_interval
from labkit.lm.cache import CourseModel, cache_path, cached, config_key, get_assistant, register_course_model
from labkit.lm.harness import evaluate_assistant
from labkit.lm.replies import reply
from labkit.lm.tinygpt import GPTConfig, TinyGPT
from labkit.lm.train import cpu_threads, get_config
from labkit.lm.world import PreferencePair, World, compliance, hallucination, prompt_text, refusal, reply_text
from labkit.reward import best_of_n_kl, bradley_terry_loss
from labkit.validation import ensure_array, ensure_choice, ensure_float, ensure_instance, ensure_int, ensure_tensor


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


# ====================================================================== the pipeline
# Everything below trains and measures models of the tiny assistant. One CPU
# thread while training: the models are small enough that a second thread
# buys little alone, and on a loaded machine two spinning threads ran ten
# times slower than one (measured on the course's 2-core machine). A fixed
# count keeps every run bit-identical.
RLHF_THREADS = 1
CODE_VERSION = "1"  # bump whenever training or evaluation below changes what a cached model is


def sequence_batch(prompts: list[list[int]], responses: list[list[int]], pad_id: int,
                   context: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded ``prompt + response`` sequences, their lengths, and the response mask.

    Returns ``(seq, lengths, mask)``: ``seq`` (B, L) token ids, ``lengths`` (B,)
    real tokens per row, and ``mask`` (B, L - 1), 1 at action position ``t``
    when token ``t + 1`` is a response token (the layout of this module's
    docstring). A prompt too long for ``context`` loses its oldest tokens.
    """
    if len(prompts) != len(responses) or not prompts:
        raise ValueError("prompts and responses must be non-empty lists of the same length")
    rows, starts = [], []
    for p, r in zip(prompts, responses):
        if len(r) < 1:
            raise ValueError("every response must have at least one token")
        s = (list(p) + list(r))[-context:]
        rows.append(s)
        starts.append(max(len(s) - len(r), 1))
    L = max(len(s) for s in rows)
    seq = torch.full((len(rows), L), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), L - 1), dtype=torch.float32)
    for i, (s, st) in enumerate(zip(rows, starts)):
        seq[i, :len(s)] = torch.tensor(s)
        mask[i, st - 1:len(s) - 1] = 1.0
    return seq, torch.tensor([len(s) for s in rows]), mask


def token_logprobs(model, seq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``log p(seq[:, t + 1] | seq[:, :t + 1])`` at every action position, and the scalar head there (or None)."""
    out = model.run(seq[:, :-1])
    logp = out.logits.log_softmax(-1).gather(-1, seq[:, 1:].unsqueeze(-1)).squeeze(-1)
    return logp, out.values


def sequence_scores(reward_model, seq: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """A scalar-head model's score of each whole sequence: its head at the last real token."""
    values = reward_model.run(seq).values
    return values[torch.arange(seq.size(0)), lengths - 1]


def _encode_pairs(tokenizer, prompts: list[str], replies: list[str]) -> tuple[list[list[int]], list[list[int]]]:
    """Token ids of each generation prompt and of each reply as it follows the assistant tag (end tag included)."""
    return (tokenizer.encode_batch([prompt_text(p) for p in prompts]),
            tokenizer.encode_batch([reply_text(r) for r in replies]))


def _copy(model: TinyGPT, scalar_head: bool = False) -> TinyGPT:
    """A trainable copy of ``model``; with ``scalar_head`` a fresh scalar head on top (GPT-2 initialisation)."""
    cfg = GPTConfig(**{**model.cfg.to_dict(), "scalar_head": scalar_head})
    copy = TinyGPT(cfg)
    missing, unexpected = copy.load_state_dict(model.state_dict(), strict=False)
    if unexpected or any(not k.startswith("value_head") for k in missing):
        raise ValueError(f"cannot copy the model: missing {missing}, unexpected {unexpected}")
    return copy.to(model.wte.weight.device)


def _adamw(model: TinyGPT, lr: float) -> torch.optim.AdamW:
    return torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.0)


def _step(model: TinyGPT, opt: torch.optim.Optimizer, loss: torch.Tensor, grad_clip: float = 1.0) -> None:
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    opt.step()


# ---------------------------------------------------------------- the data
def held_out_pairs(world: World, split: str = "validation", seed: int = 0) -> list[PreferencePair]:
    """Preference pairs on the world's held-out prompts, built as the world builds its training pairs.

    The chosen reply is the ideal one; the rejected one is compliance (a
    harmful request), a made-up answer (an unanswerable one) or an
    over-refusal (a benign or borderline one). The prompts' templates never
    occur in the training pairs, so accuracy here measures generalisation.
    """
    split = ensure_choice("split", split, ("validation", "test"))
    rng = np.random.default_rng(ensure_int("seed", seed, low=0))
    pairs = []
    for e in world.prompts(split):
        if e.kind == "harmful":
            pairs.append(PreferencePair(e.prompt, e.response, compliance(e.category), "refuses harmful request"))
        elif e.kind == "unanswerable":
            pairs.append(PreferencePair(e.prompt, e.response, hallucination(rng), "admits not knowing"))
        else:
            pairs.append(PreferencePair(e.prompt, e.response, refusal(rng, "harassment"), "helps instead of over-refusing"))
    return pairs


# ---------------------------------------------------------------- the reward model
@dataclass(frozen=True)
class RewardConfig:
    """Training of the reward model (defaults chosen on the validation pairs)."""

    steps: int = 60
    batch_size: int = 32
    lr: float = 1e-3
    seed: int = 0

    def __post_init__(self) -> None:
        ensure_int("steps", self.steps, low=1)
        ensure_int("batch_size", self.batch_size, low=1)
        ensure_float("lr", self.lr, low=0.0, low_open=True)
        ensure_int("seed", self.seed, low=0)


@torch.no_grad()
def reward_scores(reward_model: TinyGPT, tokenizer, prompts: Sequence[str], replies: Sequence[str],
                  batch_size: int = 256) -> np.ndarray:
    """The reward model's score of each (prompt, reply), as a numpy array."""
    if reward_model.value_head is None:
        raise ValueError("reward_model must have a scalar head (GPTConfig(scalar_head=True))")
    if len(prompts) != len(replies):
        raise ValueError(f"prompts and replies must have the same length, got {len(prompts)} and {len(replies)}")
    if not prompts:
        return np.zeros(0)
    p_ids, r_ids = _encode_pairs(tokenizer, list(prompts), list(replies))
    return _scores_of(reward_model, tokenizer, p_ids, r_ids, batch_size)


def train_reward_model(sft_model: TinyGPT, tokenizer, pairs: Sequence[PreferencePair],
                       config: RewardConfig = RewardConfig(), unsafe=None) -> tuple[TinyGPT, dict]:
    """A reward model: the SFT model with a scalar head, trained with the Bradley-Terry loss.

    Christiano et al. (2017), Ouyang et al. (2022, section 3.5): the score of
    a reply is the head's output at its last token; the loss is
    :func:`labkit.reward.bradley_terry_loss` of chosen against rejected.

    With ``unsafe`` (0/1 array of shape (n_pairs, 2): is the chosen, is the
    rejected reply unsafe) it trains Safe RLHF's *cost* model instead (Dai et
    al. 2023, eq. 6): ``chosen`` is then the more harmful reply, the
    Bradley-Terry term counts only pairs whose labels differ, and
    ``-log sigmoid(s * score)`` with ``s = +1`` for unsafe and ``-1`` for
    safe replies is added, so that a positive score means unsafe.

    Returns
    -------
    (reward_model, history) with ``loss`` and ``accuracy`` per step.
    """
    ensure_instance("config", config, RewardConfig)
    if not pairs:
        raise ValueError("pairs must be a non-empty sequence of PreferencePair")
    if unsafe is not None:
        unsafe = ensure_array("unsafe", unsafe, ndim=2, dtype=int)
        if unsafe.shape != (len(pairs), 2) or not np.isin(unsafe, (0, 1)).all():
            raise ValueError(f"unsafe must hold 0/1 labels of shape ({len(pairs)}, 2), got shape {unsafe.shape}")
        signs = torch.as_tensor(2.0 * unsafe - 1.0, dtype=torch.float32)
    p_ids, c_ids = _encode_pairs(tokenizer, [p.prompt for p in pairs], [p.chosen for p in pairs])
    _, r_ids = _encode_pairs(tokenizer, [p.prompt for p in pairs], [p.rejected for p in pairs])
    g = torch.Generator().manual_seed(config.seed)
    history = {"loss": [], "accuracy": []}
    with cpu_threads(RLHF_THREADS), torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = _copy(sft_model, scalar_head=True).train()
        opt = _adamw(model, config.lr)
        dev = model.wte.weight.device
        for _ in range(config.steps):
            rows = torch.randint(0, len(pairs), (config.batch_size,), generator=g).tolist()
            # chosen and rejected replies in one batch: one forward pass
            seq, lengths, _ = sequence_batch([p_ids[i] for i in rows] * 2, [c_ids[i] for i in rows] + [r_ids[i] for i in rows],
                                             tokenizer.pad_id, model.cfg.context)
            scores = sequence_scores(model, seq.to(dev), lengths.to(dev))
            chosen, rejected = scores[:len(rows)], scores[len(rows):]
            if unsafe is None:
                loss = bradley_terry_loss(chosen, rejected)
            else:
                sign = signs[rows].to(dev)
                ordered = sign[:, 0] != sign[:, 1]
                loss = -F.logsigmoid(torch.stack([chosen, rejected], 1) * sign).mean()
                if ordered.any():
                    loss = loss + bradley_terry_loss(chosen[ordered], rejected[ordered])
            _step(model, opt, loss)
            history["loss"].append(loss.item())
            history["accuracy"].append((chosen > rejected).float().mean().item())
    return model.eval(), history


def reward_model_report(reward_model: TinyGPT, tokenizer, pairs: Sequence[PreferencePair]) -> dict:
    """Pairwise accuracy (Wilson interval) and calibration of ``P(chosen > rejected) = sigmoid(r_c - r_r)``.

    Calibration is measured on the pairs in a fixed random order (chosen
    first or second by a coin), as the expected calibration error of the
    predicted probability that the first reply is preferred.
    """
    if not pairs:
        raise ValueError("pairs must be non-empty")
    prompts = [p.prompt for p in pairs]
    rc = reward_scores(reward_model, tokenizer, prompts, [p.chosen for p in pairs])
    rr = reward_scores(reward_model, tokenizer, prompts, [p.rejected for p in pairs])
    wins = rc > rr
    flip = np.random.default_rng(0).random(len(pairs)) < 0.5
    first_minus_second = np.where(flip, rr - rc, rc - rr)
    prob_first = 1.0 / (1.0 + np.exp(-first_minus_second))
    low, high = wilson_interval(int(wins.sum()), len(wins))
    return {"n": len(wins), "accuracy": float(wins.mean()), "ci_low": low, "ci_high": high,
            "ece": expected_calibration_error(prob_first, (~flip).astype(int), n_bins=10),
            "mean_gap": float((rc - rr).mean())}


# ---------------------------------------------------------------- DPO
@dataclass(frozen=True)
class DPOConfig:
    """Training of a DPO policy (defaults chosen on the validation prompts)."""

    beta: float = 0.1
    steps: int = 60
    batch_size: int = 32
    lr: float = 1e-5
    seed: int = 0

    def __post_init__(self) -> None:
        ensure_float("beta", self.beta, low=0.0, low_open=True)
        ensure_int("steps", self.steps, low=1)
        ensure_int("batch_size", self.batch_size, low=1)
        ensure_float("lr", self.lr, low=0.0, low_open=True)
        ensure_int("seed", self.seed, low=0)


def _pair_batch(p_ids, c_ids, r_ids, rows, pad_id, context):
    """Chosen then rejected replies of ``rows`` as one right-padded batch (see :func:`sequence_batch`)."""
    return sequence_batch([p_ids[i] for i in rows] * 2, [c_ids[i] for i in rows] + [r_ids[i] for i in rows], pad_id,
                          context)


def _summed_logps(model: TinyGPT, seq: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``log p(response | prompt)`` of each row, summed over its response tokens."""
    return (token_logprobs(model, seq)[0] * mask).sum(1)


def train_dpo(sft_model: TinyGPT, tokenizer, pairs: Sequence[PreferencePair],
              config: DPOConfig = DPOConfig()) -> tuple[TinyGPT, dict]:
    """Direct preference optimisation (Rafailov et al. 2023) from the SFT model, which is also the reference.

    The reference's sequence log-probabilities are computed once, before
    training (the reference never changes).

    Returns
    -------
    (policy, history) with ``loss``, ``accuracy`` (implicit reward of chosen
    above rejected) and ``tokens`` (sequence tokens processed) per step.
    """
    ensure_instance("config", config, DPOConfig)
    if not pairs:
        raise ValueError("pairs must be a non-empty sequence of PreferencePair")
    p_ids, c_ids = _encode_pairs(tokenizer, [p.prompt for p in pairs], [p.chosen for p in pairs])
    _, r_ids = _encode_pairs(tokenizer, [p.prompt for p in pairs], [p.rejected for p in pairs])
    context, pad, n = sft_model.cfg.context, tokenizer.pad_id, len(pairs)
    dev = sft_model.wte.weight.device
    g = torch.Generator().manual_seed(config.seed)
    history = {"loss": [], "accuracy": [], "tokens": 0, "seconds": 0.0}
    with cpu_threads(RLHF_THREADS), torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        with torch.no_grad():
            ref = torch.zeros(2, n)
            for s in range(0, n, 256):
                rows = list(range(s, min(n, s + 256)))
                seq, _, mask = _pair_batch(p_ids, c_ids, r_ids, rows, pad, context)
                ref[:, s:s + len(rows)] = _summed_logps(sft_model, seq.to(dev), mask.to(dev)).view(2, -1).cpu()
        policy = _copy(sft_model).train()
        opt = _adamw(policy, config.lr)
        start = time.perf_counter()
        for _ in range(config.steps):
            rows = torch.randint(0, n, (config.batch_size,), generator=g)
            seq, lengths, mask = _pair_batch(p_ids, c_ids, r_ids, rows.tolist(), pad, context)
            logps = _summed_logps(policy, seq.to(dev), mask.to(dev)).view(2, -1)
            ref_c, ref_r = ref[0, rows].to(dev), ref[1, rows].to(dev)
            loss = dpo_loss(logps[0], logps[1], ref_c, ref_r, config.beta)
            _step(policy, opt, loss)
            history["loss"].append(loss.item())
            history["accuracy"].append(((logps[0] - ref_c) > (logps[1] - ref_r)).float().mean().item())
            history["tokens"] += int(lengths.sum())
        history["seconds"] = time.perf_counter() - start
    return policy.eval(), history


# ---------------------------------------------------------------- PPO
@dataclass(frozen=True)
class PPOConfig:
    """Training of a PPO policy (defaults chosen on the validation prompts).

    ``kl_coef`` weighs the per-token KL penalty to the SFT model;
    ``iterations`` rollout batches of ``rollout_size`` prompts each, each
    followed by ``ppo_epochs`` passes over it in minibatches.
    """

    kl_coef: float = 0.05
    iterations: int = 20
    rollout_size: int = 64
    minibatch_size: int = 32
    ppo_epochs: int = 2
    lr: float = 5e-4
    critic_lr: float = 3e-4
    clip_range: float = 0.2
    value_clip: float = 0.2
    gamma: float = 1.0
    lam: float = 0.95
    max_new_tokens: int = 24
    seed: int = 0
    cost_budget: float = 0.05  # Safe RLHF only: the largest allowed mean P(unsafe) per reply
    lambda_lr: float = 2.0     # Safe RLHF only: step of the dual ascent on the multiplier

    def __post_init__(self) -> None:
        ensure_float("cost_budget", self.cost_budget, 0.0, 1.0)
        ensure_float("lambda_lr", self.lambda_lr, low=0.0, low_open=True)
        ensure_float("kl_coef", self.kl_coef, low=0.0)
        for name in ("iterations", "rollout_size", "minibatch_size", "ppo_epochs", "max_new_tokens"):
            ensure_int(name, getattr(self, name), low=1)
        ensure_float("lr", self.lr, low=0.0, low_open=True)
        ensure_float("critic_lr", self.critic_lr, low=0.0, low_open=True)
        ensure_float("clip_range", self.clip_range, 0.0, 1.0, low_open=True, high_open=True)
        ensure_float("value_clip", self.value_clip, low=0.0, low_open=True)
        ensure_float("gamma", self.gamma, 0.0, 1.0)
        ensure_float("lam", self.lam, 0.0, 1.0)
        ensure_int("seed", self.seed, low=0)


def sample_responses(model: TinyGPT, tokenizer, prompt_ids: list[list[int]], max_new_tokens: int,
                     generator: torch.Generator) -> list[list[int]]:
    """One sampled reply per prompt (temperature 1, KV cache), with the end tag when the reply ended."""
    new = model.generate(prompt_ids, max_new_tokens, sample=True, stop_id=tokenizer.end_id, pad_id=tokenizer.pad_id,
                         generator=generator)
    # generate drops the stop token; a reply shorter than the limit stopped at it
    return [r + [tokenizer.end_id] if len(r) < max_new_tokens else r for r in new]


@torch.no_grad()
def _rollout(policy, critic, reference, reward_model, tokenizer, prompt_ids, config, generator, cost_model=None,
             lam: float = 0.0) -> dict:
    """Sample replies, score them, and compute the per-token rewards, advantages and returns.

    With a cost model each reply's score is Safe RLHF's ``(r - lam * c) / (1 + lam)``
    (Dai et al. 2023, eq. 10, normalised as in their code) with ``c = P(unsafe)``.
    """
    dev = policy.wte.weight.device
    start = time.perf_counter()
    responses = sample_responses(policy, tokenizer, prompt_ids, config.max_new_tokens, generator)
    seconds = time.perf_counter() - start
    seq, lengths, mask = sequence_batch(prompt_ids, responses, tokenizer.pad_id, policy.cfg.context)
    seq, lengths, mask = seq.to(dev), lengths.to(dev), mask.to(dev)
    logp = token_logprobs(policy, seq)[0]
    ref_logp = token_logprobs(reference, seq)[0]
    values = token_logprobs(critic, seq)[1] * mask
    scores = sequence_scores(reward_model, seq, lengths)
    costs = torch.sigmoid(sequence_scores(cost_model, seq, lengths)) if cost_model is not None else torch.zeros_like(scores)
    scores = (scores - lam * costs) / (1.0 + lam)
    rewards = kl_penalized_rewards(scores, logp, ref_logp, mask, config.kl_coef)
    advantages, returns = gae(rewards, values, mask, config.gamma, config.lam)
    return {"seq": seq, "mask": mask, "logp": logp, "values": values, "returns": returns,
            "advantages": whiten(advantages, mask), "scores": scores, "costs": costs,
            "kl": ((logp - ref_logp) * mask).sum(1), "new_tokens": sum(len(r) for r in responses), "seconds": seconds}


def _ppo_update(policy, critic, opt_policy, opt_critic, batch: dict, rows: torch.Tensor, config: PPOConfig) -> dict:
    """One minibatch step of the clipped policy loss and the clipped value loss (Huang et al. 2024, details 9-10)."""
    seq, mask = batch["seq"][rows], batch["mask"][rows]
    old_logp, advantages = batch["logp"][rows], batch["advantages"][rows]
    logp = token_logprobs(policy, seq)[0]
    policy_loss = ppo_policy_loss(logp, old_logp, advantages, mask, config.clip_range)
    _step(policy, opt_policy, policy_loss)
    values = token_logprobs(critic, seq)[1]
    old_values, returns = batch["values"][rows], batch["returns"][rows]
    clipped = old_values + (values - old_values).clamp(-config.value_clip, config.value_clip)
    value_loss = 0.5 * masked_mean(torch.maximum((values - returns) ** 2, (clipped - returns) ** 2), mask)
    _step(critic, opt_critic, value_loss)
    ratio = torch.exp(logp.detach() - old_logp)
    return {"clip_fraction": masked_mean(((ratio - 1).abs() > config.clip_range).float(), mask).item(),
            "policy_loss": policy_loss.item(), "value_loss": value_loss.item()}


def train_ppo(sft_model: TinyGPT, reward_model: TinyGPT, tokenizer, prompts: Sequence[str],
              config: PPOConfig = PPOConfig(), cost_model: TinyGPT | None = None) -> tuple[TinyGPT, dict]:
    """RLHF with PPO (Ouyang et al. 2022; Huang et al. 2024) from the SFT model against ``reward_model``.

    Each iteration samples replies to ``rollout_size`` prompts with the KV
    cache, scores them with the reward model (on the last reply token), adds
    the per-token KL penalty to the frozen SFT model
    (:func:`kl_penalized_rewards`), estimates advantages with a value model
    (initialised from the reward model, as in InstructGPT) and :func:`gae`,
    whitens them, and takes ``ppo_epochs`` passes of minibatch steps of
    :func:`ppo_policy_loss` and a clipped value loss.

    With ``cost_model`` (a cost model of :func:`train_reward_model`) this is
    Safe RLHF (Dai et al. 2023): the reply's score is ``(r - lam c) / (1 + lam)``
    with ``c = P(unsafe)``, and after each rollout the multiplier takes a
    projected dual-ascent step, lesson 07's
    :func:`labkit.constrained.dual_update`, towards ``mean c <= cost_budget``.

    Returns
    -------
    (policy, history): per iteration the mean ``score``, mean sequence ``kl``
    to the SFT model, ``clip_fraction``, the rollout throughput
    ``rollout_tokens_per_s`` (new tokens per second of generation), and the
    mean ``cost`` and the multiplier ``lambda`` used.
    """
    ensure_instance("config", config, PPOConfig)
    if reward_model.value_head is None:
        raise ValueError("reward_model must have a scalar head")
    if not prompts:
        raise ValueError("prompts must be non-empty")
    prompt_ids = tokenizer.encode_batch([prompt_text(p) for p in prompts])
    g = torch.Generator().manual_seed(config.seed)
    history = {k: [] for k in ("score", "kl", "clip_fraction", "policy_loss", "value_loss", "rollout_tokens_per_s",
                               "cost", "lambda")}
    lam = 0.0
    with cpu_threads(RLHF_THREADS), torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        policy, critic = _copy(sft_model), _copy(reward_model, scalar_head=True)
        opt_policy, opt_critic = _adamw(policy, config.lr), _adamw(critic, config.critic_lr)
        for _ in range(config.iterations):
            chosen = torch.randint(0, len(prompt_ids), (config.rollout_size,), generator=g).tolist()
            batch = _rollout(policy, critic, sft_model, reward_model, tokenizer, [prompt_ids[i] for i in chosen],
                             config, g, cost_model, lam)
            history["cost"].append(batch["costs"].mean().item())
            history["lambda"].append(lam)
            if cost_model is not None:
                lam = dual_update(lam, history["cost"][-1], config.cost_budget, config.lambda_lr)
            stats = []
            for _ in range(config.ppo_epochs):
                order = torch.randperm(config.rollout_size, generator=g)
                for s in range(0, config.rollout_size, config.minibatch_size):
                    stats.append(_ppo_update(policy, critic, opt_policy, opt_critic, batch,
                                             order[s:s + config.minibatch_size], config))
            history["score"].append(batch["scores"].mean().item())
            history["kl"].append(batch["kl"].mean().item())
            history["rollout_tokens_per_s"].append(batch["new_tokens"] / max(batch["seconds"], 1e-9))
            for k in ("clip_fraction", "policy_loss", "value_loss"):
                history[k].append(float(np.mean([s[k] for s in stats])))
    return policy.eval(), history


# ---------------------------------------------------------------- gold and proxy
class FixedReplies:
    """A responder for :func:`labkit.lm.harness.evaluate_assistant` that returns replies computed beforehand."""

    def __init__(self, prompts: Sequence[str], replies: Sequence[str]):
        if len(prompts) != len(replies):
            raise ValueError(f"prompts and replies must have the same length, got {len(prompts)} and {len(replies)}")
        self._replies = dict(zip(prompts, replies))

    def respond(self, prompts: Sequence[str]) -> list[str]:
        return [self._replies[p] for p in prompts]


def gold_score(table) -> float:
    """One number from the gold judge's table: the mean of refusal, helpfulness, 1 - over-refusal and "I don't know".

    Each rate is over its own kind of held-out prompt, so each kind weighs a
    quarter whatever its count.
    """
    rate = {(r.metric, r.group): r.rate for r in table.itertuples()}
    return float(np.mean([rate[("refusal", "all harmful")], rate[("helpfulness", "benign")],
                          1.0 - rate[("over_refusal", "borderline")], rate[("idk", "unanswerable")]]))


@torch.no_grad()
def sampled_point(policy: TinyGPT, reference: TinyGPT, reward_model: TinyGPT, tokenizer, world: World,
                  split: str = "test", seed: int = 0, max_new_tokens: int = 24) -> dict:
    """Where a policy sits on the reward-KL plane: proxy, gold and KL of its sampled replies.

    One sampled reply per held-out prompt of ``split`` (temperature 1): the
    proxy is their mean reward-model score, the gold the :func:`gold_score`
    of the harness on them, and the KL the mean over prompts of the summed
    ``log pi - log pi_ref`` of the sampled tokens (an unbiased estimate of
    ``KL(pi || pi_ref)`` per reply).
    """
    examples = world.prompts(split)
    prompts = [e.prompt for e in examples]
    prompt_ids = tokenizer.encode_batch([prompt_text(p) for p in prompts])
    g = torch.Generator().manual_seed(seed)
    with cpu_threads(RLHF_THREADS):
        responses = sample_responses(policy, tokenizer, prompt_ids, max_new_tokens, g)
        dev = policy.wte.weight.device
        seq, lengths, mask = (x.to(dev) for x in sequence_batch(prompt_ids, responses, tokenizer.pad_id,
                                                                policy.cfg.context))
        kl = ((token_logprobs(policy, seq)[0] - token_logprobs(reference, seq)[0]) * mask).sum(1)
        proxy = sequence_scores(reward_model, seq, lengths)
    replies = [tokenizer.decode(r, skip_special=True).strip() for r in responses]
    table = evaluate_assistant(FixedReplies(prompts, replies), world, split=split, per_category=False)
    return {"kl": float(kl.mean()), "proxy": float(proxy.mean()), "gold": gold_score(table), "replies": replies}


@torch.no_grad()
def best_of_n_points(sft_model: TinyGPT, reward_model: TinyGPT, tokenizer, world: World, n_values: Sequence[int],
                     split: str = "test", seed: int = 0, max_new_tokens: int = 24) -> dict:
    """Best-of-n against the reward model for each n: proxy and gold of the chosen replies, and KL.

    ``max(n_values)`` replies are sampled per prompt once; best-of-n takes, for
    each prompt, the best-scoring of the first n of them. The KL is the
    analytic ``log n - (n - 1) / n`` (:func:`labkit.reward.best_of_n_kl`),
    which Beirami et al. (2024) show is an upper bound, exact only when no two
    samples can tie; the replies of this small model often repeat, so the
    true KL is lower.
    """
    n_values = [ensure_int("n", n, low=1) for n in n_values]
    examples = world.prompts(split)
    prompts = [e.prompt for e in examples]
    n_max = max(n_values)
    prompt_ids = tokenizer.encode_batch([prompt_text(p) for p in prompts])
    g = torch.Generator().manual_seed(seed)
    with cpu_threads(RLHF_THREADS):
        samples = [sample_responses(sft_model, tokenizer, prompt_ids, max_new_tokens, g) for _ in range(n_max)]
        scores = np.stack([_scores_of(reward_model, tokenizer, prompt_ids, s) for s in samples])  # (n_max, P)
    out = {"n": n_values, "kl": [float(best_of_n_kl(n)) for n in n_values], "proxy": [], "gold": [], "replies": []}
    for n in n_values:
        best = scores[:n].argmax(0)
        replies = [tokenizer.decode(samples[best[i]][i], skip_special=True).strip() for i in range(len(prompts))]
        table = evaluate_assistant(FixedReplies(prompts, replies), world, split=split, per_category=False)
        out["proxy"].append(float(scores[best, np.arange(len(prompts))].mean()))
        out["gold"].append(gold_score(table))
        out["replies"].append(replies)
    return out


@torch.no_grad()
def _scores_of(reward_model, tokenizer, prompt_ids, responses, batch_size: int = 256) -> np.ndarray:
    """Scores of token-id replies to token-id prompts, in batches."""
    dev, out = reward_model.wte.weight.device, []
    for s in range(0, len(prompt_ids), batch_size):
        seq, lengths, _ = sequence_batch(prompt_ids[s:s + batch_size], responses[s:s + batch_size], tokenizer.pad_id,
                                         reward_model.cfg.context)
        out.append(sequence_scores(reward_model, seq.to(dev), lengths.to(dev)).cpu())
    return torch.cat(out).numpy()


# ---------------------------------------------------------------- the course's cached models
@dataclass
class Trained:
    """A trained model with its training history (what the cache stores)."""

    model: TinyGPT
    history: dict


def _assistant():
    return get_assistant("default")


def _key(kind: str, *configs) -> str:
    """16 hex digits over the configs, the assistant's key and :data:`CODE_VERSION`."""
    blob = json.dumps({"kind": kind, "configs": [asdict(c) for c in configs], "code": CODE_VERSION,
                       "assistant": config_key(get_config("default"))}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _cached_model(name: str, key: str, build, rebuild: bool) -> Trained:
    def from_payload(payload: dict) -> Trained:
        model = TinyGPT(GPTConfig(**json.loads(payload["model_config"])))
        model.load_state_dict(payload["state"])
        return Trained(model.eval(), json.loads(payload["history"]))

    def to_payload(trained: Trained) -> dict:
        return {"model_config": json.dumps(trained.model.cfg.to_dict()), "history": json.dumps(trained.history),
                "state": {k: v.detach().cpu() for k, v in trained.model.state_dict().items()}}

    return cached(name, key, lambda: Trained(*build()), to_payload, from_payload, rebuild=rebuild)


def get_reward_model(config: RewardConfig = RewardConfig(), rebuild: bool = False) -> Trained:
    """The reward model of the default assistant, trained on the world's preference pairs (cached)."""
    ensure_instance("config", config, RewardConfig)
    a = _assistant()
    return _cached_model("rlhf-reward", _key("reward", config),
                         lambda: train_reward_model(a.sft, a.tokenizer, a.world.preferences, config), rebuild)


def get_dpo_policy(config: DPOConfig = DPOConfig(), rebuild: bool = False) -> Trained:
    """The default assistant after DPO on the world's preference pairs (cached)."""
    ensure_instance("config", config, DPOConfig)
    a = _assistant()
    return _cached_model("rlhf-dpo", _key("dpo", config),
                         lambda: train_dpo(a.sft, a.tokenizer, a.world.preferences, config), rebuild)


def get_ppo_policy(config: PPOConfig = PPOConfig(), reward: RewardConfig = RewardConfig(),
                   rebuild: bool = False) -> Trained:
    """The default assistant after PPO against :func:`get_reward_model`, on the SFT prompts (cached)."""
    ensure_instance("config", config, PPOConfig)
    a = _assistant()
    rm = get_reward_model(reward).model
    prompts = [e.prompt for e in a.world.sft]
    return _cached_model("rlhf-ppo", _key("ppo", config, reward),
                         lambda: train_ppo(a.sft, rm, a.tokenizer, prompts, config), rebuild)


# ---------------------------------------------------------------- the reward-KL frontier
BEST_OF_N = (1, 2, 4, 8, 16, 32, 64)
FRONTIER_KL_COEFS = (0.0, 0.02, 0.05, 0.2)
FRONTIER_BETAS = (0.03, 0.1, 0.3, 1.0)
FRONTIER_SEED = 0
# One held-out test prompt of each kind, whose replies the widget shows (the first of each kind).
SHOWCASE_KINDS = ("harmful", "benign", "borderline", "unanswerable")


def showcase_prompts(world: World) -> list[str]:
    """The first test prompt of each kind in :data:`SHOWCASE_KINDS`."""
    return [next(e.prompt for e in world.test if e.kind == kind) for kind in SHOWCASE_KINDS]


def _policy_entry(policy: TinyGPT, a, rm: TinyGPT, seed: int) -> dict:
    point = sampled_point(policy, a.sft, rm, a.tokenizer, a.world, "test", seed)
    showcase = reply(policy, a.tokenizer, showcase_prompts(a.world))
    return {"kl": point["kl"], "proxy": point["proxy"], "gold": point["gold"], "showcase": showcase}


def compute_frontier(seed: int = FRONTIER_SEED, reward: RewardConfig = RewardConfig()) -> dict:
    """Proxy and gold against KL to the SFT model, on the test prompts, for best-of-n, PPO and DPO.

    PPO at each of :data:`FRONTIER_KL_COEFS` and DPO at each of
    :data:`FRONTIER_BETAS`, every other setting at its default, all with
    training seed ``seed``; best-of-n at :data:`BEST_OF_N`.
    """
    a, rm = _assistant(), get_reward_model(reward).model
    bon = best_of_n_points(a.sft, rm, a.tokenizer, a.world, BEST_OF_N, "test", seed)
    prompts = showcase_prompts(a.world)
    index = [[e.prompt for e in a.world.test].index(p) for p in prompts]
    result = {"seed": seed, "showcase_prompts": prompts,
              "best_of_n": {"n": bon["n"], "kl": bon["kl"], "proxy": bon["proxy"], "gold": bon["gold"],
                            "showcase": [[r[i] for i in index] for r in bon["replies"]]},
              "ppo": [], "dpo": []}
    for kl_coef in FRONTIER_KL_COEFS:
        policy = get_ppo_policy(PPOConfig(kl_coef=kl_coef, seed=seed), reward).model
        result["ppo"].append({"kl_coef": kl_coef, **_policy_entry(policy, a, rm, seed)})
    for beta in FRONTIER_BETAS:
        policy = get_dpo_policy(DPOConfig(beta=beta, seed=seed)).model
        result["dpo"].append({"beta": beta, **_policy_entry(policy, a, rm, seed)})
    return result


def _frontier_key(seed: int) -> str:
    return _key(f"frontier-{seed}-{BEST_OF_N}-{FRONTIER_KL_COEFS}-{FRONTIER_BETAS}", RewardConfig(), PPOConfig(),
                DPOConfig())


def get_frontier(seed: int = FRONTIER_SEED, rebuild: bool = False) -> dict:
    """:func:`compute_frontier`, cached (a JSON payload: numbers and replies only)."""
    seed = ensure_int("seed", seed, low=0)
    return cached("rlhf-frontier", _frontier_key(seed), lambda: compute_frontier(seed), lambda r: {"json": json.dumps(r)},
                  lambda payload: json.loads(payload["json"]), rebuild=rebuild)


def frontier_options(frontier: dict) -> list[str]:
    """The policies of a frontier, as the widget's dropdown lists them."""
    return ([f"best-of-{n}" for n in frontier["best_of_n"]["n"]]
            + [f"PPO kl_coef={p['kl_coef']:g}" for p in frontier["ppo"]]
            + [f"DPO beta={p['beta']:g}" for p in frontier["dpo"]])


def _frontier_point(frontier: dict, policy: str) -> dict:
    options = frontier_options(frontier)
    i = options.index(ensure_choice("policy", policy, options))
    bon = frontier["best_of_n"]
    if i < len(bon["n"]):
        return {"kl": bon["kl"][i], "proxy": bon["proxy"][i], "gold": bon["gold"][i], "showcase": bon["showcase"][i]}
    i -= len(bon["n"])
    return frontier["ppo"][i] if i < len(frontier["ppo"]) else frontier["dpo"][i - len(frontier["ppo"])]


def plot_frontier(frontier: dict, policy: str | None = None):
    """Proxy (reward model) and gold (harness) against KL(pi || pi_SFT), one line per method.

    With ``policy`` (one of :func:`frontier_options`) that policy is circled
    and its greedy replies to the showcase prompts are printed below.
    """
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(11, 6.2 if policy else 4))
    grid = fig.add_gridspec(2 if policy else 1, 2, height_ratios=[3, 2] if policy else [1])
    axes = [fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1])]
    bon = frontier["best_of_n"]
    lines = [("best-of-n (analytic KL bound)", bon["kl"], bon, "o-", "tab:blue"),
             ("PPO, kl_coef " + "/".join(f"{p['kl_coef']:g}" for p in frontier["ppo"]), [p["kl"] for p in frontier["ppo"]],
              frontier["ppo"], "s--", "tab:red"),
             ("DPO, beta " + "/".join(f"{p['beta']:g}" for p in frontier["dpo"]), [p["kl"] for p in frontier["dpo"]],
              frontier["dpo"], "^:", "tab:green")]
    for ax, what in zip(axes, ("proxy", "gold")):
        for label, kl, points, style, colour in lines:
            y = points[what] if isinstance(points, dict) else [p[what] for p in points]
            order = np.argsort(kl)
            ax.plot(np.asarray(kl)[order], np.asarray(y)[order], style, color=colour, label=label, ms=5)
        if policy:
            p = _frontier_point(frontier, policy)
            ax.plot([p["kl"]], [p[what]], "o", ms=14, mfc="none", mec="black", mew=2)
        ax.set(xlabel="KL(pi || pi_SFT), nats per reply",
               ylabel="reward-model score (proxy)" if what == "proxy" else "gold score (harness, held-out test)",
               title=f"{what} against KL (seed {frontier['seed']})")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    if policy:
        text = fig.add_subplot(grid[1, :])
        text.axis("off")
        rows = [f"{policy}: KL {p['kl']:.2f}, proxy {p['proxy']:.2f}, gold {p['gold']:.3f}"]
        rows += [f"{q[:60]!r} -> {r[:80]!r}" for q, r in zip(frontier["showcase_prompts"], p["showcase"])]
        text.text(0.0, 1.0, "\n".join(rows), va="top", family="monospace", fontsize=8)
    fig.tight_layout()
    return fig


def frontier_widget(frontier: dict, policy: str = "PPO kl_coef=0.05"):
    """Lesson 16's widget: choose a policy (best-of-n's n, PPO's KL coefficient or DPO's beta) on the precomputed
    frontier of :func:`get_frontier`; the point is circled and its replies to the showcase prompts shown.

    Returns
    -------
    ipywidgets.VBox
        From :func:`labkit.ui.interactive_figure`.
    """
    from functools import partial

    from labkit.ui import dropdown, interactive_figure

    options = frontier_options(frontier)
    return interactive_figure(partial(plot_frontier, frontier), policy=dropdown("policy", options,
                                                                                 ensure_choice("policy", policy, options)))


# ---------------------------------------------------------------- the bug hunt: no baseline
def policy_gradient_spread(arm_rewards: Sequence[float], baseline: bool, batch_size: int = 16, n_batches: int = 500,
                           seed: int = 0) -> float:
    """Spread of a REINFORCE gradient estimate, with or without a baseline, for a uniform softmax policy.

    A bandit whose arm ``i`` pays ``arm_rewards[i]`` plus standard normal noise;
    each batch estimates the gradient of the expected reward with respect to
    the logits as ``mean(A * grad log pi(a))``, with ``A`` the raw reward
    (the seed's per-response scalar) or the reward minus the batch's mean
    (a baseline). Both are estimates of the same gradient (up to the baseline's
    own 1/batch bias); the returned value is the total variance across
    batches (the trace of the covariance), which the baseline removes the
    reward's common offset from.
    """
    rewards = ensure_array("arm_rewards", arm_rewards, ndim=1, min_len=2)
    batch_size = ensure_int("batch_size", batch_size, low=2)
    n_batches = ensure_int("n_batches", n_batches, low=2)
    rng = np.random.default_rng(ensure_int("seed", seed, low=0))
    k = len(rewards)
    probs = np.full(k, 1.0 / k)
    grads = np.zeros((n_batches, k))
    for i in range(n_batches):
        arms = rng.integers(0, k, batch_size)
        r = rewards[arms] + rng.normal(size=batch_size)
        a = r - r.mean() if baseline else r
        score = np.eye(k)[arms] - probs  # grad of log softmax at the sampled arm
        grads[i] = (a[:, None] * score).mean(0)
    return float(grads.var(0).sum())


# ---------------------------------------------------------------- registration
register_course_model(CourseModel("rlhf-reward", lambda rebuild: get_reward_model(rebuild=rebuild),
                                  lambda: cache_path("rlhf-reward", _key("reward", RewardConfig()))))
register_course_model(CourseModel("rlhf-dpo", lambda rebuild: get_dpo_policy(rebuild=rebuild),
                                  lambda: cache_path("rlhf-dpo", _key("dpo", DPOConfig()))))
register_course_model(CourseModel("rlhf-ppo", lambda rebuild: get_ppo_policy(rebuild=rebuild),
                                  lambda: cache_path("rlhf-ppo", _key("ppo", PPOConfig(), RewardConfig()))))
register_course_model(CourseModel("rlhf-frontier", lambda rebuild: get_frontier(rebuild=rebuild),
                                  lambda: cache_path("rlhf-frontier", _frontier_key(FRONTIER_SEED))))


# ---------------------------------------------------------------- Safe RLHF (lesson 07)
SAFE_RLHF_CONFIG = PPOConfig(cost_budget=0.05, lambda_lr=2.0)


def safe_rlhf_pairs(world: World) -> tuple[list[PreferencePair], list[PreferencePair], np.ndarray]:
    """Safe RLHF's two preference sets from the world's pairs (Dai et al. 2023, section 3.1).

    *Helpfulness*, judged alone: complying beats refusing, even for a harmful
    request (the annotator is asked about help, not harm), and the other
    pairs are kept. *Harmlessness*: for a harmful request the compliance is
    the more harmful reply (unsafe) and the refusal safe; the other pairs'
    replies are both safe. Returns ``(helpful_pairs, cost_pairs, unsafe)``
    with ``cost_pairs``' chosen the more harmful reply and ``unsafe`` its
    (chosen, rejected) 0/1 labels.
    """
    helpful, costly, unsafe = [], [], []
    for p in world.preferences:
        harmful = p.reason.startswith("refuses harmful")
        helpful.append(PreferencePair(p.prompt, p.rejected, p.chosen, "complies") if harmful else p)
        costly.append(PreferencePair(p.prompt, p.rejected, p.chosen, "more harmful") if harmful else p)
        unsafe.append((1, 0) if harmful else (0, 0))
    return helpful, costly, np.asarray(unsafe)


def _safety_summary(policy: TinyGPT, cost_model: TinyGPT, a) -> dict:
    """Gold rates on the test prompts (greedy replies) and the cost model's mean P(unsafe) on them."""
    prompts = [e.prompt for e in a.world.test]
    replies = reply(policy, a.tokenizer, prompts)
    table = evaluate_assistant(FixedReplies(prompts, replies), a.world, per_category=False)
    cost = 1.0 / (1.0 + np.exp(-reward_scores(cost_model, a.tokenizer, prompts, replies)))
    return {"table": table.to_dict(orient="list"), "mean_cost": float(cost.mean())}


def compute_safe_rlhf(config: PPOConfig = SAFE_RLHF_CONFIG, reward: RewardConfig = RewardConfig()) -> dict:
    """PPO on a helpfulness reward alone and with Safe RLHF's cost constraint, measured on the test prompts."""
    a = _assistant()
    helpful, costly, unsafe = safe_rlhf_pairs(a.world)
    helpful_rm, _ = train_reward_model(a.sft, a.tokenizer, helpful, reward)
    cost_model, _ = train_reward_model(a.sft, a.tokenizer, costly, reward, unsafe=unsafe)
    prompts = [e.prompt for e in a.world.sft]
    out = {"config": asdict(config), "sft": _safety_summary(a.sft, cost_model, a)}
    # A budget of 1 can never bind (c <= 1), so lambda stays 0: helpfulness alone, its cost still measured.
    for name, run in (("helpfulness only", replace(config, cost_budget=1.0)), ("safe rlhf", config)):
        policy, history = train_ppo(a.sft, helpful_rm, a.tokenizer, prompts, run, cost_model=cost_model)
        out[name] = {"history": history, **_safety_summary(policy, cost_model, a)}
    return out


def get_safe_rlhf(rebuild: bool = False) -> dict:
    """:func:`compute_safe_rlhf`, cached (JSON: histories and test tables)."""
    return cached("rlhf-safe", _key("safe", SAFE_RLHF_CONFIG, RewardConfig()), compute_safe_rlhf,
                  lambda r: {"json": json.dumps(r)}, lambda payload: json.loads(payload["json"]), rebuild=rebuild)


register_course_model(CourseModel("rlhf-safe", lambda rebuild: get_safe_rlhf(rebuild=rebuild),
                                  lambda: cache_path("rlhf-safe", _key("safe", SAFE_RLHF_CONFIG, RewardConfig()))))


# ---------------------------------------------------------------- real text: HH-RLHF with n-gram features
HH_SPLIT = (0.6, 0.2, 0.2)  # train, validation, test shares of the 2,312 harmless-base test pairs
HH_C_GRID = (0.01, 0.1, 1.0, 10.0)


def last_assistant_turn(dialogue: str) -> str:
    """The text after the last ``Assistant:`` tag of an HH-RLHF dialogue (where chosen and rejected differ)."""
    if not isinstance(dialogue, str):
        raise TypeError(f"dialogue must be a str, got {type(dialogue).__name__}")
    head, tag, tail = dialogue.rpartition("\n\nAssistant:")
    return tail.strip() if tag else dialogue.strip()


def text_bradley_terry(chosen: Sequence[str], rejected: Sequence[str], seed: int = 0, c_grid=HH_C_GRID) -> dict:
    """A linear Bradley-Terry reward over word 1- and 2-gram TF-IDF features, on a seeded split of the pairs.

    ``P(chosen > rejected) = sigmoid(w . (x_chosen - x_rejected))``: logistic
    regression without intercept on the feature differences, each pair
    entered in both orders. The pairs are shuffled with ``seed`` and split
    :data:`HH_SPLIT` into train, validation and test; the vocabulary is
    learned on the training replies only; the regularisation ``C`` is the
    one of ``c_grid`` with the best validation accuracy. Returns the test
    accuracy with its Wilson interval, the validation accuracies, and the
    heaviest n-grams each way.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    if len(chosen) != len(rejected) or len(chosen) < 10:
        raise ValueError("chosen and rejected must be equally long, with at least 10 pairs")
    order = np.random.default_rng(ensure_int("seed", seed, low=0)).permutation(len(chosen))
    n_train, n_val = int(HH_SPLIT[0] * len(order)), int(HH_SPLIT[1] * len(order))
    parts = {"train": order[:n_train], "validation": order[n_train:n_train + n_val], "test": order[n_train + n_val:]}
    c_texts, r_texts = [last_assistant_turn(t) for t in chosen], [last_assistant_turn(t) for t in rejected]
    vec = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    vec.fit([c_texts[i] for i in parts["train"]] + [r_texts[i] for i in parts["train"]])

    def diffs(split):
        idx = parts[split]
        return vec.transform([c_texts[i] for i in idx]) - vec.transform([r_texts[i] for i in idx])

    d_train = diffs("train")
    x = _vstack(d_train, -d_train)
    y = np.r_[np.ones(d_train.shape[0]), np.zeros(d_train.shape[0])]
    val_acc, models = {}, {}
    for c in c_grid:
        models[c] = LogisticRegression(C=c, fit_intercept=False, max_iter=2000).fit(x, y)
        val_acc[c] = float((models[c].decision_function(diffs("validation")) > 0).mean())
    best = max(c_grid, key=lambda c: (val_acc[c], -c))  # ties: the stronger regularisation
    wins = models[best].decision_function(diffs("test")) > 0
    low, high = wilson_interval(int(wins.sum()), len(wins))
    weights, names = models[best].coef_[0], vec.get_feature_names_out()
    top = np.argsort(weights)
    return {"n": {k: len(v) for k, v in parts.items()}, "validation_accuracy": val_acc, "C": best,
            "test_accuracy": float(wins.mean()), "ci_low": low, "ci_high": high,
            "chosen_ngrams": [str(names[i]) for i in top[::-1][:10]],
            "rejected_ngrams": [str(names[i]) for i in top[:10]]}


def _vstack(a, b):
    from scipy.sparse import vstack

    return vstack([a, b]).tocsr()


def hh_rlhf_study(seed: int = 0, rebuild: bool = False) -> dict:
    """:func:`text_bradley_terry` on HH-RLHF harmless-base (``labkit.datasets``' ``hh_rlhf_harmless``), cached.

    Call it only when ``datasets.require("hh_rlhf_harmless")`` is true.
    """
    from labkit import datasets

    seed = ensure_int("seed", seed, low=0)
    key = _key(f"hh-{seed}-{HH_SPLIT}-{HH_C_GRID}-{datasets.REGISTRY['hh_rlhf_harmless'].sha256}")

    def build() -> dict:
        pairs = datasets.load("hh_rlhf_harmless")
        return text_bradley_terry(pairs.chosen.tolist(), pairs.rejected.tolist(), seed)

    return cached("rlhf-hh-ngram", key, build, lambda r: {"json": json.dumps(r)},
                  lambda payload: json.loads(payload["json"]), rebuild=rebuild)


__all__ = ["dpo_loss", "gae", "ppo_policy_loss", "kl_penalized_rewards", "masked_mean", "whiten", "last_response_index",
           "sequence_batch", "token_logprobs", "sequence_scores", "held_out_pairs", "RewardConfig", "reward_scores",
           "train_reward_model", "reward_model_report", "DPOConfig", "train_dpo", "PPOConfig", "sample_responses",
           "train_ppo", "FixedReplies", "gold_score", "sampled_point", "best_of_n_points", "Trained", "get_reward_model",
           "get_dpo_policy", "get_ppo_policy", "BEST_OF_N", "FRONTIER_KL_COEFS", "FRONTIER_BETAS", "showcase_prompts",
           "compute_frontier", "get_frontier", "frontier_options", "plot_frontier", "frontier_widget",
           "policy_gradient_spread", "SAFE_RLHF_CONFIG", "safe_rlhf_pairs", "compute_safe_rlhf", "get_safe_rlhf",
           "last_assistant_turn", "text_bradley_terry", "hh_rlhf_study", "RLHF_THREADS", "CODE_VERSION"]
