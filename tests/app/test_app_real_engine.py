"""The app with the real engine and SmolLM2, driven by keys in Textual's Pilot."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import until
from tui.app import VramdeckApp
from tui.engine.client import EngineClient
from tui.engine.settings import LoadSettings, SamplingSettings
from tui.engine.status import REINSTALL_CUDA, Phase
from tui.monitor.fake import FakeGpu, FakeNvml, FakeSampler
from tui.screens.chat import ChatScreen
from tui.widgets.chat_message import AssistantMessage, UserMessage

pytestmark = pytest.mark.slow


def make_app(demo_model, nvml=None, **settings):
    app = VramdeckApp(EngineClient(), FakeSampler(nvml or FakeNvml(no_driver=True)),
                      settings=LoadSettings(model_path=str(demo_model), n_ctx=2048, **settings))
    app.sampling = SamplingSettings(max_tokens=96)  # replies of a bounded length keep tests quick
    return app


async def test_app_loads_the_demo_and_streams_a_reply(demo_model):
    app = make_app(demo_model)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.engine_status.phase is Phase.READY)
        assert isinstance(app.screen, ChatScreen)
        await pilot.press(*"What is the capital of France?", "enter")
        await until(pilot, lambda: app.screen.query(AssistantMessage))
        reply = app.screen.query_one(AssistantMessage)
        await until(pilot, lambda: not app.screen.replying)
        turn = app.screen.conversation.turns[-1]
        assert turn.role == "assistant" and turn.content and turn.stats is not None
        assert turn.stats.generation_tokens_per_s > 0
        stats_text = str(reply.query_one(".reply-stats").render())
        assert "tok/s" in stats_text
        assert app.generation.context_used == turn.stats.context_used > 0
        assert app.screen.query_one(UserMessage)
        assert app.generation.last_stats == turn.stats and app.generation.tokens_per_s == 0.0


async def test_live_speed_is_shown_while_a_reply_streams(demo_model):
    app = make_app(demo_model)
    seen = []
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.engine_status.phase is Phase.READY)
        app.watch(app, "generation", lambda g: seen.append(g.tokens_per_s))
        app.sampling = SamplingSettings(max_tokens=200, temperature=0.8, seed=5)
        await pilot.press(*"Tell me a story.", "enter")
        await until(pilot, lambda: len(app.screen.conversation.turns) == 2 and not app.screen.replying)
    assert any(v > 0 for v in seen), "a live tok/s figure while streaming"
    assert seen[-1] == 0.0, "and back to 0 when the reply ends"


async def test_escape_stops_a_reply_at_once_and_keeps_it(demo_model):
    app = make_app(demo_model)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.engine_status.phase is Phase.READY)
        app.sampling = app.sampling.__class__(max_tokens=3000, temperature=0.8, seed=3)
        await pilot.press(*"Write a very long story about a lighthouse.", "enter")
        await until(pilot, lambda: len(app.screen.conversation.turns) == 2
                    and len(app.screen.conversation.turns[-1].content) > 20)
        await pilot.press("escape")
        await until(pilot, lambda: not app.screen.replying, timeout=5)
        turn = app.screen.conversation.turns[-1]
        assert turn.partial and turn.stats.stop_reason == "cancelled"
        assert turn.stats.generated_tokens < 3000


async def test_panes_switch_by_function_keys(demo_model):
    app = make_app(demo_model)
    async with app.run_test(size=(80, 24)) as pilot:
        for key, mode in (("f3", "monitor"), ("f4", "tuner"), ("f5", "log"), ("f2", "chat")):
            await pilot.press(key)
            assert app.current_mode == mode
        await until(pilot, lambda: app.engine_status.phase is Phase.READY)
        await pilot.press("f5")
        await until(pilot, lambda: app.screen.query_one("#engine-log").line_count > 10)


async def test_cpu_only_build_on_a_gpu_box_says_how_to_reinstall(demo_model):
    """NVML (faked) sees an RTX 3090; this CI build of llama.cpp cannot offload: say so loudly."""
    app = make_app(demo_model, nvml=FakeNvml([FakeGpu()]))
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.engine_status.phase is Phase.READY and app.warning)
        assert app.engine_status.gpu_offload is False
        assert REINSTALL_CUDA in app.warning
        bar = app.screen.query_one("StatusBar")
        assert "CPU-only" in str(bar.render())


async def test_a_bad_model_path_is_a_message_not_a_traceback(tmp_path):
    app = VramdeckApp(EngineClient(), FakeSampler(FakeNvml(no_driver=True)),
                      settings=LoadSettings(model_path=str(tmp_path / "missing.gguf")))
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.engine_status.phase is Phase.FAILED)
        assert "could not be found" in app.engine_status.message
        await pilot.press(*"hello", "enter")  # no model: the draft stays
        await pilot.pause()
        assert app.screen.query_one("#prompt").text == "hello"


async def test_tuner_keys_change_settings_and_apply_reloads(demo_model):
    app = make_app(demo_model)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.engine_status.phase is Phase.READY)
        first_pid = app.engine.pid
        await pilot.press("f4")
        # no GPU (the fake NVML has no driver): the first row is the context, no GPU layers row
        await pilot.press("left")  # context 2048 -> 1024
        await pilot.press("down", "right")  # KV K f16 -> q8_0
        await pilot.press("a")
        await until(pilot, lambda: app.engine_status.phase is Phase.READY
                    and app.engine_status.facts.n_ctx == 1024
                    and app.loads.last_working is not None and app.loads.last_working.n_ctx == 1024)
        assert app.engine.pid != first_pid
        assert app.engine_status.facts.kv_type_k == "q8_0"
        assert app.loads.last_working.n_ctx == 1024


async def test_a_failed_apply_goes_back_to_the_last_working_settings(demo_model):
    app = make_app(demo_model)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.engine_status.phase is Phase.READY)
        good, first_pid = app.loads.last_working, app.engine.pid
        notes = []
        app.notify = lambda message, **kw: notes.append(message)
        app.load_model(good.with_changes(model_path=str(demo_model) + ".missing"))
        await until(pilot, lambda: app.engine.pid not in (None, first_pid)
                    and app.engine_status.phase is Phase.READY, timeout=30)
        assert app.current_settings == good
        assert app.engine_status.facts.path == str(demo_model)
        assert any("could not be found" in n and "last settings that worked" in n for n in notes)


async def test_quitting_ends_the_engine_process(demo_model):
    app = make_app(demo_model)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.engine_status.phase is Phase.READY)
        proc = app.engine.process
        await pilot.press("ctrl+q")
    await asyncio.wait_for(proc.wait(), 5)


async def test_too_small_message_comes_and_goes_with_the_terminal_size(demo_model):
    from tui.screens.too_small import TooSmallScreen

    app = make_app(demo_model)
    async with app.run_test(size=(60, 15)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, TooSmallScreen)
        await pilot.resize_terminal(100, 30)
        await pilot.pause()
        assert not isinstance(app.screen, TooSmallScreen)
        await until(pilot, lambda: app.engine_status.phase is Phase.READY)
        await pilot.resize_terminal(79, 24)
        await pilot.pause()
        assert isinstance(app.screen, TooSmallScreen)
