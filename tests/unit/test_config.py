"""Settings file, key overrides and themes: broken input falls back with a message, never a crash."""

from __future__ import annotations

from tui.app import VramdeckApp
from tui.commands.web import is_loopback
from tui.commands.web import main as web_main
from tui.config import AppSettings, load_settings, save_settings
from tui.keymap import keymap_problems
from tui.themes import load_themes


def test_missing_settings_file_gives_the_defaults(tmp_path):
    assert load_settings(tmp_path / "none.toml") == (AppSettings(), [])


def test_settings_round_trip(tmp_path):
    path = tmp_path / "settings.toml"
    s = AppSettings(models_dirs=["~/models", "/data"], refresh_interval=2.5, theme="vramdeck-light",
                    last_profile="70b", keys={"tuner.apply": "g"})
    save_settings(s, path)
    assert load_settings(path) == (s, [])


def test_broken_toml_falls_back_to_defaults_naming_the_file(tmp_path):
    path = tmp_path / "settings.toml"
    path.write_text("theme = \n")
    settings, problems = load_settings(path)
    assert settings == AppSettings()
    assert len(problems) == 1 and str(path) in problems[0] and "not valid TOML" in problems[0]


def test_a_bad_value_names_key_and_line_and_keeps_the_rest(tmp_path):
    path = tmp_path / "settings.toml"
    path.write_text('schema = 1\ntheme = "vramdeck-16"\nrefresh_interval = "fast"\ncolour = 3\n')
    settings, problems = load_settings(path)
    assert settings.theme == "vramdeck-16" and settings.refresh_interval == 1.0
    assert any(f"{path}:3 [refresh_interval]" in p for p in problems)
    assert any(f"{path}:4 [colour]: unknown setting" in p for p in problems)


def test_keymap_reports_unknown_ids_and_conflicts():
    problems = keymap_problems(VramdeckApp, {"tuner.apply": "b", "no.such": "x"})
    assert any("'no.such'" in p for p in problems)
    assert any("'b' is bound to both" in p and "tuner.apply" in p and "tuner.bench" in p
               for p in problems)
    assert keymap_problems(VramdeckApp, {"tuner.apply": "g"}) == []


def test_the_shipped_themes_load_and_a_broken_user_theme_is_reported(tmp_path):
    (tmp_path / "mine.toml").write_text('name = "mine"\nprimary = "not-a-colour"\n')
    (tmp_path / "good.toml").write_text('name = "good"\nprimary = "#112233"\n')
    problems: list[str] = []
    names = {t.name for t in load_themes(tmp_path, problems)}
    assert {"vramdeck-dark", "vramdeck-light", "vramdeck-high-contrast", "vramdeck-16", "good"} <= names
    assert "mine" not in names and len(problems) == 1 and "mine.toml" in problems[0]


def test_web_binds_loopback_unless_told_otherwise(capsys):
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")

    class Args:
        host, port, public, app_args = "0.0.0.0", 8000, False, []
    assert web_main(Args()) == 2
    assert "--public" in capsys.readouterr().err
