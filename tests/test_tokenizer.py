import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labkit.tokenizer import Tokenizer
from labkit.world import SPECIAL_TOKENS, make_world

CORPUS = make_world(0, n_pretrain=300, n_sft=10).pretrain
TOK = Tokenizer.train(CORPUS, vocab_size=320)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200))
def test_any_unicode_round_trips(text):
    assert TOK.decode(TOK.encode(text)) == text


def test_special_tokens_are_single_ids_and_bpe_compresses():
    ids = TOK.encode("<|user|>What is 2 plus 3?<|end|><|assistant|>")
    assert ids[0] == TOK.user_id and ids[-1] == TOK.assistant_id and TOK.end_id in ids
    assert len({TOK.token_id(t) for t in SPECIAL_TOKENS}) == len(SPECIAL_TOKENS)
    text = CORPUS[0]
    assert len(TOK.encode(text)) < len(text.encode()) / 1.5  # merges beat raw bytes
    assert TOK.vocab_size <= 320


def test_save_load_and_training_are_deterministic(tmp_path):
    TOK.save(tmp_path / "tok.json")
    again = Tokenizer.load(tmp_path / "tok.json")
    s = "The capital of Velmora is Tusk. 😀"
    assert again.encode(s) == TOK.encode(s)
    assert Tokenizer.train(CORPUS, vocab_size=320).to_json() == TOK.to_json()


def test_bad_input():
    with pytest.raises(ValueError, match="vocab_size"):
        Tokenizer.train(CORPUS, vocab_size=10)
    with pytest.raises(TypeError):
        TOK.encode(b"bytes")
    with pytest.raises(ValueError):
        TOK.token_id("<|nope|>")
