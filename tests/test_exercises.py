"""Every check fails on its stub, passes on its reference, catches wrong answers,
and the committed notebooks show exactly that."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from labkit import exercises, redteam
from labkit.syllabus import LESSONS

ROOT = Path(__file__).resolve().parents[1]
ALL = exercises.all_exercises()


def _perturb(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float, np.number)):
        return value + 0.5 + abs(value) * 0.1
    if isinstance(value, np.ndarray):
        return value + 0.5 if value.dtype != bool else ~value
    if isinstance(value, torch.Tensor):
        return value + 0.5 if value.dtype != torch.bool else ~value
    if isinstance(value, str):
        return value + " (wrong)"
    if isinstance(value, (list, tuple)):
        return type(value)(_perturb(v) for v in value) if value else type(value)(["wrong"])
    if isinstance(value, dict):
        return {k: _perturb(v) for k, v in value.items()}
    return "wrong"


def _stub(*args, **kwargs):
    raise NotImplementedError()


@pytest.mark.parametrize("key", sorted(ALL))
def test_check_rejects_stub_accepts_reference_and_catches_wrong_answers(key):
    ex = ALL[key]
    assert exercises.run_check(key, _stub).status == "not attempted"
    assert exercises.run_check(key, ex.reference).status == "passed"
    wrong = lambda *a, **k: _perturb(ex.reference(*a, **k))  # noqa: E731
    result = exercises.run_check(key, wrong)
    assert result.status == "failed", result.message
    assert "expected" in result.message and "got" in result.message


def _ece_with_bins(name, bin_index):
    """A plain ECE (top-class for 2-D probs, event for 1-D) whose bins are ``bin_index(conf, M)``."""
    def ece(probs, labels, n_bins=15):
        p, y = np.asarray(probs, dtype=float), np.asarray(labels)
        if p.ndim == 2:
            if (y < 0).any() or (y >= p.shape[1]).any():
                raise ValueError("labels must be class indices")
            conf, outcome = p.max(axis=1), (p.argmax(axis=1) == y).astype(float)
        else:
            if (p < 0).any() or (p > 1).any():
                raise ValueError("probs must lie in [0, 1]")
            conf, outcome = p, y.astype(float)
        b = bin_index(conf, n_bins)
        return float(np.abs(np.bincount(b, weights=outcome - conf, minlength=n_bins)).sum() / len(conf))
    ece.__name__ = name
    return ece


# Bins [b/M, (b+1)/M), 1.0 in the last: right everywhere except on bin edges.
_ece_left_closed_bins = _ece_with_bins("ece_left_closed_bins", lambda c, m: np.minimum((c * m).astype(int), m - 1))
# Guo et al.'s ((m-1)/M, m/M]: shows that the one above fails only because of its bins.
_ece_right_closed_bins = _ece_with_bins("ece_right_closed_bins", lambda c, m: np.clip(np.ceil(c * m).astype(int) - 1, 0, m - 1))


def _softmax_global_max(logits, temperature=1.0):
    """Subtracts the whole array's max: a row far below it underflows to 0/0."""
    if temperature <= 0:
        raise ValueError("temperature must be positive")
    z = np.asarray(logits, dtype=float) / temperature
    e = np.exp(z - z.max())
    return e / e.sum(axis=-1, keepdims=True)


def _softmax_row_max(logits, temperature=1.0):
    """The same, with each row's own max: right."""
    if temperature <= 0:
        raise ValueError("temperature must be positive")
    z = np.asarray(logits, dtype=float) / temperature
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _bon_pick_by_gold(proxy_scores, gold_scores, n):
    """Picks each group's best draw by the gold reward: not what best-of-n against a proxy does."""
    groups_p, groups_g = np.asarray(proxy_scores).reshape(len(proxy_scores), -1, n), np.asarray(gold_scores).reshape(len(gold_scores), -1, n)
    if np.asarray(proxy_scores).shape[1] % n:
        raise ValueError("n must divide the draws")
    idx = np.argmax(groups_g, axis=2)[..., None]
    return float(np.take_along_axis(groups_p, idx, axis=2).mean()), float(np.take_along_axis(groups_g, idx, axis=2).mean())


def _bon_interleaved_groups(proxy_scores, gold_scores, n):
    """Groups draws i, i + k, i + 2k, ... instead of consecutive runs of n."""
    p, g = np.asarray(proxy_scores), np.asarray(gold_scores)
    if p.shape[1] % n:
        raise ValueError("n must divide the draws")
    groups_p, groups_g = p.reshape(len(p), n, -1), g.reshape(len(g), n, -1)
    idx = np.argmax(groups_p, axis=1)[:, None, :]
    return float(np.take_along_axis(groups_p, idx, axis=1).mean()), float(np.take_along_axis(groups_g, idx, axis=1).mean())


def _primal_dual(P, r, c, start, gamma, budget, lr=0.05, steps=150, temperature=0.05, project=True, record_after=False):
    from labkit.gridworld import policy_evaluation, soft_value_iteration
    if lr <= 0:
        raise ValueError("lr must be > 0")
    lam, V, out = 0.0, None, {"reward": [], "cost": [], "lam": []}
    for _ in range(steps):
        V, _, pi = soft_value_iteration(P, r - lam * c, gamma, temperature=temperature, tol=1e-9, V0=V)
        j_r, j_c = float(start @ policy_evaluation(P, r, pi, gamma)), float(start @ policy_evaluation(P, c, pi, gamma))
        new_lam = lam + lr * (j_c - budget)
        new_lam = max(0.0, new_lam) if project else new_lam
        out["reward"].append(j_r)
        out["cost"].append(j_c)
        out["lam"].append(new_lam if record_after else lam)
        lam = new_lam
    return {**{k: np.array(v) for k, v in out.items()}, "policy": pi}


def _primal_dual_unprojected(*args, **kwargs):
    """Lets the multiplier go negative when the constraint is slack."""
    return _primal_dual(*args, **kwargs, project=False)


def _primal_dual_records_after_update(*args, **kwargs):
    """Records the multiplier after its update instead of the one the policy used."""
    return _primal_dual(*args, **kwargs, record_after=True)


def _maxent_ascent(P, features, expert_features, start, gamma, lr=0.1, steps=100, l2=0.0, sign=1.0, horizon=None, use_l2=True):
    from labkit import gridworld
    if lr <= 0:
        raise ValueError("lr must be > 0")
    theta = np.zeros(features.shape[1])
    for _ in range(steps):
        _, _, policy = gridworld.soft_value_iteration(P, features @ theta, gamma, tol=1e-11)
        if horizon is None:
            D = gridworld.discounted_occupancy(P, policy, start, gamma)
        else:
            P_pi, d, D = np.einsum("sa,sat->st", policy, P), np.asarray(start, float), np.zeros(len(start))
            for t in range(horizon):
                D, d = D + gamma**t * d, d @ P_pi
        theta = theta + lr * sign * (expert_features - features.T @ D - (l2 * theta if use_l2 else 0))
    return theta


def _maxent_learner_minus_expert(*args, **kwargs):
    """Descends instead of ascending: learner minus expert feature counts."""
    return _maxent_ascent(*args, **kwargs, sign=-1.0)


def _maxent_short_horizon(*args, **kwargs):
    """Visitation over 10 steps instead of the infinite discounted sum the expert's counts use."""
    return _maxent_ascent(*args, **kwargs, horizon=10)


def _maxent_no_prior(*args, **kwargs):
    """Ignores the l2 term of the gradient."""
    return _maxent_ascent(*args, **kwargs, use_l2=False)
def _roc_point_per_example(losses, is_member):
    """Ignores ties: one ROC point per example, so tied losses are split in index order."""
    s, m = -np.asarray(losses, dtype=float), np.asarray(is_member, dtype=bool)
    if m.all() or not m.any() or len(s) != len(m):
        raise ValueError("is_member must hold both classes, one per loss")
    order = np.argsort(-s, kind="stable")
    tpr = np.r_[0.0, np.cumsum(m[order]) / m.sum()]
    fpr = np.r_[0.0, np.cumsum(~m[order]) / (~m).sum()]
    return fpr, tpr, float(np.trapezoid(tpr, fpr))


def _roc_scores_not_negated(losses, is_member):
    """Treats a high loss as member-like."""
    from labkit.leakage import roc

    return roc(np.asarray(losses, dtype=float), is_member)


def _exposure_ties_for_the_canary(canary_loss, reference_losses):
    ref = np.asarray(reference_losses, dtype=float)
    if ref.size == 0:
        raise ValueError("reference_losses must not be empty")
    return float(np.log2(len(ref) + 1) - np.log2(1 + np.count_nonzero(ref < canary_loss)))


def _exposure_without_the_canary_in_R(canary_loss, reference_losses):
    ref = np.asarray(reference_losses, dtype=float)
    if ref.size == 0:
        raise ValueError("reference_losses must not be empty")
    return float(np.log2(len(ref)) - np.log2(1 + np.count_nonzero(ref <= canary_loss)))


def _exposure_numpy_rank(canary_loss, reference_losses):
    """Right, written another way: the canary's rank among all candidates, ties against it."""
    ref = np.asarray(reference_losses, dtype=float)
    if ref.size == 0:
        raise ValueError("reference_losses must not be empty")
    everything = np.sort(np.r_[ref, canary_loss])
    rank = int(np.searchsorted(everything, canary_loss, side="right"))
    return float(np.log2(everything.size / rank))


def _clip_per_layer(per_example_grads, max_grad_norm, noise_multiplier, expected_batch_size, generator=None):
    """Clips each layer to C on its own (so an example can move the sum by C * sqrt(layers))."""
    out = {}
    for name, g in per_example_grads.items():
        norms = g.reshape(g.shape[0], -1).norm(dim=1)
        factors = (max_grad_norm / (norms + 1e-6)).clamp(max=1.0)
        total = torch.einsum("b,b...->...", factors, g)
        if noise_multiplier > 0:
            total = total + torch.randn(total.shape, generator=generator, dtype=g.dtype) * noise_multiplier * max_grad_norm
        out[name] = total / expected_batch_size
    return out


def _clip_realised_batch(per_example_grads, max_grad_norm, noise_multiplier, expected_batch_size, generator=None):
    """Divides by the realised batch size (which leaks it) instead of the expected one."""
    from labkit import privacy
    batch = next(iter(per_example_grads.values())).shape[0]
    return privacy.clip_and_noise(per_example_grads, max_grad_norm, noise_multiplier, float(max(batch, 1)), generator)


def _mironov_conversion(rdp, orders, delta):
    """Mironov 2017's eps = rdp + log(1/delta) / (alpha - 1): valid, but looser than Balle et al.'s."""
    r, a = np.asarray(rdp, dtype=float), np.asarray(orders, dtype=float)
    if r.shape != a.shape or (a <= 1).any() or not 0 < delta < 1:
        raise ValueError("bad input")
    eps = r + np.log(1 / delta) / (a - 1)
    return float(eps.min()), float(a[eps.argmin()])


def _fedavg_equal_weights(client_states, client_sizes):
    """The seed's plain mean, whatever each client's data size."""
    if len(client_sizes) != len(client_states) or min(client_sizes) < 0:
        raise ValueError("bad sizes")
    return {k: torch.stack([s[k] for s in client_states]).mean(0) for k in client_states[0]}


def _clip_one_example_at_a_time(per_example_grads, max_grad_norm, noise_multiplier, expected_batch_size, generator=None):
    """A student's loop version: right, and so it must pass."""
    if max_grad_norm <= 0 or noise_multiplier < 0 or expected_batch_size <= 0:
        raise ValueError("bad argument")
    names = list(per_example_grads)
    total = {n: torch.zeros_like(per_example_grads[n][0]) for n in names}
    for i in range(per_example_grads[names[0]].shape[0]):
        norm = sum(float(per_example_grads[n][i].pow(2).sum()) for n in names) ** 0.5
        for n in names:
            total[n] += per_example_grads[n][i] * min(1.0, max_grad_norm / (norm + 1e-6))
    for n in names:
        if noise_multiplier > 0:
            total[n] += noise_multiplier * max_grad_norm * torch.randn(total[n].shape, generator=generator, dtype=total[n].dtype)
    return {n: t / expected_batch_size for n, t in total.items()}
def _attack_identity(requests):
    """No attack: the keyword filter blocks almost every plain request."""
    return list(requests)


def _attack_payload_split(requests):
    """Lesson 18's payload split: the model would answer it, but both halves keep the blocked words."""
    from labkit.lm.world import Example
    return [redteam.apply_attack(Example(r, "", "harmful", "weapons"), "payload_split") for r in requests]


def _attack_leetspeak(requests):
    """Leetspeak passes the filter, but the model no longer reads a request it would answer."""
    from labkit.moderation import obfuscate
    return [obfuscate(r, "leetspeak") for r in requests]


def _gcg_candidates_with(sign):
    """GCG's candidate step drawing from the top-k of ``sign * grad`` (-1 is right: most negative gradient)."""
    def candidates(grad, suffix, top_k, batch_size, seed):
        g = torch.Generator().manual_seed(int(seed))
        top = (sign * grad).topk(top_k, dim=1).indices
        pos = torch.randint(0, suffix.size(0), (batch_size,), generator=g)
        choice = torch.randint(0, top_k, (batch_size,), generator=g)
        out = suffix.repeat(batch_size, 1)
        out[torch.arange(batch_size), pos] = top[pos, choice]
        return out
    candidates.__name__ = f"gcg_candidates_top_k_of_{'minus_' if sign < 0 else ''}grad"
    return candidates
def _dpo_without_reference(pc, pr, rc, rr, beta=0.1):
    """Forgets the reference model: -log sigmoid(beta (pi_c - pi_r))."""
    from labkit import rlhf
    return rlhf.dpo_loss(pc, pr, torch.zeros_like(rc), torch.zeros_like(rr), beta)


def _gae_ignoring_episode_ends(rewards, values, mask, gamma=1.0, lam=0.95):
    """Bootstraps from the next position's value even past the reply's last token."""
    from labkit import rlhf
    adv = torch.zeros_like(rewards)
    last = torch.zeros_like(rewards[:, 0])
    for t in range(rewards.size(1) - 1, -1, -1):
        nxt = values[:, t + 1] if t + 1 < rewards.size(1) else torch.zeros_like(last)
        last = (rewards[:, t] + gamma * nxt - values[:, t] + gamma * lam * last) * mask[:, t]
        adv[:, t] = last
    rlhf.gae(rewards, values, mask, gamma, lam)  # the same input checks as the reference
    return adv, adv + values


def _ppo_mean_over_all_tokens(logprobs, old_logprobs, advantages, mask, clip_range=0.2):
    """Averages over every position, padding included."""
    from labkit import rlhf
    n_masked = mask.sum()
    return rlhf.ppo_policy_loss(logprobs, old_logprobs, advantages, mask, clip_range) * n_masked / mask.numel()


def _ppo_min_instead_of_max(logprobs, old_logprobs, advantages, mask, clip_range=0.2):
    """Takes the optimistic term: min of the two losses."""
    from labkit import rlhf
    rlhf.ppo_policy_loss(logprobs, old_logprobs, advantages, mask, clip_range)  # the same input checks
    ratio = torch.exp(logprobs - old_logprobs)
    loss = torch.minimum(-advantages * ratio, -advantages * ratio.clamp(1 - clip_range, 1 + clip_range))
    return (loss * mask).sum() / mask.sum()


def _bt_newton(diff, weight_decay, l2_factor=0.5):
    """Newton's method on mean softplus(−θ·d) + l2_factor·λ·|θ|²."""
    from scipy.special import expit
    if weight_decay <= 0:
        raise ValueError("weight_decay must be > 0")
    theta = np.zeros(diff.shape[1])
    for _ in range(100):
        p = expit(diff @ theta)
        grad = -diff.T @ (1 - p) / len(diff) + 2 * l2_factor * weight_decay * theta
        hess = (diff * (p * (1 - p))[:, None]).T @ diff / len(diff) + 2 * l2_factor * weight_decay * np.eye(len(theta))
        theta = theta - np.linalg.solve(hess, grad)
    return theta


def _bt_fit_newton(data, weight_decay=1e-3):
    """Plain Newton without a line search: right (the loss is strongly convex)."""
    chosen, rejected = data.chosen_rejected()
    return _bt_newton(chosen - rejected, weight_decay)


def _bt_fit_sign_flipped(data, weight_decay=1e-3):
    """Fits rejected − chosen: the reward of the losing answer."""
    chosen, rejected = data.chosen_rejected()
    return _bt_newton(rejected - chosen, weight_decay)


def _bt_fit_full_lambda(data, weight_decay=1e-3):
    """λ·|θ|² instead of ½·λ·|θ|²: twice the regularisation."""
    chosen, rejected = data.chosen_rejected()
    return _bt_newton(chosen - rejected, weight_decay, l2_factor=1.0)


def _bt_fit_unregularised(data, weight_decay=1e-3):
    """Checks λ, then fits the unregularised likelihood: wrong for large λ, diverging on separable pairs."""
    chosen, rejected = data.chosen_rejected()
    _bt_newton(chosen[:1] - rejected[:1], weight_decay)   # the same ValueError for λ <= 0
    return _bt_newton(chosen - rejected, 1e-12)


def _bt_fit_a_versus_b(data, weight_decay=1e-3):
    """Uses features_a − features_b whatever the label: ignores which answer was chosen."""
    return _bt_newton(data.features_a - data.features_b, weight_decay)


# Plausible wrong answers each check must catch, beyond the generic perturbation above.
PLAUSIBLE_WRONG = {
    "01.find_bypass": [
        lambda blocklist: "rm -rf workspace",              # the plain command: blocked
        lambda blocklist: "Rm -rf workspace",              # passes, but the shell runs Rm, not rm
        lambda blocklist: "r''m -rf workspace",            # one fixed trick: fails once '' is blocked
        lambda blocklist: "r m -rf workspace",             # passes, but runs r
        lambda blocklist: "r''m -rf /" if "''" not in blocklist else 'r""m -rf /',  # runs rm, not on the workspace
    ],
    "00.softmax": [_softmax_global_max],
    "03.expected_calibration_error": [_ece_left_closed_bins],
    "05.expected_calibration_error": [_ece_left_closed_bins],
    "05.best_of_n_select": [_bon_pick_by_gold, _bon_interleaved_groups],
    "05.fit_bradley_terry": [_bt_fit_sign_flipped, _bt_fit_full_lambda, _bt_fit_unregularised, _bt_fit_a_versus_b],
    "06.maxent_gradient_ascent": [_maxent_learner_minus_expert, _maxent_short_horizon, _maxent_no_prior],
    "07.primal_dual": [_primal_dual_unprojected, _primal_dual_records_after_update],
    "10.borda_condorcet_disagree": [
        lambda: np.array([[0, 1, 2], [1, 2, 0], [2, 0, 1]]),   # a Condorcet cycle: no winner to disagree with
        lambda: np.array([[0, 1, 2], [0, 2, 1], [1, 0, 2]]),   # both pick option 0
        lambda: np.array([[0, 1, 2], [1, 0, 2]]),              # no majority winner and a Borda tie
        lambda: np.array([[0, 1, 1]]),                         # not a ranking
    ],
    "20.clip_and_noise": [_clip_per_layer, _clip_realised_batch],
    "20.rdp_to_epsilon": [_mironov_conversion],
    "20.fedavg": [_fedavg_equal_weights],
    "18.attack_keyword_filter": [_attack_identity, _attack_payload_split, _attack_leetspeak],
    "18.gcg_candidates": [_gcg_candidates_with(+1)],  # the largest gradient promises the largest *increase*
    "16.dpo_loss": [_dpo_without_reference],
    "16.gae": [_gae_ignoring_episode_ends],
    "16.ppo_policy_loss": [_ppo_mean_over_all_tokens, _ppo_min_instead_of_max],
    "21.loss_threshold_roc": [_roc_point_per_example, _roc_scores_not_negated],
    "21.exposure": [_exposure_ties_for_the_canary, _exposure_without_the_canary_in_R],
}
PLAUSIBLE_RIGHT = {
    "00.softmax": [_softmax_row_max],
    "03.expected_calibration_error": [_ece_right_closed_bins],
    "05.expected_calibration_error": [_ece_right_closed_bins],
    "05.fit_bradley_terry": [_bt_fit_newton],
    "06.maxent_gradient_ascent": [_maxent_ascent],
    "07.primal_dual": [_primal_dual],
    "10.borda_condorcet_disagree": [
        lambda: np.array([[0, 1, 2, 3]] * 3 + [[1, 2, 3, 0]] * 2),   # four options, same idea
    ],
    "20.clip_and_noise": [_clip_one_example_at_a_time],
    "18.gcg_candidates": [_gcg_candidates_with(-1)],
    "21.exposure": [_exposure_numpy_rank],
}


@pytest.mark.parametrize("key, wrong", [(k, f) for k, fs in sorted(PLAUSIBLE_WRONG.items()) for f in fs],
                         ids=lambda v: getattr(v, "__name__", v))
def test_check_catches_plausible_wrong_answers(key, wrong):
    result = exercises.run_check(key, wrong)
    assert result.status == "failed", result.message


@pytest.mark.parametrize("key, right", [(k, f) for k, fs in sorted(PLAUSIBLE_RIGHT.items()) for f in fs],
                         ids=lambda v: getattr(v, "__name__", v))
def test_check_accepts_plausible_right_answers(key, right):
    assert exercises.run_check(key, right).status == "passed"


@pytest.mark.parametrize("key", sorted(ALL))
def test_check_never_raises(key):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    assert exercises.run_check(key, broken).status == "failed"
    assert exercises.run_check(key, 42).status == "failed"


def test_unknown_exercise_reports_instead_of_raising(capsys):
    exercises.check("99.nothing", lambda: None)
    assert "[failed]" in capsys.readouterr().out


def test_exercise_metadata_is_valid():
    with pytest.raises(ValueError, match="difficulty"):
        exercises.Exercise("00.x", "t", abs, lambda rng: [], difficulty=4, importance="core", minutes=5)


def _check_outputs(path: Path) -> list[str]:
    nb = json.loads(path.read_text())
    texts = []
    for cell in nb["cells"]:
        if cell["cell_type"] == "code" and "check(" in "".join(cell["source"]) and "".join(cell["source"]).lstrip().startswith("check("):
            texts.append("".join("".join(o.get("text", "")) for o in cell.get("outputs", [])))
    return texts


LESSON_FILES = sorted(p.stem for p in (ROOT / "lessons").glob("[0-9][0-9]_*.py"))


@pytest.mark.parametrize("name", LESSON_FILES)
def test_notebooks_show_stub_and_solution_check_results(name):
    student = _check_outputs(ROOT / "notebooks" / f"{name}.ipynb")
    solved = _check_outputs(ROOT / "solutions" / f"{name}.ipynb")
    if not name.startswith("23_"):
        assert len(student) >= 2, f"{name} needs at least two checked exercises"
    assert len(student) == len(solved)
    for text in student:
        assert text.startswith("[not attempted yet]"), text
    for text in solved:
        assert text.startswith("[passed]"), text


def test_every_lesson_with_exercises_is_in_the_syllabus():
    numbers = {f"{lesson.number:02d}" for lesson in LESSONS}
    assert {key.split(".")[0] for key in ALL} <= numbers
