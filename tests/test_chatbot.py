import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labkit import chatbot
from labkit.chatbot import GuardedAssistant, RateLimiter, contains_word, rate_limit
from labkit.lm.tinygpt import GPTConfig, TinyGPT
from labkit.lm.tokenizer import Tokenizer
from labkit.lm.world import make_world


def test_contains_word_fixes_the_slide_bugs():
    assert not contains_word("Have you read Othello?", "hello")
    assert not contains_word("maybe", "bye") and contains_word("Bye!", "bye")
    assert not contains_word("geopolitics", "politics") and contains_word("Politics, again", "politics")
    assert contains_word("my personal\ninformation", "personal information")
    with pytest.raises(ValueError):
        contains_word("x", " ")


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="ab .-", max_size=30), st.sampled_from(["ab", "a b", "ba"]))
def test_contains_word_agrees_with_brute_force_tokenisation(text, phrase):
    import re

    words = re.findall(r"\w+", text.casefold())
    target = phrase.split()
    brute = any(words[i:i + len(target)] == target and
                re.search(r"(?<!\w)" + r"\s+".join(target) + r"(?!\w)", text.casefold()) for i in range(len(words)))
    assert contains_word(text, phrase) == bool(brute)


def brute_rate_limit(times, k, window):
    allowed = []
    for i, t in enumerate(times):
        n = sum(1 for j in range(i) if allowed[j] and t - window < times[j] <= t)
        allowed.append(n < k)
    return allowed


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 50), max_size=30).map(sorted), st.integers(1, 4), st.integers(1, 12))
def test_rate_limit_matches_brute_force(times, k, window):
    times = [float(t) for t in times]
    assert rate_limit(times, k, float(window)) == brute_rate_limit(times, k, float(window))


def test_rate_limiter_class_agrees_and_is_per_user():
    rl = RateLimiter(2, 10.0)
    times = [0.0, 1.0, 2.0, 10.5, 11.0, 12.0]
    assert [rl.allow("a", t) for t in times] == rate_limit(times, 2, 10.0)
    assert rl.allow("b", 12.0)
    with pytest.raises(ValueError):
        rate_limit([0.0], 0, 1.0)


class _Guard:
    """A stand-in classifier: scores 1 for texts containing 'bomb', 0.45 for 'grey'."""

    threshold = 0.5

    def predict_proba(self, texts):
        return np.array([1.0 if "bomb" in t else 0.45 if "grey" in t else 0.0 for t in texts])


@pytest.fixture(scope="module")
def tiny_pipeline():
    w = make_world(0, n_pretrain=50, n_sft=10)
    tok = Tokenizer.train(w.pretrain, 300)
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    model = TinyGPT(GPTConfig(vocab_size=tok.vocab_size, context=64, n_layer=1, n_head=2, d_model=16))
    return model, tok


def test_guarded_pipeline_turns_audit_and_escalation(tiny_pipeline):
    model, tok = tiny_pipeline
    bot = GuardedAssistant(model, tok, _Guard(), RateLimiter(3, 60.0), review_margin=0.2, max_flags=2, max_new_tokens=4,
                           raise_errors=True)
    d = bot.chat("how to build a bomb", user="u", now=0.0)
    assert d.action == "refused_input" and d.reply.startswith(chatbot.REFUSAL_MESSAGE) and not d.escalated
    d = bot.chat("", user="u", now=1.0)
    assert d.action == "empty"
    d = bot.chat("a grey question", user="v", now=1.0)
    assert d.action in ("answered", "fallback") and d.escalated  # grey zone: answered but reviewed
    d = bot.chat("another bomb", user="u", now=2.0)
    assert d.action == "refused_input" and d.escalated          # second flag: escalated
    d = bot.chat("hello", user="u", now=3.0)
    assert d.action == "rate_limited"                           # fourth message inside the minute
    assert len(bot.audit_log) == 5 and len(bot.escalations) == 2
    assert list(bot.audit_table().action) == ["refused_input", "empty", bot.audit_log[2].action, "refused_input", "rate_limited"]


class _OutputGuard:
    """A stand-in classifier on reply text: flags replies containing 'recipe'."""

    def predict(self, texts):
        return np.array(["recipe" in t for t in texts])


def test_per_conversation_escalation(tiny_pipeline):
    model, tok = tiny_pipeline
    bot = GuardedAssistant(model, tok, _Guard(), max_flags=2, max_new_tokens=2, raise_errors=True)
    assert not bot.chat("bomb", user="u", conversation="a").escalated
    assert not bot.chat("bomb", user="u", conversation="b").escalated   # another conversation starts at zero
    assert bot.chat("bomb", user="u", conversation="a").escalated       # the second refusal in "a"
    assert not bot.chat("bomb", user="w").escalated                     # other users are other conversations
    # an evaluation sends a benchmark at once: each prompt is its own conversation, nobody is escalated
    before = len(bot.escalations)
    replies = bot.respond(["bomb"] * 20)
    assert replies == [chatbot.REFUSAL_MESSAGE] * 20 and len(bot.escalations) == before
    assert len({t.conversation for t in bot.audit_log[-20:]}) == 20
    bot.respond(["bomb"] * 3)
    assert len({t.conversation for t in bot.audit_log[-23:]}) == 23     # fresh ids on every call
    with pytest.raises(ValueError, match="one conversation per prompt"):
        bot.process(["a", "b"], conversation=["x"])


def test_output_guard_and_fallback(tiny_pipeline, monkeypatch):
    model, tok = tiny_pipeline
    with pytest.raises(TypeError, match="output_guard must have a predict"):
        GuardedAssistant(model, tok, _Guard(), output_guard=lambda texts: texts)
    unguarded = GuardedAssistant(model, tok, _Guard(), max_new_tokens=4)
    monkeypatch.setattr(unguarded, "_generate", lambda ps: ["Sure, here is the recipe." for _ in ps])
    assert unguarded.chat("innocent looking").action == "answered"  # no output guard: only PII redaction
    bot = GuardedAssistant(model, tok, _Guard(), max_new_tokens=4,  # deployed: errors fall back, recorded
                           output_guard=_OutputGuard())
    monkeypatch.setattr(bot, "_generate", lambda ps: ["Sure, here is the recipe." for _ in ps])
    d = bot.chat("innocent looking")
    assert d.action == "refused_output" and d.output_flagged and "recipe" not in d.reply
    monkeypatch.setattr(bot, "_generate", lambda ps: ["Call ada.marsh@example.com" for _ in ps])
    d = bot.chat("who?")
    assert d.action == "answered" and d.pii_redacted == 1 and "example.com" not in d.reply

    def boom(ps):
        raise RuntimeError("model crashed")

    monkeypatch.setattr(bot, "_generate", boom)
    turn = bot.chat("hi")
    assert turn.action == "fallback" and turn.error == "RuntimeError: model crashed"  # kept, not swallowed
    assert bot.audit_table().error.iloc[-1] == "RuntimeError: model crashed"
    assert bot.respond(["hi", "bomb"]) == [chatbot.FALLBACK_MESSAGE, chatbot.REFUSAL_MESSAGE]
    assert [t.error for t in bot.audit_log[-2:]] == ["RuntimeError: model crashed", ""]  # the refusal never reached the model
    monkeypatch.setattr(bot, "_generate", lambda ps: ["" for _ in ps])
    turn = bot.chat("hi")
    assert turn.action == "fallback" and turn.error.startswith("EmptyReply")
    assert all(t.error == "" for t in bot.audit_log if t.action != "fallback")


def test_programming_errors_surface_with_raise_errors(tiny_pipeline):
    model, tok = tiny_pipeline
    strict = GuardedAssistant(model, tok, _Guard(), max_new_tokens=4, raise_errors=True)
    strict.tokenizer = None  # a bug: reply() rejects it with a TypeError
    with pytest.raises(TypeError, match="tokenizer"):
        strict.chat("hi")
    deployed = GuardedAssistant(model, tok, _Guard(), max_new_tokens=4)
    deployed.tokenizer = None
    turn = deployed.chat("hi")
    assert turn.action == "fallback" and turn.error.startswith("TypeError: tokenizer must be a Tokenizer")
    with pytest.raises(TypeError, match="raise_errors"):
        GuardedAssistant(model, tok, _Guard(), raise_errors="yes")


def test_pipeline_replies_are_the_models_replies(tiny_pipeline):
    from labkit.lm import reply
    from labkit.moderation import redact_pii

    model, tok = tiny_pipeline
    bot = GuardedAssistant(model, tok, _Guard(), max_new_tokens=5, raise_errors=True)
    prompts = ["What is 2 plus 3?", "Spell cat.", "Name the capital of Velmora."]
    turns = bot.process(prompts)
    expected = reply(model, tok, prompts, max_new_tokens=5, batch_size=None)
    for t, r in zip(turns, expected):
        assert t.reply == redact_pii(r)[0] if t.action == "answered" else (t.action == "fallback" and not r)


def test_trained_input_guard_separates_held_out_requests():
    from labkit.lm.world import labelled_requests

    guard = chatbot.train_input_guard()
    texts, labels = labelled_requests(300, seed=7, split="test")
    flagged = guard.predict(texts)
    assert flagged[labels == 1].mean() > 0.9 and flagged[labels == 0].mean() < 0.3
    assert guard.threshold >= 0.5  # the floor: never refuse what the classifier itself thinks more likely harmless
    with pytest.raises(ValueError, match="min_threshold"):
        chatbot.train_input_guard(min_threshold=1.5)


from widget_driver import draw_and_check, values_strategy  # noqa: E402

_rng = np.random.default_rng(0)
_SCORES = {"harmful": _rng.uniform(0.3, 1, 50), "benign": _rng.uniform(0, 0.6, 50), "empty": np.zeros(0)}
_HARMFUL = {"harmful": True, "benign": False, "empty": False}
WIDGET = chatbot.guard_threshold_widget(_SCORES, _HARMFUL, 0.5)


@settings(max_examples=25, deadline=None)
@given(values_strategy(WIDGET))
def test_threshold_widget_full_range(values):
    draw_and_check(WIDGET, values)


def test_threshold_plot_bad_input():
    with pytest.raises(ValueError):
        chatbot.plot_guard_threshold(0.5, {"a": np.zeros(2)}, {"b": True})
    with pytest.raises(ValueError):
        chatbot.plot_guard_threshold(1.5, _SCORES, _HARMFUL)
    with pytest.raises(ValueError, match="threshold"):
        chatbot.guard_threshold_widget(_SCORES, _HARMFUL, 1.5)


# ---------------------------------------------------------------- the guards trained on real text

class _Scores:
    def __init__(self, scores):
        self.scores, self.threshold = dict(scores), 0.5

    def predict_proba(self, texts):
        return np.array([self.scores[t] for t in texts])


def test_calibrate_per_source_bounds_every_benign_source():
    scores = {f"a{i}": i / 10 for i in range(10)} | {f"b{i}": i / 100 for i in range(10)} | {"h": 0.99}
    guard = _Scores(scores)
    texts = list(scores)
    sources = ["A" if t[0] == "a" else "B" if t[0] == "b" else "H" for t in texts]
    labels = [s == "H" for s in sources]
    t = chatbot.calibrate_per_source(guard, texts, labels, sources, 0.1)
    # A's scores 0..0.9: at most one of ten flagged -> just above 0.8; B's are all below 0.1
    assert t == np.nextafter(0.8, 1) and guard.threshold == t
    pooled = chatbot.threshold_for_fpr(np.array([scores[x] for x, y in zip(texts, labels) if not y]), 0.1)
    assert pooled < t  # a pooled rate lets the easy source hide the hard one
    with pytest.raises(ValueError, match="benign"):
        chatbot.calibrate_per_source(guard, ["h"], [True], ["H"], 0.1)


@pytest.fixture(scope="module")
def real_data():
    from labkit import datasets

    names = sorted(set(chatbot.GUARD_DATASETS) | set(chatbot.OUTPUT_GUARD_DATASETS))
    if not datasets.require(*names):
        pytest.skip(datasets.unavailable_message(names))
    return chatbot.real_guard_data(0)


def test_real_guard_data_is_the_stated_mix_and_never_an_evaluation_set(real_data):
    from labkit import datasets

    d = real_data
    assert set(d.train_sources) | set(d.cal_sources) <= set(chatbot.GUARD_DATASETS)
    assert "harmbench_val" not in d.train_sources and "harmbench_test" not in d.cal_sources  # HarmBench's own split
    assert not set(d.train_texts) & set(d.cal_texts)
    held_out = set(datasets.load("advbench").goal) | set(datasets.load("xstest").prompt) \
        | set(datasets.load("jailbreakbench_pair").attack_prompt.dropna()) | set(datasets.load("koala_test_set").prompt)
    assert not held_out & (set(d.train_texts) | set(d.cal_texts))
    for src, cap in chatbot.GUARD_BENIGN_MIX.items():
        n = d.train_sources.count(src) + d.cal_sources.count(src)
        assert n > 0 and (cap is None or n <= cap)
    assert all(y == (s in chatbot.GUARD_HARMFUL_SOURCES) for s, y in zip(d.train_sources, d.train_labels))
    again = chatbot.real_guard_data(0)
    assert again.train_texts == d.train_texts and again.cal_texts == d.cal_texts
    assert chatbot.real_guard_data(1).cal_texts != d.cal_texts


def test_calibrate_guard_gives_the_stated_rates_and_is_the_lowest_such_threshold():
    rng = np.random.default_rng(0)
    benign = {f"b{i}": float(x) for i, x in enumerate(rng.uniform(0, 0.6, 200))}
    hard = {f"c{i}": float(x) for i, x in enumerate(rng.uniform(0.2, 0.9, 40))}
    harmful = {f"h{i}": float(x) for i, x in enumerate(rng.uniform(0.5, 1.0, 30))}
    scores = benign | hard | harmful
    texts = list(scores)
    sources = ["clinc_oos" if t[0] == "b" else "coconot_contrast" if t[0] == "c" else "harmbench_val" for t in texts]
    labels = np.array([t[0] == "h" for t in texts])
    guard = _Scores(scores)
    t = chatbot.calibrate_guard(guard, texts, labels, sources, 0.05, 0.10)
    s = np.array([scores[x] for x in texts])
    hard_mask = np.array([src == "coconot_contrast" for src in sources])
    assert guard.threshold == t
    assert (s[~labels] >= t).mean() <= 0.05 and (s[hard_mask] >= t).mean() <= 0.10
    # the lowest such threshold: the next score below it breaks one of the two budgets
    below = s[~labels][s[~labels] < t].max()
    assert (s[~labels] >= below).mean() > 0.05 or (s[hard_mask] >= below).mean() > 0.10
    # here the hard negatives bind: the pooled rule alone would refuse more of them
    assert chatbot.threshold_for_fpr(s[~labels], 0.05) < t
    with pytest.raises(ValueError, match="benign"):
        chatbot.calibrate_guard(guard, ["h0"], [True], ["harmbench_val"])
    with pytest.raises(ValueError, match="max_hard_negative_rate"):
        chatbot.calibrate_guard(guard, texts, labels, sources, 0.05, 1.5)
    with pytest.raises(ValueError, match="same length"):
        chatbot.calibrate_guard(guard, texts, labels, sources[:-1])


def test_guard_never_trains_on_an_evaluation_or_evaluation_only_set():
    trained = set(chatbot.GUARD_HARMFUL_SOURCES) | set(chatbot.GUARD_BENIGN_MIX)
    evaluation_only = set(chatbot.GUARD_EVALUATION_DATASETS) | {"self_instruct_user_oriented", "hatecheck"}
    assert not trained & evaluation_only
    assert {"advbench", "xstest", "jailbreakbench_pair", "koala_test_set"} <= set(chatbot.GUARD_EVALUATION_DATASETS)
    assert set(chatbot.GUARD_HARD_NEGATIVES) <= set(chatbot.GUARD_BENIGN_MIX)
    with pytest.raises(TypeError, match="candidate"):
        chatbot.fit_guard_candidate(chatbot.GuardData([], np.zeros(0, bool), [], [], np.zeros(0, bool), []), "char")
    with pytest.raises(TypeError, match="data"):
        chatbot.select_real_input_guard([])


@pytest.mark.time_limit(900)
def test_real_input_guard_is_chosen_by_its_rule_and_holds_its_calibrated_rates(real_data):
    selection = chatbot.real_input_guard_selection(0)
    guard, d, table = selection.guard, real_data, selection.table
    assert set(d.train_sources).isdisjoint(chatbot.GUARD_EVALUATION_DATASETS)
    assert "harmbench_val" not in d.train_sources
    flagged = guard.predict(d.cal_texts)
    hard = np.isin(d.cal_sources, chatbot.GUARD_HARD_NEGATIVES)
    assert flagged[~d.cal_labels].mean() <= chatbot.GUARD_MAX_FPR
    assert flagged[hard].mean() <= chatbot.GUARD_MAX_HARD_NEGATIVE_FPR
    # the table is the candidates' calibration figures, and the chosen row has the highest recall
    assert list(table.candidate) == list(chatbot.GUARD_CANDIDATES) and table.chosen.sum() == 1
    chosen = table[table.chosen].iloc[0]
    assert chosen["harmful recall"] == table["harmful recall"].max()
    assert chosen["harmful recall"] == pytest.approx(flagged[d.cal_labels].mean())
    assert chosen.threshold == pytest.approx(guard.threshold)
    assert guard.word_ngrams == chatbot.GUARD_CANDIDATES[chosen.candidate].word_ngrams
    # the previous design keeps its per-source rule
    previous = selection.previous.predict(d.cal_texts)
    for src in set(d.cal_sources) - set(chatbot.GUARD_HARMFUL_SOURCES):
        assert previous[np.array([s == src for s in d.cal_sources])].mean() <= chatbot.GUARD_MAX_FPR_PER_SOURCE
    assert chatbot.real_input_guard(0) is guard


@pytest.mark.time_limit(900)
def test_guard_candidate_fit_is_deterministic(real_data):
    d = real_data
    keep = slice(0, None, 4)   # a quarter of the training prompts: the property, not the model, is under test
    small = chatbot.GuardData(d.train_texts[keep], d.train_labels[keep], d.train_sources[keep],
                              d.cal_texts, d.cal_labels, d.cal_sources)
    candidate = chatbot.GUARD_CANDIDATES["word + char n-grams, hard negatives x3"]
    a = chatbot.fit_guard_candidate(small, candidate).predict_proba(d.cal_texts)
    b = chatbot.fit_guard_candidate(small, candidate).predict_proba(d.cal_texts)
    assert np.array_equal(a, b)
    unweighted = chatbot.fit_guard_candidate(small, chatbot.GuardCandidate((1, 2), 1.0)).predict_proba(d.cal_texts)
    hard = np.isin(d.cal_sources, chatbot.GUARD_HARD_NEGATIVES)
    assert a[hard].mean() < unweighted[hard].mean()   # weighting the hard negatives up lowers their scores


@pytest.mark.time_limit(900)
def test_real_output_guard_reads_reply_text(real_data):
    from sklearn.metrics import roc_auc_score

    d = chatbot.real_output_guard_data(0)
    assert set(d.train_sources) <= set(chatbot.DNA_MODELS) | {"hh_rlhf_helpful"}
    guard = chatbot.real_output_guard(0)
    scores = guard.predict_proba(d.cal_texts)
    assert roc_auc_score(d.cal_labels, scores) > 0.85
    assert (scores[~d.cal_labels] >= guard.threshold).mean() <= chatbot.OUTPUT_GUARD_MAX_FPR


def test_flag_table_rates_and_intervals():
    from labkit.intervals import wilson_interval

    table = chatbot.flag_table({"g": _OutputGuard()}, {"s": (["a recipe", "b", "c", "recipe d"], True)})
    low, high = wilson_interval(2, 4)
    assert table.to_dict("records") == [{"set": "s", "n": 4, "should flag": True, "g": f"0.500 [{low:.2f}, {high:.2f}]"}]
    with pytest.raises(ValueError, match="empty"):
        chatbot.flag_table({"g": _OutputGuard()}, {"s": ([], True)})
