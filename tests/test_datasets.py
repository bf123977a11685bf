import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from labkit import datasets


def test_registry_entries_are_complete():
    for ds in datasets.REGISTRY.values():
        assert len(ds.sha256) == 64 and ds.licence and ds.citation and ds.url


def test_unknown_name_is_a_clear_error():
    with pytest.raises(ValueError, match="name must be one of"):
        datasets.fetch("imagenet")


def test_offline_without_mirror_explains_how_to_get_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("LABKIT_DATA_MIRROR", raising=False)
    monkeypatch.setenv("LABKIT_OFFLINE", "1")
    with pytest.raises(datasets.DatasetUnavailable, match="LABKIT_DATA_MIRROR"):
        datasets.fetch("xstest")


def test_mirror_copy_is_verified_and_cached(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    (mirror / "xstest").mkdir(parents=True)
    bad = mirror / "xstest" / "xstest_prompts.csv"
    bad.write_text("id,prompt\n1,tampered\n")
    monkeypatch.setenv("LABKIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("LABKIT_DATA_MIRROR", str(mirror))
    monkeypatch.setenv("LABKIT_OFFLINE", "1")
    with pytest.raises(datasets.DatasetUnavailable, match="checksum mismatch"):
        datasets.fetch("xstest")
    assert not list((tmp_path / "cache").rglob("*.part")), "a failed copy must leave no partial file"


SHARED = os.environ.get("LABKIT_DATA_MIRROR")


@pytest.mark.skipif(not SHARED or not os.path.isdir(SHARED or ""), reason="no real-data mirror here")
@pytest.mark.parametrize("name, rows", [("xstest", 450), ("advbench", 521), ("hatecheck", 3728), ("jailbreakbench_pair", 82), ("hh_rlhf_harmless", 2312), ("presidio_synth", 1500), ("davidson_offensive", 24783),
    ("harmbench_val", 80), ("harmbench_test", 320), ("do_not_answer", 939), ("clinc_oos", 23700), ("nq_open", 3610),
    ("gsm8k", 1319), ("mt_bench", 80), ("vicuna_bench", 80), ("arena_hard", 500), ("truthfulqa", 790),
    ("hh_rlhf_helpful", 2354), ("coconot_contrast", 379), ("koala_test_set", 180)])
def test_real_sets_load_with_expected_rows(name, rows):
    frame = datasets.load(name)
    assert len(frame) == rows
    path = datasets.fetch(name)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == datasets.REGISTRY[name].sha256


def _offline_env(tmp_path) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "LABKIT_DATA_MIRROR"}
    env.update(LABKIT_CACHE_DIR=str(tmp_path / "empty-cache"), LABKIT_DATA_MIRROR="", LABKIT_OFFLINE="1")
    return env


def test_require_offline_prints_one_line_and_returns_false(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LABKIT_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("LABKIT_DATA_MIRROR", raising=False)
    monkeypatch.setenv("LABKIT_OFFLINE", "1")
    assert datasets.require("hatecheck", "xstest") is False
    out = capsys.readouterr().out.strip().splitlines()
    assert out == [datasets.unavailable_message(["hatecheck", "xstest"])]
    assert "python -m labkit.datasets fetch" in out[0] and "LABKIT_DATA_MIRROR" in out[0]
    assert datasets.missing(["hatecheck"]) == ["hatecheck"]
    with pytest.raises(ValueError, match="name must be one of"):
        datasets.require("imagenet")
    with pytest.raises(TypeError, match="names must be a list"):
        datasets.missing("hatecheck")


@pytest.mark.skipif(not SHARED or not os.path.isdir(SHARED or ""), reason="no real-data mirror here")
def test_require_with_mirror_is_silent_and_true(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LABKIT_CACHE_DIR", str(tmp_path))
    assert datasets.require("xstest") is True
    assert capsys.readouterr().out == ""
    assert datasets.missing(["xstest"]) == []


def test_offline_without_mirror_the_test_command_skips_the_notebook_with_that_line(tmp_path):
    """The offline-no-mirror path: nbval collects lesson 14 and skips it whole,
    naming the missing datasets, instead of reporting every cell as a diff."""
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:xdist", "--nbval", "--nbval-current-env",
                          "notebooks/14_content_moderation.ipynb"], cwd=root, env=_offline_env(tmp_path),
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-2000:]
    line = datasets.unavailable_message(["presidio_synth", "hatecheck", "davidson_offensive"])
    assert line in out.stdout and " passed" not in out.stdout and "skipped" in out.stdout


def test_fetch_command_reports_each_set_and_exits_by_its_flag(tmp_path):
    root = Path(__file__).resolve().parents[1]
    cmd = [sys.executable, "-m", "labkit.datasets", "fetch", "xstest"]
    out = subprocess.run(cmd, cwd=root, env=_offline_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and "xstest" in out.stdout and "unavailable: xstest" in out.stdout
    out = subprocess.run(cmd + ["--allow-missing"], cwd=root, env=_offline_env(tmp_path), capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0
    out = subprocess.run([sys.executable, "-m", "labkit.datasets", "fetch", "imagenet"], cwd=root,
                         env=_offline_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "unknown dataset" in out.stderr
    if SHARED and os.path.isdir(SHARED):
        env = {**_offline_env(tmp_path), "LABKIT_DATA_MIRROR": SHARED}
        out = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0 and "1 of 1 ready" in out.stdout


OFFLINE_LESSON = """
import json, sys
sys.path.insert(0, 'tools')
import nbformat, notebook_run
from pathlib import Path
nb = nbformat.read('notebooks/14_content_moderation.ipynb', as_version=4)
run, _ = notebook_run.execute(nb, Path('notebooks'), name='14', allow_errors=True)
lines = [o['text'].strip() for c in run.cells for o in c.get('outputs', [])
         if o.get('output_type') == 'stream' and 'real data unavailable' in o['text']]
errors = [o['ename'] for c in run.cells for o in c.get('outputs', []) if o.get('output_type') == 'error']
print(json.dumps({'lines': lines, 'errors': errors}))
"""


def test_a_student_offline_sees_the_line_in_the_cell_and_the_lesson_goes_on(tmp_path):
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", OFFLINE_LESSON], cwd=root, env=_offline_env(tmp_path),
                         capture_output=True, text=True, timeout=280)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["errors"] == []
    assert result["lines"] == [datasets.unavailable_message([n])
                               for n in ("presidio_synth", "hatecheck", "davidson_offensive")]
