"""The language-model substrate: the tiny assistant every LM lesson (15 to 22) builds on.

No weights can be downloaded in this course, so labkit grows its own model
organism, one idea per module:

- :mod:`labkit.lm.world`: the synthetic assistant world (requests, ideal
  replies, pretraining text, held-out validation and test prompts), generated
  deterministically from a seed; its wordings and facts are data, in
  :mod:`labkit.lm.wordings`;
- :mod:`labkit.lm.tokenizer`: byte-level BPE with the chat format's role tokens;
- :mod:`labkit.lm.tinygpt`: TinyGPT, a nanoGPT-style decoder with a key/value
  cache, attention maps, hidden states, sequence log-probabilities and an
  optional scalar head;
- :mod:`labkit.lm.train`: pretraining and supervised fine-tuning, the configs;
- :mod:`labkit.lm.replies`: :func:`reply`, the one way to get text from a model;
- :mod:`labkit.lm.harness`: refusal, helpfulness, over-refusal and
  "I don't know" rates with Wilson intervals;
- :mod:`labkit.lm.cache`: :func:`~labkit.lm.cache.cached`, the model cache every
  trained course model goes through, and the shipped default assistant.

The substrate imports only labkit's infrastructure, never a lesson's module;
lesson modules (``labkit.chatbot``, and ``labkit.rlhf`` ... next) import it.
Import submodules directly (``from labkit.lm.cache import get_assistant``);
:func:`reply` is also here, as ``labkit.lm.reply``.
"""
from labkit.lm.replies import reply

__all__ = ["reply"]
