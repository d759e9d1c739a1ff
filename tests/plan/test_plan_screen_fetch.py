"""f in the Plan screen fetches the highlighted quant from the hub; Esc during the fetch stops it
and says so (it stopped silently at about 1 GB, with no word that it could resume), f resumes, and
a finished fetch is announced as it opens in the Tuner, whose model list then shows the file."""

from __future__ import annotations

from textual.widgets import DataTable, Input, Label

from tests.conftest import until
from tests.fakes import ScriptedEngine
from tests.plan.hub_server import Repo
from tui.app import VramdeckApp
from tui.engine.settings import LoadSettings
from tui.models.discovery import Location
from tui.monitor.fake import FakeGpu, FakeNvml, FakeSampler
from tui.plan import hub as hub_api
from tui.screens.ask import AskTextScreen
from tui.screens.plan import PlanScreen
from tui.speed.model import SpeedModel

GiB = 1024**3


async def test_esc_stops_a_fetch_with_a_word_and_f_resumes_it(hub, tmp_path, quant_ladder, monkeypatch):
    served = quant_ladder["Q8_0"]
    hub.state.repos["test/tiny-GGUF"] = Repo(files={"tiny-Q8_0.gguf": served})
    hub.state.delay_per_chunk = 0.1  # 64 KiB a chunk
    app = VramdeckApp(ScriptedEngine(), FakeSampler(FakeNvml([FakeGpu(used=0)])),
                      settings=LoadSettings(model_path=str(served), n_ctx=512), use_dry_run=False,
                      model_locations=[Location(tmp_path / "hf-cache", "huggingface")])
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f4")
        await until(pilot, lambda: app.screen.draft is not None)
        tuner = app.screen
        original = PlanScreen.__init__

        def with_speeds(self, *args, **kwargs):  # the test gives the speed model
            kwargs["speed"] = (SpeedModel(), "default rates")
            original(self, *args, **kwargs)
        monkeypatch.setattr(PlanScreen, "__init__", with_speeds)
        await pilot.press("P")
        await until(pilot, lambda: isinstance(app.screen, AskTextScreen))
        app.screen.query_one(Input).value = "test/tiny-GGUF"
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, PlanScreen) and app.screen.plans, timeout=120)
        plan_screen = app.screen
        row = next(i for i, (_, r) in enumerate(plan_screen.shown) if r.quant == "Q8_0")
        plan_screen.query_one(DataTable).move_cursor(row=row)
        await pilot.press("f")
        await until(pilot, lambda: plan_screen.fetching is not None and plan_screen.fetching.done > 0)
        await pilot.press("escape")
        await until(pilot, lambda: plan_screen.fetching is None)
        assert app.screen is plan_screen, "Esc stopped the fetch; it did not close the screen"
        status = str(plan_screen.query_one("#plan-status", Label).render())
        assert "stopped at" in status and "resumes" in status, status
        blobs = hub_api.repo_folder("test/tiny-GGUF") / "blobs"
        partial = list(blobs.glob("*.incomplete"))
        assert len(partial) == 1 and 0 < partial[0].stat().st_size < served.stat().st_size

        hub.state.delay_per_chunk = 0.0
        await pilot.press("f")
        await until(pilot, lambda: app.screen is tuner, timeout=60)
        assert tuner.draft.model_path.endswith("tiny-Q8_0.gguf")
        assert any("Fetched tiny-Q8_0.gguf" in str(n.message) for n in app._notifications)
        await until(pilot, lambda: any(m.path == tuner.draft.model_path for m in tuner.models))
