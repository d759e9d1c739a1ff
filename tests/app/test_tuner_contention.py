"""The Tuner's benchmark (b) says its spread and whether other processes skewed it; what it knows
of the CPU comes from the app's sampler, so a fake decides it (a snapshot never reads this
machine: the benchmark-table snapshot failed once in CI when it did)."""

from __future__ import annotations

import pytest
from textual.widgets import Static

from tests.conftest import until
from tests.fakes import ScriptedEngine
from tui.app import VramdeckApp
from tui.engine.settings import LoadSettings
from tui.engine.status import Phase
from tui.monitor.fake import FakeNvml, FakeSampler
from tui.screens.result import ResultScreen


@pytest.mark.parametrize("other_cores, warned", [(0.0, False), (1.4, True)])
async def test_the_benchmark_line_has_its_spread_and_the_samplers_word_on_contention(other_cores, warned):
    sampler = FakeSampler(FakeNvml())
    sampler.other_cores = other_cores
    app = VramdeckApp(ScriptedEngine(), sampler, settings=LoadSettings(model_path="/models/m.gguf", n_ctx=4096),
                      sample_interval=3600, use_dry_run=False, model_locations=[])
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.engine_status.phase is Phase.READY)
        await pilot.press("f4")
        tuner = app.screen
        await pilot.press("b")
        await until(pilot, lambda: bool(app.loads.tried and app.loads.tried[-1].spread))
        await pilot.pause(0.1)
        line = str(tuner.query_one("#result", Static).render())
        if warned:  # the warning makes it three lines: the whole result opens in a box of its own
            assert isinstance(app.screen, ResultScreen) and "busy" in line, line
            text = str(app.screen.query_one("#result-text", Static).render())
        else:
            text = line
    assert "(mean ± sd of 3 runs;" in text, text
    assert ("other processes kept 1.4" in text) is warned, text
    assert app.loads.tried[-1].spread.runs == 3
