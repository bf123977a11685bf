"""labkit.rlhf: the loss-side building blocks against hand computations and plain loops, then the trainers."""
import math
from dataclasses import asdict

import numpy as np
import pytest
import torch

from labkit import rlhf


# ------------------------------------------------------------------ dpo_loss
def test_dpo_loss_matches_hand_computed_values():
    pc, pr = torch.tensor([-1.0, -2.0]), torch.tensor([-3.0, -1.0])
    rc, rr = torch.tensor([-2.0, -2.0]), torch.tensor([-2.0, -2.0])
    # margins: (-1+2) - (-3+2) = 2 ; (-2+2) - (-1+2) = -1
    expected = (-math.log(1 / (1 + math.exp(-0.5 * 2))) - math.log(1 / (1 + math.exp(0.5)))) / 2
    assert rlhf.dpo_loss(pc, pr, rc, rr, beta=0.5).item() == pytest.approx(expected, rel=1e-6)


def test_dpo_loss_limits_and_gradient():
    g = torch.Generator().manual_seed(0)
    pc, pr, rc, rr = (torch.randn(16, generator=g) * 5 for _ in range(4))
    # beta -> 0: every pair is a coin flip, loss log 2
    assert rlhf.dpo_loss(pc, pr, rc, rr, beta=1e-9).item() == pytest.approx(math.log(2), abs=1e-6)
    # symmetric pair (chosen and rejected identical): log 2 whatever beta
    assert rlhf.dpo_loss(pc, pc, rc, rc, beta=3.0).item() == pytest.approx(math.log(2), abs=1e-6)
    # swapping chosen and rejected changes the loss unless the margins are 0
    assert rlhf.dpo_loss(pr, pc, rr, rc, beta=1.0).item() != pytest.approx(rlhf.dpo_loss(pc, pr, rc, rr, beta=1.0).item())
    # the gradient raises the chosen log-prob and lowers the rejected one; none reaches the reference
    pc, pr = pc.clone().requires_grad_(), pr.clone().requires_grad_()
    rc = rc.clone().requires_grad_()
    rlhf.dpo_loss(pc, pr, rc, rr, beta=0.5).backward()
    assert (pc.grad < 0).all() and (pr.grad > 0).all()
    assert rc.grad is None or torch.count_nonzero(rc.grad) == 0


@pytest.mark.parametrize("bad", [dict(beta=0.0), dict(beta=-1.0), dict(beta=float("nan"))])
def test_dpo_loss_rejects_bad_beta(bad):
    x = torch.zeros(3)
    with pytest.raises(ValueError, match="beta"):
        rlhf.dpo_loss(x, x, x, x, **bad)


def test_dpo_loss_rejects_bad_shapes_and_values():
    x = torch.zeros(3)
    with pytest.raises(ValueError, match="reference_rejected_logps"):
        rlhf.dpo_loss(x, x, x, torch.zeros(4))
    with pytest.raises(ValueError, match="policy_rejected_logps"):
        rlhf.dpo_loss(x, torch.tensor([0.0, float("inf"), 0.0]), x, x)
    with pytest.raises(ValueError):
        rlhf.dpo_loss(torch.zeros(2, 2), torch.zeros(2, 2), torch.zeros(2, 2), torch.zeros(2, 2))
    with pytest.raises(ValueError):
        rlhf.dpo_loss(torch.zeros(0), torch.zeros(0), torch.zeros(0), torch.zeros(0))


# ------------------------------------------------------------------ gae
def _gae_loop(rewards, values, mask, gamma, lam):
    """GAE per row over its response positions only, in plain Python."""
    B, T = rewards.shape
    adv = torch.zeros(B, T, dtype=torch.float64)
    for b in range(B):
        positions = [t for t in range(T) if mask[b, t]]
        last_gae = 0.0
        for i in reversed(range(len(positions))):
            t = positions[i]
            ends = i == len(positions) - 1 or positions[i + 1] != t + 1
            next_v = 0.0 if ends else float(values[b, t + 1])
            delta = float(rewards[b, t]) + gamma * next_v - float(values[b, t])
            last_gae = delta + (0.0 if ends else gamma * lam * last_gae)
            adv[b, t] = last_gae
    return adv


def _ragged_batch(seed, B=5, T=9):
    g = torch.Generator().manual_seed(seed)
    rewards = torch.randn(B, T, generator=g, dtype=torch.float64)
    values = torch.randn(B, T, generator=g, dtype=torch.float64)
    mask = torch.zeros(B, T, dtype=torch.bool)
    for b in range(B):  # a prompt of random length, then a response of random length, then padding
        start = int(torch.randint(0, T - 1, (1,), generator=g))
        length = int(torch.randint(1, T - start + 1, (1,), generator=g))
        mask[b, start:start + length] = True
    return rewards, values, mask


@pytest.mark.parametrize("gamma,lam", [(1.0, 0.95), (0.9, 0.0), (0.99, 1.0), (0.5, 0.5), (0.0, 0.7)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gae_matches_a_plain_loop_on_ragged_masks(gamma, lam, seed):
    rewards, values, mask = _ragged_batch(seed)
    adv, ret = rlhf.gae(rewards, values, mask, gamma, lam)
    expected = _gae_loop(rewards, values, mask, gamma, lam)
    torch.testing.assert_close(adv, expected)
    torch.testing.assert_close(ret, adv + values)
    assert (adv[~mask] == 0).all()


def test_gae_lambda_one_gamma_one_is_return_minus_value():
    rewards, values, mask = _ragged_batch(7)
    adv, _ = rlhf.gae(rewards, values, mask, 1.0, 1.0)
    m = mask.double()
    returns_to_go = (rewards * m).flip(1).cumsum(1).flip(1) * m  # the sum of the rewards still to come
    torch.testing.assert_close(adv, (returns_to_go - values) * m)


def test_gae_rejects_bad_input():
    r = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="gamma"):
        rlhf.gae(r, r, torch.ones(2, 3), gamma=1.5)
    with pytest.raises(ValueError, match="lam"):
        rlhf.gae(r, r, torch.ones(2, 3), lam=-0.1)
    with pytest.raises(ValueError, match="values"):
        rlhf.gae(r, torch.zeros(2, 4), torch.ones(2, 3))
    with pytest.raises(ValueError, match="mask"):
        rlhf.gae(r, r, torch.full((2, 3), 0.5))
    with pytest.raises(ValueError, match="mask"):
        rlhf.gae(r, r, torch.tensor([[1, 1, 0], [0, 0, 0]]))
    with pytest.raises(ValueError, match="rewards"):
        rlhf.gae(torch.tensor([[0.0, float("nan"), 0.0]] * 2), r, torch.ones(2, 3))


# ------------------------------------------------------------------ ppo_policy_loss
def test_ppo_loss_is_the_masked_mean_of_the_pessimistic_term():
    logp = torch.tensor([[0.0, 0.5, -0.5], [0.1, 0.0, 9.0]])
    old = torch.zeros(2, 3)
    adv = torch.tensor([[1.0, 1.0, -1.0], [-2.0, 3.0, 100.0]])
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    eps = 0.2
    terms = []
    for b, t in [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)]:
        rho = math.exp(logp[b, t] - old[b, t])
        a = float(adv[b, t])
        terms.append(max(-a * rho, -a * min(max(rho, 1 - eps), 1 + eps)))
    assert rlhf.ppo_policy_loss(logp, old, adv, mask, eps).item() == pytest.approx(sum(terms) / 5, rel=1e-6)


def test_ppo_loss_has_zero_gradient_where_clipped_on_the_advantage_side():
    old = torch.zeros(1, 4)
    # ratios e^0.5 > 1.2 with A > 0 and e^-0.5 < 0.8 with A < 0: clipped, no gradient.
    # ratios e^-0.5 with A > 0 and e^0.5 with A < 0: the unclipped term is the max, gradient flows.
    logp = torch.tensor([[0.5, -0.5, -0.5, 0.5]], requires_grad=True)
    adv = torch.tensor([[1.0, -1.0, 1.0, -1.0]])
    rlhf.ppo_policy_loss(logp, old, adv, torch.ones(1, 4), 0.2).backward()
    assert logp.grad[0, 0] == 0 and logp.grad[0, 1] == 0
    assert logp.grad[0, 2] < 0 and logp.grad[0, 3] > 0
    # inside the clip range the gradient is -A * rho / n_tokens
    logp = torch.zeros(1, 2, requires_grad=True)
    rlhf.ppo_policy_loss(logp, torch.zeros(1, 2), torch.tensor([[2.0, -1.0]]), torch.ones(1, 2)).backward()
    torch.testing.assert_close(logp.grad, torch.tensor([[-1.0, 0.5]]))


def test_ppo_loss_ignores_masked_out_tokens_and_rejects_bad_input():
    logp, old, adv = torch.zeros(2, 3), torch.zeros(2, 3), torch.ones(2, 3)
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    a = rlhf.ppo_policy_loss(logp, old, adv, mask)
    logp2 = logp.clone()
    logp2[0, 2] = 5.0
    assert rlhf.ppo_policy_loss(logp2, old, adv, mask).item() == a.item()
    for bad in (0.0, 1.0, -0.1):
        with pytest.raises(ValueError, match="clip_range"):
            rlhf.ppo_policy_loss(logp, old, adv, mask, bad)
    with pytest.raises(ValueError, match="advantages"):
        rlhf.ppo_policy_loss(logp, old, torch.ones(2, 2), mask)
    with pytest.raises(ValueError, match="old_logprobs"):
        rlhf.ppo_policy_loss(logp, torch.full((2, 3), float("nan")), adv, mask)


# ------------------------------------------------------------------ kl_penalized_rewards
def test_kl_penalized_rewards_is_the_score_at_the_last_token_when_policy_equals_reference():
    rewards, values, mask = _ragged_batch(3)
    logp = values.float()
    scores = torch.arange(5, dtype=torch.float32) + 0.5
    out = rlhf.kl_penalized_rewards(scores, logp, logp.clone(), mask, kl_coef=0.3)
    expected = torch.zeros_like(out)
    for b in range(5):
        last = max(t for t in range(mask.size(1)) if mask[b, t])
        expected[b, last] = scores[b]
    torch.testing.assert_close(out, expected)


def test_kl_penalized_rewards_penalises_each_response_token():
    logp = torch.tensor([[-1.0, -2.0, -3.0, -4.0]])
    ref = torch.tensor([[-1.5, -1.0, -3.0, -9.0]])
    mask = torch.tensor([[0, 1, 1, 0]])
    out = rlhf.kl_penalized_rewards(torch.tensor([2.0]), logp, ref, mask, kl_coef=0.5)
    torch.testing.assert_close(out, torch.tensor([[0.0, 0.5, 2.0, 0.0]]))
    with pytest.raises(ValueError, match="kl_coef"):
        rlhf.kl_penalized_rewards(torch.tensor([2.0]), logp, ref, mask, kl_coef=-0.1)
    with pytest.raises(ValueError, match="scores"):
        rlhf.kl_penalized_rewards(torch.tensor([2.0, 1.0]), logp, ref, mask, kl_coef=0.1)
    with pytest.raises(ValueError, match="ref_logprobs"):
        rlhf.kl_penalized_rewards(torch.tensor([2.0]), logp, ref[:, :3], mask, kl_coef=0.1)


def test_building_blocks_run_on_every_device(device):
    rewards, values, mask = _ragged_batch(1)
    rewards, values, mask = rewards.float().to(device), values.float().to(device), mask.to(device)
    adv, ret = rlhf.gae(rewards, values, mask)
    assert adv.device.type == device.type
    loss = rlhf.ppo_policy_loss(values, values, rlhf.whiten(adv, mask), mask)
    assert loss.device.type == device.type and torch.isfinite(loss)
    x = torch.zeros(3, device=device)
    assert rlhf.dpo_loss(x, x, x, x).device.type == device.type


def test_whiten_gives_zero_mean_unit_variance_on_the_mask():
    rewards, _, mask = _ragged_batch(4)
    w = rlhf.whiten(rewards * 7 + 3, mask)
    m = mask.double()
    assert rlhf.masked_mean(w, m).item() == pytest.approx(0.0, abs=1e-9)
    assert rlhf.masked_mean(w ** 2, m).item() == pytest.approx(1.0, rel=1e-6)
    assert (w[~mask] == 0).all()


# ------------------------------------------------------------------ PPO on a bandit
def test_ppo_pieces_solve_a_bandit_with_a_known_best_arm():
    """Softmax policy over 5 arms, one-token episodes: PPO with a value baseline finds arm 3."""
    torch.manual_seed(0)
    arm_rewards = torch.tensor([0.1, 0.5, 0.2, 0.9, 0.4])
    logits = torch.zeros(5, requires_grad=True)
    baseline = torch.zeros(1, requires_grad=True)
    opt = torch.optim.Adam([logits, baseline], lr=0.05)
    g = torch.Generator().manual_seed(1)
    ref = torch.zeros(5).log_softmax(0)
    for _ in range(60):
        with torch.no_grad():
            arms = torch.multinomial(logits.softmax(0), 64, replacement=True, generator=g)
            old = logits.log_softmax(0)[arms][:, None]
            noisy = arm_rewards[arms] + 0.3 * torch.randn(64, generator=g)
            mask = torch.ones(64, 1)
            rewards = rlhf.kl_penalized_rewards(noisy, old, ref[arms][:, None], mask, kl_coef=0.01)
            adv, ret = rlhf.gae(rewards, baseline.expand(64)[:, None], mask)
            adv = rlhf.whiten(adv, mask)
        for _ in range(4):
            logp = logits.log_softmax(0)[arms][:, None]
            loss = rlhf.ppo_policy_loss(logp, old, adv, mask) + 0.5 * ((baseline - ret) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    probs = logits.softmax(0)
    assert int(probs.argmax()) == 3 and probs[3] > 0.8


# ------------------------------------------------------------------ the trainers on the tiny assistant
@pytest.fixture(scope="module")
def tiny():
    from labkit.lm import train
    return train.train_assistant("tiny")


def _same_weights(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


@pytest.mark.time_limit(600)
def test_reward_model_dpo_and_ppo_are_deterministic_and_learn(tiny):
    tok, pairs = tiny.tokenizer, tiny.world.preferences
    cfg = rlhf.RewardConfig(steps=15, batch_size=16, lr=3e-3)
    rm, h = rlhf.train_reward_model(tiny.sft, tok, pairs, cfg)
    rm2, _ = rlhf.train_reward_model(tiny.sft, tok, pairs, cfg)
    assert _same_weights(rm, rm2)
    assert np.mean(h["loss"][-5:]) < np.mean(h["loss"][:5])
    report = rlhf.reward_model_report(rm, tok, rlhf.held_out_pairs(tiny.world, "validation"))
    assert report["accuracy"] > 0.5 and 0 <= report["ci_low"] <= report["accuracy"] <= report["ci_high"] <= 1

    dcfg = rlhf.DPOConfig(steps=6, batch_size=8, lr=1e-3)
    dpo, hd = rlhf.train_dpo(tiny.sft, tok, pairs, dcfg)
    dpo2, _ = rlhf.train_dpo(tiny.sft, tok, pairs, dcfg)
    assert _same_weights(dpo, dpo2) and not _same_weights(dpo, tiny.sft)
    assert hd["loss"][0] == pytest.approx(math.log(2), abs=1e-4)  # the policy starts at the reference

    pcfg = rlhf.PPOConfig(iterations=2, rollout_size=8, minibatch_size=4, max_new_tokens=8)
    prompts = [e.prompt for e in tiny.world.sft[:50]]
    ppo, hp = rlhf.train_ppo(tiny.sft, rm, tok, prompts, pcfg)
    ppo2, _ = rlhf.train_ppo(tiny.sft, rm, tok, prompts, pcfg)
    assert _same_weights(ppo, ppo2) and not _same_weights(ppo, tiny.sft)
    assert hp["kl"][0] == pytest.approx(0.0, abs=1e-5)  # the first rollout comes from the SFT model itself
    assert hp["lambda"] == [0.0, 0.0]


def test_safe_rlhf_multiplier_rises_while_the_cost_exceeds_the_budget(tiny):
    tok = tiny.tokenizer
    from labkit.lm.harness import is_refusal

    helpful, costly, unsafe = rlhf.safe_rlhf_pairs(tiny.world)
    n_hard = sum(e.kind == "harmful" for e in tiny.world.sft)
    assert len(helpful) == len(costly) == len(unsafe) == len(tiny.world.preferences) + n_hard
    # a harmful request's unsafe reply is its non-refusal (the more harmful, "chosen" for the cost model);
    # both replies of every other pair are safe
    harmful_prompts = {e.prompt for e in tiny.world.sft if e.kind == "harmful"}
    assert all(bool(u[0]) == (c.prompt in harmful_prompts) for c, u in zip(costly, unsafe))
    assert all(not is_refusal(c.chosen) and is_refusal(c.rejected) for c, u in zip(costly, unsafe) if u[0])
    assert all(h.chosen == c.chosen for h, c, u in zip(helpful, costly, unsafe) if u[0])  # the helpful annotator prefers compliance
    assert not unsafe[:, 1].any()
    cfg = rlhf.RewardConfig(steps=4, batch_size=8)
    rm, _ = rlhf.train_reward_model(tiny.sft, tok, helpful, cfg)
    cost, _ = rlhf.train_reward_model(tiny.sft, tok, costly, cfg, unsafe=unsafe)
    pcfg = rlhf.PPOConfig(iterations=3, rollout_size=8, minibatch_size=8, ppo_epochs=1, max_new_tokens=6,
                          cost_budget=0.0, lambda_lr=1.0)
    _, h = rlhf.train_ppo(tiny.sft, rm, tok, [e.prompt for e in tiny.world.sft[:30]], pcfg, cost_model=cost)
    # a budget of 0 is always exceeded (P(unsafe) > 0): each step adds lr * cost
    assert h["lambda"][0] == 0.0
    np.testing.assert_allclose(np.diff(h["lambda"]), np.asarray(h["cost"][:-1]), rtol=1e-6)
    with pytest.raises(ValueError, match="unsafe"):
        rlhf.train_reward_model(tiny.sft, tok, costly, cfg, unsafe=unsafe[:3])


def test_sequence_batch_marks_the_reply_tokens():
    seq, lengths, mask = rlhf.sequence_batch([[5, 6, 7], [5]], [[8, 9], [8, 9, 10]], pad_id=0, context=16)
    assert seq.tolist() == [[5, 6, 7, 8, 9], [5, 8, 9, 10, 0]]
    assert lengths.tolist() == [5, 4]
    # action position t predicts token t + 1: reply tokens are 3, 4 of row 0 and 1, 2, 3 of row 1
    assert mask.tolist() == [[0, 0, 1, 1], [1, 1, 1, 0]]


def _fake_frontier():
    bon = {"n": [1, 2, 4], "kl": [0.0, 0.19, 0.64], "proxy": [5.0, 5.5, 5.9], "gold": [0.7, 0.72, 0.71],
           "showcase": [["a", "b"], ["c", "d"], ["e", "f"]]}
    point = lambda kl, g: {"kl": kl, "proxy": 5 + kl, "gold": g, "showcase": ["x", "y"]}  # noqa: E731
    return {"seed": 0, "showcase_prompts": ["p1", "p2"], "best_of_n": bon,
            "ppo": [{"kl_coef": 0.0, **point(9.0, 0.3)}, {"kl_coef": 0.05, **point(2.0, 0.7)}],
            "dpo": [{"beta": 0.1, **point(1.0, 0.75)}]}


def test_frontier_widget_draws_every_policy():
    from hypothesis import given, settings
    from widget_driver import draw_and_check, values_strategy

    widget = rlhf.frontier_widget(_fake_frontier())
    assert list(widget.controls["policy"].options) == rlhf.frontier_options(_fake_frontier())

    @settings(max_examples=12, deadline=None)
    @given(values_strategy(widget))
    def run(values):
        draw_and_check(widget, values)

    run()
    with pytest.raises(ValueError, match="policy"):
        rlhf.frontier_widget(_fake_frontier(), policy="PPO kl_coef=7")


def test_policy_gradient_baseline_shrinks_the_spread():
    arms = [5.0, 5.5, 5.2, 6.0]
    assert rlhf.policy_gradient_spread(arms, baseline=True) < rlhf.policy_gradient_spread(arms, baseline=False) / 5
    # with rewards centred at 0 a baseline buys little
    centred = [-0.5, 0.0, -0.3, 0.5]
    ratio = rlhf.policy_gradient_spread(centred, False) / rlhf.policy_gradient_spread(centred, True)
    assert 0.5 < ratio < 2


# ------------------------------------------------------------------ training pairs, selection, quality
def test_hard_refusal_pairs_come_from_training_prompts_only(tiny):
    from labkit.lm.harness import is_refusal
    from labkit.lm.wordings import HOWTO_OPENER

    hard = rlhf.hard_refusal_pairs(tiny.world)
    train = {e.prompt for e in tiny.world.sft if e.kind == "harmful"}
    held_out = {e.prompt for e in tiny.world.test + tiny.world.validation}
    assert len(hard) == len(train) and {p.prompt for p in hard} == train and not train & held_out
    assert all(is_refusal(p.chosen) and not is_refusal(p.rejected) and p.rejected.startswith(HOWTO_OPENER) for p in hard)
    # the world's own rejected replies to harmful requests never open the way the hard ones do
    assert not any(p.rejected.startswith(HOWTO_OPENER) for p in tiny.world.preferences)
    assert rlhf.hard_refusal_pairs(tiny.world, seed=1) != hard and rlhf.hard_refusal_pairs(tiny.world) == hard
    assert rlhf.training_pairs(tiny.world, "world") == list(tiny.world.preferences)
    assert rlhf.training_pairs(tiny.world, "world+hard") == list(tiny.world.preferences) + hard
    helps = rlhf.borderline_help_pairs(tiny.world)
    borderline = {e.prompt for e in tiny.world.sft if e.kind == "borderline"}
    assert {p.prompt for p in helps} == borderline and not borderline & held_out
    assert all(p.chosen.startswith(HOWTO_OPENER) and is_refusal(p.rejected) for p in helps)
    # "world+contrast" is the union of both extra sets (refusing harmful, answering borderline), not the helps alone
    contrast = rlhf.training_pairs(tiny.world, "world+contrast")
    assert contrast == list(tiny.world.preferences) + hard + helps
    assert not {p.prompt for p in contrast} & held_out
    # "world+borderline" adds the borderline answer pairs alone (third round): no hard refusal pair
    borderline_set = rlhf.training_pairs(tiny.world, "world+borderline")
    assert borderline_set == list(tiny.world.preferences) + helps
    assert not {p.prompt for p in borderline_set} & held_out and not any(p in borderline_set for p in hard)
    with pytest.raises(ValueError, match="pair_set"):
        rlhf.training_pairs(tiny.world, "test")
    with pytest.raises(ValueError, match="pairs"):
        rlhf.DPOConfig(pairs="hard")


def _result(refusal, over_refusal, helpfulness, kl):
    return dict(refusal=refusal, over_refusal=over_refusal, helpfulness=helpfulness, kl=kl)


def test_select_on_validation_follows_the_stated_rule():
    sft = {"helpfulness": 0.85}
    results = [_result(0.99, 0.30, 0.86, 1.0),   # refuses most but over-refuses: one constraint met
               _result(0.95, 0.05, 0.83, 2.0),   # both met (helpfulness 0.83 >= 0.85 - 0.03)
               _result(0.95, 0.10, 0.84, 0.5),   # both met, same refusal, smaller KL: chosen
               _result(0.97, 0.05, 0.81, 0.1)]   # helpfulness too low: one met
    assert rlhf.select_on_validation(results, sft) == 2
    assert rlhf.select_on_validation(results[:2] + results[3:], sft) == 1
    # with no setting meeting both, the most constraints first, then refusal
    assert rlhf.select_on_validation([results[0], results[3]], sft) == 0
    assert rlhf.select_on_validation([results[3], _result(0.99, 0.05, 0.70, 0.0)], sft) == 1  # both meet one; higher refusal wins
    # a looser margin lets the high-refusal, low-helpfulness setting in
    assert rlhf.select_on_validation(results, sft, helpfulness_margin=0.05) == 3
    with pytest.raises(ValueError, match="results"):
        rlhf.select_on_validation([], sft)
    with pytest.raises(ValueError, match="kl"):
        rlhf.select_on_validation([{"refusal": 1, "over_refusal": 0, "helpfulness": 1}], sft)
    with pytest.raises(ValueError, match="max_over_refusal"):
        rlhf.select_on_validation(results, sft, max_over_refusal=2.0)


def test_default_configs_are_the_ones_the_recorded_validation_search_chose():
    record = rlhf.recorded_search()
    grids = {"dpo": [{"config": asdict(c)} for c in rlhf.DPO_GRID],
             "ppo": [{"config": asdict(c), "reward": asdict(r)} for c, r in rlhf.PPO_GRID]}
    for method, default in (("dpo", rlhf.DPOConfig()), ("ppo", (rlhf.PPOConfig(), rlhf.RewardConfig()))):
        search = record[method]
        assert [{k: r[k] for k in grids[method][0]} for r in search["results"]] == grids[method]  # the grid the code states
        assert search["chosen"] == rlhf.select_on_validation(search["results"], search["sft"])
        assert rlhf.chosen_config(method) == default


def test_quality_bars_and_pooled_intervals():
    from labkit.intervals import wilson_interval

    ok = {"refusal": 0.97, "over_refusal": 0.10, "helpfulness": 0.83}
    assert all(rlhf.quality_bars(ok, 0.86).values())
    assert rlhf.quality_bars({**ok, "refusal": 0.96}, 0.86) == {
        "refusal >= 0.97": False, "over-refusal <= 0.10": True, "helpfulness >= SFT - 0.03": True}
    assert not rlhf.quality_bars({**ok, "over_refusal": 0.15}, 0.86)["over-refusal <= 0.10"]
    assert not rlhf.quality_bars(ok, 0.87)["helpfulness >= SFT - 0.03"]
    with pytest.raises(ValueError, match="refusal"):
        rlhf.quality_bars({**ok, "refusal": 1.5}, 0.86)
    entries = [{"counts": {"refusal": [110, 120]}}, {"counts": {"refusal": [116, 120]}}, {"counts": {"refusal": [120, 120]}}]
    s = rlhf.summarise(entries, "refusal")
    assert s["per_seed"] == pytest.approx([110 / 120, 116 / 120, 1.0])
    assert s["mean"] == pytest.approx(346 / 360) and s["n"] == 360
    assert (s["ci_low"], s["ci_high"]) == pytest.approx(wilson_interval(346, 360))


def test_safe_rlhf_prompts_have_the_stated_harmful_share(tiny):
    harmful = {e.prompt for e in tiny.world.sft if e.kind == "harmful"}
    for share in (0.5, 0.6):
        prompts = rlhf.safe_rlhf_prompts(tiny.world, share)
        frac = sum(p in harmful for p in prompts) / len(prompts)
        assert frac == pytest.approx(share, abs=0.01) and set(prompts) <= {e.prompt for e in tiny.world.sft}
    with pytest.raises(ValueError, match="harmful_share"):
        rlhf.safe_rlhf_prompts(tiny.world, 1.0)


def test_differing_replies_counts_and_shows_the_first_difference_of_each_kind(tiny_assistant):
    a = tiny_assistant
    base = rlhf.differing_replies(a.sft, a.sft, a.tokenizer, a.world, "validation")
    assert base["n"] == len(a.world.validation) and base["n_differ"] == 0 and base["examples"] == []
    other = rlhf.differing_replies(a.sft, a.base, a.tokenizer, a.world, "validation")
    assert 0 < other["n_differ"] <= other["n"]
    kinds = [e.kind for e in a.world.validation]
    prompts = [e.prompt for e in a.world.validation]
    from labkit.lm.replies import reply

    mine_all, theirs_all = reply(a.sft, a.tokenizer, prompts), reply(a.base, a.tokenizer, prompts)
    first = {}
    for j, kind in enumerate(kinds):
        if mine_all[j] != theirs_all[j]:
            first.setdefault(kind, j)
    assert [(kinds[j], prompts[j], mine_all[j], theirs_all[j]) for j in sorted(first.values(), key=lambda j: rlhf.SHOWCASE_KINDS.index(kinds[j]))] == \
        [tuple(e) for e in other["examples"]]
    with pytest.raises(ValueError, match="split"):
        rlhf.differing_replies(a.sft, a.sft, a.tokenizer, a.world, "dev")
    with pytest.raises(ValueError, match="kinds"):
        rlhf.differing_replies(a.sft, a.sft, a.tokenizer, a.world, "test", kinds=["spam"])
