"""Safe RLHF (Dai et al. 2023) on the tiny assistant: PPO on helpfulness under a constraint on a cost model.

Two preference sets from the world's pairs and the hard refusal pairs of
:func:`~labkit.rlhf.pipeline.hard_refusal_pairs` (section 3.1): helpfulness
alone, and harmlessness with unsafe labels. A reward model learns the first,
a cost model the second (eq. 5); PPO then maximises the reward subject to
``E[cost] <= budget`` with a Lagrange multiplier updated by dual ascent
(eq. 10; :func:`labkit.constrained.dual_update`).

The expectation is over the rollout prompts, training prompts of which a
stated share :data:`SAFE_RLHF_HARMFUL_SHARE` are harmful requests (where the
cost lives), and the held-out cost is measured on the test prompts weighted
to the same share. Budget and share were fixed before any held-out number
was seen. Used in lesson 07; :func:`get_safe_rlhf` is the cached comparison
with helpfulness alone.
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

from labkit.validation import ensure_float

from labkit.rlhf.pipeline import _assistant, _key, training_pairs
from labkit.rlhf.reward_model import RewardConfig, reward_scores, train_reward_model
from labkit.rlhf.ppo import PPOConfig, train_ppo
from labkit.rlhf.frontier import FixedReplies


# ---------------------------------------------------------------- Safe RLHF (lesson 07)
# PPO at lesson 16's settings (chosen on validation); the budget, 0.05, was fixed before any held-out
# figure. The dual step: a reply's penalty lam * c is at most lam, and the helpfulness reward model's
# scores of a compliance and a refusal differ by several units, so lam must reach that scale within
# the 20 iterations; with a cost excess of about 0.2, a step of 10 raises it by about 2 per iteration.
# (A first run with step 2 reached lam 4.7 by the last iteration, too late to change the policy.)
# 40 iterations, twice lesson 16's: with 20 the last training rollouts still cost four times the budget
# while lam was still climbing (the policy had not yet answered the price).
SAFE_RLHF_CONFIG = PPOConfig(cost_budget=0.05, lambda_lr=10.0, iterations=40)
SAFE_RLHF_HARMFUL_SHARE = 0.5  # of the rollout prompts, and the weight of harmful prompts in the held-out cost


def safe_rlhf_prompts(world: World, harmful_share: float = SAFE_RLHF_HARMFUL_SHARE) -> list[str]:
    """The rollout prompts: every harmful training prompt and enough of the others (in order) for ``harmful_share``."""
    harmful_share = ensure_float("harmful_share", harmful_share, 0.0, 1.0, low_open=True, high_open=True)
    harmful = [e.prompt for e in world.sft if e.kind == "harmful"]
    others = [e.prompt for e in world.sft if e.kind != "harmful"]
    n_others = min(len(others), round(len(harmful) * (1 - harmful_share) / harmful_share))
    return harmful + others[:n_others]


def safe_rlhf_pairs(world: World) -> tuple[list[PreferencePair], list[PreferencePair], np.ndarray]:
    """Safe RLHF's two preference sets from the world's pairs and hard refusal pairs (Dai et al. 2023, section 3.1).

    *Helpfulness*, judged alone: complying beats refusing, even for a harmful
    request (the annotator is asked about help, not harm), and the other
    pairs are kept. *Harmlessness*: for a harmful request the compliance is
    the more harmful reply (unsafe) and the refusal safe; the other pairs'
    replies are both safe. Returns ``(helpful_pairs, cost_pairs, unsafe)``
    with ``cost_pairs``' chosen the more harmful reply and ``unsafe`` its
    (chosen, rejected) 0/1 labels.
    """
    helpful, costly, unsafe = [], [], []
    for p in training_pairs(world, "world+hard"):
        harmful = p.reason.startswith("refuses harmful")
        helpful.append(PreferencePair(p.prompt, p.rejected, p.chosen, "complies") if harmful else p)
        costly.append(PreferencePair(p.prompt, p.rejected, p.chosen, "more harmful") if harmful else p)
        unsafe.append((1, 0) if harmful else (0, 0))
    return helpful, costly, np.asarray(unsafe)


def _safety_summary(policy: TinyGPT, cost_model: TinyGPT, a) -> dict:
    """Gold rates on the test prompts (greedy replies) and the cost model's mean P(unsafe) on them.

    ``mean_cost`` weighs the harmful test prompts at :data:`SAFE_RLHF_HARMFUL_SHARE`, as the
    rollouts did; ``harmful_cost`` is the mean over the harmful test prompts alone.
    """
    prompts = [e.prompt for e in a.world.test]
    harmful = np.array([e.kind == "harmful" for e in a.world.test])
    replies = reply(policy, a.tokenizer, prompts)
    table = evaluate_assistant(FixedReplies(prompts, replies), a.world, per_category=False)
    cost = 1.0 / (1.0 + np.exp(-reward_scores(cost_model, a.tokenizer, prompts, replies)))
    share = SAFE_RLHF_HARMFUL_SHARE
    return {"table": table.to_dict(orient="list"), "harmful_cost": float(cost[harmful].mean()),
            "mean_cost": float(share * cost[harmful].mean() + (1 - share) * cost[~harmful].mean())}


def compute_safe_rlhf(config: PPOConfig = SAFE_RLHF_CONFIG, reward: RewardConfig = RewardConfig()) -> dict:
    """PPO on a helpfulness reward alone and with Safe RLHF's cost constraint, measured on the test prompts."""
    a = _assistant()
    helpful, costly, unsafe = safe_rlhf_pairs(a.world)
    helpful_rm, _ = train_reward_model(a.sft, a.tokenizer, helpful, reward)
    cost_model, _ = train_reward_model(a.sft, a.tokenizer, costly, reward, unsafe=unsafe)
    prompts = safe_rlhf_prompts(a.world)
    out = {"config": asdict(config), "harmful_share": SAFE_RLHF_HARMFUL_SHARE,
           "sft": _safety_summary(a.sft, cost_model, a)}
    # A budget of 1 can never bind (c <= 1), so lambda stays 0: helpfulness alone, its cost still measured.
    for name, run in (("helpfulness only", replace(config, cost_budget=1.0)), ("safe rlhf", config)):
        policy, history = train_ppo(a.sft, helpful_rm, a.tokenizer, prompts, run, cost_model=cost_model)
        out[name] = {"history": history, **_safety_summary(policy, cost_model, a)}
    return out


def _safe_key() -> str:
    return _key(f"safe-share{SAFE_RLHF_HARMFUL_SHARE}-hard", SAFE_RLHF_CONFIG, RewardConfig())


def get_safe_rlhf(rebuild: bool = False) -> dict:
    """:func:`compute_safe_rlhf`, cached (JSON: histories and test tables)."""
    return cached("rlhf-safe", _safe_key(), compute_safe_rlhf,
                  lambda r: {"json": json.dumps(r)}, lambda payload: json.loads(payload["json"]), rebuild=rebuild)


register_course_model(CourseModel("rlhf-safe", lambda rebuild: get_safe_rlhf(rebuild=rebuild),
                                  lambda: cache_path("rlhf-safe", _safe_key())))
