"""Gold against proxy along KL: best-of-n, PPO and DPO on the reward-KL plane (lesson 16's figure and widget).

Best-of-n samples ``n`` replies and keeps the reward model's favourite
(Stiennon et al. 2020), at ``KL = log n - (n - 1) / n`` to the SFT model
(:func:`labkit.reward.best_of_n_kl`). The *proxy* is the reward model's
score; the *gold* is the course harness's judgement (:func:`gold_score`).
Plotting both against ``KL(pi || pi_SFT)`` for best-of-n, PPO at several KL
coefficients and DPO at several betas shows reward over-optimisation (Gao,
Schulman and Hilton 2023): the proxy keeps rising while the gold turns.
:func:`get_frontier` is the course's cached frontier.
"""
from __future__ import annotations

import json
from typing import Sequence

import numpy as np
import torch

from labkit.lm.cache import CourseModel, cache_path, cached, register_course_model
from labkit.lm.harness import evaluate_assistant
from labkit.lm.replies import reply
from labkit.lm.tinygpt import TinyGPT
from labkit.lm.train import cpu_threads
from labkit.lm.world import World, prompt_text
from labkit.reward import best_of_n_kl
from labkit.validation import ensure_choice, ensure_int

from labkit.rlhf.pipeline import RLHF_THREADS, _assistant, _key, sequence_batch, sequence_scores, token_logprobs
from labkit.rlhf.reward_model import RewardConfig, _scores_of, get_reward_model
from labkit.rlhf.dpo import DPOConfig, get_dpo_policy
from labkit.rlhf.ppo import PPOConfig, get_ppo_policy, sample_responses


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


def differing_replies(policy: TinyGPT, other: TinyGPT, tokenizer, world: World, split: str = "test",
                      kinds: Sequence[str] = SHOWCASE_KINDS) -> dict:
    """Where two policies' greedy replies differ: how often, and the first such prompt of each kind.

    Reward hacking is easiest to see where a policy *changed* its behaviour:
    fixed showcase prompts often get the same reply from both policies.

    Parameters
    ----------
    policy, other : TinyGPT
        The two policies (e.g. PPO without and with its KL anchor).
    tokenizer : Tokenizer
    world : World
    split : {"train", "validation", "test"}
        Whose prompts to reply to.
    kinds : sequence of str
        The prompt kinds to show an example of, in this order.

    Returns
    -------
    dict
        ``n`` (prompts), ``n_differ`` (prompts whose two replies differ) and
        ``examples``: a list of ``(kind, prompt, policy's reply, other's reply)``
        with, for each kind that has one, the first differing prompt in the
        split's order.
    """
    split = ensure_choice("split", split, ("train", "validation", "test"))
    kinds = [ensure_choice("kinds", k, SHOWCASE_KINDS) for k in kinds]
    examples = list(getattr(world, split))
    prompts = [e.prompt for e in examples]
    mine, theirs = reply(policy, tokenizer, prompts), reply(other, tokenizer, prompts)
    differ = [i for i in range(len(prompts)) if mine[i] != theirs[i]]
    shown = [next((i for i in differ if examples[i].kind == kind), None) for kind in kinds]
    return {"n": len(prompts), "n_differ": len(differ),
            "examples": [(examples[i].kind, prompts[i], mine[i], theirs[i]) for i in shown if i is not None]}


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
    ppo = {}
    for kl_coef in FRONTIER_KL_COEFS:
        ppo[kl_coef] = policy = get_ppo_policy(PPOConfig(kl_coef=kl_coef, seed=seed), reward).model
        result["ppo"].append({"kl_coef": kl_coef, **_policy_entry(policy, a, rm, seed)})
    # The reward-hacking showcase: PPO without its anchor against the default anchored run.
    default = PPOConfig().kl_coef
    anchored = ppo[default] if default in ppo else get_ppo_policy(PPOConfig(seed=seed), reward).model
    result["hacking"] = differing_replies(ppo[0.0], anchored, a.tokenizer, a.world, "test")
    for beta in FRONTIER_BETAS:
        policy = get_dpo_policy(DPOConfig(beta=beta, seed=seed)).model
        result["dpo"].append({"beta": beta, **_policy_entry(policy, a, rm, seed)})
    return result


def _frontier_key(seed: int) -> str:
    return _key(f"frontier-{seed}-{BEST_OF_N}-{FRONTIER_KL_COEFS}-{FRONTIER_BETAS}-hacking", RewardConfig(), PPOConfig(),
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


register_course_model(CourseModel("rlhf-frontier", lambda rebuild: get_frontier(rebuild=rebuild),
                                  lambda: cache_path("rlhf-frontier", _frontier_key(FRONTIER_SEED))))
