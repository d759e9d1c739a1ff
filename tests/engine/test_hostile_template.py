"""A chat template is code from the GGUF file. One that never finishes (three nested
range(99999) loops) must not wedge the chat: Esc before the first token ends the reply at once,
and without Esc the engine gives up after its bound and keeps serving."""

from __future__ import annotations

import asyncio

import pytest

from tui.engine.client import EngineClient
from tui.engine.protocol import ChatDone, ChatFailed, Loaded
from tui.engine.settings import LoadSettings, SamplingSettings
from tui.models.synthetic import write_random_llama

pytestmark = pytest.mark.slow

ENDLESS = ("{% for a in range(99999) %}{% for b in range(99999) %}{% for c in range(99999) %}"
           "{{ '' }}{% endfor %}{% endfor %}{% endfor %}")


@pytest.fixture(scope="module")
def endless_template_model(tmp_path_factory):
    return write_random_llama(tmp_path_factory.mktemp("hostile") / "endless-template.gguf",
                              chat_template=ENDLESS)


async def _last_event(client, timeout):
    events = []

    async def read():
        async for event in client.chat([{"role": "user", "content": "hi"}], SamplingSettings(max_tokens=4)):
            events.append(event)

    task = asyncio.ensure_future(read())
    return task, events


async def test_esc_before_the_first_token_stops_an_endless_template(endless_template_model, monkeypatch):
    monkeypatch.setenv("VRAMDECK_TEMPLATE_LIMIT_S", "600")  # only Esc can end it in this test
    client = EngineClient()
    try:
        assert isinstance(await client.load(LoadSettings(model_path=str(endless_template_model))), Loaded)
        task, events = await _last_event(client, 60)
        await asyncio.sleep(1.0)  # the engine is deep in the loops now
        assert not task.done()
        await client.cancel()
        await asyncio.wait_for(task, 30)  # a hang would be the 600 s bound (or pytest's timeout)
        assert isinstance(events[-1], ChatDone) and events[-1].stats.stop_reason == "cancelled"
    finally:
        await client.stop()


async def test_an_endless_template_fails_the_reply_within_its_bound_and_the_engine_serves_on(
        endless_template_model, monkeypatch):
    monkeypatch.setenv("VRAMDECK_TEMPLATE_LIMIT_S", "1")
    client = EngineClient()
    try:
        assert isinstance(await client.load(LoadSettings(model_path=str(endless_template_model))), Loaded)
        for _ in range(2):  # the engine is free again after the first
            task, events = await _last_event(client, 60)
            await asyncio.wait_for(task, 60)
            assert isinstance(events[-1], ChatFailed) and events[-1].reason == "template"
            assert "chat template" in events[-1].message and "Traceback" not in events[-1].message
        bench = await asyncio.wait_for(client.bench(n_prompt=8, n_gen=2, repetitions=1), 120)
        assert bench.tg_tokens_per_s and min(bench.tg_tokens_per_s) > 0
    finally:
        await client.stop()
