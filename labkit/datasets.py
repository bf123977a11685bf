"""A small registry of real, public evaluation sets (held out: never trained on).

Each entry records the canonical download URL, the sha256 of the file, its
licence and how to cite it, the way scikit-learn's and torchvision's fetchers
do. :func:`fetch` looks in the local cache, then in a mirror directory named by
``$LABKIT_DATA_MIRROR`` (the test command points it at ``../shared/data``), then
downloads; the checksum is verified every time, so results are identical
whichever way the file arrived. Offline with no mirror, it raises
:class:`DatasetUnavailable` with instructions.

A lesson cell that needs real data starts with ``if datasets.require(...):``:
offline it prints one line that names the missing sets and how to get them,
and the lesson goes on. The test command skips such a notebook with that same
line (:func:`unavailable_message`). An instructor preparing a room runs::

    python -m labkit.datasets fetch          # every registered set
    python -m labkit.datasets list           # what is cached, with licences
"""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import sys
import tempfile
import urllib.error
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
    Dataset(
        "harmbench_val", "harmbench/harmbench_behaviors_text_val.csv",
        "https://raw.githubusercontent.com/centerforaisafety/HarmBench/8e1604d1171fe8a48d8febecd22f600e462bdcdd/data/behavior_datasets/harmbench_behaviors_text_val.csv",
        "7bfaaa5e2b9b95002c89e2d33c019f58e9e8496e2fc65d368f1eeb8179e69534", "MIT",
        "Mazeika et al. (2024), HarmBench: A Standardized Evaluation Framework for Automated Red Teaming and Robust Refusal. ICML.",
        "80 harmful behaviours, HarmBench's validation split (Behavior, FunctionalCategory, SemanticCategory, ...)",
    ),
    Dataset(
        "harmbench_test", "harmbench/harmbench_behaviors_text_test.csv",
        "https://raw.githubusercontent.com/centerforaisafety/HarmBench/8e1604d1171fe8a48d8febecd22f600e462bdcdd/data/behavior_datasets/harmbench_behaviors_text_test.csv",
        "75d257b3e7428c52eb7b0154318f455af3e01b09a3794b5e2f3d36054f3c0e29", "MIT",
        "Mazeika et al. (2024), HarmBench: A Standardized Evaluation Framework for Automated Red Teaming and Robust Refusal. ICML.",
        "320 harmful behaviours, HarmBench's test split (same columns)",
    ),
    Dataset(
        "do_not_answer", "do_not_answer/do_not_answer_data.csv",
        "https://raw.githubusercontent.com/promptfoo/promptfoo/2ef5c7760266dd26c1795d64e3b3e3763d0171cc/examples/donotanswer/dataset/do_not_answer_data.csv",
        "410449674780aa7304512043706f7981f666a79528d11546da34ebdd9595681c", "Apache-2.0",
        "Wang et al. (2024), Do-Not-Answer: Evaluating Safeguards in LLMs. Findings of EACL.",
        "939 prompts a responsible model should not answer, risk taxonomy, six models' responses with human harm labels",
    ),
    Dataset(
        "clinc_oos", "clinc_oos/data_full.json",
        "https://raw.githubusercontent.com/clinc/oos-eval/828f8093932c8fe6ca7936c3d2e52903b1c523de/data/data_full.json",
        "36923c3705a59e08fe9c3883d8bc2dd966ef93e22cb78ac41171782a698d56e0", "CC BY 3.0",
        "Larson et al. (2019), An Evaluation Dataset for Intent Classification and Out-of-Scope Prediction. EMNLP.",
        "23,700 short requests to a task assistant, [text, intent] pairs in train / val / test / oos splits",
    ),
    Dataset(
        "nq_open", "nq_open/NQ-open.dev.jsonl",
        "https://raw.githubusercontent.com/google-research-datasets/natural-questions/fb26a3073b1fe636c97302890a27b491d6530130/nq_open/NQ-open.dev.jsonl",
        "f15567f38099f3615f5b8a685c0aef449c11ad90d3da3735e8d1b98115b40616", "CC BY-SA 3.0",
        "Kwiatkowski et al. (2019), Natural Questions (TACL); Lee et al. (2019), NQ-Open (ACL).",
        "3,610 real search questions (dev split)",
    ),
    Dataset(
        "gsm8k", "gsm8k/test.jsonl",
        "https://raw.githubusercontent.com/openai/grade-school-math/3101c7d5072418e28b9008a6636bde82a006892c/grade_school_math/data/test.jsonl",
        "3730d312f6e3440559ace48831e51066acaca737f6eabec99bccb9e4b3c39d14", "MIT",
        "Cobbe et al. (2021), Training Verifiers to Solve Math Word Problems. arXiv:2110.14168.",
        "1,319 grade-school maths word problems (test split)",
    ),
    Dataset(
        "mt_bench", "mt_bench/question.jsonl",
        "https://raw.githubusercontent.com/lm-sys/FastChat/b494d0c6b4e7935f1764f8439e75da3e66beccc7/fastchat/llm_judge/data/mt_bench/question.jsonl",
        "119565adbab82227089cefdb44c8d7e2cf04dc0a0ec233634c82e7d4e2a944f7", "Apache-2.0",
        "Zheng et al. (2023), Judging LLM-as-a-Judge with MT-Bench and Chatbot Arena. NeurIPS.",
        "80 two-turn questions in 8 categories",
    ),
    Dataset(
        "vicuna_bench", "vicuna_bench/question.jsonl",
        "https://raw.githubusercontent.com/lm-sys/FastChat/b494d0c6b4e7935f1764f8439e75da3e66beccc7/fastchat/llm_judge/data/vicuna_bench/question.jsonl",
        "c248c5c98ba45bb0c2aadae2f270e643bd32679c6c306a3b2a503ac4254cdaa5", "Apache-2.0",
        "Chiang et al. (2023), Vicuna: An Open-Source Chatbot Impressing GPT-4 with 90% ChatGPT Quality (LMSYS blog).",
        "80 one-turn questions in 9 categories",
    ),
    Dataset(
        "arena_hard", "arena_hard/question.jsonl",
        "https://raw.githubusercontent.com/lm-sys/arena-hard-auto/d989e6fd910d521dc8e9d12893c405e335fde51a/data/arena-hard-v0.1/question.jsonl",
        "4daad38811161c3ba5c248f26b90c3cef89634f4c772002ed9138c1e13f63e9f", "Apache-2.0",
        "Li et al. (2024), From Crowdsourced Data to High-Quality Benchmarks: Arena-Hard and BenchBuilder. arXiv:2406.11939.",
        "500 hard real user prompts from Chatbot Arena (v0.1)",
    ),
    Dataset(
        "truthfulqa", "truthfulqa/TruthfulQA.csv",
        "https://raw.githubusercontent.com/sylinrl/TruthfulQA/d71c110897f5d31c5d7f309e7bc316c152f6f031/TruthfulQA.csv",
        "b8d8ef1e12f98b4f2a9f47abc9765da0640b182b6c5d9b92f0c1a1f2f1e02e5c", "Apache-2.0",
        "Lin, Hilton and Evans (2022), TruthfulQA: Measuring How Models Mimic Human Falsehoods. ACL.",
        "790 questions that invite misconceptions (January 2025 revision)",
    ),
    Dataset(
        "hh_rlhf_helpful", "hh_rlhf_helpful/test.jsonl.gz",
        "https://media.githubusercontent.com/media/anthropics/hh-rlhf/354e5c3cb8960630860dd5774a6ac2a58313bf4d/helpful-base/test.jsonl.gz",
        "8be3fc1a13b27901631696f2be6f184c799f1baeaf145f53ac5db24960adc37b", "MIT",
        "Bai et al. (2022), Training a Helpful and Harmless Assistant with RLHF. arXiv:2204.05862.",
        "2,354 chosen / rejected dialogue pairs (helpful-base test split)",
    ),
    Dataset(
        "coconot_contrast", "coconot_contrast/coconot_contrast_eval.jsonl",
        "https://raw.githubusercontent.com/allenai/noncompliance/939b3631f376b68b55b980876f31fdd9a7aa7a6d/data/coconot_contrast_eval.jsonl",
        "76dccec176743ed656279f2969c51abb68bda94e5fda8397e34ff5638e021d86", "MIT",
        "Brahman et al. (2024), The Art of Saying No: Contextual Noncompliance in Language Models (CoCoNot). NeurIPS.",
        "379 benign requests that look as if they should be refused (contrast set)",
    ),
    Dataset(
        "koala_test_set", "koala_test_set/koala_test_set.jsonl",
        "https://raw.githubusercontent.com/arnav-gudibande/koala-test-set/2d4396aee3cff495382e9b0ad2521d70b177763b/koala_test_set.jsonl",
        "c8cda5c53810dc30aad34fabbb828fe3eba0957119e00916650c971905d19886", "Apache-2.0",
        "Geng et al. (2023), Koala: A Dialogue Model for Academic Research (BAIR blog). For academic evaluation; "
        "the authors ask that it not be trained on.",
        "180 user-written prompts (evaluation only)",
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


def _check_name(name: str) -> Dataset:
    return REGISTRY[ensure_choice("name", name, sorted(REGISTRY))]


def is_available(name: str) -> bool:
    """Whether ``name`` can be loaded without a download: cached with the right
    checksum, or present in the mirror (verified when it is copied)."""
    ds = _check_name(name)
    dest = cache_dir() / ds.path
    if dest.exists() and sha256_file(dest) == ds.sha256:
        return True
    mirror = os.environ.get(MIRROR_ENV)
    return bool(mirror) and (Path(mirror) / ds.path).exists()


def missing(names) -> list[str]:
    """The names among ``names`` that :func:`is_available` says need a download."""
    if isinstance(names, str):
        raise TypeError("names must be a list of dataset names, not one string")
    return [n for n in names if not is_available(n)]


def unavailable_message(names) -> str:
    """One line naming the missing datasets and how to get them."""
    names = list(names)
    if not names:
        raise ValueError("names must name at least one dataset")
    for n in names:
        _check_name(n)
    return (f"real data unavailable: {', '.join(names)} not cached and cannot be downloaded here; "
            f"run `python -m labkit.datasets fetch` online, or set {MIRROR_ENV} to a folder holding them "
            "(the rest of the lesson runs without them)")


def require(*names: str) -> bool:
    """Make ``names`` available if possible; else print one line and return False.

    For lesson cells: ``if datasets.require("hatecheck"):`` runs the cell's
    real-data analysis only when the data can be had (cache, mirror, or a
    download unless ``LABKIT_OFFLINE=1``).

    Returns
    -------
    bool
        True when every dataset in ``names`` is ready to :func:`load`.
    """
    if not names:
        raise ValueError("require() needs at least one dataset name")
    lacking = []
    for n in names:
        _check_name(n)
        try:
            fetch(n)
        except DatasetUnavailable:
            lacking.append(n)
    if lacking:
        print(unavailable_message(lacking))
        return False
    return True


def fetch(name: str, download: bool = True) -> Path:
    """Return the local path of dataset ``name``, verified by sha256.

    Parameters
    ----------
    name : str
        A key of :data:`REGISTRY`.
    download : bool
        Try the canonical URL when the set is neither cached nor mirrored
        (never when ``LABKIT_OFFLINE=1``).

    Raises
    ------
    ValueError
        ``name`` is not in the registry.
    DatasetUnavailable
        The file is not cached, there is no mirror, and it cannot be downloaded.
    """
    ds = _check_name(name)
    dest = cache_dir() / ds.path
    if dest.exists() and sha256_file(dest) == ds.sha256:
        return dest
    mirror = os.environ.get(MIRROR_ENV)
    if mirror and (Path(mirror) / ds.path).exists():
        _install(Path(mirror) / ds.path, None, dest, ds.sha256)
        return dest
    if not isinstance(download, bool):
        raise TypeError(f"download must be True or False, got {type(download).__name__}")
    if os.environ.get("LABKIT_OFFLINE", "") == "1":
        reason = "LABKIT_OFFLINE=1 forbids downloads"
    elif not download:
        reason = "not downloaded (an earlier download failed: the network looks unreachable)"
    elif ds.url.startswith(("https://raw.", "https://media.githubusercontent.com/")):
        try:
            _install(None, ds.url, dest, ds.sha256)
            return dest
        except (OSError, urllib.error.URLError) as exc:
            reason = f"download failed ({exc})"
    else:
        reason = "this file is a derived copy with no direct download"
    raise DatasetUnavailable(
        f"dataset {name!r} is not available: {reason}. Put {ds.path} under a folder and set "
        f"{MIRROR_ENV} to that folder, or place it at {dest}. Source: {ds.url} ({ds.licence})."
    )


def load(name: str) -> pd.DataFrame:
    """Load dataset ``name`` as a DataFrame (one row per example).

    A JSON file of named splits of different lengths (CLINC150's
    ``{"train": [...], "val": [...]}``) becomes columns ``split`` and ``row``.
    """
    path = fetch(name)
    if path.suffix == ".csv":
        return pd.read_csv(path)
    if path.name.endswith(".jsonl.gz"):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            return pd.DataFrame([json.loads(line) for line in f if line.strip()])
    if path.suffix == ".jsonl":
        with open(path, encoding="utf-8") as f:
            return pd.DataFrame([json.loads(line) for line in f if line.strip()])
    if path.suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and all(isinstance(v, list) for v in data.values()) \
                and len({len(v) for v in data.values()}) > 1:  # named splits of different sizes (CLINC150)
            return pd.DataFrame([{"split": k, "row": row} for k, rows in data.items() for row in rows])
        return pd.DataFrame(data)
    raise ValueError(f"unknown file type for {path}")


def citation(name: str) -> str:
    """How to cite dataset ``name`` (and its licence)."""
    ds = _check_name(name)
    return f"{ds.citation} Licence: {ds.licence}."


def fetch_all(names=None, stream=None) -> dict[str, str]:
    """Fetch ``names`` (default: every registered set); never raises for one set.

    After the first network failure the remaining downloads are not tried
    (each would wait for the same time-out); mirrored and cached sets are still
    installed.

    Returns
    -------
    dict
        name -> ``"ok"`` or the reason it is unavailable.
    """
    names = sorted(REGISTRY) if names is None else list(names)
    for n in names:
        _check_name(n)
    stream = sys.stdout if stream is None else stream
    status: dict[str, str] = {}
    network_ok = True
    for n in names:
        try:
            fetch(n, download=network_ok)
            status[n] = "ok"
        except DatasetUnavailable as exc:
            status[n] = str(exc).split(" is not available: ", 1)[-1].split(". Put ", 1)[0]
            if "download failed" in status[n]:
                network_ok = False  # do not wait for the same time-out once per file
        print(f"{n:<22} {status[n]}", file=stream, flush=True)
    return status


def main(argv: list[str] | None = None) -> int:
    """``python -m labkit.datasets fetch [NAME ...]`` or ``list``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m labkit.datasets",
                                     description="Fetch and list the course's real evaluation sets.")
    sub = parser.add_subparsers(dest="command", required=True)
    p_fetch = sub.add_parser("fetch", help="download (or copy from $LABKIT_DATA_MIRROR) and verify datasets")
    p_fetch.add_argument("names", nargs="*", help="datasets to fetch (default: all)")
    p_fetch.add_argument("--allow-missing", action="store_true",
                         help="exit 0 even when a set cannot be had (the test command uses this)")
    sub.add_parser("list", help="registered datasets, whether each is ready, licence and citation")
    args = parser.parse_args(argv)
    if args.command == "list":
        for name, ds in sorted(REGISTRY.items()):
            state = "ready" if is_available(name) else "not cached"
            print(f"{name:<22} {state:<11} {ds.licence:<10} {ds.citation}")
        return 0
    unknown = [n for n in args.names if n not in REGISTRY]
    if unknown:
        parser.error(f"unknown dataset(s) {', '.join(unknown)}; choose from {', '.join(sorted(REGISTRY))}")
    status = fetch_all(args.names or None)
    lacking = [n for n, s in status.items() if s != "ok"]
    print(f"datasets: {len(status) - len(lacking)} of {len(status)} ready in {cache_dir()}"
          + (f"; unavailable: {', '.join(lacking)}" if lacking else ""), flush=True)
    return 0 if (not lacking or args.allow_missing) else 1


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["Dataset", "DatasetUnavailable", "REGISTRY", "fetch", "fetch_all", "load", "citation", "cache_dir",
           "sha256_file", "is_available", "missing", "unavailable_message", "require"]
