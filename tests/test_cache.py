import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from labkit import numerics
from labkit.datasets import sha256_file
from labkit.lm import cache, train

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_CACHE_DIR", str(tmp_path))
    return tmp_path


@pytest.fixture(scope="module")
def tiny():
    return train.train_assistant("tiny")


def same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


# ------------------------------------------------------------ the mechanism
class Builds:
    """A model builder that counts its calls (the model: one seeded tensor)."""

    def __init__(self, seed=0):
        self.calls, self.seed = 0, seed

    def __call__(self):
        self.calls += 1
        return torch.randn(3, generator=torch.Generator().manual_seed(self.seed))


def _cached(builder, key="k1", **kwargs):
    return cache.cached("toy", key, builder, lambda t: {"weights": t}, lambda p: p["weights"], **kwargs)


def test_cached_builds_once_then_loads(cache_dir):
    builder = Builds()
    first = _cached(builder)
    again = _cached(builder)
    assert builder.calls == 1 and torch.equal(first, again)
    path = cache.cache_path("toy", "k1")
    assert path.parent == cache_dir / "models" and path.name == "toy-k1.pt"
    assert (path.parent / "toy-k1.pt.sha256").read_text() == sha256_file(path)
    assert not list(path.parent.glob("*.part"))  # atomic: no temporary file left behind
    _cached(builder, key="k2")  # another key (another config or code version) is another model
    assert builder.calls == 2
    _cached(builder, rebuild=True)
    assert builder.calls == 3


def test_cached_rebuilds_a_corrupted_file_with_a_warning(cache_dir):
    builder = Builds()
    _cached(builder)
    path = cache.cache_path("toy", "k1")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # a partial write
    with pytest.warns(UserWarning, match="rebuilding 'toy'.*checksum"):
        _cached(builder)
    assert builder.calls == 2 and sha256_file(path) == (path.parent / "toy-k1.pt.sha256").read_text()


def _never_called():
    raise AssertionError("pickled code ran while loading a checkpoint")


class Evil:
    def __reduce__(self):
        return (_never_called, ())


def test_checkpoints_load_weights_only(cache_dir):
    """A checkpoint that smuggles code (with a valid sidecar) is refused and rebuilt, never run."""
    path = cache.cache_path("toy", "k1")
    cache.save_checkpoint({"key": "k1", "weights": torch.zeros(3), "payload": Evil()}, path)
    builder = Builds()
    with pytest.warns(UserWarning, match="rebuilding 'toy'"):
        model = _cached(builder)
    assert builder.calls == 1 and torch.equal(model, Builds()())


def test_cached_refuses_another_key(cache_dir):
    path = cache.cache_path("toy", "k1")
    cache.save_checkpoint({"key": "k0", "weights": torch.zeros(3)}, path)  # e.g. an older code version
    with pytest.raises(cache.CheckpointMismatch, match="another key"):
        cache.load_checkpoint(path, "k1")
    builder = Builds()
    with pytest.warns(UserWarning, match="another key"):
        _cached(builder)
    assert builder.calls == 1


def test_cached_prefers_a_shipped_file_whose_key_and_sha256_match(cache_dir, tmp_path):
    shipped = tmp_path / "ship" / "toy.pt"
    shipped.parent.mkdir()
    digest = cache.save_checkpoint({"key": "k1", "weights": torch.ones(3)}, shipped)
    (shipped.parent / "SHA256SUMS").write_text(f"{digest}  toy.pt\n")
    builder = Builds()
    assert torch.equal(_cached(builder, shipped=shipped), torch.ones(3)) and builder.calls == 0
    _cached(builder, key="k2", shipped=shipped)  # the config changed since it was shipped: build, quietly
    assert builder.calls == 1
    shipped.write_bytes(shipped.read_bytes() + b"x")  # damaged in transit
    with pytest.warns(UserWarning, match="shipped checkpoint is damaged"):
        _cached(builder, shipped=shipped)
    assert builder.calls == 2


# ------------------------------------------------------------ the assistant
def test_key_depends_on_config_and_world_seed():
    t = train.get_config("tiny")
    assert cache.config_key(t) == cache.config_key(train.get_config("tiny"))
    assert cache.config_key(t) != cache.config_key(train.TrainConfig(**{**t.__dict__, "seed": 1}))
    assert cache.config_key(t) != cache.config_key(train.get_config("default"))


def test_round_trip_location_and_sidecar(cache_dir, tiny):
    path = cache.save_assistant(tiny)
    assert path.parent == cache_dir / "models" and path.with_name(path.name + ".sha256").exists()
    assert not list(path.parent.glob("*.part"))  # no temporary file left behind
    back = cache.load_assistant(tiny.config)
    assert same(back.sft, tiny.sft) and same(back.base, tiny.base)
    assert back.tokenizer.to_json() == tiny.tokenizer.to_json()
    assert back.histories["sft"].val_loss == tiny.histories["sft"].val_loss
    # get_assistant reuses the checkpoint without training
    assert same(cache.get_assistant("tiny").sft, tiny.sft)


def test_corrupted_file_is_rebuilt_with_a_warning(cache_dir, tiny):
    path = cache.save_assistant(tiny)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # a partial write
    with pytest.warns(UserWarning, match="rebuilding"):
        rebuilt = cache.get_assistant("tiny")
    assert same(rebuilt.sft, tiny.sft)  # deterministic training gives the same model back
    assert cache.load_assistant(tiny.config) is not None


def test_checkpoint_from_another_config_is_refused(cache_dir, tiny):
    path = cache.save_assistant(tiny, cache_dir / "x.pt")
    other = train.TrainConfig(**{**tiny.config.__dict__, "seed": 3})
    with pytest.raises(cache.CheckpointMismatch, match="another key"):
        cache.load_assistant(other, path)
    with pytest.raises(FileNotFoundError):
        cache.load_assistant(tiny.config, cache_dir / "missing.pt")


# ------------------------------------------------------- the shipped model
def test_shipped_default_checkpoint_has_its_recorded_sha256():
    cfg = train.get_config("default")
    path = cache.shipped_path(cfg)
    recorded = cache.recorded_sha256(path.name)
    assert recorded is not None and len(recorded) == 64, "SHA256SUMS must record the shipped default assistant"
    assert sha256_file(path) == recorded
    payload = cache.load_checkpoint(path, cache.config_key(cfg), recorded)  # weights_only, key of today's config
    assert set(payload) == {"key", "model_config", "tokenizer", "base", "sft", "histories"}
    assert cache.verify() == 0


def test_get_assistant_loads_the_shipped_default_without_training(cache_dir, monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError("the shipped checkpoint should have been used")

    monkeypatch.setattr(cache, "train_assistant", no_training)
    assistant = cache.get_assistant("default")
    assert not list(cache_dir.rglob("*.pt"))  # nothing trained, nothing cached
    payload = torch.load(cache.shipped_path(assistant.config), weights_only=True)
    assert all(torch.equal(v, payload["sft"][k]) for k, v in assistant.sft.state_dict().items())
    assert len(assistant.world.test) == 20 * 16 and assistant.sft.training is False


def test_prebuild_cli_is_quiet_without_progress_and_names_the_source(cache_dir):
    env = {**os.environ, "LABKIT_PROGRESS": "0", "PYTHONPATH": str(ROOT)}
    # One model: with every lesson's course models registered, a full prebuild into this empty cache trains them all.
    out = subprocess.run([sys.executable, "-m", "labkit.lm.cache", "prebuild", "--model", "assistant-default"], cwd=ROOT,
                         env=env, capture_output=True, text=True, check=True, timeout=600)
    assert "assistant-default: ready" in out.stdout and "the shipped checkpoint" in out.stdout
    assert "it/s" not in out.stderr  # no progress bar
    bad = subprocess.run([sys.executable, "-m", "labkit.lm.cache", "prebuild", "--model", "nope"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=600)
    assert bad.returncode != 0 and "unknown course models" in bad.stderr


@pytest.mark.skipif(numerics.mode() != "exact", reason="numerics are tolerant on this CPU (see labkit.numerics): "
                                                       "retraining cannot reproduce the recorded sha256 bit for bit")
@pytest.mark.time_limit(1800)
def test_retraining_default_reproduces_the_recorded_sha256(cache_dir):
    """Slow (about a minute on two free cores): retrain under pinned numerics, as an instructor would."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "labkit.lm.cache", "retrain", "--check", "--model", "assistant-default"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    assert out.returncode == 0, out.stdout + out.stderr
    recorded = cache.recorded_sha256("assistant-default.pt")
    assert f"sha256 {recorded} (matches the recorded one)" in out.stdout
    assert sha256_file(cache.checkpoint_path(train.get_config("default"))) == recorded
