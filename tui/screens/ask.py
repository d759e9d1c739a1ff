"""Small modals: ask for a line of text, or a yes/no. Enter answers, Esc cancels."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label


class AskTextScreen(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, question: str, value: str = "", placeholder: str = "") -> None:
        super().__init__(classes="ask")
        self.question, self.value, self.placeholder = question, value, placeholder

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.question)
            yield Input(value=self.value, placeholder=self.placeholder)
            yield Label("Enter accepts · Esc cancels", classes="hint")

    @on(Input.Submitted)
    def submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)


def ask_path_and_write(app, question: str, default: str, text: Callable[[], str],
                       saved: str) -> None:
    """Ask for a file path (~ works), write text() there, and say where (or why not)."""
    def write(path: str | None) -> None:
        if not path:
            return
        target = Path(path).expanduser()
        try:
            target.write_text(text(), encoding="utf-8")
        except OSError as exc:
            app.notify(f"Not written: {exc}", severity="error")
            return
        app.notify(f"{saved} {target}")
    app.push_screen(AskTextScreen(question, default), write)


class ConfirmScreen(ModalScreen[bool]):
    BINDINGS = [Binding("y", "dismiss(True)", "Yes"), Binding("n,escape", "dismiss(False)", "No")]

    def __init__(self, question: str) -> None:
        super().__init__(classes="ask")
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.question)
            yield Label("y yes · n / Esc no", classes="hint")
