import math

import pytest
import torch

from labkit import train
from labkit.tinygpt import GPTConfig, TinyGPT
from labkit.tokenizer import Tokenizer
from labkit.world import make_world


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
        assert supervised == tok.encode(reply + "<|end|>")
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
