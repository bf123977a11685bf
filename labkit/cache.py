"""The model cache: train each assistant once, reuse it in every lesson.

Checkpoints live in ``$LABKIT_CACHE_DIR/models`` (default
``~/.cache/labkit/models``), one file per config, named by a hash of the config,
the world seed and :data:`CODE_VERSION` (bump it whenever training or the world
changes). Writes are atomic (temporary file in the same directory, then
``os.replace``); a ``.sha256`` sidecar holds the checksum; loading uses
``torch.load(..., weights_only=True)`` (no pickle code runs). A partial or
corrupted file is rebuilt with a warning, never a crash.

Prebuild every model the course uses (an instructor, or the test runner, does
this before class)::

    python -m labkit.cache prebuild
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

from labkit.datasets import sha256_file
from labkit.tinygpt import GPTConfig, TinyGPT
from labkit.tokenizer import Tokenizer
from labkit.train import Assistant, TrainConfig, build_world, get_config, train_assistant

CODE_VERSION = "5"
CACHE_ENV = "LABKIT_CACHE_DIR"
COURSE_MODELS = ("default",)  # every config a lesson loads


class CheckpointMismatch(ValueError):
    """The checkpoint was trained with another config."""


def models_dir() -> Path:
    """``$LABKIT_CACHE_DIR/models`` or ``~/.cache/labkit/models``."""
    base = os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "labkit")
    return Path(base) / "models"


def config_key(cfg: TrainConfig) -> str:
    """16 hex digits of sha256 over the config (including the world seed) and CODE_VERSION."""
    blob = json.dumps({"config": cfg.to_dict(), "code": CODE_VERSION}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def checkpoint_path(cfg: TrainConfig) -> Path:
    return models_dir() / f"assistant-{cfg.name}-{config_key(cfg)}.pt"


def _atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_assistant(assistant: Assistant, path: Path | None = None) -> Path:
    """Write the tokenizer and both models atomically, then the checksum sidecar."""
    cfg = assistant.config
    path = Path(path) if path is not None else checkpoint_path(cfg)
    payload = {
        "key": config_key(cfg),
        "model_config": json.dumps(assistant.sft.cfg.to_dict()),
        "tokenizer": assistant.tokenizer.to_json(),
        "base": {k: v.detach().cpu() for k, v in assistant.base.state_dict().items()},
        "sft": {k: v.detach().cpu() for k, v in assistant.sft.state_dict().items()},
        "histories": json.dumps({k: {"train_loss": h.train_loss, "val_steps": h.val_steps, "val_loss": h.val_loss,
                                     "tokens": h.tokens} for k, h in assistant.histories.items()}),
    }
    _atomic_write(path, lambda f: torch.save(payload, f))
    digest = sha256_file(path)
    _atomic_write(path.with_name(path.name + ".sha256"), lambda f: f.write(digest.encode()))
    return path


def load_assistant(cfg: TrainConfig, path: Path | None = None, device: torch.device | str | None = None) -> Assistant:
    """Load a checkpoint written by :func:`save_assistant`.

    Raises
    ------
    FileNotFoundError
        No checkpoint (or no sidecar).
    ValueError
        The checksum does not match (partial or corrupted file).
    CheckpointMismatch
        The file belongs to another config.
    """
    path = Path(path) if path is not None else checkpoint_path(cfg)
    sidecar = path.with_name(path.name + ".sha256")
    if not path.exists() or not sidecar.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    if sha256_file(path) != sidecar.read_text().strip():
        raise ValueError(f"checksum mismatch for {path}: the file is partial or corrupted")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if payload.get("key") != config_key(cfg):
        raise CheckpointMismatch(f"{path} was trained with another config (key {payload.get('key')!r}, "
                                 f"expected {config_key(cfg)!r} for {cfg.name!r})")
    mcfg = GPTConfig(**json.loads(payload["model_config"]))
    device = torch.device(device or "cpu")
    models = {}
    for stage in ("base", "sft"):
        m = TinyGPT(mcfg)
        m.load_state_dict(payload[stage])
        models[stage] = m.to(device).eval()
    from labkit.train import History

    histories = {}
    for k, h in json.loads(payload["histories"]).items():
        histories[k] = History(k, list(range(len(h["train_loss"]))), h["train_loss"], h["val_steps"], h["val_loss"], h["tokens"])
    tok = Tokenizer.from_json(payload["tokenizer"])
    return Assistant(cfg, tok, models["base"], models["sft"], build_world(cfg), histories)


def get_assistant(name: str | TrainConfig = "default", device: torch.device | str | None = None,
                  rebuild: bool = False) -> Assistant:
    """The trained assistant for a config: from the cache, else trained and cached.

    A corrupted or mismatched checkpoint is rebuilt with a warning.

    Parameters
    ----------
    name : str or TrainConfig
        ``"tiny"``, ``"default"``, ``"large"`` or a config.
    device : torch.device, str or None
        Where to put the models (training itself runs on the CPU unless the
        config is ``large``).
    rebuild : bool
        Retrain even when a valid checkpoint exists.

    Returns
    -------
    Assistant
    """
    cfg = get_config(name) if isinstance(name, str) else name
    if not isinstance(cfg, TrainConfig):
        raise TypeError(f"name must be a config name or TrainConfig, got {type(name).__name__}")
    path = checkpoint_path(cfg)
    if not rebuild:
        try:
            return load_assistant(cfg, path, device)
        except FileNotFoundError:
            pass
        except (ValueError, RuntimeError, KeyError, EOFError, OSError) as exc:  # torch raises RuntimeError on truncation
            warnings.warn(f"rebuilding the {cfg.name!r} model: {exc}", stacklevel=2)
    train_device = device if cfg.name == "large" else "cpu"
    assistant = train_assistant(cfg, train_device)
    save_assistant(assistant, path)
    if device is not None:
        assistant.base.to(device)
        assistant.sft.to(device)
    return assistant


def prebuild(names=COURSE_MODELS) -> list[Path]:
    """Train and cache every model the course uses; return their paths."""
    paths = []
    for name in names:
        cfg = get_config(name)
        start = time.perf_counter()
        get_assistant(cfg)
        path = checkpoint_path(cfg)
        print(f"{name}: {path} ready ({time.perf_counter() - start:.1f} s)", flush=True)
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="labkit model cache")
    parser.add_argument("command", choices=["prebuild", "path"])
    parser.add_argument("--config", action="append", help="config name (repeatable; default: the course's models)")
    args = parser.parse_args(argv)
    names = tuple(args.config) if args.config else COURSE_MODELS
    if args.command == "path":
        for n in names:
            print(checkpoint_path(get_config(n)))
        return 0
    prebuild(names)
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["CODE_VERSION", "COURSE_MODELS", "CheckpointMismatch", "models_dir", "config_key", "checkpoint_path",
           "save_assistant", "load_assistant", "get_assistant", "prebuild"]
