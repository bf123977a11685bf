
import pytest
import torch

from labkit import cache, train


@pytest.fixture()
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_CACHE_DIR", str(tmp_path))
    return tmp_path


@pytest.fixture(scope="module")
def tiny():
    return train.train_assistant("tiny")


def same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


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
    with pytest.raises(cache.CheckpointMismatch, match="another config"):
        cache.load_assistant(other, path)
    with pytest.raises(FileNotFoundError):
        cache.load_assistant(tiny.config, cache_dir / "missing.pt")
