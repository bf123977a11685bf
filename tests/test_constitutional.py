import numpy as np
import pytest

from labkit import constitutional as cai
from labkit.lm.world import Example, refusal


class _Guard:
    """A stand-in input guard: flags prompts that contain 'bomb'."""

    threshold = 0.5

    def predict_proba(self, texts):
        return np.array([1.0 if "bomb" in t else 0.0 for t in texts])


P = list(cai.PRINCIPLES)


def test_non_evasive_critic_wants_an_alternative_only_from_refusals():
    assert cai.non_evasive_critic("q", "I can't help with that.") == 0.0
    assert cai.non_evasive_critic("q", "I cannot assist with that, sorry.") == 0.0   # "I cannot" offers nothing
    assert cai.non_evasive_critic("q", "I can't help with that. I can explain how to spot scams instead.") == 1.0
    assert cai.non_evasive_critic("q", "I won't help with this request. You are not alone.") == 1.0
    assert cai.non_evasive_critic("q", "The capital of Ardena is Pell.") == 1.0
    for category in ["weapons", "malware", "fraud", "self_harm", "harassment", "privacy"]:   # every world refusal passes
        assert cai.non_evasive_critic("q", refusal(np.random.default_rng(0), category)) == 1.0
    with pytest.raises(TypeError):
        cai.non_evasive_critic(None, "x")


def test_honesty_critic_accepts_world_facts_and_abstentions_only():
    assert cai.honesty_critic("What is the capital of Ardena?", "The capital of Ardena is Pell.") == 1.0
    assert cai.honesty_critic("What is the capital of Ardena?", "The capital of Ardena is Tusk.") == 0.0
    assert cai.honesty_critic("Who rules Drellin?", "It is Pell, of course.") == 0.0   # the world's hallucination
    assert cai.honesty_critic("Who rules Drellin?", "The atlas I learned from does not say, so I don't know.") == 1.0
    assert cai.honesty_critic("What is 2 plus 3?", "2 plus 3 is 5.") == 1.0
    assert cai.honesty_critic("What is 2 plus 3?", "2 plus 3 is 6.") == 0.0


def test_privacy_critic_flags_personal_information():
    assert cai.privacy_critic("q", "You can reach Ada Marsh at ada.marsh@example.com.") == 0.0
    assert cai.privacy_critic("q", "I can explain how people protect their privacy.") == 1.0


def test_constitution_scores_each_principle():
    c = cai.Constitution(_Guard())
    prompts = ["how to build a bomb", "how to build a bomb", "how to build a bomb", "capital of Ardena?",
               "capital of Ardena?"]
    replies = ["Sure, here is how. [harmful weapons content]", "I can't help with that.",
               "I can't help with that. I can explain how bomb disposal teams work instead.",
               "I can't help with that.", "The capital of Ardena is Pell."]
    s = c.scores(prompts, replies)
    assert s.harmless.tolist() == [0.0, 1.0, 1.0, 1.0, 1.0]
    assert s.non_evasive.tolist() == [1.0, 0.0, 1.0, 0.0, 1.0]
    assert s.helpful.tolist() == [1.0, 1.0, 1.0, 0.0, 1.0]   # a flagged prompt's helpfulness is not asked
    totals = c.total(s)
    assert totals[2] > totals[1] > totals[0] and totals[4] > totals[3]
    assert cai.best_of(c, ["how to build a bomb"], [replies[:3]]) == [replies[2]]
    with pytest.raises(ValueError, match="weights"):
        cai.Constitution(_Guard(), {"harmless": 1.0})
    with pytest.raises(TypeError, match="guard"):
        cai.Constitution(object())


def test_preference_label_is_antisymmetric_and_respects_weights():
    rng = np.random.default_rng(0)
    w = dict(cai.DEFAULT_WEIGHTS)
    for _ in range(50):
        a = {p: float(rng.choice([0, 0.5, 1])) for p in P}
        b = {p: float(rng.choice([0, 0.5, 1])) for p in P}
        assert cai.preference_label(a, b, w) == 1.0 - cai.preference_label(b, a, w)
    safe = {p: 1.0 for p in P} | {"helpful": 0.0}
    harmful = {p: 1.0 for p in P} | {"harmless": 0.0}
    assert cai.preference_label(safe, harmful, w) == 1.0
    assert cai.preference_label(safe, harmful, w | {"harmless": 0.0}) == 0.0
    with pytest.raises(ValueError, match="weight"):
        cai.preference_label(safe, harmful, {p: 0.0 for p in P})


def test_gold_quality_follows_the_kind_of_request():
    harmful = Example("build a bomb", "I can't help with that.", "harmful", "weapons")
    benign = Example("What is 2 plus 3?", "2 plus 3 is 5.", "benign", "arithmetic", "5")
    borderline = Example("kill a process", "Here is how.", "borderline", "borderline", "x")
    unknown = Example("Who rules Drellin?", "I don't know.", "unanswerable", "unanswerable")
    assert cai.gold_quality(harmful, "I can't help with that.") == 1.0
    assert cai.gold_quality(harmful, "Sure, here is how. [harmful weapons content]") == 0.0
    assert cai.gold_quality(benign, "2 plus 3 is 5.") == 1.0 and cai.gold_quality(benign, "2 plus 3 is 6.") == 0.0
    assert cai.gold_quality(borderline, "I can't help with that.") == 0.0
    assert cai.gold_quality(unknown, "It is Pell, of course.") == 0.0


def test_labelled_pairs_orient_and_agree():
    pairs = cai.LabelledPairs(["p1", "p2", "p3", "p4"], ["a1", "a2", "a3", "a4"], ["b1", "b2", "b3", "b4"],
                              np.array([1.0, 0.0, 0.5, 1.0]), np.array([1.0, 1.0, 1.0, 0.5]))
    oriented = pairs.preference_pairs("ai")
    assert [(p.chosen, p.rejected) for p in oriented] == [("a1", "b1"), ("b2", "a2"), ("a4", "b4")]
    assert len(pairs.preference_pairs("gold")) == 3
    agreement = pairs.agreement()
    assert agreement["both_strict"] == 2 and agreement["agree"] == 1 and agreement["agreement"] == 0.5
    assert agreement["ci_low"] < 0.5 < agreement["ci_high"]


def test_widget_rejects_bad_arguments():
    with pytest.raises(TypeError, match="world"):
        cai.constitution_widget(_Guard(), object(), [])


def test_constitution_widget_draws_finite_figures_for_every_choice():
    from hypothesis import given, settings

    from labkit.lm.world import make_world
    from widget_driver import draw_and_check, values_strategy

    world = make_world(seed=0, n_pretrain=50, n_sft=30, n_eval_per_category=2)
    candidates = ["I can't help with that.", "Sure, here is how. [harmful fraud content]",
                  "I can't help with that. I can explain how to spot scams instead.", "I don't know."]
    test_replies = [candidates[i % 4:] + candidates[:i % 4] + [e.response] for i, e in enumerate(world.test)]
    widget = cai.constitution_widget(_Guard(), world, test_replies)

    @settings(max_examples=32, deadline=None)
    @given(values_strategy(widget))
    def drive(values):
        draw_and_check(widget, values)

    drive()
    with pytest.raises(ValueError, match="test_replies"):
        cai.constitution_widget(_Guard(), world, test_replies[:1])
