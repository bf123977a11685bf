import math

import pytest
import torch

from labkit.lm import train
from labkit.lm.tinygpt import GPTConfig, TinyGPT
from labkit.lm.tokenizer import Tokenizer
from labkit.lm.world import make_world


@pytest.fixture(scope="module")
def tiny():
    return train.train_assistant("tiny")


def test_lr_schedule_hand_values():
    assert train.lr_at(0, 100, 1.0, 10) == pytest.approx(0.1)
    assert train.lr_at(9, 100, 1.0, 10) == pytest.approx(1.0)
    assert train.lr_at(10, 100, 1.0, 10) == pytest.approx(1.0)
    assert train.lr_at(55, 100, 1.0, 10) == pytest.approx(0.1 + 0.9 * 0.5)  # half-way through the cosine
    assert train.lr_at(100, 100, 1.0, 10) == pytest.approx(0.1)


def test_sft_mask_covers_exactly_the_assistant_reply():
    tok = Tokenizer.train(make_world(0, n_pretrain=100, n_sft=5).pretrain, 300)
    idx, tgt, mask = train.sft_tensors(tok, [("What is 1 plus 2?", "1 plus 2 is 3."), ("Hi", "Hello there.")], 64, system_every=0)
    for i, reply in enumerate(["1 plus 2 is 3.", "Hello there."]):
        supervised = tgt[i][mask[i]].tolist()
        assert supervised == tok.encode(" " + reply + "<|end|>")
    assert not mask[1, -1]  # padding never counts


def test_training_is_deterministic_and_learns(tiny):
    again = train.train_assistant("tiny")
    for a, b in zip(tiny.sft.state_dict().values(), again.sft.state_dict().values()):
        assert torch.equal(a, b)
    h = tiny.histories["pretrain"]
    assert h.train_loss[-1] < h.train_loss[0] - 1.0
    assert h.val_loss[-1] < math.log(tiny.tokenizer.vocab_size)
    assert tiny.histories["sft"].val_loss[-1] < tiny.histories["sft"].val_loss[0] + 1e-6


def test_sft_starts_from_base_and_only_sft_changes(tiny):
    # the base model is a separate copy: SFT did not modify it
    diff = sum((a - b).abs().sum().item() for a, b in zip(tiny.base.parameters(), tiny.sft.parameters()))
    assert diff > 0


def test_pretrain_matches_a_plain_loop():
    """Our loop, with warmup = 0, a constant schedule and no clipping, equals a bare PyTorch loop."""
    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=30, context=8, n_layer=1, n_head=1, d_model=8)
    a, b = TinyGPT(cfg), TinyGPT(cfg)
    b.load_state_dict(a.state_dict())
    stream = torch.randint(0, 30, (400,))
    train.pretrain(a, stream, steps=3, batch_size=4, lr=1e-2, warmup=1, weight_decay=0.0, grad_clip=1e9, seed=5,
                   eval_every=100)
    opt = torch.optim.AdamW(b.parameters(), lr=1e-2, betas=(0.9, 0.95), weight_decay=0.0)
    g = torch.Generator().manual_seed(5)
    n_val = max(10, int(400 * 0.05))
    tr = stream[:-n_val]
    for step in range(3):
        for group in opt.param_groups:
            group["lr"] = train.lr_at(step, 3, 1e-2, 1)
        s = torch.randint(0, len(tr) - 9, (4,), generator=g)
        chunk = tr[s[:, None] + torch.arange(9)]
        loss = b(chunk[:, :-1], chunk[:, 1:])[1]
        opt.zero_grad()
        loss.backward()
        opt.step()
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q)


def test_bad_arguments():
    with pytest.raises(ValueError, match="name"):
        train.get_config("huge")
    m = TinyGPT(GPTConfig(vocab_size=30, context=8, n_layer=1, n_head=1, d_model=8))
    with pytest.raises(ValueError, match="too short"):
        train.pretrain(m, torch.randint(0, 30, (12,)), 1, 2, 1e-3, 1)
    with pytest.raises(ValueError, match="lr"):
        train.pretrain(m, torch.randint(0, 30, (400,)), 1, 2, 0.0, 1)
    with pytest.raises(ValueError, match="optimizer"):
        train.make_optimizer(m, 1e-3, 0.1, optimizer="sgd")
    with pytest.raises(ValueError, match="muon_lr"):
        train.make_optimizer(m, 1e-3, 0.1, optimizer="muon", muon_lr=0.0)


def test_muon_takes_the_hidden_matrices_and_orthogonalises_their_update():
    torch.manual_seed(0)
    m = TinyGPT(GPTConfig(vocab_size=40, context=8, n_layer=2, n_head=2, d_model=16))
    opt = train.make_optimizer(m, 1e-3, 0.0, optimizer="muon", muon_lr=0.02)
    adamw, muon = opt.optimizers
    owner = {id(p): type(o).__name__ for o in (adamw, muon) for g in o.param_groups for p in g["params"]}
    named = dict(m.named_parameters())
    assert len(owner) == len(list(m.parameters()))  # every parameter exactly once (wte and lm_head are one tensor)
    for name, p in named.items():
        hidden = name.startswith("blocks.") and p.dim() == 2
        assert owner[id(p)] == ("Muon" if hidden else "AdamW"), name
    assert all(g["lr_scale"] == pytest.approx(0.02 / 1e-3) for g in muon.param_groups)
    # One step from rest: Muon moves a matrix by lr * sqrt(max(1, rows/cols)) * O, where O is
    # the Newton-Schulz orthogonalisation of the gradient: its singular values are near 1
    # (Jordan et al. 2024 tune the quintic so they land in about [0.5, 1.5]), although the
    # gradient's own singular values span a factor of 10.
    w = named["blocks.0.mlp.0.weight"]  # 64 x 16
    before = w.detach().clone()
    for p in m.parameters():
        p.grad = torch.zeros_like(p)
    u, v = torch.linalg.qr(torch.randn(64, 16))[0], torch.linalg.qr(torch.randn(16, 16))[0]
    w.grad = u @ torch.diag(torch.logspace(0, 1, 16)) @ v.T
    opt.step()
    step = (before - w.detach()) / (0.02 * math.sqrt(64 / 16))
    s = torch.linalg.svdvals(step)
    assert s.min() > 0.5 and s.max() < 1.5, s


def test_muon_matches_torch_reference_up_to_its_bfloat16():
    # torch.optim.Muon runs Newton-Schulz in bfloat16 (about 3 significant digits); ours in float32.
    torch.manual_seed(0)
    ours = [torch.nn.Parameter(torch.randn(shape)) for shape in [(48, 16), (16, 48), (48, 16), (16, 16)]]
    ref = [torch.nn.Parameter(p.detach().clone()) for p in ours]
    opt_ours = train.Muon(ours, lr=0.02, weight_decay=0.1)
    opt_ref = torch.optim.Muon(ref, lr=0.02, weight_decay=0.1)
    for _ in range(4):
        for p, q in zip(ours, ref):
            p.grad = torch.randn(p.shape)
            q.grad = p.grad.clone()
        opt_ours.step()
        opt_ref.step()
    for p, q in zip(ours, ref):
        torch.testing.assert_close(p, q, atol=2e-3, rtol=0)
    with pytest.raises(ValueError, match="2-D"):
        train.Muon([torch.nn.Parameter(torch.zeros(3))])
    with pytest.raises(ValueError, match="momentum"):
        train.Muon(ours, momentum=1.0)
