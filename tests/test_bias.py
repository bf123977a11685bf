import numpy as np
import pandas as pd
import pytest
import torch

from labkit import bias
from labkit.lm.tinygpt import GPTConfig, TinyGPT
from labkit.lm.tokenizer import Tokenizer
from labkit.lm.world import make_world


def test_stereotype_contrast_cancels_a_template_lean_and_keeps_the_sign():
    signs = np.array([1.0, 1.0, -1.0])
    assert bias.stereotype_contrast([[2.0, 2.0, 2.0]], signs) == pytest.approx([0.0])   # a default "he" is no stereotype
    assert bias.stereotype_contrast([[3.0, 1.0, 0.0]], signs) == pytest.approx([1.0])
    assert bias.stereotype_contrast([[-3.0, -1.0, 0.0]], signs) == pytest.approx([-1.0])  # anti-stereotype: negative
    with pytest.raises(ValueError, match="signs"):
        bias.stereotype_contrast([[1.0, 2.0]], [1.0, 1.0])


def test_stereotype_signs_follow_the_world():
    assert bias.stereotype_signs(["nurse", "pilot"]).tolist() == [-1.0, 1.0]
    with pytest.raises(ValueError, match="professions"):
        bias.stereotype_signs(["astronaut"])


def test_bootstrap_interval_covers_the_mean_and_shrinks_with_more_data():
    rng = np.random.default_rng(0)
    small = bias.bootstrap_interval(rng.normal(1.0, 1.0, 10))
    large = bias.bootstrap_interval(rng.normal(1.0, 1.0, 1000))
    for mean, low, high in (small, large):
        assert low <= mean <= high
    assert large[2] - large[1] < (small[2] - small[1]) / 3
    assert bias.bootstrap_interval([2.0, 2.0, 2.0]) == (2.0, 2.0, 2.0)
    # coverage: the true mean 0 falls inside a 90 % interval of 20 normals most of the time
    hits = sum(low <= 0 <= high for low, high in
               (bias.bootstrap_interval(np.random.default_rng(s).normal(0, 1, 20), 400, 0.9, s)[1:] for s in range(100)))
    assert 78 <= hits <= 98
    with pytest.raises(ValueError, match="values"):
        bias.bootstrap_interval([1.0])


def test_counterfactual_swaps_gendered_words_both_ways_and_keeps_case():
    assert bias.counterfactual("The nurse said that she would be late today.") == \
        "The nurse said that he would be late today."
    assert bias.counterfactual("He told HIM about his sister.") == "She told HER about her brother."
    assert bias.counterfactual("the shepherd sheds theme") == "the shepherd sheds theme"  # no swaps inside words
    text = "She said he would see her mother."
    assert bias.counterfactual(bias.counterfactual(text)).lower().split()[:3] == text.lower().split()[:3]


def test_augmentation_balances_the_pronouns_of_a_skewed_corpus():
    docs = [d for d in make_world(seed=0, n_pretrain=600, pronoun_skew=0.9).pretrain if " said that " in d]
    augmented = bias.augment_counterfactual(docs)
    he = sum(" he would" in d for d in augmented)
    she = sum(" she would" in d for d in augmented)
    assert len(augmented) == 2 * len(docs) and he == she
    assert bias.augment_counterfactual(["no gender here"]) == ["no gender here"]


def _tiny_model_and_tokenizer():
    texts = [f"The {j} said that {p} would be late today." for j in ["nurse", "pilot", "baker", "farmer"] for p in ["he", "she"]]
    tok = Tokenizer.train(texts * 5, 300)
    torch.manual_seed(0)
    return TinyGPT(GPTConfig(vocab_size=tok.vocab_size, context=32, n_layer=1, n_head=2, d_model=16)), tok


def test_pronoun_gaps_are_log_probability_differences():
    model, tok = _tiny_model_and_tokenizer()
    gaps = bias.pronoun_gaps(model, tok, ["The {job} said that"], ["nurse", "pilot"])
    assert gaps.shape == (1, 2)
    ids = [tok.end_id] + tok.encode("The nurse said that")
    with torch.no_grad():
        logits = model.run(torch.tensor([ids])).logits[0, -1].log_softmax(-1)
    he, she = tok.encode(" he"), tok.encode(" she")
    assert len(he) == len(she) == 1
    assert gaps[0, 0] == pytest.approx(float(logits[he[0]] - logits[she[0]]), abs=1e-5)
    with pytest.raises(ValueError, match="templates"):
        bias.pronoun_gaps(model, tok, ["no field"], ["nurse"])


def test_false_positive_rates_count_negatives_only_at_or_above_the_threshold():
    table = bias.false_positive_rates([0.9, 0.5, 0.2, 0.8, 0.1], [0, 0, 0, 1, 0], ["a", "a", "a", "b", "b"], 0.5)
    assert table.loc["a", "fpr"] == pytest.approx(2 / 3) and table.loc["b", "fpr"] == 0.0
    assert table.loc["b", "n_negative"] == 1
    assert table.loc["a", "ci_low"] < 2 / 3 < table.loc["a", "ci_high"]
    with pytest.raises(ValueError, match="labels"):
        bias.false_positive_rates([0.1], [3], ["a"])


def test_skewed_assistant_rejects_bad_arguments():
    with pytest.raises(ValueError, match="skew"):
        bias.skewed_assistant(1.5)
    with pytest.raises(TypeError, match="cda"):
        bias.skewed_assistant(0.5, cda="yes")


def test_skew_widget_rejects_a_bad_table():
    with pytest.raises(TypeError, match="table"):
        bias.skew_widget(pd.DataFrame({"x": [1]}))


def _fake_sweep():
    rows = []
    n = len(bias.PROBE_TEMPLATES["test"])
    for skew in bias.SKEWS:
        for seed in bias.SEEDS:
            for cda in ([False, True] if skew in bias.CDA_SKEWS else [False]):
                value = 0.0 if cda else np.log(skew / (1 - skew)) / 3
                rows.append({"skew": skew, "seed": seed, "cda": cda, "bias": value, "ci_low": value - 0.1,
                             "ci_high": value + 0.1, "corpus": np.log(skew / (1 - skew)),
                             "per_template": tuple(value + 0.1 * np.sin(np.arange(n) + seed))})
    return pd.DataFrame(rows)


def test_skew_widget_draws_finite_figures_for_every_choice():
    from hypothesis import given, settings

    from widget_driver import draw_and_check, values_strategy

    widget = bias.skew_widget(_fake_sweep())

    @settings(max_examples=20, deadline=None)
    @given(values_strategy(widget))
    def drive(values):
        draw_and_check(widget, values)

    drive()
    fig = bias.plot_skew_sweep(_fake_sweep())
    assert len(fig.axes) == 1
