"""The `labkit` command: each subcommand's happy path and one bad input."""
from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import nbformat
import pytest

from labkit import cli

ROOT = Path(__file__).resolve().parents[1]


def test_the_console_script_is_declared_and_helps():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"labkit": "labkit.cli:main"}
    out = subprocess.run([sys.executable, "-m", "labkit.cli", "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0
    for command in ("doctor", "prebuild", "data", "grade"):
        assert command in out.stdout


def test_no_command_or_an_unknown_one_is_a_usage_error(capsys):
    for argv in ([], ["teach"]):
        with pytest.raises(SystemExit) as exc:
            cli.main(argv)
        assert exc.value.code == 2
    assert "usage: labkit" in capsys.readouterr().err


def test_doctor_prints_every_check_and_a_verdict(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("LABKIT_OFFLINE", "1")
    monkeypatch.delenv("LABKIT_DATA_MIRROR", raising=False)
    code = cli.main(["doctor"])
    out = capsys.readouterr().out.splitlines()
    names = [line[6:].split()[0] for line in out[:-1]]
    for needed in ("python", "torch", "device", "widget"):
        assert needed in names
    from labkit import datasets

    # An empty cache, offline and no mirror: every dataset is missing, which warns, never fails.
    assert sum(line.startswith("warn  dataset ") and "missing" in line for line in out) == len(datasets.REGISTRY)
    assert any(line.startswith("ok    model assistant-default") and "shipped" in line for line in out)
    assert code == (1 if any(line.startswith("FAIL") for line in out) else 0)
    assert out[-1].startswith("NOT READY" if code else "ready")


def test_doctor_fails_when_a_required_piece_is_missing(monkeypatch):
    monkeypatch.setattr(cli, "widget_extension_row", lambda: ("widget extension", "missing", cli.FAIL))
    code, line = cli.verdict(cli.doctor_rows())
    assert code == 1 and line.startswith("NOT READY: widget extension")


def test_doctor_rejects_arguments():
    with pytest.raises(SystemExit) as exc:
        cli.main(["doctor", "--gpu-now"])
    assert exc.value.code == 2


def test_doctor_compares_versions_with_the_lock(tmp_path, monkeypatch):
    lock = tmp_path / "constraints.txt"
    lock.write_text("numpy==0.0.1\n")
    monkeypatch.setattr(cli, "LOCK", lock)
    rows = {name: (value, level) for name, value, level in cli.environment_rows()}
    assert rows["numpy"][1] == cli.WARN and "the lock has 0.0.1" in rows["numpy"][0]
    assert rows["scipy"][1] == cli.OK  # not in this lock: nothing to compare


def test_prebuild_loads_the_shipped_model(capsys):
    assert cli.main(["prebuild", "--model", "assistant-default"]) == 0
    assert "assistant-default: ready" in capsys.readouterr().out


def test_prebuild_bad_input(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["prebuild", "--config", "huge"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        cli.main(["prebuild", "--device", "cuda"])  # --device needs --config
    assert exc.value.code == 2
    assert cli.main(["prebuild", "--model", "no-such-model"]) == 2
    assert "unknown course models" in capsys.readouterr().err


def test_data_list_and_fetch(capsys, tmp_path, monkeypatch):
    from labkit import datasets

    monkeypatch.setenv("LABKIT_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("LABKIT_OFFLINE", "1")
    monkeypatch.delenv(datasets.MIRROR_ENV, raising=False)
    assert cli.main(["data", "list"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed and ds.licence in listed for name, ds in datasets.REGISTRY.items())
    # Offline, empty cache, no mirror: fetching fails (exit 1), unless missing sets are allowed.
    assert cli.main(["data", "fetch", "xstest"]) == 1
    assert cli.main(["data", "fetch", "xstest", "--allow-missing"]) == 0
    assert "0 of 1 ready" in capsys.readouterr().out


def test_data_bad_input():
    for argv in (["data"], ["data", "fetch", "imagenet"]):
        with pytest.raises(SystemExit) as exc:
            cli.main(argv)
        assert exc.value.code == 2


def test_grade_writes_the_csv(tmp_path, capsys):
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("from labkit.exercises import check\nfrom labkit.basics import softmax"),
        nbformat.v4.new_code_cell('check("00.softmax", softmax)'),
    ])
    (tmp_path / "subs" / "ann").mkdir(parents=True)
    nbformat.write(nb, tmp_path / "subs" / "ann" / "practice.ipynb")
    out = tmp_path / "out" / "grades.csv"
    assert cli.main(["grade", str(tmp_path / "subs"), "--csv", str(out), "--timeout", "180"]) == 0
    lines = out.read_text().splitlines()
    assert lines[0] == "student,notebook,exercise,status,detail,seconds"
    assert lines[1].startswith("ann,practice.ipynb,00.softmax,passed,[passed] 00.softmax")
    assert "wrote" in capsys.readouterr().out


def test_grade_bad_input(tmp_path):
    for argv in (["grade", str(tmp_path / "nowhere")], ["grade", str(tmp_path), "--timeout", "0"], ["grade"]):
        with pytest.raises(SystemExit) as exc:
            cli.main(argv)
        assert exc.value.code == 2
    assert cli.main(["grade", str(tmp_path)]) == 2  # a folder with no notebook


def test_gpu_smoke_exits_cleanly_without_a_gpu():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is here: run tools/gpu_smoke.py itself")
    out = subprocess.run([sys.executable, str(ROOT / "tools" / "gpu_smoke.py")], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and out.stdout.startswith("no GPU")
