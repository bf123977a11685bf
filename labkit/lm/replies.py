"""One way to get the assistant's replies: encode, generate, decode.

Every caller that wants text from a TinyGPT (the evaluation harness, the
guarded chatbot, the benchmark, and the lessons after 15) goes through
:func:`reply`, so they all see the model the same way: the user's message in
the chat format without a system prompt (:func:`labkit.lm.world.prompt_text`),
generation until the end tag, special tokens dropped, surrounding spaces
stripped.
"""
from __future__ import annotations

from typing import Sequence

import torch

from labkit.lm.tinygpt import TinyGPT
from labkit.lm.tokenizer import Tokenizer
from labkit.lm.world import prompt_text
from labkit.validation import ensure_int


def reply(model: TinyGPT, tokenizer: Tokenizer, prompts: Sequence[str], max_new_tokens: int = 24,
          batch_size: int | None = 64, sample: bool = False, temperature: float = 1.0, top_k: int | None = None,
          generator: torch.Generator | None = None, system: str | None = None) -> list[str]:
    """The model's reply to each user prompt.

    Parameters
    ----------
    model : TinyGPT
    tokenizer : Tokenizer
        The tokenizer the model was trained with.
    prompts : sequence of str
        User messages (may be empty: the reply list is then empty).
    max_new_tokens : int >= 1
        Longest reply, in tokens; generation stops earlier at the end tag.
    batch_size : int >= 1 or None
        Prompts generated together; None puts them all in one batch. Left
        padding makes the last digits of the logits depend on the batch, so
        callers that must reproduce stored outputs keep their batch size.
    sample, temperature, top_k, generator
        Greedy decoding by default; see :meth:`TinyGPT.generate`.
    system : str or None
        A system prompt to put before each message (none by default).

    Returns
    -------
    list of str
    """
    if not isinstance(model, TinyGPT):
        raise TypeError(f"model must be a TinyGPT, got {type(model).__name__}")
    if not isinstance(tokenizer, Tokenizer):
        raise TypeError(f"tokenizer must be a Tokenizer, got {type(tokenizer).__name__}")
    if isinstance(prompts, str) or not all(isinstance(p, str) for p in prompts):
        raise TypeError("prompts must be a sequence of str (wrap a single prompt in a list)")
    prompts = list(prompts)
    if batch_size is not None:
        batch_size = ensure_int("batch_size", batch_size, low=1)
    step = batch_size or max(1, len(prompts))
    replies: list[str] = []
    for start in range(0, len(prompts), step):
        ids = [tokenizer.encode(prompt_text(p, system)) for p in prompts[start:start + step]]
        new = model.generate(ids, max_new_tokens, sample=sample, temperature=temperature, top_k=top_k,
                             stop_id=tokenizer.end_id, pad_id=tokenizer.pad_id, generator=generator)
        replies += [tokenizer.decode(x, skip_special=True).strip() for x in new]
    return replies


__all__ = ["reply"]
