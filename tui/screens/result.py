"""A measurement's full result in a box of its own: the Tuner's message area holds two lines at
80x24, so a benchmark's warning, five depths or the quality figures would be cut there. Esc,
Enter or q closes it; the one-line summary stays in the Tuner."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from tui.safe_text import terminal_safe


class ResultScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,enter,q", "dismiss(None)", "Close", id="result.close")]

    def __init__(self, title: str, text: str) -> None:
        super().__init__(classes="ask")
        self.title_text, self.text = title, text

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="result-box"):
            yield Label(terminal_safe(self.title_text), classes="result-title", markup=False)
            # the text is the engine's figures and file names: shown, never read as markup
            yield Static(terminal_safe(self.text, multiline=True), id="result-text", markup=False)
            yield Label("Esc, Enter or q closes · ↑↓ scroll", classes="hint")
