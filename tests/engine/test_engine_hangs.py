"""Every request ends in a result or a typed failure: damaged files, undecodable commands, and an
engine that stops answering (SIGSTOP) each end the wait with words, never a hang."""

from __future__ import annotations

import asyncio
import os
import signal
import struct

import pytest

from tui.engine.client import EngineClient, EngineError
from tui.engine.errors import failure_text
from tui.engine.protocol import (
    ChatFailed,
    CommandFailed,
    EngineStalled,
    FailureKind,
    Loaded,
    LoadFailed,
    TextPiece,
)
from tui.engine.settings import LoadSettings, SamplingSettings

pytestmark = pytest.mark.slow


def _alignment_as_text(model, tmp_path):
    """A model with general.alignment = "32" (a string) added: the old header reader raised a
    ValueError engine-side, answered CommandFailed(request_id=0), and the load waited forever."""
    data = bytearray(model.read_bytes())
    (n_kv,) = struct.unpack_from("<Q", data, 16)
    key, value = b"general.alignment", b"32"
    entry = (struct.pack("<Q", len(key)) + key + struct.pack("<I", 8)
             + struct.pack("<Q", len(value)) + value)
    data[16:24] = struct.pack("<Q", n_kv + 1)
    data[24:24] = entry
    path = tmp_path / "alignment-text.gguf"
    path.write_bytes(bytes(data))
    return path


async def test_an_engine_side_failure_of_a_load_ends_the_load(tmp_path, tiny_llama):
    client = EngineClient()
    try:
        result = await asyncio.wait_for(
            client.load(LoadSettings(model_path=str(_alignment_as_text(tiny_llama, tmp_path)))), 60)
    finally:
        await client.stop()
    assert isinstance(result, LoadFailed)
    assert result.kind == FailureKind.CORRUPT and "Traceback" not in failure_text(result)


async def test_a_command_failure_with_no_request_id_ends_whatever_waits():
    """The engine could not decode a command and could not say whose it was."""
    client = EngineClient()
    loop = asyncio.get_running_loop()
    load = loop.create_future()
    client._futures["load"] = load
    queue: asyncio.Queue = asyncio.Queue()
    client._requests[7] = queue
    client._route(CommandFailed(request_id=0, message="not an engine message: {}"))
    assert isinstance(load.result(), LoadFailed)
    answer = queue.get_nowait()
    assert isinstance(answer, CommandFailed) and answer.request_id == 7


async def test_a_stopped_engine_ends_the_chat_with_a_stall(monkeypatch, demo_model):
    """SIGSTOP mid-reply (a wedged driver looks the same from here): the reply ends within
    seconds with reason "stalled", and subscribers hear an EngineStalled to offer a restart."""
    client = EngineClient()
    heard = []
    client.subscribe(lambda e: heard.append(e) if isinstance(e, EngineStalled) else None)
    try:
        loaded = await asyncio.wait_for(client.load(LoadSettings(model_path=str(demo_model),
                                                                 n_ctx=1024)), 60)
        assert isinstance(loaded, Loaded)
        events = []
        stream = client.chat([{"role": "user", "content": "Count from one to one hundred."}],
                             SamplingSettings(max_tokens=800, temperature=0, seed=1))
        stopped = False

        async def read() -> None:
            nonlocal stopped
            async for event in stream:
                events.append(event)
                if isinstance(event, TextPiece) and not stopped:
                    os.kill(client.pid, signal.SIGSTOP)
                    stopped = True
        await asyncio.wait_for(read(), 120)  # only a hang trips this: detection is three heartbeats
        assert isinstance(events[-1], ChatFailed) and events[-1].reason == "stalled"
        assert "stopped" in events[-1].message
        assert heard and heard[0].stopped
        with pytest.raises(EngineError, match="stopped"):
            await asyncio.wait_for(client.bench(8, 8, 1), 30)
    finally:
        if client.pid:
            os.kill(client.pid, signal.SIGCONT)
        await client.stop()
