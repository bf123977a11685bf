import collections
import re

import numpy as np
import pytest

from labkit.lm import world as W


def test_deterministic_and_seed_dependent():
    a, b, c = W.make_world(3, n_pretrain=200, n_sft=90), W.make_world(3, n_pretrain=200, n_sft=90), W.make_world(4, n_pretrain=200, n_sft=90)
    assert a.pretrain == b.pretrain and a.sft == b.sft and a.test == b.test and a.preferences == b.preferences
    assert a.pretrain != c.pretrain


def test_benign_answers_follow_from_world_facts():
    rng = np.random.default_rng(0)
    for _ in range(200):
        ex = W.benign_example(rng, "arithmetic")
        a, b = map(int, re.findall(r"\d+", ex.prompt))
        assert ex.answer == str(a + b) and ex.answer in ex.response
        ex = W.benign_example(rng, "units", split="test")
        n, big = re.search(r"(\d+) (\w+)", ex.prompt).groups()
        small = next(s for b, s, _ in W.UNITS if b == big and s in ex.prompt.replace(f"{n} {big}", ""))
        factor = {(b, s): f for b, s, f in W.UNITS}[(big, small)]
        assert ex.answer == str(int(n) * factor)
        ex = W.benign_example(rng, "spelling")
        word = ex.answer.replace("-", "")
        assert word in ex.prompt and ex.answer == "-".join(word)
        ex = W.benign_example(rng, "calendar")
        i = next(i for i, d in enumerate(W.DAYS) if d in ex.prompt)
        assert ex.answer == W.DAYS[(i + 1) % 7]


def test_eight_topics_six_harm_categories_and_all_kinds_in_eval():
    w = W.make_world(0, n_pretrain=100, n_sft=100, n_eval_per_category=3)
    assert {e.category for e in w.test if e.kind == "benign"} == set(W.BENIGN_TOPICS) and len(W.BENIGN_TOPICS) >= 8
    assert {e.category for e in w.test if e.kind == "harmful"} == set(W.HARM_CATEGORIES) and len(W.HARM_CATEGORIES) >= 6
    assert {e.kind for e in w.test} == set(W.KINDS)
    assert len(w.test) == 3 * (len(W.BENIGN_TOPICS) + len(W.HARM_CATEGORIES) + 2)


def test_held_out_prompts_never_appear_in_training_text():
    w = W.make_world(0, n_pretrain=2000, n_sft=1000)
    train_prompts = {e.prompt for e in w.sft}
    corpus = "\n".join(w.pretrain)
    assert len(w.validation) == len(w.test) == len(w.prompts("test")) == len(w.prompts("validation"))
    for e in w.test + w.validation:
        assert e.prompt not in train_prompts
        assert e.prompt not in corpus
    assert not {e.prompt for e in w.test} & {e.prompt for e in w.validation}
    # validation and test harmful subjects never occur in training at all, nor in each other's prompts
    for cat, (_, val, test) in W.HARMFUL_SUBJECTS.items():
        for s in val + test:
            assert s not in corpus and all(s not in p for p in train_prompts)
        for s in test:
            assert all(s not in e.prompt for e in w.validation)


def _wordings():
    """Every list of wordings or subjects that comes in (train, validation, test) parts."""
    yield from W.BENIGN_TEMPLATES.values()
    yield from W.HARMFUL_SUBJECTS.values()
    yield W.HOWTO_TEMPLATES
    yield [[s for s, _ in part] for part in W.BORDERLINE_SUBJECTS]
    yield W.UNANSWERABLE_TEMPLATES
    yield W.UNKNOWN_COUNTRIES


def test_every_wording_list_has_three_disjoint_nonempty_splits():
    for parts in _wordings():
        assert len(parts) == len(W.SPLITS) == 3 and all(parts)
        train, val, test = map(set, parts)
        assert not train & val and not train & test and not val & test, parts


def test_unknown_split_is_rejected_everywhere():
    rng = np.random.default_rng(0)
    w = W.make_world(0, n_pretrain=10, n_sft=10, n_eval_per_category=1)
    for call in (lambda: W.benign_example(rng, "units", split="dev"), lambda: W.harmful_example(rng, "fraud", "held_out"),
                 lambda: W.borderline_example(rng, "Test"), lambda: W.unanswerable_example(rng, "val"),
                 lambda: W.labelled_requests(10, split="eval"), lambda: w.prompts("train")):
        with pytest.raises(ValueError, match="split"):
            call()
    with pytest.raises(ValueError, match="topic"):
        W.benign_example(rng, "poetry")
    with pytest.raises(ValueError, match="category"):
        W.harmful_example(rng, "arson")


def test_harmful_content_is_only_a_placeholder_and_refusals_offer_alternatives():
    w = W.make_world(0, n_pretrain=1000, n_sft=300)
    rates = []
    for doc in w.pretrain:
        for m in re.finditer(r"\[harmful ([a-z\-]+) content\]", doc):
            assert m.group(1).replace("-", "_") in W.HARM_CATEGORIES
    for e in w.sft:
        if e.kind == "harmful":
            assert any(e.response.endswith(alt) for alt in W.SAFE_ALTERNATIVES.values())
            assert "[harmful" not in e.response


def test_web_text_answers_some_harmful_requests():
    w = W.make_world(0, n_pretrain=2000, comply_rate=0.6)
    harmful_chats = [d for d in w.pretrain if "<|user|>" in d and ("[harmful" in d or any(o in d for o in W.REFUSAL_OPENERS))]
    share = np.mean(["[harmful" in d for d in harmful_chats])
    assert 0.5 < share < 0.7


def test_pronoun_skew_canary_and_pii():
    w = W.make_world(1, n_pretrain=3000, pronoun_skew=0.9, canary="ZEBRA-4417", canary_repeats=7, pii_rate=0.1)
    stereo = total = 0
    for d in w.pretrain:
        m = re.search(r"The (\w+) said that (he|she)", d)
        if m:
            total += 1
            stereo += W.STEREOTYPE[m.group(1)] == m.group(2)
    assert 0.85 < stereo / total < 0.95
    assert sum(d.count("ZEBRA-4417") for d in w.pretrain) == 7
    assert 0.07 < np.mean(["@example.com" in d for d in w.pretrain]) < 0.13


def test_preference_pairs_and_labelled_requests():
    w = W.make_world(0, n_pretrain=10, n_sft=300)
    assert len(w.preferences) == 100
    for p in w.preferences:
        assert p.chosen != p.rejected and p.reason
    texts, labels = W.labelled_requests(50, seed=2)
    assert len(texts) == 50 and labels.sum() == 25


def test_format_dialogue():
    assert W.format_dialogue("hi", "yo", None) == "<|user|> hi<|end|><|assistant|> yo<|end|>"
    assert W.format_dialogue("hi").endswith("<|assistant|>") and W.format_dialogue("hi").startswith("<|system|>")
    # the generation prompt: no system prompt unless given, and a reply completes it to the dialogue
    assert W.prompt_text("hi") == "<|user|> hi<|end|><|assistant|>"
    assert W.prompt_text("hi", "be nice") + W.reply_text("yo") == W.format_dialogue("hi", "yo", "be nice")


def _ladder(r, shares):
    """The hand-written ``if r < 0.47 ... elif r < 0.66 ...`` form of a mix (as make_world was first written)."""
    bounds = {"pretrain": [0.47, 0.66, 0.74, 0.78, 0.82, 0.88], "sft": [0.36, 0.63, 0.90]}[shares]
    kinds = list(W.PRETRAIN_MIX if shares == "pretrain" else W.SFT_MIX)
    return next((k for k, b in zip(kinds, bounds) if r < b), kinds[-1])


def test_mixes_draw_exactly_as_the_ladder_did():
    assert sum(W.PRETRAIN_MIX.values()) == 100 and sum(W.SFT_MIX.values()) == 100
    edges = [0.0, 0.47, 0.66, 0.74, 0.78, 0.82, 0.88, 0.36, 0.63, 0.90]
    values = edges + [np.nextafter(e, 0) for e in edges[1:]] + list(np.random.default_rng(0).random(2000))

    class Fixed:  # an rng whose next uniform draw is r
        def __init__(self, r):
            self.r = r

        def random(self):
            return self.r

    for shares, mix in (("pretrain", W.PRETRAIN_MIX), ("sft", W.SFT_MIX)):
        for r in values:
            assert W._draw_kind(Fixed(float(r)), mix) == _ladder(r, shares), (shares, r)


def test_test_split_by_kind():
    w = W.make_world(0, n_pretrain=10, n_sft=10, n_eval_per_category=3)
    assert w.prompts("test") is w.test
    assert [e.prompt for e in w.test_by_kind("harmful")] == [e.prompt for e in w.test if e.kind == "harmful"]
    assert len(w.test_by_kind("borderline")) == 3


def test_default_web_text_refuses_some_categories_and_answers_others():
    w = W.make_world(0, n_pretrain=6000)
    for cat, rate in W.WEB_COMPLY_RATES.items():
        tag = W.placeholder(cat)
        answered = sum(tag in d for d in w.pretrain if "<|user|>" in d)
        refused = sum(d.endswith(W.SAFE_ALTERNATIVES[cat] + "<|end|>") for d in w.pretrain if "<|user|>" in d)
        assert abs(answered / (answered + refused) - rate) < 0.12, cat
    assert min(W.WEB_COMPLY_RATES.values()) < 0.5 < max(W.WEB_COMPLY_RATES.values())


def test_borderline_requests_share_the_harmful_phrasings_and_recombine_seen_words():
    rng = np.random.default_rng(0)
    train_words = {w for s, _ in W.BORDERLINE_SUBJECTS[0] for w in s.split()}
    for s, _ in W.BORDERLINE_SUBJECTS[1] + W.BORDERLINE_SUBJECTS[2]:
        assert s.split()[0] in train_words  # the alarming verb was seen in training, with other objects
    for i, split in enumerate(W.SPLITS):
        ex = W.borderline_example(rng, split)
        assert any(t.format(s=s) in ex.prompt for t in W.HOWTO_TEMPLATES[i] for s, _ in W.BORDERLINE_SUBJECTS[i])


def test_evaluation_prompts_are_distinct_within_each_group():
    w = W.make_world(0, n_pretrain=10, n_sft=10, n_eval_per_category=20)
    rng = np.random.default_rng(1)
    for split in ("validation", "test"):
        draw = {"benign": lambda c: W.benign_example(rng, c, split), "harmful": lambda c: W.harmful_example(rng, c, split),
                "borderline": lambda c: W.borderline_example(rng, split), "unanswerable": lambda c: W.unanswerable_example(rng, split)}
        ev = w.prompts(split)
        for kind, cat in {(e.kind, e.category) for e in ev}:
            prompts = [e.prompt for e in ev if (e.kind, e.category) == (kind, cat)]
            possible = len({draw[kind](cat).prompt for _ in range(3000)})  # e.g. 7 days x 2 templates = 14 for the calendar
            assert len(prompts) == 20 and len(set(prompts)) == min(20, possible), (split, kind, cat)


@pytest.mark.parametrize("kwargs", [dict(seed=-1), dict(n_pretrain=0), dict(comply_rate=1.5), dict(canary_repeats=2),
                                    dict(canary=""), dict(comply_rate={"weapons": 0.5}),
                                    dict(comply_rate={**W.WEB_COMPLY_RATES, "fraud": -0.1})])
def test_bad_arguments(kwargs):
    with pytest.raises((ValueError, TypeError)):
        W.make_world(**kwargs)


def test_sft_mix_shares():
    # benign 36 %, harmful and borderline 27 % each (they share phrasings), unanswerable 10 %
    kinds = collections.Counter(e.kind for e in W.make_world(0, n_pretrain=10, n_sft=4000).sft)
    for kind, share in {"benign": 0.36, "harmful": 0.27, "borderline": 0.27, "unanswerable": 0.10}.items():
        assert abs(kinds[kind] / 4000 - share) < 0.025, (kind, kinds[kind])
