"""The reward model: the SFT TinyGPT with a scalar head, trained on preference pairs.

Trained with the Bradley-Terry loss of :func:`labkit.reward.bradley_terry_loss`
(Christiano et al. 2017, eq. 1; as in Ouyang et al. 2022, eq. 1),
``-log sigmoid(r(x, y_chosen) - r(x, y_rejected))``; with ``unsafe`` labels it
also fits Safe RLHF's cost-model classification term (Dai et al. 2023, eq. 5).
:func:`reward_model_report` measures pairwise accuracy (Wilson interval) and
calibration; :func:`get_reward_model` is the course's cached reward model.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from labkit.calibration import expected_calibration_error
from labkit.intervals import wilson_interval
from labkit.lm.cache import CourseModel, cache_path, register_course_model
from labkit.lm.tinygpt import TinyGPT
from labkit.lm.train import cpu_threads
from labkit.lm.world import PreferencePair
from labkit.reward import bradley_terry_loss
from labkit.validation import ensure_array, ensure_choice, ensure_float, ensure_instance, ensure_int

from labkit.rlhf.pipeline import (
    PAIR_SETS, RLHF_THREADS, Trained, _adamw, _assistant, _cached_model, _copy, _encode_pairs, _key, _step,
    sequence_batch, sequence_scores, training_pairs)


# ---------------------------------------------------------------- the reward model
@dataclass(frozen=True)
class RewardConfig:
    """Training of the reward model: 60 steps already rank every validation pair correctly (120 did too)."""

    steps: int = 60
    batch_size: int = 32
    lr: float = 1e-3
    seed: int = 0
    pairs: str = "world+contrast"  # the training pairs, one of PAIR_SETS (:func:`~labkit.rlhf.pipeline.training_pairs`)

    def __post_init__(self) -> None:
        ensure_choice("pairs", self.pairs, PAIR_SETS)
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


@torch.no_grad()
def _scores_of(reward_model, tokenizer, prompt_ids, responses, batch_size: int = 256) -> np.ndarray:
    """Scores of token-id replies to token-id prompts, in batches."""
    dev, out = reward_model.wte.weight.device, []
    for s in range(0, len(prompt_ids), batch_size):
        seq, lengths, _ = sequence_batch(prompt_ids[s:s + batch_size], responses[s:s + batch_size], tokenizer.pad_id,
                                         reward_model.cfg.context)
        out.append(sequence_scores(reward_model, seq.to(dev), lengths.to(dev)).cpu())
    return torch.cat(out).numpy()


def get_reward_model(config: RewardConfig = RewardConfig(), rebuild: bool = False) -> Trained:
    """The reward model of the default assistant, trained on the preference pairs ``config.pairs`` names (cached)."""
    ensure_instance("config", config, RewardConfig)
    a = _assistant()
    return _cached_model("rlhf-reward", _key("reward", config),
                         lambda: train_reward_model(a.sft, a.tokenizer, training_pairs(a.world, config.pairs), config), rebuild)


register_course_model(CourseModel("rlhf-reward", lambda rebuild: get_reward_model(rebuild=rebuild),
                                  lambda: cache_path("rlhf-reward", _key("reward", RewardConfig()))))
