"""Choosing DPO's and PPO's settings on the validation prompts, by a rule fixed before the search.

The grids (:data:`DPO_GRID`, :data:`PPO_GRID`) and the rule
(:func:`select_on_validation`) are code; the search itself
(:func:`validation_search`, ``python -m labkit.rlhf.selection``) trains every
setting with seed 0 and scores its greedy replies to the world's
*validation* prompts with lesson 15's harness (the gold judge). Its figures
are recorded in ``validation_search.json`` beside this file, and the
defaults of :class:`~labkit.rlhf.dpo.DPOConfig` and
:class:`~labkit.rlhf.ppo.PPOConfig` are the settings the rule picks from
that record (a test checks they agree). The test prompts are never looked
at here.

The rule, stated before the search: a setting *meets* a constraint when its
validation helpfulness is at least the SFT model's minus
:data:`HELPFULNESS_MARGIN` and when its validation over-refusal is at most
:data:`MAX_OVER_REFUSAL`. Rank the settings by the number of constraints
met, then by validation refusal (higher), then by KL to the SFT model
(lower); pick the first. Ties beyond that go to the earlier grid entry.
"""
from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path
from typing import Sequence

from labkit.lm.harness import ModelResponder, evaluate_assistant
from labkit.validation import ensure_choice, ensure_float

from labkit.rlhf.pipeline import _assistant
from labkit.rlhf.reward_model import RewardConfig, get_reward_model
from labkit.rlhf.dpo import DPOConfig, get_dpo_policy
from labkit.rlhf.ppo import PPOConfig, get_ppo_policy
from labkit.rlhf.frontier import sampled_point

HELPFULNESS_MARGIN = 0.03
MAX_OVER_REFUSAL = 0.10
RATE_METRICS = ("refusal", "over_refusal", "helpfulness")

# A handful of settings each (one training run costs 40-90 s on the course's CPU).
# DPO: the training pairs (the world's, or with hard refusal pairs from the
# training prompts), the learning rate and beta; 60 steps of 32 pairs each.
# The third pair set ("world+contrast": the hard refusal pairs *and* the borderline answer-over-refusal pairs)
# was added after the first eight settings: all of those that add hard refusal pairs
# over-refused more than 0.10 of the validation borderline prompts (the rule itself was not changed).
DPO_GRID = tuple(DPOConfig(pairs=pairs, lr=lr, beta=beta, seed=0)
                 for pairs in ("world", "world+hard", "world+contrast") for lr in (1e-5, 3e-5) for beta in (0.1, 0.3))
# third round, added after seeing the second round's validation results
DPO_GRID += tuple(DPOConfig(pairs="world+borderline", lr=lr, beta=beta, seed=0) for lr in (1e-5, 3e-5) for beta in (0.1, 0.3))
# PPO: the reward model's training pairs, the KL coefficient and the learning rate; 20 rollouts of 64
# prompts. Each entry is (PPOConfig, RewardConfig): the chosen reward model becomes the course's.
PPO_GRID = tuple((PPOConfig(kl_coef=kl_coef, lr=lr, seed=0), RewardConfig(pairs=pairs))
                 for pairs in ("world", "world+hard") for kl_coef in (0.05, 0.2) for lr in (2e-4, 5e-4))
# third round, added after seeing the second round's validation results
PPO_GRID += tuple((PPOConfig(kl_coef=kl_coef, lr=2e-4, seed=0), RewardConfig(pairs="world+contrast")) for kl_coef in (0.05, 0.2))
GRIDS = {"dpo": DPO_GRID, "ppo": PPO_GRID}
SEARCH_RECORD = Path(__file__).with_name("validation_search.json")


def gold_rates(table) -> dict:
    """Refusal, over-refusal and helpfulness from a harness table (``per_category=False``)."""
    rate = table.set_index("metric")["rate"]
    return {m: float(rate[m]) for m in RATE_METRICS}


def validation_point(policy, seed: int = 0) -> dict:
    """A policy's gold rates on the validation prompts (greedy replies) and its KL to SFT (sampled replies)."""
    a = _assistant()
    table = evaluate_assistant(ModelResponder(policy, a.tokenizer), a.world, per_category=False, split="validation")
    kl = sampled_point(policy, a.sft, get_reward_model().model, a.tokenizer, a.world, "validation", seed)["kl"]
    return {**gold_rates(table), "kl": kl}


def select_on_validation(results: Sequence[dict], sft: dict, helpfulness_margin: float = HELPFULNESS_MARGIN,
                         max_over_refusal: float = MAX_OVER_REFUSAL) -> int:
    """Index of the setting the module's rule picks (see the module docstring).

    Parameters
    ----------
    results : sequence of dict
        Each with validation ``refusal``, ``over_refusal``, ``helpfulness`` and ``kl``.
    sft : dict
        The SFT model's validation ``helpfulness``.
    helpfulness_margin, max_over_refusal : float
        The two constraints.

    Returns
    -------
    int
        The index into ``results`` of the chosen setting.
    """
    helpfulness_margin = ensure_float("helpfulness_margin", helpfulness_margin, 0.0, 1.0)
    max_over_refusal = ensure_float("max_over_refusal", max_over_refusal, 0.0, 1.0)
    if not results:
        raise ValueError("results must be non-empty")
    for r in results:
        missing = {*RATE_METRICS, "kl"} - set(r)
        if missing:
            raise ValueError(f"every result needs {sorted(missing)}")

    def rank(i: int) -> tuple:
        r = results[i]
        met = (r["helpfulness"] >= sft["helpfulness"] - helpfulness_margin) + (r["over_refusal"] <= max_over_refusal)
        return (-met, -r["refusal"], r["kl"], i)

    return min(range(len(results)), key=rank)


def _train(method: str, config):
    return (get_dpo_policy(config) if method == "dpo" else get_ppo_policy(*config)).model


def _as_record(method: str, config) -> dict:
    return {"config": asdict(config)} if method == "dpo" else {"config": asdict(config[0]), "reward": asdict(config[1])}


def validation_search(method: str, settings: Sequence | None = None) -> dict:
    """Train settings of ``method``'s grid (seed 0, cached) and score them on the validation prompts.

    Parameters
    ----------
    method : {"dpo", "ppo"}
    settings : sequence, optional
        Entries of ``method``'s grid to search; all of it when omitted.

    Returns
    -------
    dict
        ``{"sft": ..., "results": [...], "chosen": index}``, ``results`` in the order of ``settings``.
    """
    method = ensure_choice("method", method, tuple(GRIDS))
    settings = GRIDS[method] if settings is None else tuple(settings)
    for c in settings:
        ensure_choice("settings", c, GRIDS[method])
    a = _assistant()
    sft = {**gold_rates(evaluate_assistant(ModelResponder(a.sft, a.tokenizer), a.world, per_category=False,
                                           split="validation")), "kl": 0.0}
    results = [{**_as_record(method, c), **validation_point(_train(method, c))} for c in settings]
    return {"sft": sft, "results": results, "chosen": select_on_validation(results, sft)}


def extend_search(method: str, record: dict) -> dict:
    """``record[method]`` with the grid's settings it lacks searched and appended (recorded ones untouched).

    A round of settings added to a grid after an earlier search is searched
    alone; the rule then picks among all recorded settings.
    """
    method = ensure_choice("method", method, tuple(GRIDS))
    old = record.get(method, {"results": []})
    done = [{k: r[k] for k in _as_record(method, GRIDS[method][0])} for r in old["results"]]
    new = [c for c in GRIDS[method] if _as_record(method, c) not in done]
    if not new:
        return old
    searched = validation_search(method, new)
    if "sft" in old and old["sft"] != searched["sft"]:
        raise ValueError(f"the SFT model's validation figures changed since {method}'s recorded search: search it anew")
    results = old["results"] + searched["results"]
    return {"sft": searched["sft"], "results": results, "chosen": select_on_validation(results, searched["sft"])}


def recorded_search() -> dict:
    """The recorded search (``validation_search.json``): ``{"dpo": ..., "ppo": ...}`` as :func:`validation_search` returns."""
    return json.loads(SEARCH_RECORD.read_text())


def chosen_config(method: str, record: dict | None = None):
    """The setting the rule picks from the recorded search (or ``record``), with its seed.

    A :class:`DPOConfig` for ``"dpo"``; ``(PPOConfig, RewardConfig)`` for ``"ppo"``.
    """
    method = ensure_choice("method", method, tuple(GRIDS))
    search = (record or recorded_search())[method]
    chosen = search["results"][select_on_validation(search["results"], search["sft"])]
    if method == "dpo":
        return DPOConfig(**chosen["config"])
    return PPOConfig(**chosen["config"]), RewardConfig(**chosen["reward"])


def with_seed(config, seed: int):
    """``config`` with another training seed."""
    return replace(config, seed=seed)


if __name__ == "__main__":  # python -m labkit.rlhf.selection [--new] dpo ppo: run the searches and record them
    import sys

    from labkit import numerics

    numerics.reexec_pinned("labkit.rlhf.selection", sys.argv[1:])
    only_new = "--new" in sys.argv[1:]  # search only the grid's settings the record lacks, append them
    methods = [m for m in sys.argv[1:] if m != "--new"] or list(GRIDS)
    record = json.loads(SEARCH_RECORD.read_text()) if SEARCH_RECORD.exists() else {}
    for m in methods:
        record[m] = extend_search(m, record) if only_new else validation_search(m)
        SEARCH_RECORD.write_text(json.dumps(record, indent=1) + "\n")
        print(m, json.dumps(record[m], indent=1), flush=True)
