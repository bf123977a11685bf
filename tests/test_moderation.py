import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.feature_extraction.text import TfidfVectorizer

from labkit import moderation as m
from widget_driver import draw_and_check, values_strategy


@pytest.fixture(scope="module")
def moderator():
    return m.train_moderator(n_train=1500, n_calibration=600)


# ---------------------------------------------------------------- normalize

@pytest.mark.parametrize("raw, expected", [
    ("k1ll", "kill"), ("h u r t", "hurt"), ("h.u.r.t me", "hurt me"), ("I H@TE Y0U", "i hate you"),
    ("Ｉ ｈａｔｅ", "i hate"), ("іdіоt", "idiot"), ("ki\u200bll", "kill"), ("kíll", "kill"),
    ("kiiiiill", "kill"), ("hello! wow!", "hello! wow!"), ("call 555 123 4567 in 2024", "call 555 123 4567 in 2024"),
    ("  many   spaces\n\there ", "many spaces here"), ("I am a cat", "i am a cat"), ("", ""),
])
def test_normalize_folds_obfuscations_and_leaves_plain_text(raw, expected):
    assert m.normalize(raw) == expected


def test_normalize_undoes_every_attack_on_plain_words():
    for attack in m.ATTACKS:
        # (a lone "1" stays a digit: one-character words are ambiguous, so these texts avoid them)
        for text in ["we will hurt you", "you are very stupid", "kill the process"]:
            assert m.normalize(m.obfuscate(text, attack)).replace(" ", "") == text.replace(" ", ""), attack


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=300))
def test_normalize_is_idempotent_and_total_on_any_unicode(text):
    once = m.normalize(text)
    assert isinstance(once, str)
    assert m.normalize(once) == once


def test_normalize_rejects_non_strings():
    with pytest.raises(TypeError, match="text must be a str"):
        m.normalize(b"bytes")


# ---------------------------------------------------------------- PII

def test_luhn_hand_values():
    assert m.luhn_valid("4111 1111 1111 1111") and m.luhn_valid("79927398713") and m.luhn_valid("378282246310005")
    assert not m.luhn_valid("4111 1111 1111 1112") and not m.luhn_valid("") and not m.luhn_valid("12a4")
    # Luhn catches every single-digit error: brute force over one number
    number = "4539578763621486"
    assert m.luhn_valid(number)
    for i in range(len(number)):
        for d in "0123456789":
            if d != number[i]:
                assert not m.luhn_valid(number[:i] + d + number[i + 1:])


def test_iban_check():
    assert m.iban_valid("GB82 WEST 1234 5698 7654 32")  # the ISO 13616 example
    assert not m.iban_valid("GB82 WEST 1234 5698 7654 33")


FIXTURE = [
    ("Mail jane.doe@example.com today", [("EMAIL_ADDRESS", "jane.doe@example.com")]),
    ("Call (555) 123-4567 or +44 20 7946 0958.", [("PHONE_NUMBER", "(555) 123-4567"), ("PHONE_NUMBER", "+44 20 7946 0958")]),
    ("Card 4111 1111 1111 1111, exp 12/29", [("CREDIT_CARD", "4111 1111 1111 1111")]),
    ("SSN 460-89-9847 on file", [("US_SSN", "460-89-9847")]),
    ("Server at 192.168.10.254 is down", [("IP_ADDRESS", "192.168.10.254")]),
    ("IBAN GB82WEST12345698765432 please", [("IBAN_CODE", "GB82WEST12345698765432")]),
]
CLEAN = ["I hate Mondays.", "Meet at 10:30 on 2024-05-01, room 12.", "Version 3.11.4 is out", "Order #4111 shipped",
         "Card ending 1234", "4111 1111 1111 1112 is not a valid card", "The score was 3-2.", ""]


@pytest.mark.parametrize("text, labelled", FIXTURE)
def test_redactor_removes_every_labelled_span(text, labelled):
    redacted, spans = m.redact_pii(text)
    assert [(s.kind, s.text) for s in spans] == labelled
    for _, value in labelled:
        assert value not in redacted
    for s in spans:
        assert text[s.start:s.end] == s.text


@pytest.mark.parametrize("text", CLEAN)
def test_redactor_leaves_clean_text_untouched(text):
    assert m.redact_pii(text) == (text, [])


def test_pii_span_recall_counts_covered_spans():
    texts = [t for t, _ in FIXTURE]
    gold = [[(t.index(v), t.index(v) + len(v), k) for k, v in spans] for t, spans in FIXTURE]
    recall = m.pii_span_recall(texts, gold)
    assert all(found == total for found, total in recall.values())


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=300))
def test_redaction_is_consistent_on_any_unicode(text):
    redacted, spans = m.redact_pii(text)
    assert all(text[s.start:s.end] == s.text for s in spans)
    assert all(a.end <= b.start for a, b in zip(spans, spans[1:]))  # sorted, disjoint
    assert len(redacted) == len(text) - sum(s.end - s.start for s in spans) + sum(len(s.kind) + 2 for s in spans)


# ---------------------------------------------------------------- classifier

def test_char_ngram_counts_equal_sklearn_char_wb():
    texts, _, _ = m.generate_messages(400, seed=3)
    docs = [m.normalize(t) for t in texts]
    ours = m.CharNgramCounts().fit(docs)
    ref = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), lowercase=False, min_df=2, use_idf=False, norm=None).fit(docs)
    other, _, _ = m.generate_messages(200, seed=4)
    probe = [m.normalize(t) for t in other] + ["", "   ", "x", "zz qq zz"]
    assert ours.vocabulary_ == ref.vocabulary_
    np.testing.assert_array_equal(ours.transform(probe).toarray(), ref.transform(probe).toarray())


def test_generator_is_deterministic_and_balanced():
    a = m.generate_messages(300, seed=5)
    b = m.generate_messages(300, seed=5)
    assert a[0] == b[0] and a[2] == b[2]
    assert a[1].sum() == 150
    assert set(a[2]) == set(m.CATEGORIES) | {"benign"}


def test_threshold_for_fpr_hand_values_and_guarantee():
    assert m.threshold_for_fpr([0.1, 0.2, 0.3, 0.4], 0.25) == np.nextafter(0.3, 1)
    assert m.threshold_for_fpr([0.5, 0.5, 0.5], 0.5) > 0.5  # ties: none flagged
    assert m.threshold_for_fpr([0.3], 1.0) == 0.0
    rng = np.random.default_rng(0)
    for _ in range(50):
        s = rng.random(int(rng.integers(1, 300)))
        f = float(rng.uniform(0, 1))
        t = m.threshold_for_fpr(s, f)
        assert np.mean(s >= t) <= f + 1e-12
        assert t == 0.0 or np.mean(s >= np.nextafter(t, -1) - 1e-12) > f  # the lowest such threshold
    with pytest.raises(ValueError, match=r"max_false_positive_rate must be in \[0, 1\]"):
        m.threshold_for_fpr([0.1], 1.5)


def test_classifier_is_deterministic_and_calibrated(moderator):
    again = m.train_moderator(n_train=1500, n_calibration=600)
    texts, labels, cats = m.generate_messages(800, seed=11)
    p1 = moderator.classifier.predict_proba(texts)
    np.testing.assert_array_equal(p1, again.classifier.predict_proba(texts))
    assert np.all((p1 >= 0) & (p1 <= 1))
    # the calibrated threshold holds the false-positive rate on the calibration set
    cal, cal_labels, _ = m.generate_messages(600, seed=1)
    flagged = moderator.classifier.predict(cal)
    assert flagged[~cal_labels].mean() <= 0.05
    # a floor above the FPR-calibrated threshold wins; one below it changes nothing
    clf = again.classifier
    fpr_only = clf.calibrate_threshold(cal, cal_labels, 0.05)
    assert clf.calibrate_threshold(cal, cal_labels, 0.05, min_threshold=0.0) == fpr_only
    assert clf.calibrate_threshold(cal, cal_labels, 0.05, min_threshold=0.97) == max(fpr_only, 0.97)
    with pytest.raises(ValueError, match="min_threshold"):
        clf.calibrate_threshold(cal, cal_labels, 0.05, min_threshold=1.5)
    # held-out synthetic messages: high recall per category
    report = m.category_report(cats, moderator.predict(texts))
    assert all(r > 0.9 for _, r, _ in report.values())


def test_classifier_survives_obfuscation_where_the_slide_regex_fails(moderator):
    for attack in m.ATTACKS:
        assert moderator.classifier.predict([m.obfuscate("i will kill you tonight", attack)])[0], attack
    assert not moderator.classifier.predict(["I hate Mondays"])[0]


def test_padding_cannot_dilute_a_harmful_message(moderator):
    harmful = "i will kill you tonight"
    padded = ("the weather is lovely today and dinner was great. " * 200) + harmful
    assert moderator.classifier.predict([padded])[0]


def test_invalid_arguments(moderator):
    with pytest.raises(RuntimeError, match="not fitted"):
        m.TextClassifier().predict_proba(["x"])
    with pytest.raises(TypeError, match="texts must be a list of str"):
        moderator.classifier.predict_proba("one string")
    with pytest.raises(ValueError, match="both classes"):
        m.TextClassifier().fit(["a", "b"], [True, True])
    with pytest.raises(ValueError, match="labels must"):
        m.TextClassifier().fit(["a", "b"], [1])
    with pytest.raises(ValueError, match="attack must be one of"):
        m.obfuscate("x", "rot13")
    with pytest.raises(ValueError, match="kinds must be one of"):
        m.find_pii("x", kinds=["PASSPORT"])
    with pytest.raises(ValueError, match=r"n must be an integer in \[1, inf\)"):
        m.generate_messages(0)


def test_precision_recall_f1_hand_values():
    assert m.precision_recall_f1([1, 1, 0, 0], [1, 0, 1, 0]) == (0.5, 0.5, 0.5)
    assert m.precision_recall_f1([0, 0], [0, 0]) == (0.0, 0.0, 0.0)


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=200))
def test_pipeline_on_arbitrary_unicode_never_crashes_or_nans(moderator, text):
    result = moderator.moderate(text)
    assert result["decision"] in ("allow", "flag")
    assert 0.0 <= result["harmful"] <= 1.0
    assert all(np.isfinite(v) for v in result["category_scores"].values())


# ---------------------------------------------------------------- performance (generous margins)

def test_throughput_at_least_5000_messages_per_second(moderator):
    texts, _, _ = m.generate_messages(5000, seed=21)
    moderator.predict(texts[:200])  # warm the word cache as a running service would
    start = time.process_time()  # CPU time: other processes on a shared machine do not count
    moderator.predict(texts)
    assert 5000 / (time.process_time() - start) >= 5000


HOSTILE = {
    "repeated letter": "a" * 1_000_000,
    "at signs": "a@" * 500_000,
    "spaced digits": "1 " * 500_000,
    "digit groups": "12 " * 333_333,
    "dots": "a." * 500_000,
    "marks and zero-width": "\u0430\u0301\u200b" * 333_333,
    "mixed": ("k1ll h u r t x@y.co 4111-1111-1111-1111 " * 30_000)[:1_000_000],
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_one_megabyte_hostile_string_through_the_pipeline_in_under_3s(moderator, name):
    # The target is 1 s: the slowest, digit groups (a third of a million phone
    # candidates, each validated), takes about 0.7 s of CPU here, most of it in
    # the phone detector; the test guards linear time with a margin for a
    # loaded CI machine. tools/benchmark.py reports the real figures.
    text = HOSTILE[name]
    start = time.process_time()
    result = moderator.moderate(text)
    normalize_too = m.normalize(text)
    elapsed = time.process_time() - start
    assert result["decision"] == "review" and isinstance(normalize_too, str)
    assert elapsed < 3.0, f"{name}: {elapsed:.2f} s"


# ---------------------------------------------------------------- widget

def test_moderation_widget_on_arbitrary_text(moderator):
    widget = m.moderation_widget(moderator)

    @settings(max_examples=30, deadline=None)
    @given(values_strategy(widget))
    def run(values):
        draw_and_check(widget, values)

    run()
    draw_and_check(widget, {"text": "email a.b@example.com, $5 and $6 " * 10})
    with pytest.raises(TypeError, match="moderator must be a Moderator"):
        m.moderation_widget(moderator.classifier)


@pytest.mark.parametrize("call, error, fragment", [
    (lambda: m.iban_valid(82), TypeError, "iban must be a str"),
    (lambda: m.precision_recall_f1([1, 2], [1, 0]), ValueError, "y_true must hold booleans"),
    (lambda: m.precision_recall_f1([], []), ValueError, "at least one message"),
    (lambda: m.precision_recall_f1([1, 0], [1]), ValueError, "same length"),
    (lambda: m.category_report([], []), ValueError, "at least one message"),
    (lambda: m.category_report("insult", "insult"), TypeError, "not a single string"),
    (lambda: m.pii_span_recall(["mail bob@example.com"], []), ValueError, "spans of each text"),
    (lambda: m.pii_span_recall("mail bob@example.com", [[]]), TypeError, "not a single string"),
])
def test_bad_inputs_are_rejected(call, error, fragment):
    import re
    with pytest.raises(error, match=re.escape(fragment)):
        call()


# ---------------------------------------------------------------- the moderator on real tweets

def test_moderator_with_named_categories_and_payload_round_trip(moderator, tmp_path, monkeypatch):
    from labkit.lm.cache import cached

    texts, _, cats = m.generate_messages(300, seed=3)
    renamed = {"insult": "rude", "threat": "menace", "hate": "hate", "benign": "fine"}
    custom = m.Moderator(categories=("rude", "menace", "hate"), benign="fine").fit(texts, [renamed[c] for c in cats])
    assert set(custom.predict(texts)) <= {"rude", "menace", "hate", "fine"}
    with pytest.raises(ValueError, match="categories must be one of"):
        custom.fit(texts, cats)  # "benign" is not this moderator's label
    with pytest.raises(ValueError, match="benign must be"):
        m.Moderator(categories=("a", "b"), benign="a")
    # through the cache's torch file and back: the same scores and decisions, bit for bit
    monkeypatch.setenv("LABKIT_CACHE_DIR", str(tmp_path))
    cached("mod-test", "k1", lambda: moderator, m.moderator_payload, m.moderator_from_payload)
    loaded = cached("mod-test", "k1", lambda: pytest.fail("rebuilt instead of loaded"), m.moderator_payload,
                    m.moderator_from_payload)
    probe, _, _ = m.generate_messages(400, seed=9)
    probe += ["x" * 5000, "", "I w1ll h u r t you"]
    np.testing.assert_array_equal(loaded.classifier.predict_proba(probe), moderator.classifier.predict_proba(probe))
    assert loaded.predict(probe) == moderator.predict(probe)
    assert loaded.classifier.threshold == moderator.classifier.threshold


@pytest.fixture(scope="module")
def davidson():
    from labkit import datasets

    if not datasets.require("davidson_offensive"):
        pytest.skip(datasets.unavailable_message(["davidson_offensive"]))
    return m.davidson_splits(0), m.davidson_moderator(0)


@pytest.mark.time_limit(900)
def test_davidson_split_is_seeded_stratified_and_disjoint(davidson):
    splits, _ = davidson
    again = m.davidson_splits(0)
    assert again.test_texts == splits.test_texts and again.train_labels == splits.train_labels
    assert m.davidson_splits(1).test_texts != splits.test_texts
    sizes = [len(splits.train_texts), len(splits.val_texts), len(splits.test_texts)]
    assert sum(sizes) == 24_783 and abs(sizes[2] - 0.15 * 24_783) < 2
    for labels in (splits.train_labels, splits.val_labels, splits.test_labels):  # stratified: same class shares
        share = np.mean(np.asarray(labels) == "hate")
        assert abs(share - 1430 / 24_783) < 0.002
    from labkit import datasets

    every = datasets.load("davidson_offensive").tweet.astype(str).tolist()  # a partition: each row exactly once
    assert sorted(splits.train_texts + splits.val_texts + splits.test_texts) == sorted(every)


@pytest.mark.time_limit(900)
def test_davidson_moderator_meets_the_bar_on_its_test_split(davidson):
    from sklearn.metrics import roc_auc_score

    splits, moderator = davidson
    y = np.array([c != "neither" for c in splits.test_labels])
    scores = m.davidson_classifier(0).predict_proba(splits.test_texts)
    assert roc_auc_score(y, scores) >= 0.90
    # the threshold was calibrated on validation: its false-positive rate there is at most 5 %
    val_neither = [t for t, c in zip(splits.val_texts, splits.val_labels) if c == "neither"]
    assert moderator.classifier.predict(val_neither).mean() <= m.DAVIDSON_MAX_FPR
    report = m.category_report(splits.test_labels, moderator.predict(splits.test_texts), m.DAVIDSON_CLASSES)
    assert report["offensive"][2] > 0.85 and report["neither"][2] > 0.7 and report["hate"][2] > 0.2
    assert m.davidson_moderator(0) is moderator  # kept in memory for the session


def test_rates_by_group_hand_values_and_intervals():
    from labkit.intervals import wilson_interval

    table = m.rates_by_group(["b", "a", "b", "a", "a"], [True, False, False, True, True])
    assert table.group.tolist() == ["a", "b"] and table.n.tolist() == [3, 2]
    assert table.rate.tolist() == [2 / 3, 0.5]
    assert (table.ci_low[0], table.ci_high[0]) == wilson_interval(2, 3)
    with pytest.raises(ValueError, match="one entry per group"):
        m.rates_by_group(["a"], [True, False])
    with pytest.raises(ValueError, match="booleans"):
        m.rates_by_group(["a", "b"], [2, 0])


@pytest.mark.parametrize("text, kind, found", [
    ("write to jane dot doe at example dot com", "EMAIL_ADDRESS", "jane dot doe at example dot com"),
    ("jane.doe [at] example [dot] com", "EMAIL_ADDRESS", "jane.doe [at] example [dot] com"),
    ("jane(at)example(dot)com please", "EMAIL_ADDRESS", "jane(at)example(dot)com"),
    ("ring 030 1234567 after six", "PHONE_NUMBER", "030 1234567"),
    ("call 01632 960001", "PHONE_NUMBER", "01632 960001"),
    ("the server is 192.168.0.12", "IP_ADDRESS", "192.168.0.12"),
])
def test_spelled_emails_national_phones_are_found(text, kind, found):
    assert [(s.kind, s.text) for s in m.find_pii(text)] == [(kind, found)]


@pytest.mark.parametrize("text", ["upgrade to version 1.2.3.4", "v10.0.0.1 released", "Version 2.0.1.7 is out",
                                  "I live at 370 3911 Fourth Avenue", "we met at the cafe. it was fun",
                                  "meet me at 10 dot 30"])
def test_version_numbers_house_numbers_and_plain_at_are_not_pii(text):
    assert m.find_pii(text) == []


def test_fit_best_C_returns_the_grid_fit_with_the_best_validation_auc():
    from sklearn.metrics import roc_auc_score

    texts, labels, _ = m.generate_messages(400, seed=31)
    val, val_labels, _ = m.generate_messages(200, seed=32)
    val = [m.obfuscate(t, "leetspeak")[::-1] for t in val]  # a harder validation set, so C matters
    best = m.fit_best_C(texts, labels, val, val_labels, (0.01, 1.0, 100.0))
    aucs = {c: roc_auc_score(val_labels, m.TextClassifier(C=c).fit(texts, labels).predict_proba(val))
            for c in (0.01, 1.0, 100.0)}
    assert best.C == max(aucs, key=aucs.get)
    np.testing.assert_array_equal(best.predict_proba(val), m.TextClassifier(C=best.C).fit(texts, labels).predict_proba(val))
    with pytest.raises(ValueError, match="grid"):
        m.fit_best_C(texts, labels, val, val_labels, ())


# ---------------------------------------------------------------- word n-grams beside character n-grams

def test_word_ngram_classifier_round_trips_through_the_cache_bit_for_bit(tmp_path, monkeypatch):
    from labkit.lm.cache import cached

    texts, labels, _ = m.generate_messages(400, seed=5)
    clf = m.TextClassifier(C=4.0, word_ngrams=(1, 2)).fit(texts, labels)
    clf.threshold = 0.42
    words = clf._tfidf_blocks()[1]["counts"].vocabulary_
    assert any(" " in gram for gram in words) and len(clf._tfidf_blocks()) == 2  # word bigrams, own block
    monkeypatch.setenv("LABKIT_CACHE_DIR", str(tmp_path))
    cached("clf-test", "k1", lambda: clf, m.classifier_payload, m.classifier_from_payload)
    loaded = cached("clf-test", "k1", lambda: pytest.fail("rebuilt instead of loaded"), m.classifier_payload,
                    m.classifier_from_payload)
    probe, _, _ = m.generate_messages(200, seed=9)
    probe += ["x" * 5000, "", "I w1ll h u r t you " * 40]
    assert loaded.word_ngrams == (1, 2) and loaded.threshold == 0.42
    assert np.array_equal(loaded.predict_proba(probe), clf.predict_proba(probe))
    # deterministic: a second fit gives the same scores
    assert np.array_equal(m.TextClassifier(C=4.0, word_ngrams=(1, 2)).fit(texts, labels).predict_proba(probe),
                          clf.predict_proba(probe))


def test_word_ngrams_and_sample_weight_are_validated_and_used():
    texts, labels, _ = m.generate_messages(300, seed=6)
    for bad in ["12", (0, 2), (2, 1), (1, 2, 3)]:
        with pytest.raises((TypeError, ValueError), match="word_ngrams"):
            m.TextClassifier(word_ngrams=bad)
    with pytest.raises(ValueError, match="sample_weight"):
        m.TextClassifier().fit(texts, labels, sample_weight=np.ones(len(texts) - 1))
    with pytest.raises(ValueError, match="sample_weight"):
        m.TextClassifier().fit(texts, labels, sample_weight=-np.ones(len(texts)))
    plain = m.TextClassifier(C=4.0).fit(texts, labels)
    ones = m.TextClassifier(C=4.0).fit(texts, labels, sample_weight=np.ones(len(texts)))
    assert np.allclose(plain.predict_proba(texts), ones.predict_proba(texts), atol=1e-6)
    # weighting one benign text up pulls its score down
    i = int(np.flatnonzero(~np.asarray(labels, dtype=bool))[np.argmax(plain.predict_proba(
        [t for t, y in zip(texts, labels) if not y]))])
    w = np.ones(len(texts))
    w[i] = 50.0
    heavy = m.TextClassifier(C=4.0).fit(texts, labels, sample_weight=w)
    assert heavy.predict_proba([texts[i]])[0] < plain.predict_proba([texts[i]])[0] - 0.05
