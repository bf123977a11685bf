"""The model cache: train each course model once, reuse it in every lesson.

One mechanism, :func:`cached`, serves every trained model of the course (the
tiny assistant today; reward models, DPO and PPO policies, DP-trained and
canary models in lessons 16 to 21):

- the file is ``$LABKIT_CACHE_DIR/models/<name>-<key>.pt`` (default
  ``~/.cache/labkit/models``); the key hashes everything that determines the
  model, including a code version (:data:`CODE_VERSION` for the assistant:
  bump it whenever training or the world changes), and the payload repeats it;
- writes are atomic (a temporary file in the same directory, then
  ``os.replace``), and a ``.sha256`` sidecar holds the checksum;
- loading uses ``torch.load(..., weights_only=True)``: tensors, strings and
  numbers only, no pickled code runs;
- a partial, corrupted or mismatched file is rebuilt with a warning, never a
  crash.

The course's default assistant is also **shipped** in the package
(``labkit/lm/checkpoints/assistant-default.pt``, its sha256 in
``checkpoints/SHA256SUMS``), so every student, on any CPU, sees the model the
lesson's text describes. It is loaded when its key matches the config, and
verified against the recorded sha256 first. Commands::

    python -m labkit.lm.cache prebuild          # build every registered course model (progress bar)
    python -m labkit.lm.cache retrain --check   # retrain under pinned numerics; fail unless the recorded sha256 comes out
    python -m labkit.lm.cache retrain --ship    # retrain and ship the result (instructors changing the model)
    python -m labkit.lm.cache verify            # the shipped files match SHA256SUMS
    python -m labkit.lm.cache path              # where the cache keeps each model

Training commands restart themselves with the kernel-dispatch pins of
:mod:`labkit.numerics` first, so what they train does not depend on the CPU
that ran them.
"""
from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TypeVar

import torch

from labkit.core import progress
from labkit.datasets import sha256_file
from labkit.lm.tinygpt import GPTConfig, TinyGPT
from labkit.lm.tokenizer import Tokenizer
from labkit.validation import ensure_int
from labkit.lm.train import Assistant, History, TrainConfig, build_world, get_config, train_assistant

CODE_VERSION = "5"
CACHE_ENV = "LABKIT_CACHE_DIR"
SHIPPED_DIR = Path(__file__).resolve().parent / "checkpoints"
SHIPPED_SUMS = SHIPPED_DIR / "SHA256SUMS"
# What a damaged or foreign checkpoint raises while it is read: the sidecar
# check and the key check raise ValueError; torch raises RuntimeError on a
# truncated zip and UnpicklingError on anything weights_only refuses.
LOAD_ERRORS = (ValueError, RuntimeError, KeyError, EOFError, OSError, pickle.UnpicklingError)

T = TypeVar("T")


class CheckpointMismatch(ValueError):
    """The checkpoint was built with another key (another config or code version)."""


# -------------------------------------------------------------- the mechanism
def models_dir() -> Path:
    """``$LABKIT_CACHE_DIR/models`` or ``~/.cache/labkit/models``."""
    base = os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "labkit")
    return Path(base) / "models"


def cache_path(name: str, key: str) -> Path:
    """Where :func:`cached` keeps the model ``name`` built under ``key``."""
    return models_dir() / f"{name}-{key}.pt"


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _atomic_write(path: Path, write: Callable) -> None:
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


def save_checkpoint(payload: dict, path: Path) -> str:
    """Write ``payload`` (tensors, strings, numbers) atomically, then its sha256 sidecar; return the sha256."""
    _atomic_write(path, lambda f: torch.save(payload, f))
    digest = sha256_file(path)
    _atomic_write(_sidecar(path), lambda f: f.write(digest.encode()))
    return digest


def load_checkpoint(path: Path, key: str, sha256: str | None = None) -> dict:
    """Read a checkpoint written by :func:`save_checkpoint` and check it.

    Parameters
    ----------
    path : Path
    key : str
        The key the payload must carry.
    sha256 : str or None
        The expected checksum; None reads it from the ``.sha256`` sidecar.

    Raises
    ------
    FileNotFoundError
        No file (or no sidecar).
    ValueError
        The checksum does not match (a partial or corrupted file).
    CheckpointMismatch
        The file was built under another key.
    pickle.UnpicklingError
        The file holds something other than tensors and plain data.
    """
    path = Path(path)
    if sha256 is None:
        if not path.exists() or not _sidecar(path).exists():
            raise FileNotFoundError(f"no checkpoint at {path}")
        sha256 = _sidecar(path).read_text().strip()
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    if sha256_file(path) != sha256:
        raise ValueError(f"checksum mismatch for {path}: the file is partial or corrupted")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("key") != key:
        found = payload.get("key") if isinstance(payload, dict) else None
        raise CheckpointMismatch(f"{path} was built under another key ({found!r}, expected {key!r})")
    return payload


def _shipped_payload(shipped: Path, key: str) -> dict | None:
    """The payload of a shipped checkpoint built under ``key``; None when there is none to use.

    None when no sha256 is recorded for it, when it was built under another
    key (the model's config or code changed since it was shipped: the cache,
    or a rebuild, has the current one), or, with a warning, when the file is
    missing or damaged.
    """
    recorded = recorded_sha256(shipped.name, shipped.parent / SHIPPED_SUMS.name)
    if recorded is None:
        return None
    try:
        return load_checkpoint(shipped, key, recorded)
    except CheckpointMismatch:
        return None
    except FileNotFoundError:
        warnings.warn(f"the shipped checkpoint {shipped} is missing; using the cache", stacklevel=4)
    except LOAD_ERRORS as exc:
        warnings.warn(f"the shipped checkpoint is damaged ({exc}); using the cache", stacklevel=4)
    return None


def _cached_payload(name: str, path: Path, key: str) -> dict | None:
    """The payload cached at ``path`` under ``key``; None when it is not cached yet or (with a warning) unusable."""
    try:
        return load_checkpoint(path, key)
    except FileNotFoundError:
        return None
    except LOAD_ERRORS as exc:
        warnings.warn(f"rebuilding {name!r}: {exc}", stacklevel=4)
    return None


def cached(name: str, key: str, build: Callable[[], T], to_payload: Callable[[T], dict],
           from_payload: Callable[[dict], T], rebuild: bool = False, shipped: Path | None = None) -> T:
    """The model ``name`` built under ``key``: shipped, else cached, else built (and cached).

    Parameters
    ----------
    name : str
        Names the file (``<name>-<key>.pt``), e.g. ``"assistant-default"``.
    key : str
        Hash of everything that determines the model, a code version included.
    build : callable () -> model
        Trains the model (deterministically, so a rebuild gives it back).
    to_payload : callable model -> dict
        Tensors (on the CPU), strings and numbers only: what ``weights_only``
        loading accepts. The key is added.
    from_payload : callable dict -> model
    rebuild : bool
        Build even when a valid file exists (and overwrite it).
    shipped : Path or None
        A checkpoint shipped with the package, whose sha256 is recorded in its
        folder's ``SHA256SUMS``; used when its key matches.

    Returns
    -------
    The model.
    """
    payload = None if rebuild or shipped is None else _shipped_payload(Path(shipped), key)
    if payload is not None:
        return from_payload(payload)
    path = cache_path(name, key)
    payload = None if rebuild else _cached_payload(name, path, key)
    if payload is not None:
        return from_payload(payload)
    model = build()
    save_checkpoint({"key": key, **to_payload(model)}, path)
    return model


def recorded_sha256(filename: str, sums: Path = SHIPPED_SUMS) -> str | None:
    """The sha256 that ``sums`` (``sha256sum`` format) records for ``filename``, or None."""
    if not Path(sums).exists():
        return None
    for line in Path(sums).read_text().splitlines():
        digest, _, name = line.strip().partition("  ")
        if name == filename:
            return digest
    return None


def _record_sha256(filename: str, digest: str, sums: Path = SHIPPED_SUMS) -> None:
    lines = [ln for ln in (sums.read_text().splitlines() if sums.exists() else []) if not ln.endswith(f"  {filename}")]
    _atomic_write(sums, lambda f: f.write("".join(f"{ln}\n" for ln in sorted(lines + [f"{digest}  {filename}"])).encode()))


def model_payload(model: TinyGPT) -> dict:
    """A TinyGPT as a :func:`cached` payload: its config as JSON and its weights on the CPU."""
    return {"model_config": json.dumps(model.cfg.to_dict()),
            "state": {k: v.detach().cpu() for k, v in model.state_dict().items()}}


def model_from_payload(payload: dict) -> TinyGPT:
    """The inverse of :func:`model_payload`, in eval mode."""
    model = TinyGPT(GPTConfig(**json.loads(payload["model_config"])))
    model.load_state_dict(payload["state"])
    return model.eval()


# --------------------------------------------------------------- the assistant
def config_key(cfg: TrainConfig) -> str:
    """16 hex digits of sha256 over the config (including the world seed) and CODE_VERSION."""
    blob = json.dumps({"config": cfg.to_dict(), "code": CODE_VERSION}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def checkpoint_path(cfg: TrainConfig) -> Path:
    """Where the cache keeps the assistant trained under ``cfg``."""
    return cache_path(f"assistant-{cfg.name}", config_key(cfg))


def shipped_path(cfg: TrainConfig) -> Path:
    """Where a shipped checkpoint of ``cfg`` would be (only ``default`` is shipped)."""
    return SHIPPED_DIR / f"assistant-{cfg.name}.pt"


def _assistant_payload(assistant: Assistant) -> dict:
    histories = {k: {"train_loss": h.train_loss, "val_steps": h.val_steps, "val_loss": h.val_loss, "tokens": h.tokens}
                 for k, h in assistant.histories.items()}
    return {
        "model_config": json.dumps(assistant.sft.cfg.to_dict()),
        "tokenizer": assistant.tokenizer.to_json(),
        "base": {k: v.detach().cpu() for k, v in assistant.base.state_dict().items()},
        "sft": {k: v.detach().cpu() for k, v in assistant.sft.state_dict().items()},
        "histories": json.dumps(histories),
    }


def _assistant_from_payload(cfg: TrainConfig, payload: dict) -> Assistant:
    mcfg = GPTConfig(**json.loads(payload["model_config"]))
    models = {}
    for stage in ("base", "sft"):
        model = TinyGPT(mcfg)
        model.load_state_dict(payload[stage])
        models[stage] = model.eval()
    histories = {}
    for k, h in json.loads(payload["histories"]).items():
        histories[k] = History(k, list(range(len(h["train_loss"]))), h["train_loss"], h["val_steps"], h["val_loss"],
                               h["tokens"])
    tokenizer = Tokenizer.from_json(payload["tokenizer"])
    return Assistant(cfg, tokenizer, models["base"], models["sft"], build_world(cfg), histories)


def save_assistant(assistant: Assistant, path: Path | None = None) -> Path:
    """Write the tokenizer and both models atomically, then the checksum sidecar."""
    cfg = assistant.config
    path = Path(path) if path is not None else checkpoint_path(cfg)
    save_checkpoint({"key": config_key(cfg), **_assistant_payload(assistant)}, path)
    return path


def load_assistant(cfg: TrainConfig, path: Path | None = None, device: torch.device | str | None = None) -> Assistant:
    """Load a checkpoint written by :func:`save_assistant` (raises as :func:`load_checkpoint`)."""
    path = Path(path) if path is not None else checkpoint_path(cfg)
    return _to_device(_assistant_from_payload(cfg, load_checkpoint(path, config_key(cfg))), device)


def _to_device(assistant: Assistant, device: torch.device | str | None) -> Assistant:
    if device is not None:
        assistant.base.to(device)
        assistant.sft.to(device)
    return assistant


def _as_config(name: str | TrainConfig) -> TrainConfig:
    cfg = get_config(name) if isinstance(name, str) else name
    if not isinstance(cfg, TrainConfig):
        raise TypeError(f"name must be a config name or TrainConfig, got {type(name).__name__}")
    return cfg


def get_assistant(name: str | TrainConfig = "default", device: torch.device | str | None = None,
                  rebuild: bool = False) -> Assistant:
    """The trained assistant for a config: shipped, else cached, else trained and cached.

    A corrupted or mismatched checkpoint is rebuilt with a warning.

    Parameters
    ----------
    name : str or TrainConfig
        ``"tiny"``, ``"default"``, ``"large"`` or a config.
    device : torch.device, str or None
        Where to put the models (training itself runs on the CPU unless the
        config is ``large``).
    rebuild : bool
        Retrain even when a valid checkpoint exists (the shipped one included).

    Returns
    -------
    Assistant
    """
    cfg = _as_config(name)
    train_device = device if cfg.name == "large" else "cpu"
    assistant = cached(f"assistant-{cfg.name}", config_key(cfg), lambda: train_assistant(cfg, train_device),
                       _assistant_payload, lambda payload: _assistant_from_payload(cfg, payload), rebuild=rebuild,
                       shipped=shipped_path(cfg))
    return _to_device(assistant, device)


# ------------------------------------------------------------- course models
@dataclass(frozen=True)
class CourseModel:
    """A model some lesson loads: ``build(rebuild)`` returns it (cached; None when it cannot be built
    here, e.g. its real data are unavailable); ``path()`` is its cache file.

    ``name`` is also the stem of its shipped file, when it is shipped.
    """

    name: str
    build: Callable[[bool], object]
    path: Callable[[], Path]


COURSE_MODELS: dict[str, CourseModel] = {}


def register_course_model(model: CourseModel) -> CourseModel:
    """Add a model to what ``prebuild`` and ``retrain`` build (lesson modules call this at import)."""
    if not isinstance(model, CourseModel):
        raise TypeError(f"model must be a CourseModel, got {type(model).__name__}")
    COURSE_MODELS[model.name] = model
    return model


register_course_model(CourseModel("assistant-default", lambda rebuild: get_assistant("default", rebuild=rebuild),
                                  lambda: checkpoint_path(get_config("default"))))
# Course models that evaluate other course models: a parallel prebuild builds them last.
LAST_MODELS: tuple[str, ...] = ("capstone-evaluation",)
# Modules that register course models of later lessons; prebuild imports them
# first. (This substrate cannot import lesson modules itself: see labkit's layers.)
PREBUILD_IMPORTS: tuple[str, ...] = (
    "labkit.calibration",
    "labkit.interpret",
    "labkit.continual",
    "labkit.moderation",
    "labkit.chatbot",
    "labkit.rlhf",
    "labkit.constitutional",
    "labkit.redteam",
    "labkit.bias",
    "labkit.privacy",
    "labkit.leakage",
    "labkit.monitoring",
    "labkit.capstone",  # last: it evaluates the others' models
)


def _selected(names) -> list[CourseModel]:
    import importlib

    for module in PREBUILD_IMPORTS:
        importlib.import_module(module)
    names = list(names) if names else list(COURSE_MODELS)
    unknown = sorted(set(names) - set(COURSE_MODELS))
    if unknown:
        raise ValueError(f"unknown course models {unknown}; registered: {sorted(COURSE_MODELS)}")
    return [COURSE_MODELS[n] for n in names]


def course_models(names=None) -> list[CourseModel]:
    """The registered course models (or those named), later lessons' modules imported first."""
    return _selected(names)


def prebuild(names=None, rebuild: bool = False, jobs: int = 1) -> list[Path]:
    """Build every registered course model (or those named), with a progress bar; return their cache paths.

    A model whose shipped checkpoint matches is loaded, not trained (and has
    no cache file), unless ``rebuild``. With ``jobs > 1`` the models are
    shared round-robin between that many worker processes (each training on
    one thread), and the course models that evaluate the others
    (:data:`LAST_MODELS`) are built after them, in this process.
    """
    jobs = ensure_int("jobs", jobs, low=1)
    selected = _selected(names)
    if jobs > 1 and len(selected) > 1:
        first = [m for m in selected if m.name not in LAST_MODELS]
        shards = [first[i::jobs] for i in range(jobs)]
        workers = [subprocess.Popen([sys.executable, "-m", "labkit.lm.cache", "prebuild", *(["--rebuild"] if rebuild else []),
                                     *[f"--model={m.name}" for m in shard]]) for shard in shards if shard]
        if any(w.wait() for w in workers):
            raise RuntimeError("a prebuild worker failed (its output above says which model)")
        selected = [m for m in selected if m.name in LAST_MODELS]
        rebuild = False if not selected else rebuild
    paths = []
    for model in progress(selected, desc="course models"):
        start = time.perf_counter()
        if model.build(rebuild) is None:  # a model trained on real data, offline: its build said why in one line
            print(f"{model.name}: skipped", flush=True)
            continue
        path = model.path()
        where = f"cache file {path}" if path.exists() else "the shipped checkpoint"
        print(f"{model.name}: ready ({time.perf_counter() - start:.1f} s), from {where}", flush=True)
        paths.append(path)
    return paths


def retrain(names=None, check: bool = False, ship: bool = False) -> int:
    """Retrain course models from scratch and compare each cache file with its recorded sha256.

    Returns the number of models whose sha256 differs from the recorded one
    (with ``check``; a model with no recorded sha256 counts as differing).
    With ``ship`` each result is copied into ``labkit/lm/checkpoints`` and its
    sha256 recorded.
    """
    from labkit import numerics

    differing = 0
    for model, path in zip(_selected(names), prebuild(names, rebuild=True)):
        digest = sha256_file(path)
        recorded = recorded_sha256(f"{model.name}.pt")
        same = digest == recorded
        print(f"{model.name}: sha256 {digest} ({'matches the recorded one' if same else f'recorded: {recorded}'})",
              flush=True)
        if check and not same:
            differing += 1
            if numerics.mode() != "exact":
                print(f"  {numerics.describe()}", flush=True)
        if ship:
            SHIPPED_DIR.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, SHIPPED_DIR / f"{model.name}.pt")
            _record_sha256(f"{model.name}.pt", digest)
            print(f"  shipped as {SHIPPED_DIR / f'{model.name}.pt'}", flush=True)
    return differing


def verify() -> int:
    """Check every shipped checkpoint against SHA256SUMS; return the number that fail."""
    if not SHIPPED_SUMS.exists():
        print(f"no {SHIPPED_SUMS}", flush=True)
        return 1
    failed = 0
    for line in SHIPPED_SUMS.read_text().splitlines():
        digest, _, filename = line.strip().partition("  ")
        path = SHIPPED_DIR / filename
        ok = path.exists() and sha256_file(path) == digest
        failed += not ok
        print(f"{filename}: {'ok' if ok else 'MISSING' if not path.exists() else 'sha256 differs'}", flush=True)
    return failed


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m labkit.lm.cache", description="labkit's course models")
    parser.add_argument("command", choices=["prebuild", "retrain", "verify", "path"])
    parser.add_argument("--model", action="append", help="a registered course model (repeatable; default: all)")
    parser.add_argument("--jobs", type=int, default=1, help="prebuild: worker processes (default 1)")
    parser.add_argument("--rebuild", action="store_true", help="prebuild: train again even when cached")
    parser.add_argument("--check", action="store_true", help="retrain: exit 1 unless every sha256 matches the record")
    parser.add_argument("--ship", action="store_true", help="retrain: copy the results into the package, record sha256")
    args = parser.parse_args(argv)
    if args.command == "path":
        for model in _selected(args.model):
            print(f"{model.name}: {model.path()}")
        return 0
    if args.command == "verify":
        return 1 if verify() else 0
    if args.command == "prebuild":
        prebuild(args.model, rebuild=args.rebuild, jobs=args.jobs)
        return 0
    differing = retrain(args.model, check=args.check, ship=args.ship)
    return 1 if args.check and differing else 0


if __name__ == "__main__":
    if {"prebuild", "retrain"} & set(sys.argv[1:]):
        # Training commands restart under the kernel-dispatch pins before they
        # train anything. The restart replaces this process, so the PyTorch it
        # has already imported (through the labkit package) never trains.
        # Only here, not in main(): main() called from a notebook must not
        # replace the kernel's process.
        from labkit import numerics

        numerics.reexec_pinned("labkit.lm.cache", sys.argv[1:])
    # Run the importable module's main, not this __main__ copy: lesson modules
    # register their course models in labkit.lm.cache's registry, which a
    # second copy of this file would not see.
    from labkit.lm import cache as _cache

    sys.exit(_cache.main())


__all__ = ["CODE_VERSION", "CheckpointMismatch", "models_dir", "cache_path", "save_checkpoint", "load_checkpoint",
           "cached", "model_payload", "model_from_payload", "recorded_sha256", "config_key", "checkpoint_path",
           "shipped_path", "save_assistant", "load_assistant", "get_assistant", "CourseModel", "COURSE_MODELS",
           "register_course_model", "course_models", "prebuild",
           "retrain", "verify", "main"]
