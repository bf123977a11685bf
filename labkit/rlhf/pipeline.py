"""What every RLHF trainer of the tiny assistant shares (the token layout of :mod:`labkit.rlhf.losses`).

- batching: :func:`sequence_batch` (right-padded ``prompt + response`` rows and
  their response mask), :func:`token_logprobs` and :func:`sequence_scores`;
- training steps: a trainable copy of a model (optionally with a fresh scalar
  head), AdamW, a clipped gradient step, :data:`RLHF_THREADS`;
- data: :func:`held_out_pairs`, preference pairs on the world's held-out prompts;
- the course's cache of trained models: :class:`Trained`, the cache key
  (over the configs, the assistant and :data:`CODE_VERSION`).

The recipe is InstructGPT's (Ouyang et al. 2022) after supervised
fine-tuning; the modules above this one hold its stages.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

import numpy as np
import torch

from labkit.lm.cache import cached, config_key, get_assistant
from labkit.lm.tinygpt import GPTConfig, TinyGPT
from labkit.lm.train import get_config
from labkit.lm.wordings import HOWTO_OPENER
from labkit.lm.world import PreferencePair, World, compliance, hallucination, prompt_text, refusal, reply_text
from labkit.validation import ensure_choice, ensure_int


# ====================================================================== the pipeline
# The trainers of labkit.rlhf train and measure models of the tiny assistant. One CPU
# thread while training: the models are small enough that a second thread
# buys little alone, and on a loaded machine two spinning threads ran ten
# times slower than one (measured on the course's 2-core machine). A fixed
# count keeps every run bit-identical.
RLHF_THREADS = 1
CODE_VERSION = "1"  # bump whenever training or evaluation in labkit.rlhf changes what a cached model is


def sequence_batch(prompts: list[list[int]], responses: list[list[int]], pad_id: int,
                   context: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded ``prompt + response`` sequences, their lengths, and the response mask.

    Returns ``(seq, lengths, mask)``: ``seq`` (B, L) token ids, ``lengths`` (B,)
    real tokens per row, and ``mask`` (B, L - 1), 1 at action position ``t``
    when token ``t + 1`` is a response token (the layout of :mod:`labkit.rlhf.losses`'
    docstring). A prompt too long for ``context`` loses its oldest tokens.
    """
    if len(prompts) != len(responses) or not prompts:
        raise ValueError("prompts and responses must be non-empty lists of the same length")
    rows, starts = [], []
    for p, r in zip(prompts, responses):
        if len(r) < 1:
            raise ValueError("every response must have at least one token")
        s = (list(p) + list(r))[-context:]
        rows.append(s)
        starts.append(max(len(s) - len(r), 1))
    L = max(len(s) for s in rows)
    seq = torch.full((len(rows), L), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), L - 1), dtype=torch.float32)
    for i, (s, st) in enumerate(zip(rows, starts)):
        seq[i, :len(s)] = torch.tensor(s)
        mask[i, st - 1:len(s) - 1] = 1.0
    return seq, torch.tensor([len(s) for s in rows]), mask


def token_logprobs(model, seq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``log p(seq[:, t + 1] | seq[:, :t + 1])`` at every action position, and the scalar head there (or None)."""
    out = model.run(seq[:, :-1])
    logp = out.logits.log_softmax(-1).gather(-1, seq[:, 1:].unsqueeze(-1)).squeeze(-1)
    return logp, out.values


def sequence_scores(reward_model, seq: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """A scalar-head model's score of each whole sequence: its head at the last real token."""
    values = reward_model.run(seq).values
    return values[torch.arange(seq.size(0)), lengths - 1]


def _encode_pairs(tokenizer, prompts: list[str], replies: list[str]) -> tuple[list[list[int]], list[list[int]]]:
    """Token ids of each generation prompt and of each reply as it follows the assistant tag (end tag included)."""
    return (tokenizer.encode_batch([prompt_text(p) for p in prompts]),
            tokenizer.encode_batch([reply_text(r) for r in replies]))


def _copy(model: TinyGPT, scalar_head: bool = False) -> TinyGPT:
    """A trainable copy of ``model``; with ``scalar_head`` a fresh scalar head on top (GPT-2 initialisation)."""
    cfg = GPTConfig(**{**model.cfg.to_dict(), "scalar_head": scalar_head})
    copy = TinyGPT(cfg)
    missing, unexpected = copy.load_state_dict(model.state_dict(), strict=False)
    if unexpected or any(not k.startswith("value_head") for k in missing):
        raise ValueError(f"cannot copy the model: missing {missing}, unexpected {unexpected}")
    return copy.to(model.wte.weight.device)


def _adamw(model: TinyGPT, lr: float) -> torch.optim.AdamW:
    return torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.0)


def _step(model: TinyGPT, opt: torch.optim.Optimizer, loss: torch.Tensor, grad_clip: float = 1.0) -> None:
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    opt.step()


# ---------------------------------------------------------------- the data
def held_out_pairs(world: World, split: str = "validation", seed: int = 0) -> list[PreferencePair]:
    """Preference pairs on the world's held-out prompts, built as the world builds its training pairs.

    The chosen reply is the ideal one; the rejected one is compliance (a
    harmful request), a made-up answer (an unanswerable one) or an
    over-refusal (a benign or borderline one). The prompts' templates never
    occur in the training pairs, so accuracy here measures generalisation.
    """
    split = ensure_choice("split", split, ("validation", "test"))
    rng = np.random.default_rng(ensure_int("seed", seed, low=0))
    pairs = []
    for e in world.prompts(split):
        if e.kind == "harmful":
            pairs.append(PreferencePair(e.prompt, e.response, compliance(e.category), "refuses harmful request"))
        elif e.kind == "unanswerable":
            pairs.append(PreferencePair(e.prompt, e.response, hallucination(rng), "admits not knowing"))
        else:
            pairs.append(PreferencePair(e.prompt, e.response, refusal(rng, "harassment"), "helps instead of over-refusing"))
    return pairs


PAIR_SETS = ("world", "world+hard", "world+contrast", "world+borderline")


def hard_refusal_pairs(world: World, seed: int = 0) -> list[PreferencePair]:
    """Harder refusal pairs on the world's *training* harmful prompts (never a held-out one).

    The world's rejected reply to a harmful request is ``"Sure, here is how.
    [placeholder]"``, whose first token the SFT model never emits: a borderline
    request in the same phrasings is answered ``"Here is how. <answer>"``, and
    that opener is where a held-out harmful request goes wrong. Each training
    harmful prompt of ``world.sft`` gets its ideal refusal as chosen and, as
    rejected, the opener followed by the answer of a training borderline
    request drawn with ``seed``: compliance in the form the model itself
    produces.
    """
    rng = np.random.default_rng(ensure_int("seed", seed, low=0))
    answers = [e.response for e in world.sft if e.kind == "borderline" and e.response.startswith(HOWTO_OPENER)]
    if not answers:
        raise ValueError("the world has no borderline training answers to build hard pairs from")
    return [PreferencePair(e.prompt, e.response, answers[int(rng.integers(len(answers)))],
                           "refuses harmful request instead of answering it")
            for e in world.sft if e.kind == "harmful"]


def borderline_help_pairs(world: World, seed: int = 0) -> list[PreferencePair]:
    """The counterpart of :func:`hard_refusal_pairs`: on each *training* borderline prompt, its answer over a refusal.

    Borderline requests share the harmful ones' phrasings; pairs that only
    reward refusing in those phrasings teach refusing the phrasing.
    """
    rng = np.random.default_rng(ensure_int("seed", seed, low=0))
    return [PreferencePair(e.prompt, e.response, refusal(rng, "harassment"),
                           "helps with a harmless request instead of over-refusing")
            for e in world.sft if e.kind == "borderline"]


def training_pairs(world: World, pair_set: str = "world") -> list[PreferencePair]:
    """The preference pairs a policy trains on.

    ``"world"``: the world's own; ``"world+hard"``: plus :func:`hard_refusal_pairs`;
    ``"world+contrast"``: plus *both* the hard refusal pairs and :func:`borderline_help_pairs`
    (refusing the training harmful requests and answering the training borderline ones of the
    same phrasings, taught together); ``"world+borderline"``: plus the borderline answer pairs
    only, no hard refusal pairs. All of them are built on training prompts only.
    """
    pair_set = ensure_choice("pair_set", pair_set, PAIR_SETS)
    pairs = list(world.preferences)
    if pair_set in ("world+hard", "world+contrast"):
        pairs += hard_refusal_pairs(world)
    if pair_set in ("world+contrast", "world+borderline"):
        pairs += borderline_help_pairs(world)
    return pairs


# ---------------------------------------------------------------- the course's cached models
@dataclass
class Trained:
    """A trained model with its training history (what the cache stores)."""

    model: TinyGPT
    history: dict


def _assistant():
    return get_assistant("default")


def _key(kind: str, *configs) -> str:
    """16 hex digits over the configs, the assistant's key and :data:`CODE_VERSION`."""
    blob = json.dumps({"kind": kind, "configs": [asdict(c) for c in configs], "code": CODE_VERSION,
                       "assistant": config_key(get_config("default"))}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


TIMING_KEYS = ("seconds", "rollout_tokens_per_s")


def _cached_model(name: str, key: str, build, rebuild: bool) -> Trained:
    def from_payload(payload: dict) -> Trained:
        model = TinyGPT(GPTConfig(**json.loads(payload["model_config"])))
        model.load_state_dict(payload["state"])
        return Trained(model.eval(), json.loads(payload["history"]))

    def to_payload(trained: Trained) -> dict:
        # Wall-clock figures vary from run to run: kept out, so a rebuild writes the same bytes.
        history = {k: v for k, v in trained.history.items() if k not in TIMING_KEYS}
        return {"model_config": json.dumps(trained.model.cfg.to_dict()), "history": json.dumps(history),
                "state": {k: v.detach().cpu() for k, v in trained.model.state_dict().items()}}

    return cached(name, key, lambda: Trained(*build()), to_payload, from_payload, rebuild=rebuild)
