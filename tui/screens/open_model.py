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

    def __init__(self, current: str = "", what: str = "model", allow_empty: bool = False) -> None:
        super().__init__()
        self.current, self.what, self.allow_empty = current, what, allow_empty

    def compose(self) -> ComposeResult:
        with Vertical():
            if self.what == "draft":
                yield Label("Path of a draft model: a small GGUF with the same vocabulary as the model "
                            "(Enter uses it, an empty path turns drafting off, Esc cancels):")
            else:
                yield Label("Path of a GGUF model file (Enter opens, Esc cancels):")
            yield Input(value=self.current, placeholder="~/models/model.gguf", id="path")

    @on(Input.Submitted)
    def submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if text:
            self.dismiss(str(Path(text).expanduser().resolve()))
        else:
            self.dismiss("" if self.allow_empty else None)
