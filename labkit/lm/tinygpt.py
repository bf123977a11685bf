"""TinyGPT: a small decoder-only transformer, nanoGPT style.

Architecture as in GPT-2 (Radford et al. 2019): learned token and position
embeddings, pre-LayerNorm blocks ``x + attn(ln(x))``, ``x + mlp(ln(x))``, causal
multi-head self-attention (Vaswani et al. 2017, eq. 1:
``softmax(Q K^T / sqrt(d_k)) V``), a GELU MLP, a final LayerNorm, and an output
layer tied to the token embedding (Press & Wolf 2017).

Beyond next-token logits it can return every layer's attention map and
residual stream (interpretability), score ``log p(response | prompt)`` (reward
models, DPO, bias probes), carry an optional scalar head (reward or value), and
sample in batches with a key/value cache.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from labkit.validation import ensure_float, ensure_int


@dataclass(frozen=True)
class GPTConfig:
    """Shape of a TinyGPT."""

    vocab_size: int = 512
    context: int = 128
    n_layer: int = 3
    n_head: int = 4
    d_model: int = 128
    dropout: float = 0.0
    scalar_head: bool = False

    def __post_init__(self) -> None:
        ensure_int("vocab_size", self.vocab_size, low=2)
        ensure_int("context", self.context, low=2)
        ensure_int("n_layer", self.n_layer, low=1)
        ensure_int("n_head", self.n_head, low=1)
        ensure_int("d_model", self.d_model, low=1)
        ensure_float("dropout", self.dropout, 0.0, 1.0, high_open=True)
        if self.d_model % self.n_head:
            raise ValueError(f"d_model must be divisible by n_head, got {self.d_model} and {self.n_head}")

    def to_dict(self) -> dict:
        return asdict(self)


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.n_head, self.d_model = cfg.n_head, cfg.d_model
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)
        self.dropout = cfg.dropout

    def forward(self, x, mask=None, cache=None, need_attention=False):
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        if cache is not None:  # (k, v) of earlier positions
            if cache[0] is not None:
                k, v = torch.cat([cache[0], k], dim=2), torch.cat([cache[1], v], dim=2)
            new_cache = (k, v)
        else:
            new_cache = None
        attention = None
        if need_attention:
            # Vaswani et al. (2017), eq. 1, written out so the map can be returned.
            scores = (q @ k.transpose(-2, -1)) / math.sqrt(k.size(-1))
            if mask is None:
                mask = torch.ones(T, k.size(2), dtype=torch.bool, device=x.device).tril(k.size(2) - T)
            attention = scores.masked_fill(~mask, float("-inf")).softmax(dim=-1)
            y = attention @ v
        elif mask is None and cache is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=self.dropout if self.training else 0.0)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return F.dropout(self.proj(y), self.dropout, self.training), new_cache, attention


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(cfg.d_model), nn.LayerNorm(cfg.d_model)
        self.attn = CausalSelfAttention(cfg)
        self.mlp = nn.Sequential(nn.Linear(cfg.d_model, 4 * cfg.d_model), nn.GELU(), nn.Linear(4 * cfg.d_model, cfg.d_model),
                                 nn.Dropout(cfg.dropout))

    def forward(self, x, mask=None, cache=None, need_attention=False):
        a, new_cache, attention = self.attn(self.ln1(x), mask, cache, need_attention)
        x = x + a
        return x + self.mlp(self.ln2(x)), new_cache, attention


@dataclass
class GPTOutput:
    """What :meth:`TinyGPT.run` returns.

    ``hidden_states`` holds the residual stream after the embedding and after
    each block (``n_layer + 1`` tensors of shape ``(B, T, d_model)``);
    ``attentions`` one ``(B, n_head, T, T)`` map per layer; ``values`` the
    scalar head per position ``(B, T)``, when the model has one.
    """

    logits: torch.Tensor
    loss: torch.Tensor | None = None
    hidden_states: list | None = None
    attentions: list | None = None
    values: torch.Tensor | None = None


class TinyGPT(nn.Module):
    """A nanoGPT-style decoder-only transformer (see the module docstring)."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        if not isinstance(cfg, GPTConfig):
            raise TypeError(f"cfg must be a GPTConfig, got {type(cfg).__name__}")
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.wpe = nn.Embedding(cfg.context, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # weight tying (Press & Wolf 2017)
        self.value_head = nn.Linear(cfg.d_model, 1) if cfg.scalar_head else None
        self.apply(self._init)
        for name, p in self.named_parameters():  # GPT-2: scale residual projections by 1/sqrt(2 L)
            if name.endswith("proj.weight") or name.endswith("mlp.2.weight"):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, 0.0, 0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def num_params(self) -> int:
        """Parameters, counting the tied embedding once."""
        return sum(p.numel() for p in self.parameters())

    # ------------------------------------------------------------------ forward
    def run(self, idx: torch.Tensor, targets: torch.Tensor | None = None, loss_mask: torch.Tensor | None = None,
            pad_mask: torch.Tensor | None = None, return_hidden: bool = False, return_attention: bool = False) -> GPTOutput:
        """Full forward pass.

        Parameters
        ----------
        idx : LongTensor (B, T)
            Token ids, ``T <= context``.
        targets : LongTensor (B, T) or None
            Next-token targets; the loss is their mean cross-entropy.
        loss_mask : BoolTensor (B, T) or None
            Which targets count (e.g. assistant tokens only, for SFT).
        pad_mask : BoolTensor (B, T) or None
            True at real tokens; needed only for left padding.
        return_hidden, return_attention : bool
            Also return the residual stream / attention maps of every layer.

        Returns
        -------
        GPTOutput
        """
        if not isinstance(idx, torch.Tensor) or idx.ndim != 2 or idx.dtype != torch.long:
            raise TypeError("idx must be a LongTensor of shape (batch, time)")
        B, T = idx.shape
        if T < 1 or T > self.cfg.context:
            raise ValueError(f"idx length must be in [1, {self.cfg.context}] (the context), got {T}")
        pos, mask = self._positions_and_mask(pad_mask, B, T, idx.device, 0)
        x = self.wte(idx) + self.wpe(pos)
        hidden, attentions = [x] if return_hidden else None, [] if return_attention else None
        for block in self.blocks:
            x, _, att = block(x, mask, None, return_attention)
            if return_hidden:
                hidden.append(x)
            if return_attention:
                attentions.append(att if att.dim() == 4 else att.expand(B, -1, -1, -1))
        x = self.ln_f(x)
        logits = self.lm_head(x)
        loss = None
        if targets is not None:
            per_token = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), reduction="none")
            if loss_mask is None:
                loss = per_token.mean()
            else:
                w = loss_mask.reshape(-1).to(per_token.dtype)
                loss = (per_token * w).sum() / w.sum().clamp_min(1.0)
        values = self.value_head(x).squeeze(-1) if self.value_head is not None else None
        return GPTOutput(logits, loss, hidden, attentions, values)

    def forward(self, idx, targets=None, loss_mask=None):
        """``(logits, loss)``; see :meth:`run` for the details."""
        out = self.run(idx, targets, loss_mask)
        return out.logits, out.loss

    @staticmethod
    def _positions_and_mask(pad_mask, B, T, device, offset):
        if pad_mask is None:
            pos = torch.arange(offset, offset + T, device=device).unsqueeze(0).expand(B, T)
            return pos, None
        # Left padding: positions count real tokens only; each query attends to
        # earlier real keys and always to itself (so padded rows stay finite).
        pos = (pad_mask.long().cumsum(dim=1) - 1).clamp_min(0)
        causal = torch.ones(T, T, dtype=torch.bool, device=device).tril()
        mask = causal.unsqueeze(0) & pad_mask.unsqueeze(1)
        mask = mask | torch.eye(T, dtype=torch.bool, device=device).unsqueeze(0)
        return pos, mask.unsqueeze(1)

    # ------------------------------------------------------------------ scoring
    def sequence_logprob(self, prompts: list[list[int]], responses: list[list[int]], pad_id: int = 0,
                         mean: bool = False) -> torch.Tensor:
        """``log p(response | prompt)`` for each pair, summed (or averaged) over response tokens.

        Differentiable, so DPO and reward models can train through it. Prompts
        too long for the context lose their oldest tokens.

        Returns
        -------
        Tensor (N,)
        """
        if len(prompts) != len(responses) or not prompts:
            raise ValueError("prompts and responses must be non-empty lists of the same length")
        seqs, starts = [], []
        for p, r in zip(prompts, responses):
            if len(r) < 1:
                raise ValueError("every response must have at least one token")
            s = (list(p) + list(r))[-self.cfg.context - 1:]
            seqs.append(s)
            starts.append(len(s) - len(r))
        T = max(len(s) for s in seqs) - 1
        dev = self.wte.weight.device
        idx = torch.full((len(seqs), T), pad_id, dtype=torch.long, device=dev)
        tgt = torch.full((len(seqs), T), pad_id, dtype=torch.long, device=dev)
        m = torch.zeros((len(seqs), T), dtype=torch.bool, device=dev)
        for i, (s, st) in enumerate(zip(seqs, starts)):
            idx[i, : len(s) - 1] = torch.tensor(s[:-1], device=dev)
            tgt[i, : len(s) - 1] = torch.tensor(s[1:], device=dev)
            m[i, max(st - 1, 0): len(s) - 1] = True
        logp = self.run(idx).logits.log_softmax(-1).gather(-1, tgt.unsqueeze(-1)).squeeze(-1)
        total = (logp * m).sum(1)
        return total / m.sum(1) if mean else total

    # ---------------------------------------------------------------- sampling
    @torch.no_grad()
    def generate(self, prompts: list[list[int]], max_new_tokens: int = 32, sample: bool = False, temperature: float = 1.0,
                 top_k: int | None = None, stop_id: int | None = None, pad_id: int = 0,
                 generator: torch.Generator | None = None) -> list[list[int]]:
        """Continue each prompt, in one batch, with a key/value cache.

        Parameters
        ----------
        prompts : list of list of int
            Token ids, each non-empty. A prompt longer than
            ``context - max_new_tokens`` is truncated from the left, with a warning.
        max_new_tokens : int >= 1
        sample : bool
            False: greedy (argmax). True: sample from ``softmax(logits / temperature)``.
        temperature : float > 0
            Only used when sampling.
        top_k : int or None
            Keep only the ``top_k`` most likely tokens when sampling.
        stop_id : int or None
            A sequence stops after producing this id (which is not returned).
        generator : torch.Generator or None
            Source of randomness when sampling (pass one for reproducibility).

        Returns
        -------
        list of list of int
            The new tokens of each prompt.
        """
        max_new_tokens = ensure_int("max_new_tokens", max_new_tokens, low=1, high=self.cfg.context - 1)
        if sample:
            temperature = ensure_float("temperature", temperature, low=0.0, low_open=True)
        if top_k is not None:
            top_k = ensure_int("top_k", top_k, low=1, high=self.cfg.vocab_size)
        rows = self._fit_prompts(prompts, max_new_tokens)
        was_training = self.training
        self.eval()
        logits, state = self._prefill(rows, pad_id)
        out: list[list[int]] = [[] for _ in rows]
        done = [False] * len(rows)
        for _ in range(max_new_tokens):
            token = _next_token(logits, sample, temperature, top_k, generator)
            if _append(out, done, token.tolist(), stop_id):
                break
            logits = self._decode_step(token, state)
        self.train(was_training)
        return out

    def _fit_prompts(self, prompts, max_new_tokens: int) -> list[list[int]]:
        """Check the prompts and keep the last ``context - max_new_tokens`` tokens of each."""
        if not isinstance(prompts, (list, tuple)) or not prompts:
            raise ValueError("prompts must be a non-empty list of token-id lists")
        keep = self.cfg.context - max_new_tokens
        rows = []
        for i, p in enumerate(prompts):
            p = list(p)
            if not p:
                raise ValueError(f"prompt {i} is empty: give at least one token (e.g. the assistant tag)")
            if len(p) > keep:
                warnings.warn(f"prompt {i} has {len(p)} tokens; keeping the last {keep} so that "
                              f"{max_new_tokens} new tokens fit the context of {self.cfg.context}", stacklevel=4)
                p = p[-keep:]
            rows.append(p)
        return rows

    def _prefill(self, rows: list[list[int]], pad_id: int) -> tuple[torch.Tensor, dict]:
        """Run the left-padded prompts through the model once.

        Returns the last position's logits and the decoding state: every
        block's key/value cache, which keys are real tokens, and each row's
        next position.
        """
        dev = self.wte.weight.device
        B, P = len(rows), max(len(r) for r in rows)
        idx = torch.full((B, P), pad_id, dtype=torch.long, device=dev)
        pad_mask = torch.zeros((B, P), dtype=torch.bool, device=dev)
        for i, r in enumerate(rows):  # left padding puts every last prompt token at column P-1
            idx[i, P - len(r):] = torch.tensor(r, device=dev)
            pad_mask[i, P - len(r):] = True
        pos, mask = self._positions_and_mask(pad_mask, B, P, dev, 0)
        caches = [(None, None)] * len(self.blocks)
        x = self.wte(idx) + self.wpe(pos)
        for j, block in enumerate(self.blocks):
            x, caches[j], _ = block(x, mask, caches[j])
        state = {"caches": caches, "key_mask": pad_mask, "next_pos": pos[:, -1] + 1}
        return self.lm_head(self.ln_f(x[:, -1])), state

    def _decode_step(self, token: torch.Tensor, state: dict) -> torch.Tensor:
        """Feed one new token per row through the cached model; the next logits (``state`` advances)."""
        B, dev = token.size(0), token.device
        state["key_mask"] = torch.cat([state["key_mask"], torch.ones(B, 1, dtype=torch.bool, device=dev)], dim=1)
        step_mask = state["key_mask"][:, None, None, :]
        x = self.wte(token[:, None]) + self.wpe(state["next_pos"].clamp_max(self.cfg.context - 1))[:, None]
        caches = state["caches"]
        for j, block in enumerate(self.blocks):
            x, caches[j], _ = block(x, step_mask, caches[j])
        state["next_pos"] = state["next_pos"] + 1
        return self.lm_head(self.ln_f(x[:, -1]))


def _next_token(logits: torch.Tensor, sample: bool, temperature: float, top_k: int | None,
                generator: torch.Generator | None) -> torch.Tensor:
    """Greedy argmax, or a draw from ``softmax(logits / temperature)`` restricted to the ``top_k`` best."""
    if not sample:
        return logits.argmax(-1)
    logits = logits / temperature
    if top_k is not None:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    return torch.multinomial(logits.softmax(-1), 1, generator=generator).squeeze(1)


def _append(out: list[list[int]], done: list[bool], tokens: list[int], stop_id: int | None) -> bool:
    """Append each unfinished row's token (a stop token finishes the row instead); True when all rows are done."""
    for i, t in enumerate(tokens):
        if done[i]:
            continue
        if stop_id is not None and t == stop_id:
            done[i] = True
        else:
            out[i].append(t)
    return all(done)


__all__ = ["GPTConfig", "TinyGPT", "GPTOutput"]
