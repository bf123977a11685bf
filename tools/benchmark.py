"""Benchmarks for the closing notes: notebooks, attacks, attributions, moderation, TinyGPT.

    make bench                      # everything
    python tools/benchmark.py notebooks pgd ig moderation tinygpt

Optional comparisons (torchattacks, Captum) are imported from
``.cache/bench-extras``, where ``make bench`` installs them with ``--no-deps``
(torchattacks declares torchvision, whose PyPI wheel does not load beside the
CPU torch pinned here; neither library needs it for what is measured).
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import notebook_run
import repro_env

ROOT = repro_env.ROOT
EXTRAS = ROOT / ".cache" / "bench-extras"


def _timeit(fn, repeat: int = 5, warmup: int = 1) -> float:
    """Median wall time in seconds over ``repeat`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def execute_one(path: str) -> None:
    """Child mode: execute one notebook, print wall time, runs and peak RSS (self or kernel)."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    t0 = time.perf_counter()
    _, runs = notebook_run.execute(nb, Path(path).parent, name=Path(path).name)
    wall = time.perf_counter() - t0
    peak_kb = max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    print(json.dumps({"wall_s": wall, "runs": runs, "peak_mb": peak_kb / 1024}))


def bench_notebooks() -> None:
    print("\n## Notebooks (executed one at a time, repro environment: CPU, 1 thread)\n")
    notebook_run.train_course_models(ROOT)  # timed from a warm cache, as a class would run them
    print("| notebook | wall (s) | peak memory (MB) |\n|---|---:|---:|")
    worst = 0.0
    for folder in ("notebooks", "solutions"):
        for path in sorted((ROOT / folder).glob("*.ipynb")):
            out = subprocess.run([sys.executable, __file__, "--execute-one", str(path)], capture_output=True, text=True, cwd=ROOT)
            if out.returncode != 0:
                why = (out.stderr.strip().splitlines() or ["no message"])[-1]
                print(f"| {folder}/{path.name} | FAILED: {why} | |")
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            # A retried run's wall time includes the stalled run: report it, do not rank it.
            note = "" if r["runs"] == 1 else f" ({r['runs']} runs: a run stalled and was retried)"
            if r["runs"] == 1:
                worst = max(worst, r["wall_s"])
            print(f"| {folder}/{path.name} | {r['wall_s']:.1f}{note} | {r['peak_mb']:.0f} |", flush=True)
    print(f"\nslowest notebook: {worst:.1f} s")


def _digits_model():
    from labkit import classifiers

    digits = classifiers.load_digits(test_fraction=0.25, seed=0)
    x = digits.x_train[:512].view(-1, 1, 8, 8)  # image-shaped, as torchattacks expects
    y = digits.y_train[:512]
    model = classifiers.make_mlp(hidden=(128,), seed=0).eval()
    return model, x, y


def bench_pgd() -> None:
    import torch

    from labkit import robustness

    print("\n## PGD, 512 digits, L-inf eps=0.1, alpha=0.02, 10 steps, random start (median of 5)\n")
    model, x, y = _digits_model()
    labkit_s = _timeit(lambda: robustness.pgd(model, x, y, eps=0.1, alpha=0.02, steps=10, generator=torch.Generator().manual_seed(0)))
    print(f"labkit.robustness.pgd : {labkit_s * 1000:.1f} ms")
    try:
        sys.path.insert(0, str(EXTRAS))
        import torchattacks
    except ImportError:
        print("torchattacks          : not installed (make bench installs it)")
        return
    attack = torchattacks.PGD(model, eps=0.1, alpha=0.02, steps=10, random_start=True)
    ta_s = _timeit(lambda: attack(x, y))
    print(f"torchattacks.PGD {torchattacks.__version__}: {ta_s * 1000:.1f} ms  (labkit / torchattacks = {labkit_s / ta_s:.2f})")


def bench_ig() -> None:
    import torch

    from labkit import interpret

    print("\n## Integrated gradients, 64 inputs x 30 features, MLP, 50 steps, Gauss-Legendre (median of 5)\n")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(30, 64), torch.nn.Tanh(), torch.nn.Linear(64, 2)).eval()
    x = torch.randn(64, 30)
    target = torch.zeros(64, dtype=torch.long)
    for method in ("gausslegendre", "riemann_trapezoid"):
        ours = _timeit(lambda: interpret.integrated_gradients(model, x, target=target, steps=50, method=method))
        line = f"{method:<18} labkit {ours * 1000:.1f} ms"
        try:
            sys.path.insert(0, str(EXTRAS))
            from captum.attr import IntegratedGradients

            ig = IntegratedGradients(model)
            theirs = _timeit(lambda: ig.attribute(x, target=target, n_steps=50, method=method))
            line += f", captum {theirs * 1000:.1f} ms (labkit / captum = {ours / theirs:.2f})"
        except ImportError:
            line += ", captum not installed"
        print(line)


def bench_moderation() -> None:
    from labkit import moderation

    print("\n## Moderation pipeline (CPU seconds: time.process_time)\n")
    moderator = moderation.train_moderator()
    texts, _, _ = moderation.generate_messages(20_000, seed=21)
    moderator.predict(texts[:200])  # warm caches, as a running service would be
    t0 = time.process_time()
    moderator.predict(texts)
    rate = len(texts) / (time.process_time() - t0)
    print(f"throughput: {rate:,.0f} messages/s on {len(texts):,} generated messages")
    hostile = {
        "repeated letter": "a" * 1_000_000,
        "spaced digits": "1 " * 500_000,
        "marks and zero-width": "\u0430\u0301\u200b" * 333_333,
        "mixed obfuscation and PII": ("k1ll h u r t x@y.co 4111-1111-1111-1111 " * 30_000)[:1_000_000],
    }
    for name, text in hostile.items():
        t0 = time.process_time()
        decision = moderator.moderate(text)["decision"]
        print(f"1 MB hostile string ({name}): {time.process_time() - t0:.2f} s, decision {decision}")


def bench_tinygpt() -> None:
    import torch

    from labkit.lm import reply
    from labkit.lm.cache import get_assistant
    from labkit.lm.tinygpt import TinyGPT
    from labkit.lm.train import TRAIN_THREADS, get_config, pretrain

    print(f"\n## TinyGPT (training on {TRAIN_THREADS} CPU threads; the throughput loops on {torch.get_num_threads()})\n")
    for name in ("tiny", "default"):
        cfg = get_config(name)
        t0, c0 = time.perf_counter(), time.process_time()
        get_assistant(cfg, rebuild=True)
        print(f"{name}: pretraining + SFT {time.perf_counter() - t0:.1f} s wall, {time.process_time() - c0:.1f} s CPU")

    cfg = get_config("default")
    mcfg = cfg.model
    torch.manual_seed(0)
    stream = torch.randint(0, mcfg.vocab_size, (200_000,))
    batch, steps = cfg.batch_size, 30

    def ours() -> float:
        model = TinyGPT(mcfg)
        t0 = time.perf_counter()
        pretrain(model, stream, steps, batch, 3e-3, 5, eval_every=10**9, optimizer=cfg.optimizer, muon_lr=cfg.muon_lr)
        return batch * mcfg.context * steps / (time.perf_counter() - t0)

    class PlainLM(torch.nn.Module):
        """An equally sized pre-LN transformer LM from torch.nn building blocks."""

        def __init__(self) -> None:
            super().__init__()
            self.tok = torch.nn.Embedding(mcfg.vocab_size, mcfg.d_model)
            self.pos = torch.nn.Embedding(mcfg.context, mcfg.d_model)
            layer = torch.nn.TransformerEncoderLayer(mcfg.d_model, mcfg.n_head, 4 * mcfg.d_model, 0.0,
                                                     activation="gelu", batch_first=True, norm_first=True)
            self.blocks = torch.nn.TransformerEncoder(layer, mcfg.n_layer, enable_nested_tensor=False)
            self.ln = torch.nn.LayerNorm(mcfg.d_model)
            self.head = torch.nn.Linear(mcfg.d_model, mcfg.vocab_size, bias=False)
            self.head.weight = self.tok.weight

        def forward(self, x):
            t = x.size(1)
            mask = torch.nn.Transformer.generate_square_subsequent_mask(t)
            return self.head(self.ln(self.blocks(self.tok(x) + self.pos(torch.arange(t)), mask=mask, is_causal=True)))

    def plain() -> float:
        model, gen = PlainLM(), torch.Generator().manual_seed(0)
        opt = torch.optim.AdamW(model.parameters(), 3e-3)
        t0 = time.perf_counter()
        for _ in range(steps):
            starts = torch.randint(0, len(stream) - mcfg.context - 1, (batch,), generator=gen)
            chunk = stream[starts[:, None] + torch.arange(mcfg.context + 1)]
            loss = torch.nn.functional.cross_entropy(model(chunk[:, :-1]).reshape(-1, mcfg.vocab_size), chunk[:, 1:].reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
        return batch * mcfg.context * steps / (time.perf_counter() - t0)

    a, b = max(ours(), ours()), max(plain(), plain())
    print(f"training throughput: labkit {a:,.0f} tokens/s, plain PyTorch loop {b:,.0f} tokens/s (ratio {a / b:.2f})")
    assistant = get_assistant("default")
    prompts = [e.prompt for e in assistant.world.test[:32]]
    t0 = time.perf_counter()
    reply(assistant.sft, assistant.tokenizer, prompts, max_new_tokens=64, batch_size=None)
    print(f"replies of up to 64 new tokens to 32 prompts, one batch (KV cache): {time.perf_counter() - t0:.2f} s")


def bench_rlhf() -> None:
    import torch

    from labkit import rlhf
    from labkit.lm.cache import get_assistant
    from labkit.lm.train import cpu_threads

    a = get_assistant("default")
    tok, pairs = a.tokenizer, a.world.preferences
    print(f"\n## RLHF (lesson 16; {rlhf.RLHF_THREADS} CPU thread)\n")
    t0 = time.perf_counter()
    rm, _ = rlhf.train_reward_model(a.sft, tok, pairs)
    print(f"reward model, default config: {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    rlhf.train_dpo(a.sft, tok, pairs)
    print(f"DPO, default config: {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    _, history = rlhf.train_ppo(a.sft, rm, tok, [e.prompt for e in a.world.sft])
    print(f"PPO, default config: {time.perf_counter() - t0:.1f} s; rollout throughput with the KV cache "
          f"{sorted(history['rollout_tokens_per_s'])[len(history['rollout_tokens_per_s']) // 2]:,.0f} new tokens/s (median)")
    bench_dpo_throughput(a)


def bench_dpo_throughput(a) -> None:
    import torch

    from labkit import rlhf
    from labkit.lm.train import cpu_threads

    tok, pairs = a.tokenizer, a.world.preferences
    # DPO's step against a plain supervised step on the very same sequences (chosen and rejected of 32 pairs).
    p_ids, c_ids = rlhf._encode_pairs(tok, [p.prompt for p in pairs], [p.chosen for p in pairs])
    _, r_ids = rlhf._encode_pairs(tok, [p.prompt for p in pairs], [p.rejected for p in pairs])
    gen, steps = torch.Generator().manual_seed(0), 20
    batches = [torch.randint(0, len(pairs), (32,), generator=gen).tolist() for _ in range(steps)]
    ref = torch.zeros(32)

    def run(kind: str) -> float:
        model = rlhf._copy(a.sft).train()
        opt = torch.optim.AdamW(model.parameters(), 1e-5)
        tokens, t0 = 0, time.perf_counter()
        with cpu_threads(rlhf.RLHF_THREADS):
            for rows in batches:
                seq, lengths, mask = rlhf._pair_batch(p_ids, c_ids, r_ids, rows, tok.pad_id, a.sft.cfg.context)
                if kind == "dpo":
                    logps = rlhf._summed_logps(model, seq, mask).view(2, -1)
                    loss = rlhf.dpo_loss(logps[0], logps[1], ref, ref)
                else:
                    loss = model(seq[:, :-1], seq[:, 1:], mask.bool())[1]
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                tokens += int(lengths.sum())
        return tokens / (time.perf_counter() - t0)

    dpo_tps, sft_tps = max(run("dpo"), run("dpo")), max(run("sft"), run("sft"))
    print(f"training throughput on the same sequences: DPO {dpo_tps:,.0f} tokens/s, plain supervised loop "
          f"{sft_tps:,.0f} tokens/s (ratio {dpo_tps / sft_tps:.2f})")


SECTIONS = {"notebooks": bench_notebooks, "pgd": bench_pgd, "ig": bench_ig, "moderation": bench_moderation, "tinygpt": bench_tinygpt, "rlhf": bench_rlhf}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sections", nargs="*", help=f"any of {', '.join(SECTIONS)} (default: all)")
    parser.add_argument("--execute-one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    repro_env.apply()
    if args.execute_one:
        execute_one(args.execute_one)
        return 0
    unknown = set(args.sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    import torch

    torch.set_num_threads(1)
    for name in args.sections or SECTIONS:
        SECTIONS[name]()
    return 0


if __name__ == "__main__":
    sys.exit(main())
