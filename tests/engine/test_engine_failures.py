"""Bad files, bad settings and a crashing engine: each a typed failure, never a hang."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest

from tui.engine.client import EngineClient
from tui.engine.errors import failure_text
from tui.engine.protocol import (
    ChatDone,
    EngineCrashed,
    FailureKind,
    Loaded,
    LoadFailed,
    PromptProcessed,
    TextPiece,
)
from tui.engine.settings import LoadSettings, SamplingSettings

pytestmark = pytest.mark.slow


async def load(path, **kw) -> Loaded | LoadFailed:
    client = EngineClient()
    try:
        return await asyncio.wait_for(client.load(LoadSettings(model_path=str(path), **kw)), 60)
    finally:
        await client.stop()


def written(path, data: bytes):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("make, kind, words", [
    (lambda d: d / "nope.gguf", FailureKind.MISSING, "No file"),
    (lambda d: d, FailureKind.MISSING, "folder"),
    (lambda d: written(d / "empty.gguf", b""), FailureKind.NOT_GGUF, "empty"),
    (lambda d: written(d / "rand.gguf", b"\x13" + os.urandom(4095)), FailureKind.NOT_GGUF, "not a GGUF"),
], ids=["missing", "directory", "empty", "random-bytes"])
async def test_bad_paths_fail_with_a_type_and_a_sentence(tmp_path, make, kind, words):
    result = await load(make(tmp_path))
    assert isinstance(result, LoadFailed)
    assert result.kind == kind
    assert words in failure_text(result)
    assert "Traceback" not in failure_text(result)


async def test_truncated_model_is_reported_as_truncated(tmp_path, demo_model):
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(demo_model.read_bytes()[: demo_model.stat().st_size // 2])
    result = await load(cut)
    assert isinstance(result, LoadFailed) and result.kind == FailureKind.CORRUPT
    assert "truncated" in failure_text(result)


async def test_damaged_header_is_corrupt_not_a_crash(tmp_path, demo_model):
    bad = tmp_path / "bad.gguf"
    data = bytearray(demo_model.read_bytes()[:1_000_000])
    data[24:32] = b"\xff" * 8  # the first key's length becomes absurd
    bad.write_bytes(bytes(data))
    result = await load(bad)
    assert isinstance(result, LoadFailed) and result.kind == FailureKind.CORRUPT


async def test_unknown_architecture_is_named(tmp_path, tiny_llama):
    data = tiny_llama.read_bytes()
    odd = tmp_path / "odd.gguf"
    odd.write_bytes(data.replace(b"llama", b"zlama", 1))  # general.architecture's value
    result = await load(odd)
    assert isinstance(result, LoadFailed)
    assert result.kind == FailureKind.UNSUPPORTED_ARCH, result
    assert "zlama" in failure_text(result)
    assert result.log_tail, "the last llama.cpp log lines come with the failure"


async def test_out_of_range_settings_are_refused_before_loading(demo_model):
    result = await load(demo_model, n_ubatch=4096, n_batch=512)
    assert isinstance(result, LoadFailed) and result.kind == FailureKind.BAD_SETTINGS
    assert "n_ubatch" in failure_text(result)


async def test_sigkill_mid_stream_is_reported_within_a_second_and_next_load_works(demo_model):
    client = EngineClient()
    events = []
    client.subscribe(events.append)
    try:
        assert isinstance(await client.load(LoadSettings(model_path=str(demo_model))), Loaded)
        pid = client.pid
        end, killed_at, pieces = None, None, 0
        async for event in client.chat([{"role": "user", "content": "Write a long essay."}],
                                       SamplingSettings(max_tokens=4000)):
            if isinstance(event, TextPiece):
                pieces += 1
                if pieces == 3:
                    os.kill(pid, signal.SIGKILL)
                    killed_at = time.monotonic()
            elif not isinstance(event, PromptProcessed):
                end = event
                break
        assert isinstance(end, EngineCrashed) and killed_at is not None
        assert pieces <= 3 + 2, "the crash ends the stream at once, not after more pieces"
        assert end.signal_name == "SIGKILL" and "SIGKILL" in end.describe()
        assert any(isinstance(e, EngineCrashed) for e in events)
        assert client.loaded is None and not client.running
        assert isinstance(await client.load(LoadSettings(model_path=str(demo_model))), Loaded)
        pieces = [e async for e in client.chat([{"role": "user", "content": "hi"}],
                                               SamplingSettings(max_tokens=8))]
        assert isinstance(pieces[-1], ChatDone)
    finally:
        await client.stop()


async def test_abort_inside_the_engine_is_a_crash_with_its_exit_status(demo_model):
    client = EngineClient()
    try:
        assert isinstance(await client.load(LoadSettings(model_path=str(demo_model))), Loaded)
        os.kill(client.pid, signal.SIGABRT)
        end = [e async for e in client.chat([{"role": "user", "content": "hi"}])][-1]
        assert isinstance(end, EngineCrashed) and end.signal_name == "SIGABRT"
    finally:
        await client.stop()


async def test_reload_ends_the_old_process(demo_model):
    client = EngineClient()
    try:
        await client.load(LoadSettings(model_path=str(demo_model)))
        first = client.pid
        await client.load(LoadSettings(model_path=str(demo_model), n_ctx=1024))
        assert client.pid != first
        with pytest.raises(ProcessLookupError):
            os.kill(first, 0)
        assert client.loaded.facts.n_ctx == 1024
        await client.stop()
        assert client.pid is None and client.loaded is None
    finally:
        await client.stop()


async def test_closing_stdin_ends_an_engine_whose_ui_died(demo_model):
    client = EngineClient()
    await client.load(LoadSettings(model_path=str(demo_model)))
    proc = client.process
    proc.stdin.close()  # what the OS does when the UI process dies
    await asyncio.wait_for(proc.wait(), 5)
    await client.stop()
