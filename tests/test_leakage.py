"""labkit.leakage: the metrics against scikit-learn and by hand, the attacks on
models that do and do not leak, memorisation scoring, and model extraction."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score, roc_curve

from labkit import classifiers, leakage

# ----------------------------------------------------------------------------- roc


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("tied", [False, True])
def test_roc_matches_sklearn(seed, tied):
    rng = np.random.default_rng(seed)
    member = rng.random(300) < 0.4
    scores = rng.normal(size=300) + 0.7 * member
    if tied:  # few distinct values: many ties inside and across the classes
        scores = np.round(scores)
    fpr, tpr, auc = leakage.roc(scores, member)
    sk_fpr, sk_tpr, _ = roc_curve(member, scores, drop_intermediate=False)
    np.testing.assert_allclose(fpr, sk_fpr, atol=1e-12)
    np.testing.assert_allclose(tpr, sk_tpr, atol=1e-12)
    assert auc == pytest.approx(roc_auc_score(member, scores), abs=1e-12)


def test_roc_auc_is_the_mann_whitney_probability_with_half_ties():
    rng = np.random.default_rng(3)
    member = np.r_[np.ones(40, bool), np.zeros(50, bool)]
    scores = rng.integers(0, 4, size=90).astype(float)
    pos, neg = scores[member], scores[~member]
    by_pairs = ((pos[:, None] > neg[None]).sum() + 0.5 * (pos[:, None] == neg[None]).sum()) / (40 * 50)
    assert leakage.roc(scores, member)[2] == pytest.approx(by_pairs, abs=1e-12)


def test_roc_edge_cases():
    member = np.array([True, True, False, False])
    assert leakage.roc([4, 3, 2, 1], member)[2] == 1.0
    assert leakage.roc([1, 2, 3, 4], member)[2] == 0.0
    fpr, tpr, auc = leakage.roc([7, 7, 7, 7], member)  # all tied: one threshold, straight to (1, 1)
    assert fpr.tolist() == [0, 1] and tpr.tolist() == [0, 1] and auc == 0.5


def test_roc_accepts_tensors_and_lists():
    scores, member = torch.tensor([0.9, 0.1, 0.5, 0.3]), torch.tensor([True, False, True, False])
    assert leakage.roc(scores, member)[2] == 1.0
    assert leakage.roc([0.9, 0.1, 0.5, 0.3], [1, 0, 1, 0])[2] == 1.0


@pytest.mark.parametrize("scores, member, match", [
    ([0.1, 0.2], [True, True], "both"),
    ([0.1, 0.2, 0.3], [True, False], "one entry per score"),
    ([0.1, float("nan")], [True, False], "NaN"),
    ([0.1, 0.2], [2, 0], "booleans"),
    ([[0.1, 0.2]], [True, False], "dimensions"),
])
def test_roc_rejects_bad_input(scores, member, match):
    with pytest.raises(ValueError, match=match):
        leakage.roc(scores, member)


# ---------------------------------------------------------------------- tpr_at_fpr

def test_tpr_at_fpr_by_hand():
    scores = [0.9, 0.8, 0.7, 0.6, 0.5]
    member = [True, False, True, True, False]
    # thresholds: >=0.9 (tpr 1/3, fpr 0), >=0.8 (1/3, 1/2), >=0.7 (2/3, 1/2), >=0.6 (1, 1/2), >=0.5 (1, 1)
    assert leakage.tpr_at_fpr(scores, member, 0.0) == pytest.approx(1 / 3)
    assert leakage.tpr_at_fpr(scores, member, 0.49) == pytest.approx(1 / 3)
    assert leakage.tpr_at_fpr(scores, member, 0.5) == pytest.approx(1.0)
    assert leakage.tpr_at_fpr([5, 5, 5, 5], [True, False, True, False], 0.5) == 0.0  # ties never split


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_tpr_at_fpr_is_the_best_tpr_of_any_threshold_within_the_fpr(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(4, 60))
    member = rng.random(n) < 0.5
    member[:2] = [True, False]
    scores = rng.integers(0, 8, size=n).astype(float)
    target = float(rng.choice([0.0, 0.01, 0.1, 0.3, 1.0]))
    best = 0.0
    for t in np.unique(scores):  # every "member when score >= t"
        flagged = scores >= t
        if flagged[~member].mean() <= target:
            best = max(best, flagged[member].mean())
    assert leakage.tpr_at_fpr(scores, member, target) == pytest.approx(best)


def test_tpr_at_fpr_checks_fpr():
    with pytest.raises(ValueError, match="fpr"):
        leakage.tpr_at_fpr([0.1, 0.2], [True, False], 1.5)


# ------------------------------------------------------------------------ exposure

def test_exposure_by_hand_with_ties_against_the_canary():
    # |R| = 4 candidates; two references have loss <= 1.0 (one tie), so the canary ranks 3rd
    assert leakage.exposure(1.0, [0.5, 1.0, 2.0]) == pytest.approx(math.log2(4) - math.log2(3))
    assert leakage.exposure(0.1, [0.5, 1.0, 2.0]) == pytest.approx(2.0)  # lowest: log2 |R|
    assert leakage.exposure(9.0, [0.5, 1.0, 2.0]) == pytest.approx(0.0)  # highest
    assert leakage.exposure(1.0, [1.0, 1.0, 1.0]) == pytest.approx(0.0)  # all tied: last
    assert leakage.exposure(torch.tensor(0.1), torch.tensor([0.5, 1.0, 2.0])) == pytest.approx(2.0)


def test_exposure_rejects_bad_input():
    with pytest.raises(ValueError, match="at least 1"):
        leakage.exposure(1.0, [])
    with pytest.raises(ValueError, match="finite"):
        leakage.exposure(float("nan"), [1.0])


# --------------------------------------------------------------- attacks on models

@pytest.fixture(scope="module")
def overfit_setup():
    """A wide MLP trained to zero loss on 100 digits, and 100 digits it never saw."""
    data = classifiers.load_digits(test_fraction=0.25, seed=0)
    x_in, y_in = data.x_train[:100], data.y_train[:100]
    x_out, y_out = data.x_test[:200], data.y_test[:200]
    model = classifiers.make_mlp(hidden=(256,), seed=0)
    classifiers.train_classifier(model, x_in, y_in, epochs=150, batch_size=32, lr=1e-3, seed=0)
    return model, x_in, y_in, x_out, y_out


def test_loss_attack_beats_chance_on_an_overfit_model_and_not_on_random_membership(overfit_setup):
    model, x_in, y_in, x_out, y_out = overfit_setup
    scores = leakage.loss_attack_scores(model, torch.cat([x_in, x_out[:100]]), torch.cat([y_in, y_out[:100]]))
    member = np.r_[np.ones(100, bool), np.zeros(100, bool)]
    assert leakage.roc(scores, member)[2] > 0.65
    # both halves unseen: calling one of them "members" must give chance
    unseen = leakage.loss_attack_scores(model, x_out, y_out)
    assert abs(leakage.roc(unseen, member)[2] - 0.5) < 0.1
    # and true membership shuffled
    shuffled = np.random.default_rng(0).permutation(member)
    assert abs(leakage.roc(scores, shuffled)[2] - 0.5) < 0.1


def test_per_example_loss_and_logit_confidence_by_hand():
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 50.0, 0.0]])
    y = torch.tensor([0, 1])
    p0 = math.exp(2) / (math.exp(2) + 2)
    np.testing.assert_allclose(leakage.per_example_loss(logits, y), [-math.log(p0), 2 * math.exp(-50)], rtol=1e-6)
    # log(p / (1 - p)) without cancellation, even where p rounds to 1
    np.testing.assert_allclose(leakage.logit_confidence(logits, y), [math.log(p0 / (1 - p0)), 50 - math.log(2)],
                               rtol=1e-9)


def test_lira_scores_by_hand_and_on_gaussians():
    ref = np.array([[1.0], [3.0], [0.0], [-2.0]])
    inside = np.array([[True], [True], [False], [False]])
    # per-example variance: in N(2, 2), out N(-1, 2)
    got = leakage.lira_scores([2.0], ref, inside, global_variance=False)
    expect = -0.5 * (0 / 2) + 0.5 * (9 / 2)
    assert got[0] == pytest.approx(expect)
    rng = np.random.default_rng(0)
    n, R = 400, 15
    shift = rng.normal(size=n)  # per-example difficulty, which LiRA calibrates away
    inside = leakage.membership_masks(R + 1, n, seed=1)
    conf = shift + 1.5 * inside + rng.normal(scale=0.5, size=(R + 1, n))
    scores = leakage.lira_scores(conf[0], conf[1:], inside[1:])
    assert leakage.roc(scores, inside[0])[2] > 0.9
    noise = leakage.lira_scores(rng.normal(size=n) + shift, conf[1:], inside[1:])  # a target that learnt nothing
    assert leakage.roc(noise, inside[0])[2] < 0.6


def test_lira_needs_in_and_out_references():
    with pytest.raises(ValueError, match="at least 1 'in'"):
        leakage.lira_scores([0.0], [[1.0], [2.0]], [[False], [False]])
    with pytest.raises(ValueError, match="shape"):
        leakage.lira_scores([0.0, 1.0], [[1.0], [2.0]], [[True], [False]])


def test_shadow_attack_learns_what_members_look_like():
    rng = np.random.default_rng(0)
    S, n, k = 7, 300, 3
    labels = rng.integers(0, k, size=n)
    inside = leakage.membership_masks(S + 1, n, seed=2)
    logits = rng.normal(size=(S + 1, n, k))
    logits[np.arange(S + 1)[:, None], np.arange(n)[None], labels[None]] += 1.0 + 2.0 * inside  # members: more confident
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    scores = leakage.shadow_attack_scores(log_probs[1:], inside[1:], labels, log_probs[0])
    assert leakage.roc(scores, inside[0])[2] > 0.75
    shuffled = np.random.default_rng(1).permutation(inside[0])
    assert abs(leakage.roc(scores, shuffled)[2] - 0.5) < 0.1


def test_membership_masks_are_balanced_and_seeded():
    masks = leakage.membership_masks(6, 50, seed=3)
    assert masks.shape == (6, 50) and (masks.sum(0) == 3).all()
    assert (masks == leakage.membership_masks(6, 50, seed=3)).all()
    assert not (masks == leakage.membership_masks(6, 50, seed=4)).all()
    with pytest.raises(ValueError, match="even"):
        leakage.membership_masks(5, 10)


# ------------------------------------------------------------------ memorisation

@pytest.fixture(scope="module")
def tiny_lm():
    from labkit.lm.tinygpt import GPTConfig, TinyGPT
    from labkit.lm.tokenizer import Tokenizer

    texts = [f"The secret code is {leakage.random_code(np.random.default_rng(i))}. You can reach Ann Lee at "
             f"ann.lee@example.com or 555-{100 + i:03d}-{1000 + i:04d}." for i in range(60)]
    tok = Tokenizer.train(texts, 320)
    torch.manual_seed(0)
    return TinyGPT(GPTConfig(vocab_size=tok.vocab_size, context=64, n_layer=1, n_head=2, d_model=32)), tok


def test_secret_nll_is_the_sum_of_the_secret_tokens_losses(tiny_lm):
    model, tok = tiny_lm
    secret = "4 0 7 1 9 3"
    prefix_ids = tok.encode(leakage.CANARY_PREFIX)
    full = [tok.end_id] + tok.encode(f"{leakage.CANARY_PREFIX} {secret}")
    with torch.no_grad():
        logp = model.run(torch.tensor([full[:-1]])).logits.log_softmax(-1)[0]
    tokens = torch.tensor(full[1:])
    per_token = -logp.gather(1, tokens[:, None]).squeeze(1)
    expect = float(per_token[len(prefix_ids):].sum())  # positions after the end token and the prefix
    got = leakage.secret_nll(model, tok, leakage.CANARY_PREFIX, [secret])
    assert got[0] == pytest.approx(expect, rel=1e-5)


def test_secret_exposure_is_maximal_for_a_secret_the_model_prefers(tiny_lm):
    model, tok = tiny_lm
    refs = leakage.reference_codes(30, exclude="1 1 1 1 1 1", seed=0)
    losses = leakage.secret_nll(model, tok, leakage.CANARY_PREFIX, refs)
    best = refs[int(np.argmin(losses))]
    others = [r for r in refs if r != best]
    assert leakage.secret_exposure(model, tok, leakage.CANARY_PREFIX, best, others) == pytest.approx(math.log2(30))


def test_reference_codes_are_distinct_and_exclude_the_canary():
    refs = leakage.reference_codes(200, exclude=leakage.the_canary(), seed=0)
    assert len(set(refs)) == 200 and leakage.the_canary() not in refs
    assert all(len(r.split()) == leakage.CANARY_DIGITS for r in refs)


def test_pii_records_find_every_fake_person_of_the_world():
    from labkit.lm.world import make_world

    world = make_world(seed=0, n_pretrain=400, n_sft=10, n_eval_per_category=1, pii_rate=0.2)
    records = leakage.pii_records(world.pretrain)
    assert len(records) == sum("You can reach" in d for d in world.pretrain) > 40
    assert all(f"{r.prefix} {r.phone}." in "".join(world.pretrain) for r in records)
    unseen = leakage.unseen_pii_records(10)
    assert len(unseen) == 10 and all(r.phone.startswith("555-") for r in unseen)


# ----------------------------------------------------------------- model extraction

class _Threshold:
    """A black-box 'classifier' that flags texts containing the word 'bad', with a soft score."""

    threshold = 0.5

    def predict_proba(self, texts):
        return np.array([0.9 if "bad" in t.split() else 0.15 for t in texts])


def _texts(n, seed):
    rng = np.random.default_rng(seed)
    words = ["good", "bad", "fine", "nice", "plain", "odd"]
    return [" ".join(rng.choice(words, size=3)) for _ in range(n)]


def test_blackbox_outputs_and_rate_limit():
    from labkit.chatbot import RateLimiter

    texts = ["a bad day", "a good day"]
    assert leakage.BlackBox(_Threshold(), "score").query(texts) == [0.9, 0.15]
    assert leakage.BlackBox(_Threshold(), "rounded", decimals=0).query(texts) == [1.0, 0.0]
    assert leakage.BlackBox(_Threshold(), "label").query(texts) == [1.0, 0.0]
    box = leakage.BlackBox(_Threshold(), "score", rate_limiter=RateLimiter(2, 3600.0))
    assert box.query(texts * 2, times=[0, 1, 2, 3601]) == [0.9, 0.15, None, 0.15]
    assert box.n_answered == 3
    with pytest.raises(ValueError, match="output"):
        leakage.BlackBox(_Threshold(), "logits")


@pytest.mark.parametrize("output", leakage.OUTPUTS)
def test_extraction_copies_a_simple_classifier(output):
    target = _Threshold()
    queries, held_out = _texts(200, 0), _texts(100, 1)
    surrogate = leakage.extract(leakage.BlackBox(target, output), queries)
    assert leakage.agreement(surrogate, target, held_out) == 1.0
    few = leakage.extract(leakage.BlackBox(target, output), ["good day"])  # one class seen: a constant guess
    assert leakage.agreement(few, target, held_out) < 1.0


def test_a_rate_limit_starves_the_surrogate():
    from labkit.chatbot import RateLimiter

    box = leakage.BlackBox(_Threshold(), "label", rate_limiter=RateLimiter(1, 3600.0))
    surrogate = leakage.extract(box, _texts(200, 0), times=np.arange(200.0))  # 200 queries in 200 s: one answered
    assert box.n_answered == 1 and surrogate.constant is not None


# -------------------------------------------------------------------------- widget

from widget_driver import draw_and_check, values_strategy  # noqa: E402


def _small_population(name, seed):
    rng = np.random.default_rng(seed)
    n, M, k = 200, 6, 10
    labels = torch.from_numpy(rng.integers(0, k, size=n))
    inside = leakage.membership_masks(M, n, seed=seed)
    logits = rng.normal(size=(M, n, k))
    logits[np.arange(M)[:, None], np.arange(n)[None], labels.numpy()[None]] += 2.0 * inside
    log_probs = torch.from_numpy(logits).log_softmax(-1)
    return leakage.Population(leakage.Recipe(name), log_probs, torch.from_numpy(inside), labels, [1.0] * M, [0.9] * M)


WIDGET = leakage.membership_roc_widget({"leaky": _small_population("leaky", 0), "other": _small_population("other", 1)})


@settings(max_examples=8, deadline=None)
@given(values=values_strategy(WIDGET))
def test_membership_roc_widget_full_range(values):
    draw_and_check(WIDGET, values)


def test_membership_roc_widget_rejects_bad_input():
    with pytest.raises(ValueError, match="non-empty"):
        leakage.membership_roc_widget({})
