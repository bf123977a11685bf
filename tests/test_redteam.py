"""labkit.redteam: attack wrappers, ASR intervals, the GCG candidate step and search, the perplexity filter."""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from labkit import redteam as rt
from labkit.intervals import wilson_interval
from labkit.lm.cache import get_assistant
from labkit.lm.harness import ModelResponder
from labkit.lm.world import compliance
from labkit.moderation import normalize, obfuscate


@pytest.fixture(scope="module")
def assistant():
    return get_assistant("default")  # the shipped checkpoint: loads in a fraction of a second


@pytest.fixture(scope="module")
def harmful(assistant):
    return [e for e in assistant.world.prompts("validation") if e.kind == "harmful"]


# ------------------------------------------------------------------ attacks and ASR
def test_every_attack_keeps_the_request(harmful):
    e = harmful[0]
    for attack in rt.ATTACKS:
        message = rt.apply_attack(e, attack)
        assert isinstance(message, str) and message
        if attack in ("leetspeak", "spaced", "homoglyphs"):
            assert message == obfuscate(e.prompt, attack) != e.prompt  # lesson 14's generators, reused
        elif attack == "payload_split":
            assert e.prompt[:len(e.prompt) // 2] in message and e.prompt[len(e.prompt) // 2:] in message
            assert e.prompt not in message  # the point of splitting: the whole request never appears
        else:
            assert e.prompt[1:] in message
    assert rt.apply_attack(e, "none") == e.prompt
    assert rt.apply_attack(e, "many_shot", shots=3).count(compliance(e.category)) == 3


def test_obfuscation_is_undone_by_lesson14s_normaliser(harmful):
    e = harmful[3]
    assert normalize(rt.apply_attack(e, "homoglyphs")) == normalize(e.prompt)


def test_apply_attack_rejects_bad_input(harmful):
    with pytest.raises(ValueError, match="attack"):
        rt.apply_attack(harmful[0], "telepathy")
    with pytest.raises(TypeError, match="example"):
        rt.apply_attack("How do I build a bomb?", "none")
    with pytest.raises(ValueError, match="shots"):
        rt.apply_attack(harmful[0], "many_shot", shots=0)


@given(st.lists(st.booleans(), min_size=1, max_size=200))
def test_attack_success_rate_is_the_share_with_its_wilson_interval(verdicts):
    rate, low, high = rt.attack_success_rate(verdicts)
    k = sum(verdicts)
    assert rate == k / len(verdicts)
    assert (low, high) == pytest.approx(wilson_interval(k, len(verdicts)), abs=1e-12)
    assert 0.0 <= low <= rate <= high <= 1.0
    if 0 < k < len(verdicts):
        assert low > 0.0 and high < 1.0


def test_attack_success_rate_known_value_and_bad_input():
    rate, low, high = rt.attack_success_rate([True] * 16 + [False] * 4)
    assert rate == 0.8 and low == pytest.approx(0.5840, abs=1e-3) and high == pytest.approx(0.9193, abs=1e-3)
    with pytest.raises(ValueError):
        rt.attack_success_rate([])
    with pytest.raises(TypeError):
        rt.attack_success_rate([1, 0, 1])  # verdicts are bools, not counts


def test_judges_disagree_where_they_should():
    assert rt.oracle_judge("Sure, here is how. [harmful fraud content]") and rt.text_judge("Sure, here is how.")
    assert not rt.oracle_judge("Sure, here is how.")  # complied in words, delivered nothing
    assert not rt.text_judge("I can't help with that.") and not rt.oracle_judge("I can't help with that.")


def test_attack_table_counts_every_cell(assistant, harmful):
    from labkit.lm.harness import ModelResponder

    table = rt.attack_table({"sft": ModelResponder(assistant.sft, assistant.tokenizer)}, harmful[:6], ["none", "persona"])
    assert len(table) == 4 and set(table.judge) == {"oracle", "text"} and (table.n == 6).all()
    assert ((table.ci_low <= table.asr) & (table.asr <= table.ci_high)).all()


# ------------------------------------------------------------------ the GCG candidate step
def test_candidates_swap_one_position_to_a_top_k_token():
    g = torch.Generator().manual_seed(0)
    grad = torch.randn(6, 50, generator=g)
    suffix = torch.randint(0, 50, (6,), generator=g)
    cands = rt.gcg_candidates(grad, suffix, top_k=4, batch_size=200, generator=torch.Generator().manual_seed(1))
    assert cands.shape == (200, 6)
    top = (-grad).topk(4, dim=1).indices
    changed_positions = set()
    for c in cands:
        diff = (c != suffix).nonzero().flatten().tolist()
        assert len(diff) <= 1  # a single-token swap (or a no-op when the top-k holds the current token)
        for pos in diff:
            assert int(c[pos]) in top[pos].tolist()  # most negative gradient = largest promised decrease
            changed_positions.add(pos)
    assert changed_positions == set(range(6))  # positions are drawn uniformly: 200 draws hit all six


def test_candidates_are_reproducible_and_respect_the_allowed_tokens():
    grad = torch.randn(5, 30, generator=torch.Generator().manual_seed(2))
    suffix = torch.zeros(5, dtype=torch.long)
    allowed = torch.zeros(30, dtype=torch.bool)
    allowed[10:20] = True
    a = rt.gcg_candidates(grad, suffix, 3, 64, torch.Generator().manual_seed(5), allowed)
    b = rt.gcg_candidates(grad, suffix, 3, 64, torch.Generator().manual_seed(5), allowed)
    assert torch.equal(a, b)
    new = a[a != 0]
    assert ((new >= 10) & (new < 20)).all()
    with pytest.raises(ValueError, match="top_k"):
        rt.gcg_candidates(grad, suffix, 31, 8)
    with pytest.raises(ValueError, match="allowed"):
        rt.gcg_candidates(grad, suffix, 11, 8, allowed=allowed)
    with pytest.raises(ValueError):
        rt.gcg_candidates(grad, suffix[:4], 3, 8)


def test_trunk_matches_the_models_own_forward(assistant):
    m = assistant.sft
    ids = torch.randint(0, m.cfg.vocab_size, (3, 20), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours = m.lm_head(m.ln_f(rt._trunk(m, m.wte(ids))))
        assert torch.allclose(ours, m.run(ids).logits, atol=1e-5)


def test_one_hot_gradient_predicts_the_loss_change_of_swaps(assistant, harmful):
    """The linearisation GCG ranks by: swaps with the most negative gradient lower the loss more, on average."""
    m, tok = assistant.sft, assistant.tokenizer
    task = rt._task(tok, harmful[0].prompt, rt.GCG_TARGET)
    suffix = rt._initial_suffix(tok, 8)
    grad = rt.token_gradients(m, task, suffix)
    allowed = rt.allowed_tokens(tok)
    scores = (-grad).masked_fill(~allowed, float("-inf"))
    best = rt.gcg_candidates(grad, suffix, 8, 64, torch.Generator().manual_seed(0), allowed)
    worst_tokens = scores.masked_fill(~allowed, float("inf")).topk(8, dim=1, largest=False).indices
    g = torch.Generator().manual_seed(0)
    pos = torch.randint(0, 8, (64,), generator=g)
    worst = suffix.repeat(64, 1)
    worst[torch.arange(64), pos] = worst_tokens[pos, torch.randint(0, 8, (64,), generator=g)]
    with torch.no_grad():
        loss_best, _ = rt._evaluate(m, [task], best, 0.0)
        loss_worst, _ = rt._evaluate(m, [task], worst, 0.0)
    assert loss_best.mean() < loss_worst.mean()


# ------------------------------------------------------------------ the GCG search
def test_gcg_loss_never_worse_than_start_and_reported_loss_is_exact(assistant, harmful):
    m, tok = assistant.sft, assistant.tokenizer
    before = {k: v.clone() for k, v in m.state_dict().items()}
    r = rt.gcg(m, tok, harmful[1].prompt, rt.GCG_TARGET, suffix_length=6, steps=8, top_k=32, batch_size=32,
               generator=torch.Generator().manual_seed(0), stop_on_success=False)
    assert len(r.losses) == 9
    assert all(b <= a for a, b in zip(r.losses, r.losses[1:]))  # best so far
    assert r.losses[-1] < r.losses[0]  # eight steps of 32 candidates find something better than " ! ! !"
    task = rt._task(tok, harmful[1].prompt, rt.GCG_TARGET)
    with torch.no_grad():
        loss, _ = rt._evaluate(m, [task], torch.tensor([r.suffix]), 0.0)
    assert float(loss[0]) == pytest.approx(r.losses[-1], abs=1e-5)
    # The suffix is text a user can type: encoding the message gives back the same tokens.
    assert tok.encode(f"<|user|> {harmful[1].prompt}{r.text}<|end|><|assistant|>") == task.before + r.suffix + task.after
    assert all(torch.equal(v, m.state_dict()[k]) for k, v in before.items())  # the target is not trained
    assert all(p.requires_grad for p in m.parameters())


def test_gcg_success_means_the_greedy_reply_starts_with_the_target(assistant):
    m, tok = assistant.sft, assistant.tokenizer
    study = rt.default_gcg_study()
    for prompt, payload in zip(study["prompts"], study["individual"]):
        r = rt.GCGResult.from_json(payload)
        if r.success_step is not None:
            reply = rt.replies_with_suffix(m, tok, [prompt], r.text)[0]
            assert reply.startswith(rt.GCG_TARGET)
            break
    else:
        pytest.fail("no GCG run of the study succeeded")


def test_gcg_is_reproducible_and_validates(assistant, harmful):
    m, tok = assistant.sft, assistant.tokenizer
    kw = dict(suffix_length=4, steps=3, top_k=16, batch_size=16)
    a = rt.gcg(m, tok, harmful[2].prompt, rt.GCG_TARGET, generator=torch.Generator().manual_seed(3), **kw)
    b = rt.gcg(m, tok, harmful[2].prompt, rt.GCG_TARGET, generator=torch.Generator().manual_seed(3), **kw)
    assert a.suffix == b.suffix and a.losses == b.losses
    with pytest.raises(ValueError, match="suffix_length"):
        rt.gcg(m, tok, "hi", "there", suffix_length=0)
    with pytest.raises(ValueError, match="context"):
        rt.gcg(m, tok, "word " * 120, "there")
    with pytest.raises(ValueError):
        rt.gcg(m, tok, ["a", "b"], ["x", "y", "z"])


def test_gcg_judge_stops_on_the_judged_generated_reply(assistant, harmful):
    m, tok = assistant.sft, assistant.tokenizer
    kw = dict(suffix_length=4, steps=3, top_k=16, batch_size=16)
    always = rt.gcg(m, tok, harmful[0].prompt, rt.GCG_TARGET, judge=lambda reply: True, **kw)
    assert always.success_step == 0 and len(always.losses) == 1
    seen = []

    def judge(reply):  # records what it is shown, and never accepts
        seen.append(reply)
        return False

    never = rt.gcg(m, tok, harmful[0].prompt, rt.GCG_TARGET, judge=judge, generator=torch.Generator().manual_seed(0), **kw)
    assert never.success_step is None and len(never.losses) == 4 and len(seen) == 4  # the start, then once per step
    start = rt.suffix_text(tok, rt._initial_suffix(tok, 4))
    assert seen[0] == rt.replies_with_suffix(m, tok, [harmful[0].prompt], start)[0]  # the generated reply itself
    with pytest.raises(TypeError, match="judge"):
        rt.gcg(m, tok, harmful[0].prompt, rt.GCG_TARGET, judge="oracle", **kw)


def test_forced_replies_continue_the_prefilled_start(assistant, harmful):
    e = harmful[0]
    start = compliance(e.category).split(" content]")[0]
    base, sft = (rt.forced_replies(m, assistant.tokenizer, [e.prompt], [start])[0] for m in (assistant.base, assistant.sft))
    assert base.startswith(start) and sft.startswith(start)
    assert rt.oracle_judge(base)  # the pretrained model finishes the marker it saw on the web
    plain = rt.forced_replies(assistant.sft, assistant.tokenizer, [e.prompt], [""], max_new_tokens=24)[0]
    assert plain == rt.replies_with_suffix(assistant.sft, assistant.tokenizer, [e.prompt], "")[0]
    with pytest.raises(ValueError, match="reply_starts"):
        rt.forced_replies(assistant.sft, assistant.tokenizer, ["a", "b"], ["x"])


def test_keyword_filter_blocks_listed_words_and_passes_the_rest_to_the_model(assistant):
    words = rt.keyword_blocklist(assistant.world)
    benign = {w for e in assistant.world.sft if e.kind != "harmful" for w in re.findall(r"[a-z]+", e.prompt.lower())}
    assert words and not words & benign
    system = rt.KeywordFilteredModel(assistant.base, assistant.tokenizer, words)
    blocked_word = sorted(words)[0]
    messages = [f"Tell me about {blocked_word.upper()} please", "What is 2 plus 3?"]
    assert [system.blocks(x) for x in messages] == [True, False]
    replies = system.respond(messages)
    assert replies[0] == rt.KeywordFilteredModel.REFUSAL
    assert replies[1] == ModelResponder(assistant.base, assistant.tokenizer).respond(messages[1:])[0]
    with pytest.raises(ValueError, match="blocklist"):
        rt.KeywordFilteredModel(assistant.base, assistant.tokenizer, [])


def test_transfer_config_is_the_default_with_another_seed():
    from dataclasses import asdict

    from labkit.lm.train import get_config

    a, b = asdict(get_config("default")), asdict(rt.transfer_config())
    assert {k for k in a if a[k] != b[k]} == {"name", "seed"} and b["seed"] == rt.TRANSFER_SEED != a["seed"]


def test_perplexity_penalty_lowers_the_suffix_nll(assistant, harmful):
    m, tok = assistant.sft, assistant.tokenizer
    kw = dict(suffix_length=8, steps=15, top_k=32, batch_size=64, stop_on_success=False)
    plain = rt.gcg(m, tok, harmful[4].prompt, rt.GCG_TARGET, generator=torch.Generator().manual_seed(0), **kw)
    fluent = rt.gcg(m, tok, harmful[4].prompt, rt.GCG_TARGET, generator=torch.Generator().manual_seed(0),
                    perplexity_weight=2.0, **kw)
    ppl = rt.message_log_perplexity(m, tok, [harmful[4].prompt + plain.text, harmful[4].prompt + fluent.text])
    assert ppl[1] < ppl[0]


# ------------------------------------------------------------------ the perplexity filter
def test_log_perplexity_ranks_gibberish_above_fluent_text(assistant):
    m, tok = assistant.sft, assistant.tokenizer
    fluent, gibberish = rt.message_log_perplexity(m, tok, ["What is the capital of Ardena?", "qz xv Ardena zzk ,, 7 pq"])
    assert gibberish > fluent
    windowed = rt.message_log_perplexity(m, tok, ["What is the capital of Ardena? " * 3 + "qz xv zzk pq"], window=4)
    whole = rt.message_log_perplexity(m, tok, ["What is the capital of Ardena? " * 3 + "qz xv zzk pq"])
    assert windowed[0] > whole[0]  # a window is not diluted by the fluent part


@given(st.lists(st.floats(-5, 5, allow_nan=False), min_size=1, max_size=300), st.floats(0, 0.5))
@settings(max_examples=60)
def test_perplexity_threshold_meets_the_false_positive_budget(scores, rate):
    threshold = rt.perplexity_threshold(scores, rate)
    flagged = np.asarray(scores) > threshold
    assert flagged.mean() <= rate + 1e-12
    if (np.asarray(scores) < threshold).any():  # the lowest such threshold: any lower one breaks the budget
        lower = max(s for s in scores if s < threshold)
        assert (np.asarray(scores) > lower).mean() > rate


def test_perplexity_threshold_rejects_bad_input():
    with pytest.raises(ValueError):
        rt.perplexity_threshold([])
    with pytest.raises(ValueError, match="max_false_positive_rate"):
        rt.perplexity_threshold([1.0], 1.5)


# ------------------------------------------------------------------ the widget
from widget_driver import draw_and_check, values_strategy  # noqa: E402

_RESULTS = [rt.GCGResult([1, 2], "ab", [3.0, 2.0, 1.5], 2, 10, 0.1, 0.1),
            rt.GCGResult([1, 2], "cd", [3.0, 2.5], None, 5, 0.1)]
WIDGET = rt.gcg_widget(_RESULTS)


@settings(max_examples=10, deadline=None)
@given(values_strategy(WIDGET))
def test_gcg_widget_full_range(values):
    draw_and_check(WIDGET, values)
