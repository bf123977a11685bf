"""Safe RLHF (Dai et al. 2023) on the tiny assistant: PPO on helpfulness under a constraint on a cost model.

Two preference sets from the world's pairs (section 3.1): helpfulness alone,
and harmlessness with unsafe labels. A reward model learns the first, a
cost model the second (eq. 5); PPO then maximises the reward subject to
``E[cost] <= budget`` with a Lagrange multiplier updated by dual ascent
(eq. 10; :func:`labkit.constrained.dual_update`). Used in lesson 07;
:func:`get_safe_rlhf` is the cached comparison with helpfulness alone.
"""
from __future__ import annotations

import json
from dataclasses import asdict, replace

import numpy as np

from labkit.lm.cache import CourseModel, cache_path, cached, register_course_model
from labkit.lm.harness import evaluate_assistant
from labkit.lm.replies import reply
from labkit.lm.tinygpt import TinyGPT
from labkit.lm.world import PreferencePair, World

from labkit.rlhf.pipeline import _assistant, _key
from labkit.rlhf.reward_model import RewardConfig, reward_scores, train_reward_model
from labkit.rlhf.ppo import PPOConfig, train_ppo
from labkit.rlhf.frontier import FixedReplies


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
