import hashlib
import os

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
@pytest.mark.parametrize("name, rows", [("xstest", 450), ("advbench", 521), ("hatecheck", 3728), ("jailbreakbench_pair", 82), ("hh_rlhf_harmless", 2312), ("presidio_synth", 1500), ("davidson_offensive", 24783)])
def test_real_sets_load_with_expected_rows(name, rows):
    frame = datasets.load(name)
    assert len(frame) == rows
    path = datasets.fetch(name)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == datasets.REGISTRY[name].sha256
