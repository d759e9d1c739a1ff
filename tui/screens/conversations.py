"""Saved conversations: reopen, rename, delete, export to Markdown."""

from __future__ import annotations

import time
from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Label

from tui.chat.export import to_markdown
from tui.chat.store import ConversationStore, ConversationSummary
from tui.safe_text import terminal_safe
from tui.screens.ask import AskTextScreen, ConfirmScreen, ask_path_and_write
from tui.units import shortened


def _when(t: float, now: float | None = None) -> str:
    """`12-07 21:03` this year (11 columns: the date was cut to `2026-12-` at 80x24), the year
    before that."""
    when, today = time.localtime(t), time.localtime(now if now is not None else time.time())
    return time.strftime("%m-%d %H:%M" if when.tm_year == today.tm_year else "%Y-%m-%d", when)


class ConversationsScreen(ModalScreen[str | None]):
    """Dismisses with the id of the conversation to open, or None."""

    BINDINGS = [
        Binding("escape,q", "dismiss(None)", "Close", id="conversations.close"),
        Binding("r", "rename", "Rename", id="conversations.rename"),
        Binding("x,delete", "delete", "Delete", id="conversations.delete"),
        Binding("e", "export", "Export .md", id="conversations.export"),
    ]

    def __init__(self, store: ConversationStore) -> None:
        super().__init__()
        self.store = store
        self.rows: list[ConversationSummary] = []

    def compose(self) -> ComposeResult:
        with Vertical(classes="table-box"):
            yield Label("", id="conversations-title")
            yield DataTable(cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        # the date and turns first: a long title is what a narrow terminal cuts
        self.query_one(DataTable).add_columns("last message", "turns", "conversation")
        self.refill()
        self.query_one(DataTable).focus()

    def refill(self) -> None:
        self.rows = self.store.list()
        table = self.query_one(DataTable)
        table.clear()
        for c in self.rows:
            table.add_row(_when(c.modified), str(c.turns), Text(shortened(terminal_safe(c.title), 60)),
                          key=c.id)
        self.query_one("#conversations-title", Label).update(
            f"{len(self.rows)} saved conversation{'s' if len(self.rows) != 1 else ''} "
            f"(Enter opens)" if self.rows else "No saved conversations yet.")

    @property
    def current(self) -> ConversationSummary | None:
        row = self.query_one(DataTable).cursor_row
        return self.rows[row] if self.rows and 0 <= row < len(self.rows) else None

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if self.current:
            self.dismiss(self.current.id)

    def action_rename(self) -> None:
        c = self.current
        if c is None:
            return

        def renamed(title: str | None) -> None:
            if title:
                self.store.rename(c.id, title)
                self.refill()
        self.app.push_screen(AskTextScreen("New title:", c.title), renamed)

    def action_delete(self) -> None:
        c = self.current
        if c is None:
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.store.delete(c.id)
                self.refill()
        self.app.push_screen(ConfirmScreen(f"Delete the conversation '{terminal_safe(c.title)}'?"),
                             confirmed)

    def action_export(self) -> None:
        c = self.current
        if c is None:
            return
        default = str(Path.home() / f"vramdeck-{c.id}.md")
        ask_path_and_write(self.app, "Export to Markdown file:", default,
                           lambda: to_markdown(self.store.load(c.id)), "Exported to")
