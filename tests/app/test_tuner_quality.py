"""Q in the Tuner: the chosen file's KL divergence against the highest-precision file of the model
beside it, with the real engine and the demo model's ladder; a profile saved after keeps it."""

from __future__ import annotations

import pytest
from textual.widgets import Static

from tests.conftest import until
from tests.fakes import ScriptedEngine
from tui.app import VramdeckApp
from tui.engine.settings import LoadSettings
from tui.monitor.fake import FakeNvml, FakeSampler
from tui.screens.result import ResultScreen

pytestmark = pytest.mark.slow


async def test_q_measures_the_chosen_file_against_its_reference_and_profiles_keep_it(demo_ladder):
    path = str(demo_ladder["Q2_K"])
    app = VramdeckApp(ScriptedEngine(), FakeSampler(FakeNvml(no_driver=True)),
                      settings=LoadSettings(model_path=path, n_ctx=1024), sample_interval=3600,
                      use_dry_run=False, model_locations=[])
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f4")
        tuner = app.screen
        await until(pilot, lambda: tuner.info is not None)
        await pilot.press("Q")
        result = tuner.query_one("#result", Static)
        await until(pilot, lambda: isinstance(app.screen, ResultScreen) or "not measured" in str(result.render()),
                    timeout=180)
        assert "against SmolLM2-135M-F16.gguf" in str(result.render())
        text = str(app.screen.query_one("#result-text", Static).render())
        assert "against SmolLM2-135M-F16.gguf" in text and "KLD " in text and "same top" in text, text
        assert "\\x0a" not in text and len(text.splitlines()) >= 5, "lines break, never shown as \\x0a"
        figures, reference = app.loads.quality[path]
        assert reference == "SmolLM2-135M-F16.gguf" and figures.kld_mean > 0.3
        results = app.profiles.profile_from("q2", tuner.draft).results
        assert results["kld_mean"] == round(figures.kld_mean, 6)
        assert results["quality_reference"] == "SmolLM2-135M-F16.gguf"
