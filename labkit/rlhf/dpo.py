"""Direct preference optimisation (Rafailov et al. 2023): the policy trained on the pairs, no reward model.

The loss is :func:`labkit.rlhf.losses.dpo_loss` (eq. 7),
``-log sigmoid(beta * (log pi/pi_ref (y_chosen) - log pi/pi_ref (y_rejected)))``,
with the SFT model as the frozen reference, whose log-probabilities are
computed once. :func:`get_dpo_policy` is the course's cached DPO policy.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

import torch

from labkit.lm.cache import CourseModel, cache_path, register_course_model
from labkit.lm.tinygpt import TinyGPT
from labkit.lm.train import cpu_threads
from labkit.lm.world import PreferencePair
from labkit.validation import ensure_choice, ensure_float, ensure_instance, ensure_int

from labkit.rlhf.losses import dpo_loss
from labkit.rlhf.pipeline import (
    PAIR_SETS, RLHF_THREADS, Trained, _adamw, _assistant, _cached_model, _copy, _encode_pairs, _key, _step, sequence_batch,
    token_logprobs, training_pairs)


# ---------------------------------------------------------------- DPO
@dataclass(frozen=True)
class DPOConfig:
    """Training of a DPO policy.

    The defaults of ``pairs``, ``lr`` and ``beta`` are the setting
    :func:`labkit.rlhf.selection.select_on_validation` picked from
    :data:`labkit.rlhf.selection.DPO_GRID` on the validation prompts
    (``validation_search.json``; a test checks they agree).
    """

    beta: float = 0.3
    steps: int = 60
    batch_size: int = 32
    lr: float = 3e-5
    seed: int = 0
    pairs: str = "world+hard"  # the training pairs: "world", "world+hard" or "world+contrast" (:func:`training_pairs`)

    def __post_init__(self) -> None:
        ensure_choice("pairs", self.pairs, PAIR_SETS)
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


def get_dpo_policy(config: DPOConfig = DPOConfig(), rebuild: bool = False) -> Trained:
    """The default assistant after DPO on the preference pairs ``config.pairs`` names (cached)."""
    ensure_instance("config", config, DPOConfig)
    a = _assistant()
    return _cached_model("rlhf-dpo", _key("dpo", config),
                         lambda: train_dpo(a.sft, a.tokenizer, training_pairs(a.world, config.pairs), config), rebuild)


register_course_model(CourseModel("rlhf-dpo", lambda rebuild: get_dpo_policy(rebuild=rebuild),
                                  lambda: cache_path("rlhf-dpo", _key("dpo", DPOConfig()))))
