"""The Tuner with a draft model, by keys: its memory in the estimate, the two options' speeds, d
to choose or drop it, and the auto-tune that tries it (scripted engine and NVML: the app's
wiring is under test here; the engine's draft path has tests of its own with real llama.cpp)."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input

from tests.conftest import until
from tests.fakes import FACTS, ScriptedEngine
from tui.app import VramdeckApp
from tui.chat.speculation import reply_speculation
from tui.engine.protocol import ChatStats
from tui.engine.settings import LoadSettings
from tui.models.synthetic import LLAMA3_8B, LLAMA31_70B, write_sparse_llama
from tui.monitor.fake import FakeGpu, FakeNvml, FakeSampler
from tui.screens.open_model import OpenModelScreen
from tui.widgets.layer_map import LayerMap
from tui.widgets.memory_bars import MemoryBars

GiB = 1024**3


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("draft-tuner")
    return (write_sparse_llama(folder / "llama-70b-Q4_K_M.gguf", LLAMA31_70B, "Q4_K_M"),
            write_sparse_llama(folder / "llama-8b-Q4_K_M.gguf", LLAMA3_8B, "Q4_K_M"))


def app_for(target: Path, draft: Path) -> VramdeckApp:
    facts = FACTS.__class__(**{**FACTS.__dict__, "n_layer": 80, "layers_total": 81})
    settings = LoadSettings(model_path=str(target), n_ctx=4096, n_gpu_layers=30, type_k="q8_0",
                            type_v="q8_0", flash_attn="on", draft_model_path=str(draft))
    return VramdeckApp(ScriptedEngine(facts=facts), FakeSampler(FakeNvml([FakeGpu()])), settings=settings,
                       sample_interval=3600, use_dry_run=False)


async def open_tuner(pilot):
    """F4, then wait until the Tuner has read both the model's and the draft's headers."""
    await pilot.press("f4")
    tuner = pilot.app.screen
    await until(pilot, lambda: tuner.info is not None and tuner.draft_info is not None)
    return tuner


async def test_the_draft_is_in_the_estimate_and_d_drops_and_brings_it_back(files):
    target, draft = files
    app = app_for(target, draft)
    async with app.run_test(size=(160, 50)) as pilot:
        tuner = await open_tuner(pilot)
        await until(pilot, lambda: tuner.plan is not None and tuner.plan.estimate.gpus[0].draft > 0)
        drafted = tuner.plan.estimate.gpus[0]
        assert 4 * GiB < drafted.draft < 6 * GiB  # the 8B's Q4_K_M weights, KV and compute
        assert "with the draft" in tuner.query_one(LayerMap).speculative
        assert "draft" in str(tuner.query_one(MemoryBars).render())
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, OpenModelScreen))
        assert app.screen.query_one(Input).value == str(draft)
        app.screen.query_one(Input).value = ""
        await pilot.press("enter")  # an empty path: no draft
        await until(pilot, lambda: tuner.draft.speculative == "")
        await until(pilot, lambda: tuner.plan is not None and tuner.plan.estimate.gpus[0].draft == 0)
        assert not tuner.query_one(LayerMap).speculative
        # the speculative row cycles off -> prompt lookup -> the draft last chosen
        names = [f.name for f in tuner.query_one("SettingsTable").fields]
        assert "speculative" in names and "draft_max" not in names
        tuner.query_one("SettingsTable").selected = names.index("speculative")
        await pilot.press("right")
        assert tuner.draft.speculative == "lookup"
        await pilot.press("right")
        assert tuner.draft.draft_model_path == str(draft)
        names = [f.name for f in tuner.query_one("SettingsTable").fields]
        assert {"draft_n_gpu_layers", "draft_max", "draft_min"} <= set(names)


async def test_auto_tune_with_a_draft_tries_it_and_ranks_on_text(files):
    from tui.screens.tune import TuneScreen

    target, draft = files
    app = app_for(target, draft)
    async with app.run_test(size=(160, 50)) as pilot:
        await open_tuner(pilot)
        await pilot.press("T")
        await until(pilot, lambda: isinstance(app.screen, TuneScreen))
        tune = app.screen
        await until(pilot, lambda: tune.done, timeout=120)
        drafted = [m for m in tune.rows if m.candidate.settings.speculative]
        plain = [m for m in tune.rows if not m.candidate.settings.speculative]
        assert {m.candidate.settings.draft_max for m in drafted} == {4, 8, 16}
        assert plain and all(m.text_tg_tokens_per_s > 0 for m in plain)
        # the draft's memory costs target layers, and every row is scored on the same text
        best_plain = max(plain, key=lambda m: m.candidate.estimate.n_gpu_layers)
        assert all(m.candidate.estimate.n_gpu_layers < best_plain.candidate.estimate.n_gpu_layers for m in drafted)
        speeds = [m.draft_tg_tokens_per_s if m.candidate.settings.speculative else m.text_tg_tokens_per_s
                  for m in tune.rows]
        assert speeds == sorted(speeds, reverse=True)


def test_the_reply_line_says_what_was_kept_and_against_what():
    stats = ChatStats(generated_tokens=120, generation_tokens_per_s=42.0, speculative="model",
                      drafted_tokens=154, accepted_tokens=120, target_alone_tokens_per_s=26.0)
    assert reply_speculation(stats) == "draft 78% of 154 kept · 1.62× alone (26.0 tok/s)"
    assert reply_speculation(ChatStats(speculative="lookup")) == "lookup: nothing drafted"
    assert reply_speculation(ChatStats()) == ""
