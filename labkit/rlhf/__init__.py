"""RLHF on the tiny assistant: a reward model, best-of-n, PPO with a KL penalty, and DPO (lesson 16).

The pipeline of InstructGPT (Ouyang et al. 2022), after supervised fine-tuning,
one idea per module, each importing only the ones listed before it:

- :mod:`~labkit.rlhf.losses`: the loss-side building blocks on tensors
  (:func:`dpo_loss`, Rafailov et al. 2023, eq. 7; :func:`gae`, Schulman et
  al. 2016, eq. 16; :func:`ppo_policy_loss`, Schulman et al. 2017, eq. 7;
  :func:`kl_penalized_rewards`, Ziegler et al. 2019, eq. 2);
- :mod:`~labkit.rlhf.pipeline`: batching, training steps, held-out pairs and
  the course's cache of trained models, shared by the trainers;
- :mod:`~labkit.rlhf.reward_model`: the SFT TinyGPT with a scalar head,
  trained with the Bradley-Terry loss (Christiano et al. 2017, eq. 1);
- :mod:`~labkit.rlhf.dpo`: DPO on the same pairs, with no reward model and
  no sampling;
- :mod:`~labkit.rlhf.ppo`: PPO against the reward model with a value head,
  GAE, whitened advantages and the clipped surrogate (Huang et al. 2024);
- :mod:`~labkit.rlhf.frontier`: best-of-n (Stiennon et al. 2020) and the
  gold/proxy-against-KL frontier of all three, its plot and widget;
- :mod:`~labkit.rlhf.selection`: DPO's and PPO's settings chosen on the
  validation prompts by a rule fixed in advance, over a small stated grid;
- :mod:`~labkit.rlhf.quality`: the test-prompt quality table of SFT, DPO and
  PPO over three training seeds, with the issue's bars;
- :mod:`~labkit.rlhf.safe_rlhf`: Safe RLHF's constrained PPO (Dai et al.
  2023; lesson 07);
- :mod:`~labkit.rlhf.hh_rlhf`: a linear Bradley-Terry reward on the real
  HH-RLHF pairs (Bai et al. 2022).

Every public name is re-exported here (``from labkit.rlhf import train_ppo``),
and importing the package registers the course's cached models
(``rlhf-reward``, ``rlhf-dpo``, ``rlhf-ppo``, ``rlhf-frontier``, ``rlhf-quality``, ``rlhf-safe``).
"""
from __future__ import annotations

from labkit.rlhf.losses import dpo_loss, gae, kl_penalized_rewards, last_response_index, masked_mean, ppo_policy_loss, whiten
from labkit.rlhf.pipeline import (
    CODE_VERSION, PAIR_SETS, RLHF_THREADS, TIMING_KEYS, Trained, borderline_help_pairs, hard_refusal_pairs,
    held_out_pairs, sequence_batch, sequence_scores, token_logprobs, training_pairs)
from labkit.rlhf.reward_model import RewardConfig, get_reward_model, reward_model_report, reward_scores, train_reward_model
from labkit.rlhf.dpo import DPOConfig, get_dpo_policy, train_dpo
from labkit.rlhf.ppo import PPOConfig, get_ppo_policy, policy_gradient_spread, sample_responses, train_ppo
from labkit.rlhf.frontier import (
    BEST_OF_N, FRONTIER_BETAS, FRONTIER_KL_COEFS, FRONTIER_SEED, SHOWCASE_KINDS, FixedReplies, best_of_n_points,
    compute_frontier, frontier_options, frontier_widget, get_frontier, gold_score, plot_frontier, sampled_point,
    showcase_prompts, differing_replies)
from labkit.rlhf.selection import (
    DPO_GRID, HELPFULNESS_MARGIN, MAX_OVER_REFUSAL, PPO_GRID, chosen_config, gold_rates, recorded_search,
    select_on_validation, validation_point, validation_search)
from labkit.rlhf.quality import QUALITY_SEEDS, compute_quality, get_quality, quality_bars, summarise
from labkit.rlhf.safe_rlhf import (
    SAFE_RLHF_CONFIG, SAFE_RLHF_HARMFUL_SHARE, compute_safe_rlhf, get_safe_rlhf, safe_rlhf_pairs, safe_rlhf_prompts)
from labkit.rlhf.hh_rlhf import HH_C_GRID, HH_SPLIT, hh_rlhf_study, last_assistant_turn, text_bradley_terry

__all__ = ["dpo_loss", "gae", "ppo_policy_loss", "kl_penalized_rewards", "masked_mean", "whiten", "last_response_index",
           "sequence_batch", "token_logprobs", "sequence_scores", "held_out_pairs", "RewardConfig", "reward_scores",
           "train_reward_model", "reward_model_report", "DPOConfig", "train_dpo", "PPOConfig", "sample_responses",
           "train_ppo", "FixedReplies", "gold_score", "sampled_point", "best_of_n_points", "Trained", "get_reward_model",
           "get_dpo_policy", "get_ppo_policy", "BEST_OF_N", "FRONTIER_KL_COEFS", "FRONTIER_BETAS", "showcase_prompts", "differing_replies",
           "compute_frontier", "get_frontier", "frontier_options", "plot_frontier", "frontier_widget",
           "policy_gradient_spread", "SAFE_RLHF_CONFIG", "safe_rlhf_pairs", "compute_safe_rlhf", "get_safe_rlhf",
           "hard_refusal_pairs", "borderline_help_pairs", "training_pairs", "PAIR_SETS", "DPO_GRID", "PPO_GRID", "HELPFULNESS_MARGIN",
           "MAX_OVER_REFUSAL", "select_on_validation", "validation_search", "validation_point", "gold_rates",
           "recorded_search", "chosen_config", "QUALITY_SEEDS", "compute_quality", "get_quality", "quality_bars",
           "summarise", "SAFE_RLHF_HARMFUL_SHARE", "safe_rlhf_prompts", "last_assistant_turn", "text_bradley_terry", "hh_rlhf_study", "RLHF_THREADS", "CODE_VERSION"]
