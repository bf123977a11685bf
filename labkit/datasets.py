"""A small registry of real, public evaluation sets (held out: never trained on).

Each entry records the canonical download URL, the sha256 of the file, its
licence and how to cite it, the way scikit-learn's and torchvision's fetchers
do. :func:`fetch` looks in the local cache, then in a mirror directory named by
``$LABKIT_DATA_MIRROR`` (the test command points it at ``../shared/data``), then
downloads; the checksum is verified every time, so results are identical
whichever way the file arrived. Offline with no mirror, it raises
:class:`DatasetUnavailable` with instructions.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from labkit.validation import ensure_choice

MIRROR_ENV = "LABKIT_DATA_MIRROR"
CACHE_ENV = "LABKIT_CACHE_DIR"


class DatasetUnavailable(RuntimeError):
    """The file is neither cached, mirrored, nor downloadable right now."""


@dataclass(frozen=True)
class Dataset:
    name: str
    path: str           # relative path inside the mirror and cache
    url: str            # canonical source
    sha256: str
    licence: str
    citation: str
    description: str


REGISTRY: dict[str, Dataset] = {d.name: d for d in [
    Dataset(
        "hatecheck", "hatecheck/test_suite_cases.csv",
        "https://raw.githubusercontent.com/paul-rottger/hatecheck-data/main/test_suite_cases.csv",
        "ecf0dc1e93fccc90b6f880e632b19e635c0f0a68b3157915a9e20b6938f121cf", "CC BY 4.0",
        "Röttger et al. (2021), HateCheck: Functional Tests for Hate Speech Detection Models. ACL.",
        "3,728 functional test cases in 29 functionalities, label_gold hateful / non-hateful",
    ),
    Dataset(
        "davidson_offensive", "davidson_offensive/labeled_data.csv",
        "https://raw.githubusercontent.com/t-davidson/hate-speech-and-offensive-language/master/data/labeled_data.csv",
        "fcb8bc7c68120ae4af04a5b9acd58585513ede11e1548ebf36a5c2040b6f6281", "MIT",
        "Davidson et al. (2017), Automated Hate Speech Detection and the Problem of Offensive Language. ICWSM.",
        "24,783 tweets, class 0 hate / 1 offensive / 2 neither (contains slurs)",
    ),
    Dataset(
        "xstest", "xstest/xstest_prompts.csv",
        "https://raw.githubusercontent.com/paul-rottger/exaggerated-safety/main/xstest_prompts.csv",
        "11783fb294ed017473ee53c207d71f2161c7672c8d0b037501e78387f801cb5a", "CC BY 4.0",
        "Röttger et al. (2024), XSTest: A Test Suite for Identifying Exaggerated Safety Behaviours in LLMs. NAACL.",
        "250 safe prompts that look unsafe and 200 unsafe contrasts",
    ),
    Dataset(
        "advbench", "advbench/harmful_behaviors.csv",
        "https://raw.githubusercontent.com/YancyKahn/PocoGCG/main/data/advbench/harmful_behaviors.csv",
        "dc1f2e4cfc7856a0e91f8bfdb8236d219644309a7522ece3f2d13bb2cc4a339c", "MIT",
        "Zou et al. (2023), Universal and Transferable Adversarial Attacks on Aligned Language Models. arXiv:2307.15043.",
        "521 harmful behaviours (goal, target)",
    ),
    Dataset(
        "jailbreakbench_pair", "jailbreakbench_pair/pair_vicuna13b_prompts.csv",
        "https://github.com/JailbreakBench/artifacts (PAIR, vicuna-13b-v1.5; responses removed)",
        "a58faf7d7ae60095a058128b1481a0c04c2263ae7fa8069cf524d910e9a8f0e2", "MIT",
        "Chao et al. (2024), JailbreakBench; Chao et al. (2023), Jailbreaking Black Box LLMs in Twenty Queries (PAIR).",
        "82 PAIR attack prompts against Vicuna-13B",
    ),
    Dataset(
        "hh_rlhf_harmless", "hh_rlhf_harmless/test.jsonl.gz",
        "https://raw.githubusercontent.com/anthropics/hh-rlhf/master/harmless-base/test.jsonl.gz",
        "ebfaaed21162a4de120ae85366075b34425e2a6303fac59b99555002f7016f03", "MIT",
        "Bai et al. (2022), Training a Helpful and Harmless Assistant with RLHF. arXiv:2204.05862.",
        "2,312 chosen / rejected dialogue pairs (harmless-base test split)",
    ),
    Dataset(
        "presidio_synth", "presidio_synth/synth_dataset_v2.json",
        "https://raw.githubusercontent.com/microsoft/presidio-research/master/data/synth_dataset_v2.json",
        "ec08a771ba8135314cafb60752b2295212222ba3a4cd75d73811839c699e0012", "MIT",
        "Microsoft Presidio research, synthetic PII dataset v2.",
        "1,500 synthetic sentences with labelled PII spans",
    ),
]}


def cache_dir() -> Path:
    """Where fetched files live: ``$LABKIT_CACHE_DIR/datasets`` or ``~/.cache/labkit/datasets``."""
    base = os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "labkit")
    return Path(base) / "datasets"


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _install(src: Path | None, url: str | None, dest: Path, sha: str) -> None:
    """Copy or download into a temporary file, verify, then rename atomically."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=dest.name, suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            if src is not None:
                with open(src, "rb") as f:
                    shutil.copyfileobj(f, out)
            else:
                with urllib.request.urlopen(url, timeout=30) as resp:  # noqa: S310 (fixed https URLs)
                    shutil.copyfileobj(resp, out)
        got = sha256_file(tmp)
        if got != sha:
            raise DatasetUnavailable(f"checksum mismatch for {dest.name}: expected {sha}, got {got}")
        tmp.replace(dest)
    finally:
        tmp.unlink(missing_ok=True)


def fetch(name: str) -> Path:
    """Return the local path of dataset ``name``, verified by sha256.

    Raises
    ------
    ValueError
        ``name`` is not in the registry.
    DatasetUnavailable
        The file is not cached, there is no mirror, and it cannot be downloaded.
    """
    ds = REGISTRY[ensure_choice("name", name, sorted(REGISTRY))]
    dest = cache_dir() / ds.path
    if dest.exists() and sha256_file(dest) == ds.sha256:
        return dest
    mirror = os.environ.get(MIRROR_ENV)
    if mirror and (Path(mirror) / ds.path).exists():
        _install(Path(mirror) / ds.path, None, dest, ds.sha256)
        return dest
    if os.environ.get("LABKIT_OFFLINE", "") == "1":
        reason = "LABKIT_OFFLINE=1 forbids downloads"
    elif ds.url.startswith("https://raw."):
        try:
            _install(None, ds.url, dest, ds.sha256)
            return dest
        except OSError as exc:
            reason = f"download failed ({exc})"
    else:
        reason = "this file is a derived copy with no direct download"
    raise DatasetUnavailable(
        f"dataset {name!r} is not available: {reason}. Put {ds.path} under a folder and set "
        f"{MIRROR_ENV} to that folder, or place it at {dest}. Source: {ds.url} ({ds.licence})."
    )


def load(name: str) -> pd.DataFrame:
    """Load dataset ``name`` as a DataFrame (one row per example)."""
    path = fetch(name)
    if path.suffix == ".csv":
        return pd.read_csv(path)
    if path.name.endswith(".jsonl.gz"):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            return pd.DataFrame([json.loads(line) for line in f if line.strip()])
    if path.suffix == ".json":
        return pd.DataFrame(json.loads(path.read_text(encoding="utf-8")))
    raise ValueError(f"unknown file type for {path}")


def citation(name: str) -> str:
    """How to cite dataset ``name`` (and its licence)."""
    ds = REGISTRY[ensure_choice("name", name, sorted(REGISTRY))]
    return f"{ds.citation} Licence: {ds.licence}."


__all__ = ["Dataset", "DatasetUnavailable", "REGISTRY", "fetch", "load", "citation", "cache_dir", "sha256_file"]
