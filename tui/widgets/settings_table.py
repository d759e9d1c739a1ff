"""The load settings as rows; the selected row is the one the arrow keys change."""

from __future__ import annotations

from textual.content import Content
from textual.reactive import reactive
from textual.widgets import Static

from tui.engine.settings import LoadSettings
from tui.engine.settings_steps import FIELDS, show


class SettingsTable(Static):
    DEFAULT_CSS = """
    SettingsTable { border: round $primary; padding: 0 1; height: auto; }
    """

    settings: reactive[LoadSettings | None] = reactive(None)
    selected: reactive[int] = reactive(0)
    n_layer: reactive[int | None] = reactive(None)

    def on_mount(self) -> None:
        self.border_title = "Load settings"

    def render(self) -> Content:
        s = self.settings
        if s is None:
            return Content("no model chosen: press o to open a GGUF file")
        rows = []
        for i, f in enumerate(FIELDS):
            mark = "▶ " if i == self.selected else "  "
            style = "bold reverse" if i == self.selected else ""
            value = show(s, f.name, self.n_layer)
            rows.append(Content.assemble(mark, (f"{f.label:<16} {value:<10}", style)))
        rows.append(Content.assemble(("  " + FIELDS[self.selected].help, "$text-muted")))
        return Content("\n").join(rows)
