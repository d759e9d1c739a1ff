"""C in the Tuner: the speed calibration with a progress bar, through the real engine on tiny probe
files; Esc stops after the step under way, keeps what was measured, and the next run resumes."""

from __future__ import annotations

from dataclasses import replace

import pytest
from textual.widgets import ProgressBar, Static

from tests.conftest import until
from tests.fakes import ScriptedEngine
from tui.app import VramdeckApp
from tui.engine.settings import LoadSettings
from tui.models.synthetic import TINY
from tui.monitor.contention import FixedContention
from tui.monitor.fake import FakeNvml, FakeSampler
from tui.screens.calibrate import CalibrateScreen
from tui.speed.calibrate import Calibrator
from tui.speed.rates import read_rates

pytestmark = pytest.mark.slow
SMALL = replace(TINY, name="probe-small", n_embd=512, n_ff=1024, n_head=4, n_head_kv=2, n_layer=3)


@pytest.mark.timeout(900)
async def test_c_calibrates_with_progress_and_esc_stops_and_keeps_the_steps(tmp_path, demo_model, monkeypatch):
    cache = tmp_path / "rates.json"

    def make(folder, gpu=""):
        cal = Calibrator(folder, cache=cache, types=("Q4_K", "IQ2_XXS"), use_gpu=False, key="test-machine",
                         contention=lambda pid: FixedContention(0.0), threads=2)
        cal.probe_shapes = (SMALL, replace(SMALL, n_layer=4))
        return cal

    monkeypatch.setattr("tui.screens.calibrate.this_machine_calibrator", make)
    monkeypatch.setattr(CalibrateScreen.__init__, "__defaults__", (make,))
    app = VramdeckApp(ScriptedEngine(), FakeSampler(FakeNvml(no_driver=True)),
                      settings=LoadSettings(model_path=str(demo_model), n_ctx=1024), sample_interval=3600,
                      use_dry_run=False, model_locations=[])
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f4")
        await until(pilot, lambda: app.screen.draft is not None)
        await pilot.press("C")
        await until(pilot, lambda: isinstance(app.screen, CalibrateScreen))
        box = app.screen
        await until(pilot, lambda: len(box.lines) >= 2, timeout=300)
        await pilot.press("escape")  # stop after the step under way
        assert box.stopping and isinstance(app.screen, CalibrateScreen), "Esc first stops, never closes mid-step"
        await until(pilot, lambda: not box.running, timeout=300)
        status = str(box.query_one("#calibrate-status").render())
        assert "stopped" in status and "resume" in status, status
        kept, _ = read_rates("test-machine", cache)
        assert kept is not None and "cpu:fixed" in kept.done and len(kept.done) < 5
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, CalibrateScreen))
        # C again resumes: only the steps not yet done run, then the figures are the machine's
        await pilot.press("C")
        await until(pilot, lambda: isinstance(app.screen, CalibrateScreen))
        box = app.screen
        await until(pilot, lambda: not box.running and box.lines, timeout=600)
        assert box.finished, str(box.query_one("#calibrate-status").render())
        bar = box.query_one(ProgressBar)
        assert bar.progress == bar.total == 5 - len(kept.done)
        assert "done" in str(box.query_one("#calibrate-status").render())
        assert "CPU check" in str(box.query_one("#calibrate-lines", Static).render())
