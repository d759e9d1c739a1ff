"""Discovery over a generated tree: folders, splits, HF, LM Studio, Ollama, broken files, loops."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from gguf import GGUFWriter

from tui.models import discovery
from tui.models.discovery import HeaderCache, Location, scan
from tui.models.model_info import load_model_info


def write_split(folder: Path, stem: str, tiny_llama: Path) -> list[Path]:
    """The tiny model written again as a 3-part split GGUF, the way llama.cpp's gguf-split names it."""
    from gguf import GGUFReader

    reader = GGUFReader(tiny_llama)
    w = GGUFWriter(str(folder / f"{stem}.gguf"), "llama", split_max_tensors=8)
    for field in reader.fields.values():
        if field.name.startswith("GGUF.") or field.name == "general.architecture":
            continue
        value = field.contents()
        w.add_key_value(field.name, value, field.types[0],
                        sub_type=field.types[-1] if len(field.types) > 1 else None)
    for t in reader.tensors:
        w.add_tensor(t.name, np.array(t.data), raw_shape=tuple(int(x) for x in reversed(t.shape)))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return sorted(folder.glob(f"{stem}-*-of-*.gguf"))


@pytest.fixture
def tree(tmp_path, tiny_llama):
    models = tmp_path / "models"
    (models / "a" / "b").mkdir(parents=True)
    shutil.copy(tiny_llama, models / "a" / "b" / "nested.gguf")
    shutil.copy(tiny_llama, models / "plain.gguf")
    (models / "junk.gguf").write_bytes(os.urandom(2048))
    (models / "cut.gguf").write_bytes(tiny_llama.read_bytes()[:-5000])
    (models / "notes.txt").write_text("not a model")
    (models / "a" / "loop").symlink_to(models)  # a symlink loop back to the root
    split_dir = models / "split"
    split_dir.mkdir()
    parts = write_split(split_dir, "tiny-split", tiny_llama)
    hf = tmp_path / "hf" / "models--TheOrg--Tiny-GGUF" / "snapshots" / "abc123"
    hf.mkdir(parents=True)
    shutil.copy(tiny_llama, hf / "tiny.Q8_0.gguf")
    lms = tmp_path / "lmstudio" / "someone" / "Tiny-GGUF"
    lms.mkdir(parents=True)
    shutil.copy(tiny_llama, lms / "tiny-lms.gguf")
    ollama = tmp_path / "ollama"
    (ollama / "blobs").mkdir(parents=True)
    digest = "sha256-" + "ab" * 32
    shutil.copy(tiny_llama, ollama / "blobs" / digest)
    manifest = ollama / "manifests" / "registry.ollama.ai" / "library" / "llama3.1"
    manifest.mkdir(parents=True)
    (manifest / "70b").write_text(json.dumps({"layers": [
        {"mediaType": "application/vnd.ollama.image.template", "digest": "sha256:" + "cd" * 32},
        {"mediaType": "application/vnd.ollama.image.model", "digest": "sha256:" + "ab" * 32}]}))
    (manifest / "broken").write_text("{not json")
    locations = [Location(models, "folder"), Location(tmp_path / "hf", "huggingface"),
                 Location(tmp_path / "lmstudio", "lmstudio"), Location(ollama, "ollama"),
                 Location(tmp_path / "does-not-exist", "folder")]
    return locations, parts


def by_name(result):
    return {m.name: m for m in result.models}


def test_scan_finds_every_kind_of_store_and_names_models_as_users_know_them(tree):
    locations, parts = tree
    found = by_name(scan(locations))
    assert {"plain.gguf", "nested.gguf", "tiny-split.gguf", "TheOrg/Tiny-GGUF:tiny.Q8_0.gguf",
            "someone/Tiny-GGUF/tiny-lms.gguf", "llama3.1:70b"} <= set(found)
    assert found["llama3.1:70b"].source == "ollama" and found["llama3.1:70b"].ok
    assert found["llama3.1:70b"].path.endswith("sha256-" + "ab" * 32)
    split = found["tiny-split.gguf"]
    assert len(parts) >= 2 and split.parts == tuple(str(p) for p in parts)
    assert split.ok and split.info.n_layer == 2
    plain = found["plain.gguf"].info
    assert split.info.tensor_bytes == plain.tensor_bytes, "all parts' tensors are counted"
    assert split.size_bytes == sum(p.stat().st_size for p in parts)


def test_broken_files_are_listed_with_a_reason_and_loops_end(tree):
    locations, _ = tree
    found = by_name(scan(locations))
    assert not found["junk.gguf"].ok and "not a GGUF" in found["junk.gguf"].error
    assert not found["cut.gguf"].ok and "truncated" in found["cut.gguf"].error
    assert sum(1 for n in found if n == "plain.gguf") == 1, "the loop must not list files twice"


def test_a_folder_that_cannot_be_read_is_skipped_and_noted(tree, monkeypatch):
    locations, _ = tree
    real_scandir = os.scandir
    blocked = str(locations[0].path / "a" / "b")

    def scandir(path):  # root reads any folder, so deny one the way a real EACCES does
        if str(path) == blocked:
            raise PermissionError(13, "Permission denied", blocked)
        return real_scandir(path)

    monkeypatch.setattr(discovery.os, "scandir", scandir)
    result = scan(locations)
    assert "nested.gguf" not in by_name(result)
    assert any(blocked in s and "Permission denied" in s for s in result.skipped)
    assert "plain.gguf" in by_name(result)


def test_rescan_reads_no_unchanged_header_and_notices_a_change(tree, tmp_path, tiny_llama):
    locations, _ = tree
    cache_file = tmp_path / "cache.json"
    first = scan(locations, HeaderCache(cache_file))
    assert first.parsed >= 8
    again = scan(locations, HeaderCache(cache_file))  # a new process: the cache comes from disk
    assert again.parsed == 0
    assert by_name(again)["plain.gguf"].info == by_name(first)["plain.gguf"].info
    plain = locations[0].path / "plain.gguf"
    plain.write_bytes(plain.read_bytes()[:-100])
    changed = scan(locations, HeaderCache(cache_file))
    assert changed.parsed == 1 and "truncated" in by_name(changed)["plain.gguf"].error


def test_a_missing_split_part_is_reported(tree):
    locations, parts = tree
    parts[-1].unlink()
    split = by_name(scan(locations))["tiny-split.gguf"]
    assert not split.ok and "parts" in split.error
    with pytest.raises(Exception, match="missing"):
        load_model_info(parts[0])
