"""A byte-level BPE tokenizer for the assistant world.

Byte-level BPE (Sennrich et al. 2016, "Neural Machine Translation of Rare Words
with Subword Units"; byte-level variant from Radford et al. 2019, GPT-2): the
base alphabet is the 256 bytes, so any Unicode text encodes and there is no
unknown token. Merges are learned with the HF ``tokenizers`` package in about
a second. The tokenizer saves to, and loads from, a JSON string (no pickle).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

from tokenizers import Tokenizer as _HFTokenizer
from tokenizers import decoders, models, pre_tokenizers, trainers

from labkit.validation import ensure_int
from labkit.lm.world import ASSISTANT, END, PAD, SPECIAL_TOKENS, SYSTEM, USER


class Tokenizer:
    """Byte-level BPE with the world's special tokens.

    Build one with :meth:`train` or :meth:`from_json`; ``encode`` and
    ``decode`` round-trip every string.
    """

    def __init__(self, hf: _HFTokenizer):
        self._hf = hf
        self.pad_id = self.token_id(PAD)
        self.system_id = self.token_id(SYSTEM)
        self.user_id = self.token_id(USER)
        self.assistant_id = self.token_id(ASSISTANT)
        self.end_id = self.token_id(END)

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int = 512) -> "Tokenizer":
        """Learn BPE merges on ``texts``.

        Parameters
        ----------
        texts : iterable of str
            Training corpus.
        vocab_size : int
            Final vocabulary size, at least 256 bytes + the special tokens.

        Returns
        -------
        Tokenizer
        """
        vocab_size = ensure_int("vocab_size", vocab_size, low=256 + len(SPECIAL_TOKENS), high=65536)
        hf = _HFTokenizer(models.BPE())
        hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        hf.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS), show_progress=False,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), min_frequency=2,
        )
        hf.train_from_iterator(list(texts), trainer=trainer)
        return cls(hf)

    @classmethod
    def from_json(cls, text: str) -> "Tokenizer":
        if not isinstance(text, str):
            raise TypeError(f"text must be a JSON string, got {type(text).__name__}")
        return cls(_HFTokenizer.from_str(text))

    def to_json(self) -> str:
        return self._hf.to_str()

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> "Tokenizer":
        return cls.from_json(Path(path).read_text(encoding="utf-8"))

    @property
    def vocab_size(self) -> int:
        return self._hf.get_vocab_size()

    def token_id(self, token: str) -> int:
        i = self._hf.token_to_id(token)
        if i is None:
            raise ValueError(f"token {token!r} is not in the vocabulary")
        return i

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (special tokens are recognised as single ids)."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        return self._hf.encode(text).ids

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self._hf.encode_batch(list(texts))]

    def decode(self, ids: Iterable[int], skip_special: bool = False) -> str:
        """Text of ``ids``; ``skip_special`` drops role and end tokens."""
        return self._hf.decode([int(i) for i in ids], skip_special_tokens=skip_special)

    def tokens(self, text: str) -> list[str]:
        """The BPE pieces of ``text`` as strings (for display)."""
        return [self.decode([i]) for i in self.encode(text)]


__all__ = ["Tokenizer"]
