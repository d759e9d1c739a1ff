"""F6: vramdeck's settings (the same file as ~/.config/vramdeck/settings.toml), checked on save."""

from __future__ import annotations

from dataclasses import replace

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Select, TextArea

from tui.config import AppSettings
from tui.keymap import keymap_problems


def parse_keys(text: str) -> tuple[dict[str, str], list[str]]:
    """`binding.id = keys` lines (blank lines and # comments allowed)."""
    keys, problems = {}, []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, value = line.partition("=")
        name, value = name.strip().strip('"'), value.strip().strip('"')
        if not sep or not name or not value:
            problems.append(f"keys line {number}: write it as  tuner.apply = a,ctrl+s")
            continue
        keys[name] = value
    return keys, problems


class SettingsScreen(ModalScreen[AppSettings | None]):
    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel", id="settings.close"),
                Binding("ctrl+s", "save", "Save", id="settings.save")]

    def __init__(self, settings: AppSettings, themes: list[str], path: str, app_class) -> None:
        super().__init__(classes="ask")
        self.settings, self.themes, self.path, self.app_class = settings, themes, path, app_class

    def compose(self) -> ComposeResult:
        s = self.settings
        with Vertical(id="settings-form"):
            yield Label(f"Settings ({self.path}); Ctrl+S saves, Esc cancels, Tab moves")
            with Horizontal(classes="field"):
                yield Label("model folders      ")
                yield Input(", ".join(s.models_dirs), placeholder="~/models, /data/gguf",
                            id="models-dirs", compact=True)
            with Horizontal(classes="field"):
                yield Label("refresh, seconds   ")
                yield Input(f"{s.refresh_interval:g}", id="refresh", compact=True)
            with Horizontal(classes="field"):
                yield Label("theme              ")
                yield Select([(t, t) for t in self.themes], value=s.theme if s.theme in self.themes
                             else self.themes[0], allow_blank=False, id="theme", compact=True)
            yield Label("key overrides, one per line:  binding.id = keys   (F1 lists the ids)")
            yield TextArea("\n".join(f"{k} = {v}" for k, v in s.keys.items()), id="keys")
            yield Label("", id="settings-errors")

    def action_save(self) -> None:
        problems = []
        dirs = [d.strip() for d in self.query_one("#models-dirs", Input).value.split(",") if d.strip()]
        refresh_text = self.query_one("#refresh", Input).value.strip()
        try:
            refresh = float(refresh_text)
            if not 0.1 <= refresh <= 60:
                raise ValueError
        except ValueError:
            problems.append(f"refresh: a number of seconds from 0.1 to 60, not '{refresh_text}'")
            refresh = self.settings.refresh_interval
        keys, key_problems = parse_keys(self.query_one("#keys", TextArea).text)
        problems += key_problems + keymap_problems(self.app_class, keys)
        if problems:
            self.query_one("#settings-errors", Label).update("\n".join(problems))
            return
        self.dismiss(replace(self.settings, models_dirs=dirs, refresh_interval=refresh,
                             theme=str(self.query_one("#theme", Select).value), keys=keys))
