"""The app shell: help, themes remembered, key overrides, settings; and real terminals (a pty)."""

from __future__ import annotations

import pytest

from benchmarks.pty_app import PtyApp
from tests.conftest import until
from tui.app import VramdeckApp
from tui.config import AppSettings, load_settings
from tui.engine.client import EngineClient
from tui.engine.settings import LoadSettings
from tui.engine.status import Phase
from tui.monitor.fake import FakeNvml, FakeSampler
from tui.screens.help import HelpScreen
from tui.screens.settings import SettingsScreen

pytestmark = pytest.mark.slow


def shell_app(demo_model, settings_file, app_settings=None) -> VramdeckApp:
    return VramdeckApp(EngineClient(), FakeSampler(FakeNvml(no_driver=True)),
                       settings=LoadSettings(model_path=str(demo_model), n_ctx=512),
                       model_locations=[], app_settings=app_settings, settings_file=settings_file)


async def test_f1_lists_the_keys_of_every_pane(tmp_path, demo_model):
    app = shell_app(demo_model, tmp_path / "settings.toml")
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.press("f1")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        text = str(app.screen.query_one("#help-text").render())
        for words in ("Chat", "Monitor", "Tuner", "Redo", "chat.regenerate", "tuner.apply", "Profiles"):
            assert words in text
        # issue 30: the Plan screen's, the auto-tune's and a chat message's keys were missing
        for binding_id in ("plan.sort", "plan.compare", "plan.fetch", "plan.measure", "plan.open",
                           "tune.apply", "tune.save", "tune.stop-or-close", "message.copy", "message.save-code"):
            assert binding_id in text, binding_id
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


def test_the_palette_names_keys_as_people_read_them():
    """It showed 'key: f1,question_mark'."""
    from tui.palette import _key_help

    assert _key_help("f1,question_mark") == "key: F1 or ?"
    assert _key_help("ctrl+r") == "key: Ctrl+R" and _key_help("left_square_bracket") == "key: ["


async def test_theme_switch_is_remembered_across_restarts(tmp_path, demo_model):
    path = tmp_path / "settings.toml"
    app = shell_app(demo_model, path)
    async with app.run_test(size=(80, 24)) as pilot:
        before = app.theme
        await pilot.press("f9")
        await pilot.pause(0.1)
        chosen = app.theme
        assert chosen != before and chosen.startswith("vramdeck")
    settings, problems = load_settings(path)
    assert settings.theme == chosen and problems == []
    again = shell_app(demo_model, path, app_settings=settings)
    async with again.run_test(size=(80, 24)):
        assert again.theme == chosen


async def test_a_key_override_from_the_settings_file_works(tmp_path, demo_model):
    app = shell_app(demo_model, tmp_path / "s.toml", AppSettings(keys={"tuner.apply": "g"}))
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.engine_status.phase is Phase.READY)
        pid = app.engine.pid
        await pilot.press("f4", "right_square_bracket", "g")  # context 512 -> 1024, apply
        await until(pilot, lambda: app.engine.pid != pid and app.engine_status.phase is Phase.READY)
        assert app.engine_status.facts.n_ctx == 1024


async def test_settings_screen_refuses_a_bad_value_then_saves(tmp_path, demo_model):
    path = tmp_path / "settings.toml"
    app = shell_app(demo_model, path)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("f6")
        await until(pilot, lambda: isinstance(app.screen, SettingsScreen))
        screen = app.screen
        screen.query_one("#refresh").value = "never"
        await pilot.press("ctrl+s")
        assert isinstance(app.screen, SettingsScreen)
        assert "refresh" in str(screen.query_one("#settings-errors").render())
        screen.query_one("#refresh").value = "2"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: not isinstance(app.screen, SettingsScreen))
        assert app.sample_interval == 2.0
    assert load_settings(path)[0].refresh_interval == 2.0


@pytest.mark.parametrize("term", ["xterm-256color", "screen-256color", "linux"])
def test_starts_draws_and_quits_in_a_real_terminal(term, demo_model):
    """Through a pseudo-terminal, as over SSH: the first frame comes, Ctrl+Q ends the app."""
    app = PtyApp(["--model", str(demo_model), "--ctx", "512"], cols=80, rows=24, term=term)
    try:
        app.wait_for(b"palette", timeout=30)
        app.wait_for(b"layers on GPU", timeout=60)
    finally:
        app.close()
    assert app.proc.returncode == 0


async def test_while_the_terminal_is_too_small_only_quit_works(tmp_path, demo_model):
    """The too-small notice stays put: F-keys must not switch to a pane that cannot be laid out
    (it would show a broken layout under a notice that claims otherwise), nor open help."""
    from tui.screens.too_small import TooSmallScreen

    app = shell_app(demo_model, tmp_path / "s.toml")
    async with app.run_test(size=(60, 15)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, TooSmallScreen))
        mode = app.current_mode
        await pilot.press("f3", "f4", "f1", "f6", "ctrl+p")
        await pilot.pause(0.1)
        assert isinstance(app.screen, TooSmallScreen) and app.current_mode == mode
        await pilot.resize_terminal(100, 30)
        await until(pilot, lambda: not isinstance(app.screen, TooSmallScreen))
        await pilot.press("f4")
        await until(pilot, lambda: app.current_mode == "tuner")
