"""The Tuner and profiles driven by keys, with the real engine and SmolLM2 (fake NVML numbers only)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from textual.widgets import DataTable, Input

from tests.conftest import until
from tui.app import VramdeckApp
from tui.engine.client import EngineClient
from tui.engine.settings import ALL_LAYERS, LoadSettings, SamplingSettings
from tui.engine.status import Phase
from tui.models.discovery import Location
from tui.monitor.fake import FakeGpu, FakeNvml, FakeSampler
from tui.profiles.store import ProfileStore
from tui.screens.ask import AskTextScreen, ConfirmScreen
from tui.screens.profiles import ProfilesScreen
from tui.screens.tried import TriedScreen
from tui.widgets.memory_bars import MemoryBars
from tui.widgets.model_list import ModelList

pytestmark = pytest.mark.slow
GiB = 1024**3


def app_for(store: ProfileStore, settings: LoadSettings | None, models=(), nvml=None) -> VramdeckApp:
    app = VramdeckApp(EngineClient(), FakeSampler(nvml or FakeNvml(no_driver=True)),
                      settings=settings, profile_store=store,
                      model_locations=[Location(Path(m), "folder") for m in models])
    app.sampling = SamplingSettings(max_tokens=64, temperature=0.3, seed=7)
    return app


async def open_auto_tune(pilot):
    """T in the Tuner once the engine is ready and the model's header read: the TuneScreen."""
    from tui.screens.tune import TuneScreen

    app = pilot.app
    await until(pilot, lambda: app.engine_status.phase is Phase.READY)
    await pilot.press("f4")
    await until(pilot, lambda: app.screen.info is not None)
    await pilot.press("T")
    await until(pilot, lambda: isinstance(app.screen, TuneScreen))
    return app.screen


async def answer(pilot, text: str) -> None:
    """Type `text` into the open AskTextScreen and press Enter."""
    await until(pilot, lambda: isinstance(pilot.app.screen, AskTextScreen))
    pilot.app.screen.query_one(Input).value = text
    await pilot.press("enter")


async def test_profile_round_trip_save_restart_load(tmp_path, demo_model):
    """Save by keys, quit, start a new app, load by keys: the engine gets identical settings."""
    store = ProfileStore(tmp_path / "profiles")
    settings = LoadSettings(model_path=str(demo_model), n_ctx=1024, type_k="q8_0", n_ubatch=256,
                            n_batch=1024, n_threads=2)
    app = app_for(store, settings)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.engine_status.phase is Phase.READY)
        await pilot.press("f4", "s")
        await answer(pilot, "smol-1k")
        await until(pilot, lambda: "smol-1k" in store.names())
    saved = store.load("smol-1k")
    assert saved.load == settings
    assert saved.results["vram_bytes_per_gpu"] == [] and saved.results["load_seconds"] > 0

    again = app_for(store, None)
    async with again.run_test(size=(80, 24)) as pilot:
        await pilot.press("f4", "p")
        await until(pilot, lambda: isinstance(again.screen, ProfilesScreen))
        await pilot.pause(0.1)
        await pilot.press("enter")
        await until(pilot, lambda: again.engine_status.phase is Phase.READY)
        assert again.current_settings == settings
        assert again.sampling == app.sampling
        assert again.engine_status.facts.n_ctx == 1024
        assert again.engine_status.facts.kv_type_k == "q8_0"


async def test_saving_over_a_profile_asks_first(tmp_path, demo_model):
    store = ProfileStore(tmp_path / "profiles")
    app = app_for(store, LoadSettings(model_path=str(demo_model), n_ctx=1024))
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.engine_status.phase is Phase.READY)
        await pilot.press("f4", "s")
        await answer(pilot, "mine")
        await until(pilot, lambda: "mine" in store.names())
        await pilot.press("right_square_bracket", "s")  # context 2048, same name
        await answer(pilot, "mine")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("n")
        assert store.load("mine").load.n_ctx == 1024
        await pilot.press("s")
        await answer(pilot, "mine")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await until(pilot, lambda: store.load("mine").load.n_ctx == 2048)


async def test_benchmark_adds_a_row_that_saves_as_a_profile_with_its_speed(tmp_path, demo_model):
    store = ProfileStore(tmp_path / "profiles")
    app = app_for(store, LoadSettings(model_path=str(demo_model), n_ctx=1024))
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.engine_status.phase is Phase.READY)
        await pilot.press("f4", "b")
        await until(pilot, lambda: app.loads.tried and app.loads.tried[-1].tg_tokens_per_s, timeout=120)
        await pilot.press("t")
        await until(pilot, lambda: isinstance(app.screen, TriedScreen))
        table = app.screen.query_one(DataTable)
        assert table.row_count == 1
        await pilot.press("w")
        await answer(pilot, "benched")
        await until(pilot, lambda: "benched" in store.names())
    results = store.load("benched").results
    assert results["tg_tokens_per_s"] == round(app.loads.tried[-1].tg_tokens_per_s, 2) > 0
    assert results["pp_tokens_per_s"] > 0


async def test_a_moved_model_is_found_by_fingerprint_and_relinked(tmp_path, demo_model):
    store = ProfileStore(tmp_path / "profiles")
    old, new = tmp_path / "old" / "smol.gguf", tmp_path / "new" / "renamed.gguf"
    old.parent.mkdir()
    new.parent.mkdir()
    shutil.copy(demo_model, old)
    app = app_for(store, None, models=[new.parent])
    store.save(app.profiles.profile_from("moved", LoadSettings(model_path=str(old), n_ctx=512)))
    old.rename(new)
    async with app.run_test(size=(80, 24)) as pilot:
        app.profiles.open_profile("moved")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await until(pilot, lambda: app.engine_status.phase is Phase.READY)
        assert app.engine_status.facts.path == str(new)
    assert store.load("moved").load.model_path == str(new)


async def test_pick_a_model_from_the_list_and_apply(tmp_path, demo_model, tiny_llama):
    store = ProfileStore(tmp_path / "profiles")
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(tiny_llama, models / "tiny.gguf")
    app = app_for(store, LoadSettings(model_path=str(demo_model), n_ctx=512),
                  models=[models, demo_model.parent])
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.engine_status.phase is Phase.READY)
        await pilot.press("f4")
        model_list = app.screen.query_one(ModelList)
        await until(pilot, lambda: model_list.option_count >= 2)
        await pilot.press("m")
        ids = [model_list.get_option_at_index(i).id for i in range(model_list.option_count)]
        target = ids.index(str(models / "tiny.gguf"))
        model_list.highlighted = target
        await pilot.press("enter", "a")
        await until(pilot, lambda: app.engine_status.phase is Phase.READY
                    and app.engine_status.facts.path == str(models / "tiny.gguf"))


async def test_fit_key_picks_the_most_layers_that_fit_the_gpu(tmp_path, sparse_70b):
    """A 24 GB card (fake NVML numbers) and the 70B-shaped file: after f the bar fits with the
    margin, and one more layer would not."""
    store = ProfileStore(tmp_path / "profiles")
    app = app_for(store, None, nvml=FakeNvml([FakeGpu(total=24 * GiB, used=0)]))
    app.use_dry_run = False
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f4")
        screen = app.screen
        screen.set_draft(LoadSettings(model_path=str(sparse_70b), n_ctx=8192,
                                      n_gpu_layers=ALL_LAYERS))
        bars = screen.query_one(MemoryBars)
        await until(pilot, lambda: bars.estimate is not None and app.sample is not None)
        assert not bars.estimate.gpus[0].fits
        await pilot.press("f")
        fitted = screen.draft.n_gpu_layers
        assert 0 < fitted < 81
        gpu = bars.estimate.gpus[0]
        assert gpu.total + 256 * 1024**2 <= gpu.budget
        await pilot.press("plus", "plus")
        over = bars.estimate.gpus[0]
        assert over.total + 256 * 1024**2 > over.budget


async def test_palette_loads_a_profile(tmp_path, demo_model):
    store = ProfileStore(tmp_path / "profiles")
    app = app_for(store, None)
    store.save(app.profiles.profile_from("from-palette", LoadSettings(model_path=str(demo_model), n_ctx=768)))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("ctrl+p")
        await pilot.press(*"from-palette")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await until(pilot, lambda: app.engine_status.phase is Phase.READY)
        assert app.current_settings.n_ctx == 768


async def test_auto_tune_shows_progress_stops_on_esc_and_applies_the_best(tmp_path, demo_model):
    from tui.screens.tune import TuneScreen

    store = ProfileStore(tmp_path / "profiles")
    app = app_for(store, LoadSettings(model_path=str(demo_model), n_ctx=512))
    app.use_dry_run = False
    async with app.run_test(size=(100, 30)) as pilot:
        tune = await open_auto_tune(pilot)
        await until(pilot, lambda: len(tune.rows) >= 2, timeout=120)
        await pilot.press("escape")  # stop: what was measured stays
        await until(pilot, lambda: tune.done, timeout=60)
        assert tune.report.stopped == "stopped" and tune.report.untried
        assert tune.report.out_of_memory == 0
        best = tune.rows[0]
        assert best.tg_tokens_per_s == max(m.tg_tokens_per_s for m in tune.rows)
        await pilot.press("w")
        await answer(pilot, "tuned-here")
        await until(pilot, lambda: "tuned-here" in store.names())
        saved = store.load("tuned-here")
        assert saved.load == best.candidate.settings
        assert saved.results["tg_tokens_per_s"] == round(best.tg_tokens_per_s, 2)
        await until(pilot, lambda: isinstance(app.screen, TuneScreen))
        await pilot.press("a")
        await until(pilot, lambda: app.current_settings == best.candidate.settings
                    and app.engine_status.phase is Phase.READY, timeout=60)


async def test_a_setting_llama_cpp_would_refuse_is_caught_before_loading(tmp_path, demo_model):
    """Quantized V cache with flash attention off: the Tuner says so and does not reload."""
    store = ProfileStore(tmp_path / "profiles")
    app = app_for(store, LoadSettings(model_path=str(demo_model), n_ctx=512, flash_attn="off"))
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.engine_status.phase is Phase.READY)
        pid = app.engine.pid
        await pilot.press("f4")
        await until(pilot, lambda: app.screen.info is not None)
        await pilot.press("down", "down", "right")  # no GPU rows: context, KV K, KV V: f16 -> q8_0
        checks = app.screen.query_one("#checks")
        assert checks.display and "needs flash attention" in str(checks.render())
        notes = []
        app.notify = lambda message, **kw: notes.append(message)
        await pilot.press("a")
        await pilot.pause(0.5)
        assert app.engine.pid == pid and any("Not applied" in n for n in notes)


async def test_auto_tune_without_a_gpu_tunes_the_cpu_like_the_cli(tiny_llama):
    """Issues 26 and 30: T in the app on a machine without a GPU never tried thread counts (the
    app had its own copy of the strategy, without the CPU branch); one strategy serves both now."""
    from tests.fakes import ScriptedEngine

    model = tiny_llama
    app = VramdeckApp(ScriptedEngine(gpu_offload=False), FakeSampler(FakeNvml(no_driver=True)),
                      settings=LoadSettings(model_path=str(model), n_ctx=512), sample_interval=3600,
                      use_dry_run=False, model_locations=[])
    async with app.run_test(size=(100, 30)) as pilot:
        tune = await open_auto_tune(pilot)
        await until(pilot, lambda: tune.done, timeout=120)
        settings = [m.candidate.settings for m in tune.report.measured]
        assert all(s.n_gpu_layers == 0 for s in settings), "no GPU: every layer on the CPU"
        assert any(s.n_threads for s in settings), "thread counts tried around the best"
        assert {s.type_k for s in settings} >= {"f16", "q8_0"}
        assert "on the CPU (no GPU)" in str(tune.query_one("#tune-title").render())

