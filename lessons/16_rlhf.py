# %% [markdown]
# # 16 · RLHF: reward models, PPO and DPO on the tiny assistant
#
# Lesson 15 trained the course's assistant with supervised fine-tuning (SFT).
# This lesson takes it through the rest of the RLHF pipeline of InstructGPT
# (Ouyang et al. 2022) on a laptop CPU: a reward model learned from
# preference pairs, best-of-n sampling against it, PPO with a KL penalty to
# the SFT model, and DPO, which needs no reward model at all. The harness of
# lesson 15 plays the *gold* judge; the learned reward model is only a
# *proxy*, and the lesson measures what happens when a policy is optimised
# against the proxy.
#
# **In this lesson you will**
# 1. reproduce the seeds' three-step recipe and find, by running it, three defects: a hinge loss that gives no
#    probabilities and stops learning, no anchor to the SFT model, and no baseline;
# 2. train a Bradley-Terry reward model on the assistant (SFT backbone, scalar head) and measure it on held-out pairs;
# 3. write the DPO loss, GAE and PPO's clipped loss (exercises), and use labkit's PPO and DPO trainers;
# 4. check what the preference pairs contrast, choose DPO's and PPO's settings on validation by a rule stated
#    beforehand (in three disclosed rounds of the search), and compare SFT, DPO and PPO on the gold judge over three seeds, with 95 % intervals and the KL
#    each paid;
# 5. draw the reward-KL frontier of best-of-n, PPO and DPO (Gao et al. 2022), and watch reward hacking when the KL
#    anchor is removed.

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

import labkit
from labkit import reward, rlhf
from labkit.exercises import card, check
from labkit.intervals import wilson_interval
from labkit.lm import harness
from labkit.lm.cache import get_assistant

device = labkit.setup(seed=0)
pd.set_option("display.width", 130)
assistant = get_assistant("default")
tok, world = assistant.tokenizer, assistant.world

# %% [markdown]
# ## 1. The seeds' approach, in a few lines
#
# Seed 002 describes RLHF in three steps: fine-tune on demonstrations; train
# a reward model that scores the preferred reply above the other by a
# margin (a hinge on the score difference); then "update the model with the
# reward". Seed 004 shows the same last step as a call to TRL's
# `PPOTrainer` with the reward as a per-reply scalar. In our own words, the
# reward-model step is:
#
# ```python
# loss = relu(margin - (score(chosen) - score(rejected))).mean()
# ```
#
# and the update step pushes up the log-probability of each sampled reply in
# proportion to its reward, with no reference model:
#
# ```python
# loss = -(reward * logprob(reply)).mean()
# ```
#
# ## 2. Bug hunt
#
# **Defect 1: the hinge gives no probabilities and stops learning.** Fit a
# linear reward model both ways on lesson 05's simulated preferences (pairs
# labelled by a Bradley-Terry annotator, one in ten labels flipped), the
# hinge with three margins. Once a pair clears the margin its hinge gradient
# is exactly zero: that pair no longer teaches anything. And the scale of
# the scores is set by the margin, an arbitrary constant, so
# `sigmoid(score gap)` is a probability of preference only by luck.

# %%
def fit_linear_reward(data, loss_name, steps=300, margin=1.0, lr=0.05):
    chosen, rejected = (torch.tensor(x, dtype=torch.float32) for x in data.chosen_rejected())
    w = torch.zeros(chosen.shape[1], requires_grad=True)
    opt = torch.optim.Adam([w], lr=lr)
    for _ in range(steps):
        gap = chosen @ w - rejected @ w
        loss = torch.relu(margin - gap).mean() if loss_name == "hinge" else reward.bradley_terry_loss(chosen @ w, rejected @ w)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        still_learning = float((margin - (chosen @ w - rejected @ w) > 0).float().mean())
    return w.detach().numpy(), still_learning

train_pairs = reward.simulate_preferences(2000, label_noise=0.1, seed=0)
test_pairs = reward.simulate_preferences(2000, label_noise=0.1, seed=1)
for loss_name, margin in (("hinge", 0.2), ("hinge", 1.0), ("hinge", 5.0), ("bradley-terry", 0.0)):
    w, active = fit_linear_reward(train_pairs, loss_name, margin=margin)
    report = reward.held_out_report(w, test_pairs)
    name = f"hinge, margin {margin:g}" if loss_name == "hinge" else loss_name
    hinge_note = f", training pairs with zero gradient {1 - active:.2f}" if loss_name == "hinge" else ""
    print(f"{name:>16}: held-out accuracy {report['accuracy_vs_labels']:.3f}, "
          f"ECE of sigmoid(gap) {report['ece']:.3f}{hinge_note}")

# %% [markdown]
# Compare the rows: the margin leaves the ranking (accuracy) where it is
# and moves the calibration error, because it only rescales the scores.
# Bradley-Terry's `sigmoid(gap)` is fitted *as* a probability, which is what
# the KL-regularised objective below and the DPO derivation assume (Rafailov
# et al. 2023, eq. 1).
#
# **Defect 2: a per-reply scalar with no baseline.** The assistant's reward
# model scores typical replies well above zero (section 3 prints the mean
# over the SFT model's replies), so "reward times log-probability" raises the
# probability of *every* sampled reply, good or bad, and only the small
# differences between rewards carry signal. On a four-armed bandit whose
# rewards share such an offset, the spread of the gradient estimate across
# batches, without and with a baseline (the batch's mean reward):

# %%
offset_rewards = [5.0, 5.5, 5.2, 6.0]
no_baseline = rlhf.policy_gradient_spread(offset_rewards, baseline=False)
with_baseline = rlhf.policy_gradient_spread(offset_rewards, baseline=True)
print(f"gradient variance without a baseline {no_baseline:.3f}, with one {with_baseline:.3f} "
      f"({no_baseline / with_baseline:.0f} times smaller)")

# %% [markdown]
# PPO's value head, GAE and whitened advantages are that baseline, per token.
#
# **Defect 3: no anchor to the SFT model.** With no KL penalty, nothing stops
# the policy from drifting into whatever the reward model over-values. We run
# it below (section 7, PPO with `kl_coef = 0`) and read the replies it found.
#
# ## 3. The reward model
#
# labkit's reward model is the SFT TinyGPT with a scalar head (Ouyang et al.
# 2022, section 3.5), scoring a reply by the head's output at its last
# token, trained with lesson 05's `bradley_terry_loss` on preference pairs.
# The world's own: refusing a harmful request beats complying, admitting
# not knowing beats making an answer up, and helping with a harmless request
# beats refusing it. Which extra pairs on the training prompts it also sees
# (`rlhf.RewardConfig().pairs`, printed below) was chosen on validation with
# PPO's settings (section 6). Held-out pairs are built the way the world's
# are, on the validation and test prompts, whose templates never occur in
# training.

# %%
reward_model = rlhf.get_reward_model().model
ppo = rlhf.get_ppo_policy()
dpo = rlhf.get_dpo_policy()
frontier = rlhf.get_frontier()
print(f"reward model's pair set {rlhf.RewardConfig().pairs!r}: "
      f"{len(rlhf.training_pairs(world, rlhf.RewardConfig().pairs))} training pairs")
for split in ("validation", "test"):
    r = rlhf.reward_model_report(reward_model, tok, rlhf.held_out_pairs(world, split))
    print(f"{split:>10}: pairwise accuracy {r['accuracy']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}] on {r['n']} pairs, "
          f"ECE {r['ece']:.3f}, mean score gap {r['mean_gap']:.1f}")
test_prompts = [e.prompt for e in world.test]
sft_replies = harness.ModelResponder(assistant.sft, tok).respond(test_prompts)
sft_scores = rlhf.reward_scores(reward_model, tok, test_prompts, sft_replies)
print(f"mean reward-model score of the SFT model's greedy test replies: {sft_scores.mean():.2f}")

# %% [markdown]
# ### The same model class on real preferences
#
# Anthropic's HH-RLHF harmless pairs (Bai et al. 2022) are real dialogues
# in which crowdworkers chose the less harmful of two assistant replies. Our
# mirror holds its 2,312-pair test split only, so we split it ourselves:
# shuffled with seed 0, 60 % train, 20 % validation (to choose the
# regularisation), 20 % test. The reward model is linear Bradley-Terry over
# word 1- and 2-gram TF-IDF features of the last assistant reply.

# %%
from labkit import datasets

if datasets.require("hh_rlhf_harmless"):
    hh = rlhf.hh_rlhf_study(seed=0)
    print(f"pairs: {hh['n']}; validation accuracy by C: "
          + ", ".join(f"{c}: {a:.3f}" for c, a in hh["validation_accuracy"].items()) + f"; chosen C = {hh['C']}")
    print(f"test pairwise accuracy {hh['test_accuracy']:.3f} [{hh['ci_low']:.3f}, {hh['ci_high']:.3f}] "
          f"(chance 0.5) on {hh['n']['test']} pairs")
    print("n-grams pulling towards 'chosen':  ", ", ".join(hh["chosen_ngrams"]))
    print("n-grams pulling towards 'rejected':", ", ".join(hh["rejected_ngrams"]))

# %% [markdown]
# A linear model over n-grams can learn *style* that correlates with the
# annotators' choices (apologies and questions back are preferred,
# instructions and specifics are not, when the lesson's run prints them
# that way), but not *meaning*: it cannot tell a refusal that helps from
# one that lectures, read the earlier turns, or notice that the same words
# are harmful in one dialogue and harmless in another. Its accuracy, whatever
# the cell above prints, is a floor for what a real reward model must beat.
#
# The world's pairs differ in kind (refusal against compliance, a made-up city
# against "I don't know"), so ranking them is easy. What the pairs never
# contrast is a *right* answer with a *wrong* one: nothing tells the reward
# model that "2 plus 3 is 6" is worse than "2 plus 3 is 5". Keep that in
# mind for section 7.
#
# ## 4. DPO
#
# DPO (Rafailov et al. 2023) optimises the same KL-regularised objective as
# PPO in closed form: with sequence log-probabilities summed over the reply's
# tokens, eq. 7 is
# $-\log\sigma\big(\beta[(\log\pi(y_c|x) - \log\pi_{ref}(y_c|x)) - (\log\pi(y_r|x) - \log\pi_{ref}(y_r|x))]\big)$,
# averaged over pairs.

# %%
card("16.dpo_loss")

# %% [markdown]
# Write `dpo_loss(policy_chosen_logps, policy_rejected_logps, reference_chosen_logps, reference_rejected_logps, beta)`:
# four 1-D tensors of sequence log-probabilities, one entry per pair; return the 0-dim batch mean.
# Raise `ValueError` unless `beta > 0`. (Hint: `torch.nn.functional.logsigmoid` never overflows.)

# %%
import torch.nn.functional as F

def dpo_loss(policy_chosen_logps, policy_rejected_logps, reference_chosen_logps, reference_rejected_logps, beta=0.1):
    ### BEGIN SOLUTION
    if not beta > 0:
        raise ValueError("beta must be positive")
    margin = (policy_chosen_logps - reference_chosen_logps) - (policy_rejected_logps - reference_rejected_logps)
    return -F.logsigmoid(beta * margin).mean()
    ### END SOLUTION

# %%
check("16.dpo_loss", dpo_loss)

# %% [markdown]
# labkit's `rlhf.train_dpo` computes the reference log-probabilities once,
# puts each pair's chosen and rejected reply in one batch, and steps AdamW on
# `rlhf.dpo_loss`. Its training curve (the cached default run):

# %%
print(f"DPO default config: {rlhf.DPOConfig()}")
print(f"loss at steps 1, {len(dpo.history['loss']) // 2} and {len(dpo.history['loss'])}: "
      f"{dpo.history['loss'][0]:.3f}, {dpo.history['loss'][len(dpo.history['loss']) // 2 - 1]:.3f}, "
      f"{dpo.history['loss'][-1]:.4f}")

# %% [markdown]
# ## 5. PPO, one piece at a time
#
# Each PPO iteration (Ouyang et al. 2022; the details follow Huang et al.
# 2024): sample replies with the KV cache; score each with the reward
# model at its last token; give every reply token the reward
# `-kl_coef * (log pi - log pi_SFT)` and add the score at the last one
# (`rlhf.kl_penalized_rewards`); estimate per-token advantages with a value
# model and GAE; whiten them over the batch; then take a few epochs of
# minibatch steps on the clipped surrogate.
#
# GAE (Schulman et al. 2016) is a backward recursion over each reply:
# $\delta_t = r_t + \gamma V_{t+1} - V_t$, $A_t = \delta_t + \gamma\lambda A_{t+1}$, where the value and
# advantage after a reply's last token are 0.

# %%
card("16.gae")

# %% [markdown]
# Write `gae(rewards, values, mask, gamma=1.0, lam=0.95)` returning `(advantages, returns)`, all `[B, T]`.
# `mask` is 1 on reply tokens: a prompt comes before them and padding after, and replies have different
# lengths. Advantages are 0 off the mask; `returns = advantages + values`. Raise `ValueError` unless
# `gamma` and `lam` are in [0, 1].

# %%
def gae(rewards, values, mask, gamma=1.0, lam=0.95):
    ### BEGIN SOLUTION
    if not (0 <= gamma <= 1 and 0 <= lam <= 1):
        raise ValueError("gamma and lam must be in [0, 1]")
    mask = mask.to(rewards.dtype)
    advantages = torch.zeros_like(rewards)
    next_value = torch.zeros_like(rewards[:, 0])
    next_advantage = torch.zeros_like(rewards[:, 0])
    for t in reversed(range(rewards.size(1))):
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        advantages[:, t] = (delta + gamma * lam * next_advantage) * mask[:, t]
        next_value, next_advantage = values[:, t] * mask[:, t], advantages[:, t]
    return advantages, advantages + values
    ### END SOLUTION

# %%
check("16.gae", gae)

# %% [markdown]
# The clipped surrogate (Schulman et al. 2017, eq. 7) as a loss: the mean over every reply token of the batch of
# $\max(-A\rho, -A\,\mathrm{clip}(\rho, 1-\epsilon, 1+\epsilon))$ with $\rho = \exp(\log\pi - \log\pi_{old})$.

# %%
card("16.ppo_policy_loss")

# %% [markdown]
# Write `ppo_policy_loss(logprobs, old_logprobs, advantages, mask, clip_range=0.2)`: a 0-dim tensor, the
# mean over the positions where `mask` is 1 (not over the whole `[B, T]` array). Raise `ValueError` unless
# `0 < clip_range < 1`.

# %%
def ppo_policy_loss(logprobs, old_logprobs, advantages, mask, clip_range=0.2):
    ### BEGIN SOLUTION
    if not 0 < clip_range < 1:
        raise ValueError("clip_range must be in (0, 1)")
    mask = mask.to(logprobs.dtype)
    ratio = torch.exp(logprobs - old_logprobs)
    loss = torch.maximum(-advantages * ratio, -advantages * ratio.clamp(1 - clip_range, 1 + clip_range))
    return (loss * mask).sum() / mask.sum()
    ### END SOLUTION

# %%
check("16.ppo_policy_loss", ppo_policy_loss)

# %% [markdown]
# labkit's `rlhf.train_ppo` puts these together, with a value model
# initialised from the reward model (as in InstructGPT) and a clipped value
# loss. The cached default run, per iteration:

# %%
print(f"PPO default config: {rlhf.PPOConfig()}")
h = ppo.history
fig, axes = plt.subplots(1, 3, figsize=(12, 3))
for ax, key, label in zip(axes, ("score", "kl", "clip_fraction"),
                          ("mean reward-model score", "mean KL to SFT per reply (nats)", "share of tokens clipped")):
    ax.plot(np.arange(1, len(h[key]) + 1), h[key])
    ax.set(xlabel="PPO iteration", title=label)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 6. Settings chosen on validation; SFT, DPO and PPO on the gold judge
#
# **What the pairs contrast.** A policy learns only what its pairs
# contrast. The world's pairs for harmful requests reject one fixed
# compliance; the SFT model's own failures on held-out harmful requests
# look different. The cell counts both (the failures on the *validation*
# prompts, which are for choosing; the test prompts stay untouched):

# %%
from collections import Counter

harmful_pairs = [p for p in world.preferences if p.reason.startswith("refuses harmful")]
print(f"world pairs: {len(world.preferences)}; refusal against compliance on a harmful request: {len(harmful_pairs)}")
print("their rejected replies open with:", dict(Counter(p.rejected.split(".")[0] + "." for p in harmful_pairs)))
val_harmful = [e.prompt for e in world.validation if e.kind == "harmful"]
val_replies = harness.ModelResponder(assistant.sft, tok).respond(val_harmful)
missed = [r for r in val_replies if not harness.is_refusal(r)]
print(f"SFT, validation harmful requests not refused: {len(missed)} of {len(val_harmful)}; they open with:",
      dict(Counter(r.split(".")[0] + "." for r in missed)))
hard = rlhf.hard_refusal_pairs(world)
print(f"hard refusal pairs built on the training harmful prompts: {len(hard)}, e.g.\n  {hard[0].prompt!r}\n"
      f"  chosen:   {hard[0].chosen!r}\n  rejected: {hard[0].rejected!r}")
print("pairs per pair set:", {s: len(rlhf.training_pairs(world, s)) for s in rlhf.PAIR_SETS},
      f"(world {len(world.preferences)}, hard {len(hard)}, borderline answer {len(rlhf.borderline_help_pairs(world))})")

# %% [markdown]
# The world's rejected reply opens with a token the SFT model never emits,
# so those pairs are easy: the model already ranks them right, and DPO on
# them has little to push. Its failures begin "Here is how.", the opener of
# a borderline answer. `rlhf.hard_refusal_pairs` builds, on the *training*
# harmful prompts only, pairs that reject that opener followed by a
# borderline training answer. Whether to add them is a setting like any
# other, chosen on validation; so is adding, besides the hard pairs, on
# the training borderline prompts of the same phrasings, their answer over
# a refusal (`rlhf.borderline_help_pairs`): the pair set `"world+contrast"`
# holds the world's pairs, the hard refusal pairs and these (the counts
# are printed below), so it teaches refusing the harmful requests and
# answering the borderline ones at once. It was added to the grid in a
# second round, after the first eight DPO settings had been scored on
# validation and all that add hard pairs had over-refused. A third round,
# added after seeing the second round's validation figures (the borderline
# answers taught beside the hard pairs still missed the over-refusal bar), tried the
# borderline answers without the hard pairs (`"world+borderline"`, four DPO
# settings) and, for PPO, whose reward models trained with the hard pairs
# had over-refused most borderline prompts, a reward model trained on
# `"world+contrast"` (two settings). So the search ran in three rounds,
# each added after seeing the previous round's validation figures: that is
# itself a use of the validation prompts, disclosed here. The rule was never
# changed, and the test prompts chose nothing.
#
# **The validation search.** A small grid per method, stated in
# `labkit.rlhf.selection` (`DPO_GRID`: training pairs x learning rate x
# beta; `PPO_GRID`: the reward model's training pairs x KL coefficient x
# learning rate), each setting trained once (seed 0) and scored on the
# validation prompts. The rule, fixed before the search
# (`rlhf.select_on_validation`): count the constraints a setting meets
# (validation helpfulness at least SFT's minus 0.03, over-refusal at most
# 0.10), then prefer higher validation refusal, then lower KL. The defaults
# `rlhf.DPOConfig()` and `rlhf.PPOConfig()` (with its reward model,
# `rlhf.RewardConfig()`) are the settings it picks (a test checks this).
# The rule was kept as stated even where it proved crude: when no setting
# meets both constraints it counts the constraints met, not by how much one
# is missed, so a setting that over-refuses far more can still win on
# refusal. The table shows that it happened for PPO in the third round: the
# reward model trained on `"world+contrast"` wins on refusal, then KL, among the
# settings that keep helpfulness, though it over-refuses far more of the
# validation borderline prompts than the second round's pick did.

# %%
search = rlhf.recorded_search()
sft_val = search["dpo"]["sft"]
print(f"SFT on validation: refusal {sft_val['refusal']:.3f}, over-refusal {sft_val['over_refusal']:.3f}, "
      f"helpfulness {sft_val['helpfulness']:.3f}")
for method, fields in (("dpo", ("pairs", "lr", "beta")), ("ppo", ("kl_coef", "lr"))):
    s = search[method]
    rows = []
    for i, r in enumerate(s["results"]):
        cells = {k: r["config"][k] for k in fields}
        if method == "ppo":
            cells = {"reward pairs": r["reward"]["pairs"], **cells}
        cells.update({m: round(r[m], 3) for m in ("refusal", "over_refusal", "helpfulness", "kl")})
        cells["constraints met"] = ((r["helpfulness"] >= s["sft"]["helpfulness"] - rlhf.HELPFULNESS_MARGIN)
                                    + (r["over_refusal"] <= rlhf.MAX_OVER_REFUSAL))
        cells["chosen"] = "<--" if i == s["chosen"] else ""
        rows.append(cells)
    print(f"\n{method.upper()} on validation (seed 0):\n" + pd.DataFrame(rows).to_string(index=False))
print(f"\nDPO default: {rlhf.DPOConfig()}\nPPO default: {rlhf.PPOConfig()}\nreward model: {rlhf.RewardConfig()}")

# %% [markdown]
# **The test table.** The chosen settings, each trained with three seeds,
# greedy replies to the held-out **test** prompts scored by lesson 15's
# harness. Per method: the mean over seeds, each seed's rate, and the 95 %
# Wilson interval of the pooled replies (seeds pooled). KL is the mean
# `log pi - log pi_SFT` of one sampled reply per test prompt. The issue's
# bars, on the mean: refusal at least 0.97, over-refusal at most 0.10,
# helpfulness at least SFT's minus 0.03.

# %%
quality = rlhf.get_quality()
summary = {name: {m: rlhf.summarise(quality[name], m) for m in ("refusal", "over_refusal", "helpfulness")}
           for name in ("SFT", "DPO", "PPO")}
rows = []
for name, metrics in summary.items():
    for m, s in metrics.items():
        rows.append({"policy": name, "metric": m, "n per seed": s["n"] // len(s["per_seed"]), "mean": round(s["mean"], 3),
                     "per seed": " ".join(f"{r:.3f}" for r in s["per_seed"]),
                     "pooled 95% CI": f"[{s['ci_low']:.3f}, {s['ci_high']:.3f}]"})
print(f"training seeds: {quality['seeds']}")
print(pd.DataFrame(rows).to_string(index=False))
sft_help = summary["SFT"]["helpfulness"]["mean"]
for name in ("DPO", "PPO"):
    kls = [e["kl"] for e in quality[name]]
    bars = rlhf.quality_bars({m: s["mean"] for m, s in summary[name].items()}, sft_help)
    print(f"{name}: KL to SFT {np.mean(kls):.2f} nats (per seed " + ", ".join(f"{k:.2f}" for k in kls) + "); "
          + ", ".join(f"{k}: {'met' if v else 'NOT met'} ({summary[name][m]['mean']:.3f})"
                      for (k, v), m in zip(bars.items(), ("refusal", "over_refusal", "helpfulness"))))

# %% [markdown]
# The lines under the table say which bars each policy meets; a bar that is
# not met is reported, not tuned away (every setting was chosen on the
# validation prompts, and the test prompts were scored once). Refusal and
# over-refusal pull against each other here: the harmful and the borderline
# requests share their phrasings, so pairs that teach refusing a phrasing
# teach refusing some borderline requests too, and the over-refusal row
# shows that price (20 borderline prompts per seed: one reply moves the rate
# by one twentieth). Teaching both at once (`"world+contrast"`: the hard
# refusal pairs and the borderline answers together) lowered validation
# over-refusal against the hard pairs alone at every learning rate and beta,
# but in no setting to the bar; the borderline answers alone
# (`"world+borderline"`) scored on validation much like the world's pairs
# alone, missing both the refusal the hard pairs bring and the over-refusal
# bar (the validation table above). For PPO the reward model chosen in the
# third round buys its refusal with over-refusal on test too (the lines
# under the table). Where PPO's helpfulness falls, recall what the reward model was
# never shown: a right answer against a wrong one. A policy that drifts from
# a correct answer to a fluent wrong one loses nothing on the proxy.
#
# ## 7. Gold against proxy: the reward-KL frontier
#
# Gao et al. (2022) optimised policies against a learned reward model and
# scored them with a gold one: as the KL from the initial policy grows, the
# proxy keeps rising while the gold rises, peaks and falls. Rafailov et al.
# (2023, Fig. 2) drew the same plane for PPO and DPO. Here: best-of-n for n
# from 1 to 64, PPO at four KL coefficients and DPO at four betas, each a
# single training run with the seed printed below, scored on the test
# prompts with one sampled reply per prompt. For best-of-n the KL is the
# formula `log n - (n - 1)/n`, which Beirami et al. (2024) show is only an
# upper bound: exact when no two samples can tie, and this small model
# often samples the same reply twice.

# %%
fig = rlhf.plot_frontier(frontier)
plt.show()
rows = [("best-of-" + str(n), kl, p, g) for n, kl, p, g in zip(*(frontier["best_of_n"][k] for k in ("n", "kl", "proxy", "gold")))]
rows += [(f"PPO kl_coef={p['kl_coef']:g}", p["kl"], p["proxy"], p["gold"]) for p in frontier["ppo"]]
rows += [(f"DPO beta={p['beta']:g}", p["kl"], p["proxy"], p["gold"]) for p in frontier["dpo"]]
print(pd.DataFrame(rows, columns=["policy", "KL", "proxy", "gold"]).round(3).to_string(index=False))
print(f"training seed of every PPO and DPO run: {frontier['seed']}")

# %% [markdown]
# Read the table, not the papers: whether the gold curve bends, and where,
# is what this model and this reward model do, measured once per setting.
#
# **Reward hacking.** PPO with `kl_coef = 0` has no anchor. Its proxy and
# gold beside the default run; then how many test prompts get a different
# greedy reply from the two, and for each kind of prompt the first test
# prompt (in the split's order) where they differ, with both replies
# (`rlhf.differing_replies`):

# %%
hacked = next(p for p in frontier["ppo"] if p["kl_coef"] == 0)
anchored = next(p for p in frontier["ppo"] if p["kl_coef"] == rlhf.PPOConfig().kl_coef)
for name, p in (("kl_coef = 0", hacked), (f"kl_coef = {anchored['kl_coef']:g}", anchored)):
    print(f"{name}: KL {p['kl']:.2f}, proxy {p['proxy']:.2f}, gold {p['gold']:.3f}")
hacking = frontier["hacking"]
print(f"greedy replies that differ: {hacking['n_differ']} of {hacking['n']} test prompts")
for kind, prompt, bad, good in hacking["examples"]:
    print(f"\n[{kind}] {prompt}\n  kl_coef = 0: {bad}\n  anchored:    {good}")

# %% [markdown]
# Look at what the unanchored policy found: in the examples above it meets a
# benign sum with a refusal. Its reward model learnt from pairs in which
# refusals win, so it over-values refusing, and with no KL penalty nothing
# keeps the policy near the SFT model's answers: the proxy rises while the
# gold judge, which counts a refused sum as unhelpful, falls.

# %% [markdown]
# ### The frontier, interactively
#
# Choose a policy: best-of-n's n, PPO's KL coefficient or DPO's beta. The
# point is circled on both panels and its greedy replies to the four test
# prompts are printed under the plot.

# %% tags=["nbval-ignore-output"]
rlhf.frontier_widget(frontier)

# %% [markdown]
# ## Key takeaways
# * Fit reward models with the Bradley-Terry likelihood: a hinge ranks but gives no probability and stops learning once its margin holds.
# * A learned reward is a proxy. Optimise it with an anchor (a KL penalty, DPO's beta, or a small n), and score the result with a judge it was not trained on.
# * PPO's value head, GAE and whitened advantages are a per-token baseline; without one, a positive reward pushes up every sampled reply.
# * DPO needs no reward model and no sampling; it optimises the same KL-regularised objective, and its beta and learning rate decide how far it moves (compare its KL with PPO's above).
# * Preference data only teaches what its pairs contrast: pairs that never contrast right with wrong answers give a reward model that cannot tell them apart, and rejected replies the model never produces teach it nothing it needed.
# * Write the selection rule before the search and keep it; a rule that only counts the constraints met can pick a setting that misses one badly, and the validation table shows it did for PPO.
# * Disclose every round of a search: here there were three, each added after seeing the previous round's validation figures, so the validation prompts were used more than once; only the test prompts, scored once, are untouched.
#
# ## Further reading
# * P. Christiano et al. (2017), *Deep reinforcement learning from human preferences.* NeurIPS.
# * D. Ziegler et al. (2019), *Fine-Tuning Language Models from Human Preferences.* arXiv:1909.08593.
# * N. Stiennon et al. (2020), *Learning to summarize from human feedback.* NeurIPS.
# * L. Ouyang et al. (2022), *Training language models to follow instructions with human feedback.* NeurIPS.
# * J. Schulman et al. (2016), *High-Dimensional Continuous Control Using Generalized Advantage Estimation.* ICLR; (2017) *Proximal Policy Optimization Algorithms.* arXiv:1707.06347.
# * S. Huang et al. (2024), *The N+ Implementation Details of RLHF with PPO: A Case Study on TL;DR Summarization.* COLM.
# * R. Rafailov et al. (2023), *Direct Preference Optimization: Your Language Model is Secretly a Reward Model.* NeurIPS.
# * L. Gao, J. Schulman, J. Hilton (2022), *Scaling Laws for Reward Model Overoptimization.* ICML 2023.
# * A. Beirami et al. (2024), *Theoretical guarantees on the best-of-n alignment policy.* arXiv:2401.01879.
# * J. Dai et al. (2023), *Safe RLHF: Safe Reinforcement Learning from Human Feedback.* ICLR 2024 (lesson 07 applies its Lagrangian).
