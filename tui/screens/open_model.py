"""A modal that asks for a GGUF path (typed; ~ and relative paths work)."""

from __future__ import annotations

from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label


class OpenModelScreen(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel", id="open-model.close")]
    DEFAULT_CSS = """
    OpenModelScreen { align: center middle; }
    OpenModelScreen > Vertical { width: 90%; max-width: 100; height: auto; border: round $primary;
                                 padding: 1 2; background: $surface; }
    """

    def __init__(self, current: str = "") -> None:
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Path of a GGUF model file (Enter opens, Esc cancels):")
            yield Input(value=self.current, placeholder="~/models/model.gguf", id="path")

    @on(Input.Submitted)
    def submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        self.dismiss(str(Path(text).expanduser().resolve()) if text else None)
