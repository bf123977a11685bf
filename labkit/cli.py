"""The ``labkit`` command: prepare a machine for the course, and grade notebooks.

::

    labkit doctor                       is this machine ready for the course?
    labkit prebuild [--config NAME]     train and cache the course's models
    labkit data list | fetch [NAME...]  the registered real evaluation sets
    labkit grade PATH... [--csv FILE]   run students' notebooks, collect every check

Each subcommand delegates to the module that does the work
(:mod:`labkit.lm.cache`, :mod:`labkit.datasets`, :mod:`labkit.grading`), so
``make prebuild`` and ``python -m labkit.lm.cache prebuild`` do the same thing.

Exit codes: 0 done (for ``doctor``: ready), 1 something the course needs is
missing or failed, 2 the command line was wrong.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "constraints.txt"
OK, WARN, FAIL = "ok", "warn", "FAIL"


# ------------------------------------------------------------------ doctor
def _lock_pins(lock: Path | None = None) -> dict[str, str]:
    """``{name: version}`` from the course's lock (empty when labkit is installed without its repository)."""
    lock = LOCK if lock is None else lock
    pins = {}
    if lock.exists():
        for line in lock.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if "==" in line:
                name, version = line.split("==", 1)
                pins[name.strip().lower().replace("_", "-")] = version.strip()
    return pins


def environment_rows() -> list[tuple[str, str, str]]:
    """Python, package versions against the lock, device and threads (from :func:`labkit.core.doctor`)."""
    from labkit.core import doctor as core_doctor

    pins = _lock_pins()
    rows = []
    for name, value, ok in core_doctor():
        if name in ("downloads needed", "real-data mirror", "dataset cache"):
            continue  # the dataset rows below say more
        level = OK if ok else FAIL
        pinned = pins.get(name.lower())
        if ok and pinned and value.split("+")[0] != pinned:  # 2.13.0+cpu is the lock's 2.13.0
            level, value = WARN, f"{value} (the lock has {pinned}: outputs may differ)"
        rows.append((name, value, level))
    if not pins:
        rows.append(("lock", f"{LOCK} not found: versions not compared", WARN))
    return rows


def widget_extension_row() -> tuple[str, str, str]:
    """Whether the JupyterLab on this environment's path has the ipywidgets extension."""
    from jupyter_core.paths import jupyter_path

    for base in jupyter_path("labextensions"):
        if (Path(base) / "@jupyter-widgets" / "jupyterlab-manager" / "package.json").exists():
            return ("widget extension", f"installed ({base})", OK)
    return ("widget extension", "missing: widgets show as text; pip install jupyterlab_widgets", FAIL)


def dataset_rows() -> list[tuple[str, str, str]]:
    """Each registered dataset: cached (verified), mirrored, downloadable or missing."""
    from labkit import datasets

    offline = os.environ.get("LABKIT_OFFLINE", "") == "1"
    mirror = os.environ.get(datasets.MIRROR_ENV)
    rows = []
    for name, ds in sorted(datasets.REGISTRY.items()):
        cached = datasets.cache_dir() / ds.path
        if cached.exists() and datasets.sha256_file(cached) == ds.sha256:
            state, level = "cached, sha256 ok", OK
        elif mirror and (Path(mirror) / ds.path).exists():
            state, level = f"in the mirror {mirror}", OK
        elif ds.url.startswith("https://raw.") and not offline:
            state, level = "downloadable (labkit data fetch)", OK
        else:
            state, level = "missing: lessons skip its cells (labkit data fetch, or set LABKIT_DATA_MIRROR)", WARN
        rows.append((f"dataset {name}", state, level))
    return rows


def model_rows() -> list[tuple[str, str, str]]:
    """Each course model: shipped or cached with a good hash, stale files, or not built."""
    from labkit.datasets import sha256_file
    from labkit.lm import cache

    rows = []
    for model in cache.course_models():
        path = model.path()
        shipped = cache.SHIPPED_DIR / f"{model.name}.pt"
        recorded = cache.recorded_sha256(shipped.name)
        stale = [p for p in path.parent.glob(f"{model.name}-*.pt") if p != path]
        note = f"; {len(stale)} stale file(s) from older versions in {path.parent}" if stale else ""
        if recorded and shipped.exists():
            ok = sha256_file(shipped) == recorded
            rows.append((f"model {model.name}", ("shipped, sha256 ok" if ok else
                                                 "shipped file's sha256 differs from SHA256SUMS") + note,
                         OK if ok else FAIL))
        elif path.exists():
            sidecar = path.with_name(path.name + ".sha256")
            ok = sidecar.exists() and sidecar.read_text().strip() == sha256_file(path)
            rows.append((f"model {model.name}", ("cached, sha256 ok" if ok else "cached file damaged: rebuilt on "
                                                 "next use (labkit prebuild)") + note, OK if ok else WARN))
        else:
            rows.append((f"model {model.name}", "not built: run `labkit prebuild` (a lesson would train it, "
                                                "slowly)" + note, WARN))
    return rows


def numerics_row() -> tuple[str, str, str]:
    from labkit import numerics

    return ("stored outputs", numerics.describe().removeprefix("numerics: "), OK)


def doctor_rows() -> list[tuple[str, str, str]]:
    """Every check of ``labkit doctor``: (name, value, level)."""
    return [*environment_rows(), widget_extension_row(), numerics_row(), *dataset_rows(), *model_rows()]


def verdict(rows) -> tuple[int, str]:
    """Exit code and the one-line verdict for ``rows``."""
    failed = [name for name, _, level in rows if level == FAIL]
    warned = [name for name, _, level in rows if level == WARN]
    if failed:
        return 1, f"NOT READY: {', '.join(failed)} (see the FAIL lines above)"
    if warned:
        return 0, f"ready, with {len(warned)} warning(s): {', '.join(warned)}"
    return 0, "ready: every lesson can run here"


def cmd_doctor(args: argparse.Namespace) -> int:
    rows = doctor_rows()
    for name, value, level in rows:
        print(f"{level:<5} {name:<30} {value}", flush=True)
    code, line = verdict(rows)
    print(line)
    return code


# ---------------------------------------------------------------- prebuild
def cmd_prebuild(args: argparse.Namespace) -> int:
    from labkit import numerics
    from labkit.lm import cache

    if args.from_command_line:
        # Train under the kernel-dispatch pins, as `python -m labkit.lm.cache prebuild` does
        # (only from the command line: a caller's process must not be replaced).
        numerics.reexec_pinned("labkit.cli", sys.argv[1:])
    if args.config is None:
        return cache.main(["prebuild", f"--jobs={args.jobs}", *[f"--model={m}" for m in args.model or []]])
    from labkit.core import get_device

    device = get_device(args.device) if args.device else None
    cache.get_assistant(args.config, device=device)
    print(f"assistant-{args.config}: ready ({cache.checkpoint_path(cache.get_config(args.config))})")
    return 0


# -------------------------------------------------------------------- data
def cmd_data(args: argparse.Namespace) -> int:
    from labkit import datasets

    if args.data_command == "list":
        return datasets.main(["list"])
    return datasets.main(["fetch", *args.names, *(["--allow-missing"] if args.allow_missing else [])])


# ------------------------------------------------------------------- grade
def cmd_grade(args: argparse.Namespace) -> int:
    from labkit import grading

    rows = grading.grade(args.paths, timeout=args.timeout, jobs=args.jobs)
    out = Path(args.csv)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="", encoding="utf-8") as f:
        grading.write_csv(rows, f)
    print(grading.summary(rows))
    print(f"\nwrote {out} ({len(rows)} rows)")
    return 0


# ------------------------------------------------------------------ parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="labkit",
                                     description="Prepare a machine for the labkit course, and grade notebooks.",
                                     epilog="Run `labkit COMMAND --help` for a command's options.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("doctor", help="check this machine: packages against the lock, device, widgets, data, models",
                       description="Check everything the lessons need; exit 1 when something required is missing.")
    p.set_defaults(run=cmd_doctor)

    p = sub.add_parser("prebuild", help="train and cache every course model (once per machine)",
                       description="Build every registered course model, or the assistant under one config.")
    from labkit.lm.train import CONFIGS

    p.add_argument("--config", choices=sorted(CONFIGS),
                   help="build the tiny assistant under this config instead (large is meant for a GPU)")
    p.add_argument("--device", help="where to train with --config large: cpu, cuda, cuda:1, mps")
    p.add_argument("--model", action="append", help="one registered course model (repeatable; default: all)")
    p.add_argument("--jobs", type=int, default=1, help="worker processes, one per core you can spare (default 1)")
    p.set_defaults(run=cmd_prebuild)

    p = sub.add_parser("data", help="the registered real evaluation sets: list, fetch",
                       description="Real evaluation sets with their licences and citations (labkit.datasets).")
    data = p.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    data.add_parser("list", help="each set: ready or not, licence, citation")
    f = data.add_parser("fetch", help="download (or copy from $LABKIT_DATA_MIRROR) and verify")
    f.add_argument("names", nargs="*", help="sets to fetch (default: all)")
    f.add_argument("--allow-missing", action="store_true", help="exit 0 even when a set cannot be had")
    p.set_defaults(run=cmd_data)

    p = sub.add_parser("grade", help="run students' notebooks headlessly and collect every exercise check",
                       description="Run each notebook in its own kernel, offline, with a time limit, and write one "
                                   "CSV row per exercise: passed, failed, not attempted or error. THIS RUNS THE "
                                   "STUDENTS' CODE: use a container or a throwaway account.")
    p.add_argument("paths", nargs="+", help="notebooks, or folders of them (one sub-folder per student)")
    p.add_argument("--csv", default="grades.csv", help="where to write the results (default: grades.csv)")
    p.add_argument("--timeout", type=int, default=600, help="seconds each notebook may run (default: 600)")
    p.add_argument("-j", "--jobs", type=int, default=1, help="notebooks run at once (default: 1)")
    p.set_defaults(run=cmd_grade)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "device", None) and args.config is None:
        parser.error("--device only applies with --config (the default course models train on the CPU)")
    if args.command == "grade":
        if args.timeout < 1 or args.jobs < 1:
            parser.error(f"--timeout and --jobs must be at least 1, got {args.timeout} and {args.jobs}")
        missing = [p for p in args.paths if not Path(p).exists()]
        if missing:
            parser.error(f"no such file or folder: {', '.join(missing)}")
    args.from_command_line = argv is None
    try:
        return args.run(args)
    except ValueError as exc:  # bad input found past the parser (e.g. an unknown model, no notebooks)
        print(f"labkit {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
