"""Hostile GGUF headers: each class the probe found ends in GgufError and a sentence, fast."""

from __future__ import annotations

import json
import math
import os
import struct
import subprocess
import sys
import tracemalloc

import pytest

from tests.hostile.conftest import gguf_bytes, llama_metadata
from tui.models.discovery import Location, scan
from tui.models.gguf_info import GgufError, read_header
from tui.models.model_info import load_model_info


def _inspect(path, *extra):
    return subprocess.run([sys.executable, "-m", "tui", "inspect", str(path), *extra],
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("key, kind, value", [
    ("llama.block_count", "u32", 30_000_000),
    ("llama.block_count", "u32", 2**31),
    ("llama.block_count", "f32", math.inf),
    ("llama.block_count", "f64", math.nan),
    ("llama.attention.head_count", "f64", math.inf),
    ("llama.embedding_length", "u64", 2**63),
    ("general.alignment", "str", "32"),
    ("general.alignment", "f32", math.nan),
    ("general.alignment", "f32", math.inf),
    ("general.alignment", "u32", 0),
    ("general.alignment", "u32", 48),
    ("general.alignment", "raw", struct.pack("<IIQ", 9, 4, 1) + struct.pack("<I", 32)),
    ("tokenizer.ggml.tokens", "u32", 7),
], ids=lambda v: str(v)[:20])
def test_a_damaged_field_is_a_typed_error_naming_it(write_gguf, key, kind, value):
    path = write_gguf("bad.gguf", gguf_bytes(llama_metadata(**{key: (kind, value)})))
    with pytest.raises(GgufError) as err:
        load_model_info(path)
    assert err.value.kind == "corrupt"
    assert key.split(".")[-1] in str(err.value) or "general.alignment" in str(err.value)
    assert len(str(err.value)) < 300


def test_inspect_on_a_huge_block_count_is_quick_and_quiet(write_gguf):
    """Was: 37 s, 2.8 GB RSS and 210 MB printed for a 4 KB file."""
    path = write_gguf("huge.gguf", gguf_bytes(llama_metadata(**{"llama.block_count": ("u32", 30_000_000)})))
    out = _inspect(path, "--json")  # its subprocess timeout catches a hang (the old 37 s)
    assert out.returncode == 1 and "block_count" in out.stderr
    assert "Traceback" not in out.stderr and len(out.stdout) + len(out.stderr) < 1000


def test_a_flipped_length_does_not_read_tensor_data_as_names(write_gguf):
    """One flipped bit made a name 64 MiB long: the error stays one short line."""
    data = bytearray(gguf_bytes(llama_metadata(), tensors=[("token_embd.weight", (64, 8), 0, 0)],
                                tail=b"\x41" * (70 << 20)))
    name_len_at = data.index(b"token_embd.weight") - 8
    data[name_len_at + 3] ^= 0x04  # 17 -> 64 MiB + 17
    path = write_gguf("flip.gguf", bytes(data))
    with pytest.raises(GgufError) as err:
        read_header(path)
    assert "tensor name" in str(err.value) and len(str(err.value)) < 200


def test_strings_counted_past_the_file_cost_nothing(tmp_path):
    """2^32 strings over a sparse 1 GiB file: was 53 s and 1 GB in `models`."""
    path = tmp_path / "sparse-strings.gguf"
    with open(path, "wb") as f:
        f.write(gguf_bytes(llama_metadata(**{"tokenizer.ggml.tokens": (
            "raw", struct.pack("<IIQ", 9, 8, 2**32))})))
        f.truncate(1 << 30)
    tracemalloc.start()
    try:
        with pytest.raises(GgufError, match="count"):
            read_header(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, "counted, never walked or held (was 53 s and 1 GB)"


def test_escape_sequences_in_names_never_reach_the_terminal(write_gguf):
    evil = "\x1b]0;pwned\x07\x1b[2J\x1b]52;c;ZXZpbA==\x07"
    path = write_gguf("evil\x1b[31m.gguf", gguf_bytes(llama_metadata(**{"general.name": ("str", evil)})))
    out = _inspect(path)
    assert out.returncode == 0, out.stderr
    assert "\x1b" not in out.stdout and "\x07" not in out.stdout
    assert "\\x1b]0;pwned" in out.stdout  # shown, as a visible escape
    models = subprocess.run([sys.executable, "-m", "tui", "models", "--models-dir", str(path.parent)],
                            capture_output=True, text=True, timeout=60,
                            env={**os.environ, "XDG_CACHE_HOME": str(path.parent / "cache")})
    assert "\x1b" not in models.stdout and "evil\\x1b[31m" in models.stdout


def test_one_bad_file_never_hides_the_good_ones(tmp_path, tiny_llama):
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "good.gguf").write_bytes(tiny_llama.read_bytes())
    (folder / "alignment.gguf").write_bytes(gguf_bytes(llama_metadata(**{"general.alignment": ("str", "x")})))
    (folder / "nested.gguf").write_bytes(gguf_bytes(llama_metadata(**{"x": (
        "raw", struct.pack("<I", 9) + struct.pack("<IQ", 9, 1) * 500 + struct.pack("<IQ", 4, 0))})))
    (folder / "markup[b].gguf").write_bytes(gguf_bytes(llama_metadata(), tensors=[("[/]", (7,), 0, 0)]))
    result = scan([Location(folder, "folder")])
    by_name = {m.name: m for m in result.models}
    assert by_name["good.gguf"].ok
    assert not by_name["alignment.gguf"].ok and "alignment" in by_name["alignment.gguf"].error
    assert not by_name["nested.gguf"].ok and "nested" in by_name["nested.gguf"].error
    out = subprocess.run([sys.executable, "-m", "tui", "models", "--models-dir", str(folder), "--json"],
                         capture_output=True, text=True, timeout=60,
                         env={**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")})
    names = [m["name"] for m in json.loads(out.stdout)["models"]]
    assert "good.gguf" in names and "nested.gguf" in names


async def test_the_tuner_lists_hostile_files_without_crashing(tmp_path, tiny_llama):
    """Was: F4 crashed the app (exit status 0) on a damaged file in ~/models, and a tensor named
    `[/]` raised Textual's MarkupError."""
    from pathlib import Path

    from tests.conftest import until
    from tui.app import VramdeckApp
    from tui.engine.client import EngineClient
    from tui.monitor.fake import FakeNvml, FakeSampler
    from tui.widgets.model_list import ModelList

    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "good.gguf").write_bytes(tiny_llama.read_bytes())
    (folder / "alignment.gguf").write_bytes(gguf_bytes(llama_metadata(**{"general.alignment": ("f32", math.inf)})))
    (folder / "markup [b]x[red].gguf").write_bytes(gguf_bytes(
        llama_metadata(**{"general.name": ("str", "[/] [bold]x")}),
        tensors=[("[/]", (7, 3, 3, 3, 3, 3, 3, 3, 3), 0, 0)]))
    (folder / "escape.gguf").write_bytes(gguf_bytes(llama_metadata(**{"general.name": ("str", "\x1b]0;t\x07")})))
    app = VramdeckApp(EngineClient(), FakeSampler(FakeNvml(no_driver=True)), settings=None,
                      model_locations=[Location(Path(folder), "folder")])
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f4")
        await until(pilot, lambda: app.screen.query(ModelList) and app.screen.query_one(ModelList).option_count >= 4)
        models = app.screen.query_one(ModelList)
        for i in range(models.option_count):  # highlighting each shows its line in full
            models.focus()
            models.highlighted = i
            await pilot.pause()
        assert app.is_running
