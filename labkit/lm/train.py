"""Pretraining and supervised fine-tuning (SFT) of the tiny assistant.

Both loops follow nanoGPT: AdamW (Loshchilov & Hutter 2019) with weight decay
on matrices only, or Muon (Jordan et al. 2024) for the transformer blocks'
weight matrices, linear warmup then cosine decay of the learning rate
(Loshchilov & Hutter 2017, SGDR eq. 5), gradient clipping (Pascanu et al. 2013)
and a held-out loss. Pretraining predicts every next token of packed web-like
documents; SFT (Ouyang et al. 2022, InstructGPT step 1) predicts only the
assistant's tokens of a demonstration.

Training is deterministic on the CPU: seeded torch generators, and a fixed
number of CPU threads while training (:data:`TRAIN_THREADS`, whatever the
machine has), so a checkpoint is the same whoever builds it and the lessons'
stored outputs reproduce.

Configs: ``tiny`` (unit tests, seconds), ``default`` (two CPU cores, under 90 s for
pretraining plus SFT), ``large`` (a GPU).
"""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import asdict, dataclass, field

import torch

from labkit.core import progress
from labkit.lm.tinygpt import GPTConfig, TinyGPT
from labkit.lm.tokenizer import Tokenizer
from labkit.validation import ensure_choice, ensure_float, ensure_int
from labkit.lm.world import DEFAULT_SYSTEM, World, format_dialogue, make_world, prompt_text, reply_text


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a trained assistant (and so its cache key)."""

    name: str
    model: GPTConfig
    world: dict = field(default_factory=dict)
    pretrain_steps: int = 300
    sft_steps: int = 150
    batch_size: int = 16
    sft_batch_size: int = 32
    lr: float = 3e-3
    sft_lr: float = 1e-3
    warmup: int = 30
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    seed: int = 0
    optimizer: str = "adamw"  # "muon": Muon for the blocks' matrices, AdamW for the rest (make_optimizer)
    muon_lr: float = 0.02  # Muon's peak learning rate in pretraining; SFT scales it by sft_lr / lr

    def to_dict(self) -> dict:
        d = asdict(self)
        d["model"] = self.model.to_dict()
        return d


CONFIGS: dict[str, TrainConfig] = {
    "tiny": TrainConfig("tiny", GPTConfig(vocab_size=320, context=64, n_layer=1, n_head=2, d_model=32),
                        dict(n_pretrain=300, n_sft=200, n_eval_per_category=4), pretrain_steps=40, sft_steps=20,
                        batch_size=8, sft_batch_size=16, warmup=5),
    # A high peak learning rate matters more than size here: at 3e-3 the model
    # had not yet learned to copy the question's subject after a minute. For the
    # same reason a narrow model wins: d 64 processes a third more tokens per
    # second than d 96, and in the same time the extra tokens buy more than the
    # width did. Muon for the blocks' matrices buys more still per step, for
    # about a tenth more time per step. Mean of seeds 0-3 on the validation
    # split, with Muon, the message-initial space (labkit.lm.world.format_dialogue) and
    # equal harmful and borderline SFT shares: SFT refusal 0.89, helpfulness
    # 0.86, over-refusal 0.20, base helpfulness 0.78; the AdamW model before
    # those three changes (seeds 0-2): 0.89, 0.78, 0.27 and 0.63. Settings were
    # chosen on the validation split only.
    "default": TrainConfig("default", GPTConfig(vocab_size=1024, context=96, n_layer=2, n_head=4, d_model=64),
                           dict(n_pretrain=3000, n_sft=2000, n_eval_per_category=20), pretrain_steps=950, sft_steps=300,
                           batch_size=16, sft_batch_size=32, lr=8e-3, sft_lr=3e-3, optimizer="muon", muon_lr=0.02),
    "large": TrainConfig("large", GPTConfig(vocab_size=1024, context=256, n_layer=6, n_head=8, d_model=384, dropout=0.1),
                         dict(n_pretrain=20000, n_sft=8000, n_eval_per_category=50), pretrain_steps=3000, sft_steps=1000,
                         batch_size=64, sft_batch_size=64, lr=1e-3, sft_lr=3e-4, warmup=200),
}


def get_config(name: str) -> TrainConfig:
    """The named :class:`TrainConfig` (``tiny``, ``default`` or ``large``)."""
    return CONFIGS[ensure_choice("name", name, sorted(CONFIGS))]


def lr_at(step: int, total: int, peak: float, warmup: int, floor: float = 0.1) -> float:
    """Linear warmup to ``peak``, then cosine decay to ``floor * peak`` (SGDR eq. 5)."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress_ = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress_)))


# Two threads: 1.6x the throughput of one on a 2-core laptop, and still
# bit-identical from run to run because the thread count is fixed.
TRAIN_THREADS = 2


@contextlib.contextmanager
def cpu_threads(n: int = TRAIN_THREADS):
    """Temporarily use ``n`` torch CPU threads (training is then bit-reproducible)."""
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def make_optimizer(model: torch.nn.Module, lr: float, weight_decay: float, optimizer: str = "adamw",
                   muon_lr: float = 0.02) -> torch.optim.AdamW | OptimizerPair:
    """AdamW with decay on matrices only (not on biases, LayerNorms), as in nanoGPT.

    With ``optimizer="muon"`` the blocks' weight matrices are trained by
    :class:`Muon` instead, with peak learning rate ``muon_lr``. Muon is defined
    for hidden 2-D weights only, so the embeddings (tied to the output layer),
    biases and LayerNorms stay with AdamW. Every param group carries
    ``lr_scale``: the training loops set ``lr = schedule * lr_scale``, so one
    warmup-and-cosine schedule drives both optimizers.
    """
    optimizer = ensure_choice("optimizer", optimizer, ("adamw", "muon"))
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    hidden = [p for n, p in params if p.dim() == 2 and n.startswith("blocks.")] if optimizer == "muon" else []
    taken = {id(p) for p in hidden}
    decay = [p for n, p in params if p.dim() >= 2 and id(p) not in taken]
    no_decay = [p for n, p in params if p.dim() < 2]
    adamw = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay, "lr_scale": 1.0},
                               {"params": no_decay, "weight_decay": 0.0, "lr_scale": 1.0}], lr=lr, betas=(0.9, 0.95),
                              fused=True)  # one kernel for all tensors: same update, a third of the time
    if not hidden:
        return adamw
    muon_lr = ensure_float("muon_lr", muon_lr, low=0.0, low_open=True)
    muon = Muon([{"params": hidden, "lr_scale": muon_lr / lr}], lr=muon_lr, weight_decay=weight_decay)
    return OptimizerPair(adamw, muon)


def newton_schulz(g: torch.Tensor, steps: int = 5) -> torch.Tensor:
    """Approximately orthogonalise matrices ``g`` (``U S V^T -> U S' V^T`` with ``S'`` near 1).

    The quintic iteration ``X <- a X + b (X X^T) X + c (X X^T)^2 X`` of Jordan
    et al. (2024), with coefficients chosen for a steep slope at zero: five
    steps bring every singular value into about [0.5, 1.5]. ``g`` is one matrix
    or a stack of equally shaped ones (``(..., A, B)``). Float32 throughout: the
    reference's bfloat16 is fast on GPUs but over ten times slower on this CPU.
    """
    a, b, c = 3.4445, -4.7750, 2.0315
    x = g.float().reshape(-1, *g.shape[-2:])  # a stack, even of one matrix
    tall = x.size(-2) > x.size(-1)
    if tall:  # iterate on the smaller Gram matrix
        x = x.mT
    x = x / x.norm(dim=(-2, -1), keepdim=True).clamp(min=1e-7)  # singular values now at most 1
    for _ in range(steps):
        gram = x @ x.mT
        poly = torch.baddbmm(gram, gram, gram, beta=b, alpha=c)  # b G + c G^2
        x = torch.baddbmm(x, poly, x, beta=a)  # a X + (b G + c G^2) X
    return (x.mT if tall else x).reshape(g.shape).to(g.dtype)


class Muon(torch.optim.Optimizer):
    """Muon: momentum orthogonalised by Newton-Schulz, for 2-D weight matrices.

    Jordan et al. (2024), "Muon: an optimizer for hidden layers"; Liu et al.
    (2025), "Muon is scalable", eq. 1. Per matrix ``W`` of shape ``(A, B)``::

        m <- mu m + (1 - mu) g              (momentum)
        u <- (1 - mu) g + mu m              (Nesterov look-ahead)
        W <- (1 - lr wd) W - lr sqrt(max(1, A / B)) newton_schulz(u)

    The same update as ``torch.optim.Muon`` with its default settings, with the
    iteration in float32 (:func:`newton_schulz`) and run once per stack of
    equally shaped matrices.
    """

    def __init__(self, params, lr: float = 0.02, momentum: float = 0.95, weight_decay: float = 0.0, ns_steps: int = 5):
        ensure_float("lr", lr, low=0.0, low_open=True)
        ensure_float("momentum", momentum, 0.0, 1.0, high_open=True)
        ensure_float("weight_decay", weight_decay, low=0.0)
        ensure_int("ns_steps", ns_steps, low=1)
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay, ns_steps=ns_steps))
        for group in self.param_groups:
            for p in group["params"]:
                if p.dim() != 2:
                    raise ValueError(f"Muon trains 2-D weight matrices only, got a parameter of shape {tuple(p.shape)}")

    @torch.no_grad()
    def step(self) -> None:
        for group in self.param_groups:
            lr, mu = group["lr"], group["momentum"]
            # Stack matrices of one shape, up to a transpose (A x B with B x A), so the
            # iteration runs once per stack: fewer, larger matrix products.
            stacks: dict[tuple, list] = {}
            for p in group["params"]:
                if p.grad is not None:
                    stacks.setdefault(tuple(sorted(p.shape)), []).append(p)
            for ps in stacks.values():
                looks = []
                for p in ps:
                    m = self.state[p].setdefault("momentum", torch.zeros_like(p))
                    m.lerp_(p.grad, 1 - mu)
                    look = p.grad.lerp(m, mu)
                    looks.append(look.T if p.size(0) > p.size(1) else look)
                updates = newton_schulz(torch.stack(looks), group["ns_steps"])
                for p, u in zip(ps, updates):
                    p.mul_(1 - lr * group["weight_decay"])
                    p.add_(u.T if p.size(0) > p.size(1) else u, alpha=-lr * math.sqrt(max(1.0, p.size(0) / p.size(1))))


class OptimizerPair:
    """Two optimizers stepped together (Muon for hidden matrices, AdamW for the rest)."""

    def __init__(self, *optimizers: torch.optim.Optimizer):
        self.optimizers = optimizers

    @property
    def param_groups(self) -> list[dict]:
        return [g for opt in self.optimizers for g in opt.param_groups]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        for opt in self.optimizers:
            opt.step()


# ------------------------------------------------------------------- data
def pack_documents(tokenizer: Tokenizer, docs: list[str]) -> torch.Tensor:
    """One long stream of token ids, documents separated by the end token."""
    ids: list[int] = []
    for seq in tokenizer.encode_batch(docs):
        ids.extend(seq)
        if not seq or seq[-1] != tokenizer.end_id:
            ids.append(tokenizer.end_id)
    return torch.tensor(ids, dtype=torch.long)


def sft_tensors(tokenizer: Tokenizer, pairs: list[tuple[str, str]], context: int, system_every: int = 4):
    """Token ids, next-token targets and the assistant-only loss mask of SFT pairs.

    Every ``system_every``-th dialogue carries the default system prompt.
    Returns ``(idx, targets, mask)``, right-padded to the longest dialogue.
    """
    rows, masks = [], []
    for i, (prompt, response) in enumerate(pairs):
        system = DEFAULT_SYSTEM if system_every and i % system_every == 0 else None
        head = tokenizer.encode(prompt_text(prompt, system))
        tail = tokenizer.encode(reply_text(response))
        seq = (head + tail)[-(context + 1):]
        n_tail = min(len(tail), len(seq) - 1)
        rows.append(seq)
        masks.append([False] * (len(seq) - n_tail) + [True] * n_tail)
    T = max(len(r) for r in rows) - 1
    idx = torch.full((len(rows), T), tokenizer.pad_id, dtype=torch.long)
    tgt = torch.full((len(rows), T), tokenizer.pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), T), dtype=torch.bool)
    for i, (r, m) in enumerate(zip(rows, masks)):
        idx[i, : len(r) - 1] = torch.tensor(r[:-1])
        tgt[i, : len(r) - 1] = torch.tensor(r[1:])
        mask[i, : len(r) - 1] = torch.tensor(m[1:])  # target j is token j+1
    return idx, tgt, mask


# ------------------------------------------------------------------- loops
@dataclass
class History:
    """Losses recorded during training (``step``, ``train``, ``val``)."""

    stage: str
    steps: list = field(default_factory=list)
    train_loss: list = field(default_factory=list)
    val_steps: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    tokens: int = 0
    seconds: float = 0.0


def _optimizer_step(model: torch.nn.Module, opt: torch.optim.Optimizer, loss: torch.Tensor, grad_clip: float) -> None:
    """One update: fresh gradients, global-norm clipping, then the AdamW step."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    opt.step()


def pretrain(model: TinyGPT, stream: torch.Tensor, steps: int, batch_size: int, lr: float, warmup: int,
             weight_decay: float = 0.1, grad_clip: float = 1.0, seed: int = 0, val_fraction: float = 0.05,
             eval_every: int = 50, optimizer: str = "adamw", muon_lr: float = 0.02) -> History:
    """Next-token pretraining on random windows of a packed token stream.

    The last ``val_fraction`` of the stream is held out for the validation loss.
    ``optimizer`` and ``muon_lr``: see :func:`make_optimizer`.
    """
    steps = ensure_int("steps", steps, low=0)
    batch_size = ensure_int("batch_size", batch_size, low=1)
    lr = ensure_float("lr", lr, low=0.0, low_open=True)
    T = model.cfg.context
    device = model.wte.weight.device
    n_val = max(T + 2, int(len(stream) * ensure_float("val_fraction", val_fraction, 0.0, 0.5)))
    if len(stream) < n_val + T + 2:
        raise ValueError(f"stream has {len(stream)} tokens: too short for context {T}")
    train, val = stream[:-n_val], stream[-n_val:]
    g = torch.Generator().manual_seed(seed)
    opt = make_optimizer(model, lr, weight_decay, optimizer, muon_lr)
    hist = History("pretrain")
    offsets = torch.arange(T + 1)
    start = time.perf_counter()
    model.train()
    for step in progress(range(steps), desc="pretrain"):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, steps, lr, warmup) * group["lr_scale"]
        starts = torch.randint(0, len(train) - T - 1, (batch_size,), generator=g)
        chunk = train[starts[:, None] + offsets].to(device)
        _, loss = model(chunk[:, :-1], chunk[:, 1:])
        _optimizer_step(model, opt, loss, grad_clip)
        hist.steps.append(step)
        hist.train_loss.append(loss.item())
        hist.tokens += batch_size * T
        if (step + 1) % eval_every == 0 or step == steps - 1:
            hist.val_steps.append(step)
            hist.val_loss.append(stream_loss(model, val))
    hist.seconds = time.perf_counter() - start
    model.eval()
    return hist


@torch.no_grad()
def stream_loss(model: TinyGPT, stream: torch.Tensor, max_windows: int = 16) -> float:
    """Mean next-token loss over consecutive context windows of ``stream``."""
    T = model.cfg.context
    n = min(max_windows, (len(stream) - 1) // T)
    if n < 1:
        raise ValueError("stream is shorter than one context window")
    x = stream[: n * T].view(n, T).to(model.wte.weight.device)
    y = stream[1: n * T + 1].view(n, T).to(model.wte.weight.device)
    was = model.training
    model.eval()
    loss = model(x, y)[1].item()
    model.train(was)
    return loss


def sft(model: TinyGPT, tokenizer: Tokenizer, pairs: list[tuple[str, str]], steps: int, batch_size: int, lr: float,
        warmup: int, weight_decay: float = 0.0, grad_clip: float = 1.0, seed: int = 0, val_pairs=None,
        eval_every: int = 50, optimizer: str = "adamw", muon_lr: float = 0.02) -> History:
    """Supervised fine-tuning: cross-entropy on the assistant's tokens only.

    ``optimizer`` and ``muon_lr``: see :func:`make_optimizer`.
    """
    steps = ensure_int("steps", steps, low=0)
    batch_size = ensure_int("batch_size", batch_size, low=1)
    if not pairs:
        raise ValueError("pairs must be a non-empty list of (prompt, response)")
    device = model.wte.weight.device
    idx, tgt, mask = sft_tensors(tokenizer, pairs, model.cfg.context)
    val = sft_tensors(tokenizer, val_pairs, model.cfg.context) if val_pairs else None
    g = torch.Generator().manual_seed(seed)
    opt = make_optimizer(model, lr, weight_decay, optimizer, muon_lr)
    hist = History("sft")
    lengths = mask.long().cumsum(1).argmax(1) + 1  # last supervised position + 1
    start = time.perf_counter()
    model.train()
    for step in progress(range(steps), desc="sft"):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, steps, lr, warmup) * group["lr_scale"]
        rows = torch.randint(0, len(idx), (batch_size,), generator=g)
        T = int(lengths[rows].max())  # trim the padding every row of this batch shares
        _, loss = model(idx[rows, :T].to(device), tgt[rows, :T].to(device), mask[rows, :T].to(device))
        _optimizer_step(model, opt, loss, grad_clip)
        hist.steps.append(step)
        hist.train_loss.append(loss.item())
        hist.tokens += int(mask[rows].sum())
        if val is not None and ((step + 1) % eval_every == 0 or step == steps - 1):
            model.eval()
            with torch.no_grad():
                hist.val_steps.append(step)
                hist.val_loss.append(model(val[0].to(device), val[1].to(device), val[2].to(device))[1].item())
            model.train()
    hist.seconds = time.perf_counter() - start
    model.eval()
    return hist


@dataclass
class Assistant:
    """A trained tokenizer with the base (pretrained) and SFT models."""

    config: TrainConfig
    tokenizer: Tokenizer
    base: TinyGPT
    sft: TinyGPT
    world: World
    histories: dict = field(default_factory=dict)


def build_world(cfg: TrainConfig) -> World:
    return make_world(seed=cfg.seed, **cfg.world)


def train_assistant(cfg: TrainConfig | str = "default", device: torch.device | str | None = None) -> Assistant:
    """Generate the world, train the tokenizer, pretrain, then SFT.

    Deterministic on the CPU (:data:`TRAIN_THREADS` threads while training).

    Parameters
    ----------
    cfg : TrainConfig or str
        A config or the name of one in :data:`CONFIGS`.
    device : torch.device, str or None
        Where to train (default: CPU).

    Returns
    -------
    Assistant
    """
    if isinstance(cfg, str):
        cfg = get_config(cfg)
    if not isinstance(cfg, TrainConfig):
        raise TypeError(f"cfg must be a TrainConfig or a config name, got {type(cfg).__name__}")
    device = torch.device(device or "cpu")
    world = build_world(cfg)
    sft_pairs = [(e.prompt, e.response) for e in world.sft]
    tokenizer = Tokenizer.train(world.pretrain + [format_dialogue(p, r) for p, r in sft_pairs], cfg.model.vocab_size)
    mcfg = GPTConfig(**{**cfg.model.to_dict(), "vocab_size": tokenizer.vocab_size})
    threads = cpu_threads(TRAIN_THREADS) if device.type == "cpu" else contextlib.nullcontext()
    with threads:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            base = TinyGPT(mcfg).to(device)
        stream = pack_documents(tokenizer, world.pretrain)
        h_pre = pretrain(base, stream, cfg.pretrain_steps, cfg.batch_size, cfg.lr, cfg.warmup, cfg.weight_decay,
                         cfg.grad_clip, cfg.seed, optimizer=cfg.optimizer, muon_lr=cfg.muon_lr)
        model = TinyGPT(mcfg).to(device)
        model.load_state_dict(base.state_dict())
        n_val = max(1, len(sft_pairs) // 20)
        h_sft = sft(model, tokenizer, sft_pairs[n_val:], cfg.sft_steps, cfg.sft_batch_size, cfg.sft_lr,
                    max(1, cfg.warmup // 2), 0.0, cfg.grad_clip, cfg.seed + 1, val_pairs=sft_pairs[:n_val],
                    optimizer=cfg.optimizer, muon_lr=cfg.muon_lr * cfg.sft_lr / cfg.lr)
    base.eval()
    model.eval()
    return Assistant(cfg, tokenizer, base, model, world, {"pretrain": h_pre, "sft": h_sft})


__all__ = ["TrainConfig", "CONFIGS", "get_config", "lr_at", "pretrain", "sft", "sft_tensors", "pack_documents",
           "stream_loss", "train_assistant", "Assistant", "History", "build_world", "make_optimizer", "cpu_threads",
           "Muon", "newton_schulz", "OptimizerPair"]
