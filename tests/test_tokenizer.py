import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labkit.lm.tokenizer import Tokenizer
from labkit.lm.world import SPECIAL_TOKENS, format_dialogue, make_world, prompt_text

CORPUS = make_world(0, n_pretrain=300, n_sft=10).pretrain
TOK = Tokenizer.train(CORPUS, vocab_size=320)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200))
def test_any_unicode_round_trips(text):
    assert TOK.decode(TOK.encode(text)) == text


def test_a_message_starts_with_the_same_tokens_as_mid_sentence():
    # The space after each role tag: a number or word that opens the question is the token
    # the answer repeats, so the model copies a token instead of mapping "5" to " 5".
    tok = TOK.tokens(format_dialogue("5 + 3 comes to what?", "5 plus 3 is 8.", None))
    user, assistant = tok.index("<|user|>") + 1, tok.index("<|assistant|>") + 1
    five = TOK.tokens("What is 3 plus 5")[-len(TOK.tokens(" 5")):]  # "5" in mid-sentence
    assert tok[user:user + len(five)] == five == tok[assistant:assistant + len(five)]


def test_special_tokens_are_single_ids_and_bpe_compresses():
    ids = TOK.encode(prompt_text("What is 2 plus 3?"))
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
