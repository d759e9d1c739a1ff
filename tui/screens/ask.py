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

from tui.files import check_write_target, create_new, exports_dir, web_mode, write_atomically
from tui.safe_text import terminal_safe


class AskTextScreen(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel", id="ask.close")]

    def __init__(self, question: str, value: str = "", placeholder: str = "") -> None:
        super().__init__(classes="ask")
        self.question, self.value, self.placeholder = question, value, placeholder

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.question, markup=False)
            yield Input(value=self.value, placeholder=self.placeholder)
            yield Label("Enter accepts · Esc cancels", classes="hint")

    @on(Input.Submitted)
    def submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)


def ask_path_and_write(app, question: str, default: str, text: Callable[[], str],
                       saved: str) -> None:
    """Ask for a file path (~ works), write text() there (0600), and say where (or why not).
    An existing file (a symlink too) is replaced only after a yes, and then as a new file, never
    written through; under `vramdeck web` only the exports folder can be written."""
    def write(path: str | None) -> None:
        if not path:
            return
        try:
            target = check_write_target(Path(path).expanduser())
            create_new(target, text())
        except FileExistsError:
            def overwrite(yes: bool | None) -> None:
                if yes:
                    _write(lambda: write_atomically(target, text()), target)
            app.push_screen(ConfirmScreen(f"{terminal_safe(target)} exists. Replace it?"), overwrite)
            return
        except (OSError, ValueError) as exc:
            app.notify(f"Not written: {terminal_safe(exc)}", severity="error", markup=False)
            return
        app.notify(f"{saved} {terminal_safe(target)}", markup=False)

    def _write(do: Callable[[], None], target: Path) -> None:
        try:
            do()
        except (OSError, ValueError) as exc:
            app.notify(f"Not written: {terminal_safe(exc)}", severity="error", markup=False)
            return
        app.notify(f"{saved} {terminal_safe(target)}", markup=False)

    if web_mode():
        default = str(exports_dir() / Path(default).name)
    app.push_screen(AskTextScreen(question, default), write)


class ConfirmScreen(ModalScreen[bool]):
    BINDINGS = [Binding("y", "dismiss(True)", "Yes", id="confirm.yes"),
                Binding("n,escape", "dismiss(False)", "No", id="confirm.no")]

    def __init__(self, question: str) -> None:
        super().__init__(classes="ask")
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.question, markup=False)
            yield Label("y yes · n / Esc no", classes="hint")
