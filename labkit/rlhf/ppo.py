"""RLHF with PPO (Schulman et al. 2017) against a reward model, with a per-token KL penalty to the SFT model.

As in InstructGPT (Ouyang et al. 2022) and the implementation details of
Huang et al. (2024): sampled replies are scored by the reward model, each
token pays ``kl_coef * (log pi - log pi_SFT)`` (Ziegler et al. 2019, eq. 2),
a value model gives GAE advantages (Schulman et al. 2016, eq. 16), whitened,
and the policy minimises the clipped surrogate (Schulman et al. 2017, eq. 7)
while the value model minimises a clipped value loss. With a cost model and
a budget, a Lagrange multiplier turns it into Safe RLHF's constrained PPO
(Dai et al. 2023; see :mod:`labkit.rlhf.safe_rlhf`).

Also the bug hunt of lesson 16: :func:`policy_gradient_spread`, the variance
of a REINFORCE estimate with and without a baseline (Williams 1992).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from labkit.constrained import dual_update
from labkit.lm.cache import CourseModel, cache_path, register_course_model
from labkit.lm.tinygpt import TinyGPT
from labkit.lm.train import cpu_threads
from labkit.lm.world import prompt_text
from labkit.validation import ensure_array, ensure_float, ensure_instance, ensure_int

from labkit.rlhf.losses import gae, kl_penalized_rewards, masked_mean, ppo_policy_loss, whiten
from labkit.rlhf.pipeline import (
    RLHF_THREADS, Trained, _adamw, _assistant, _cached_model, _copy, _key, _step, sequence_batch, sequence_scores,
    token_logprobs)
from labkit.rlhf.reward_model import RewardConfig, get_reward_model


# ---------------------------------------------------------------- PPO
@dataclass(frozen=True)
class PPOConfig:
    """Training of a PPO policy.

    The defaults of ``kl_coef`` and ``lr`` (with the reward model of
    ``RewardConfig()``) are the setting
    :func:`labkit.rlhf.selection.select_on_validation` picked from
    :data:`labkit.rlhf.selection.PPO_GRID` on the validation prompts
    (``validation_search.json``; a test checks they agree).

    ``kl_coef`` weighs the per-token KL penalty to the SFT model;
    ``iterations`` rollout batches of ``rollout_size`` prompts each, each
    followed by ``ppo_epochs`` passes over it in minibatches.
    """

    kl_coef: float = 0.2
    iterations: int = 20
    rollout_size: int = 64
    minibatch_size: int = 32
    ppo_epochs: int = 2
    lr: float = 2e-4
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


def get_ppo_policy(config: PPOConfig = PPOConfig(), reward: RewardConfig = RewardConfig(),
                   rebuild: bool = False) -> Trained:
    """The default assistant after PPO against :func:`get_reward_model`, on the SFT prompts (cached)."""
    ensure_instance("config", config, PPOConfig)
    a = _assistant()
    rm = get_reward_model(reward).model
    prompts = [e.prompt for e in a.world.sft]
    return _cached_model("rlhf-ppo", _key("ppo", config, reward),
                         lambda: train_ppo(a.sft, rm, a.tokenizer, prompts, config), rebuild)


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


register_course_model(CourseModel("rlhf-ppo", lambda rebuild: get_ppo_policy(rebuild=rebuild),
                                  lambda: cache_path("rlhf-ppo", _key("ppo", PPOConfig(), RewardConfig()))))
