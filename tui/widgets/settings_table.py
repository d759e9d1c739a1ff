"""The load settings as rows; the selected row is the one the arrow keys change."""

from __future__ import annotations

from textual.content import Content
from textual.reactive import reactive
from textual.widgets import Static

from tui.engine.settings import LoadSettings
from tui.widgets.settings_steps import FIELDS, Field, show


class SettingsTable(Static):
    DEFAULT_CSS = """
    SettingsTable { border: round $primary; padding: 0 1; height: auto; width: 1fr; }
    SettingsTable:focus { border: round $accent; }
    """

    settings: reactive[LoadSettings | None] = reactive(None)
    selected: reactive[int] = reactive(0)
    n_layer: reactive[int | None] = reactive(None)
    fields: reactive[tuple[Field, ...]] = reactive(FIELDS, layout=True)
    can_focus = True

    def on_mount(self) -> None:
        self.border_title = "Load settings"

    def render(self) -> Content:
        s = self.settings
        if s is None:
            return Content("no model chosen: press o to open a GGUF file")
        rows = []
        for i, f in enumerate(self.fields):
            mark = "▶ " if i == self.selected else "  "
            style = "bold reverse" if i == self.selected else ""
            value = show(s, f.name, self.n_layer)
            rows.append(Content.assemble(mark, (f"{f.label:<16} {value:<10}", style)))
        self.border_subtitle = self.fields[self.selected % len(self.fields)].help
        return Content("\n").join(rows)
