"""The Plan screen driven by keys: P in the Tuner plans the draft's model, s sorts, Enter on a
quant that is on disk opens it in the Tuner with the planned settings."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable, Input, Label

from tests.conftest import until
from tests.fakes import ScriptedEngine
from tui.app import VramdeckApp
from tui.engine.settings import LoadSettings
from tui.models.discovery import Location
from tui.monitor.fake import FakeGpu, FakeNvml, FakeSampler
from tui.screens.ask import AskTextScreen
from tui.screens.plan import PlanScreen
from tui.speed.model import SpeedModel

GiB = 1024**3


async def test_plan_sort_and_open_a_quant_on_disk(quant_ladder, monkeypatch):
    monkeypatch.setattr("tui.screens.plan.machine_speed_model",
                        lambda: (_ for _ in ()).throw(AssertionError("the test gives speeds")))
    q8 = quant_ladder["Q8_0"]
    app = VramdeckApp(ScriptedEngine(), FakeSampler(FakeNvml([FakeGpu(used=0)])),
                      settings=LoadSettings(model_path=str(q8), n_ctx=1024), use_dry_run=False,
                      model_locations=[Location(Path(q8).parent, "folder")])
    original = PlanScreen.__init__

    def with_speeds(self, *args, **kwargs):
        kwargs["speed"] = (SpeedModel(), "default rates")
        original(self, *args, **kwargs)
    monkeypatch.setattr(PlanScreen, "__init__", with_speeds)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f4")
        await until(pilot, lambda: app.screen.draft is not None)
        await pilot.press("P")
        await until(pilot, lambda: isinstance(app.screen, AskTextScreen))
        assert app.screen.query_one(Input).value == str(q8), "the draft's model by default"
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, PlanScreen) and app.screen.plans, timeout=120)
        plan = app.screen
        quants = [r.quant for _, r in plan.shown]
        assert "Q4_K_M" in quants and "IQ2_XXS" in quants
        assert set(plan.plans[0].on_disk) >= {"Q8_0", "Q4_K_M", "Q2_K"}, "the ladder on disk"
        await pilot.press("s")
        assert plan.sort == "tg"
        speeds = [r.tg_tokens_per_s for _, r in plan.shown]
        assert speeds == sorted(speeds, reverse=True)
        row = next(i for i, (_, r) in enumerate(plan.shown) if r.quant == "Q4_K_M")
        plan.query_one(DataTable).move_cursor(row=row)
        await pilot.press("enter")
        await until(pilot, lambda: not isinstance(app.screen, PlanScreen))
        assert app.screen.draft.model_path == str(quant_ladder["Q4_K_M"])
        assert app.screen.draft.n_ctx == 1024


async def test_p_on_a_machine_without_a_gpu_can_plan_for_one(quant_ladder, monkeypatch):
    """Issue 30: P in the app could only plan for this machine's CPU, where the CLI has --vram."""
    original = PlanScreen.__init__

    def with_speeds(self, *args, **kwargs):
        kwargs["speed"] = (SpeedModel(), "default rates")
        original(self, *args, **kwargs)
    monkeypatch.setattr(PlanScreen, "__init__", with_speeds)
    q8 = quant_ladder["Q8_0"]
    app = VramdeckApp(ScriptedEngine(gpu_offload=False), FakeSampler(FakeNvml(no_driver=True)),
                      settings=LoadSettings(model_path=str(q8), n_ctx=1024), use_dry_run=False,
                      model_locations=[])
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f4")
        await until(pilot, lambda: app.screen.draft is not None)
        await pilot.press("P")
        await until(pilot, lambda: isinstance(app.screen, AskTextScreen))
        await pilot.press("enter")  # the draft's model
        await until(pilot, lambda: isinstance(app.screen, AskTextScreen) and "No GPU here" in str(
            app.screen.query_one(Label).render()))
        app.screen.query_one(Input).value = "24GiB,24GiB"
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, PlanScreen) and app.screen.plans, timeout=120)
        assert app.screen.budget.gpus == (24 * GiB, 24 * GiB)
        assert any(r.n_gpu_layers > 0 for _, r in app.screen.shown), "planned with GPU layers"
