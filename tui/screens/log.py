"""Log: what llama.cpp and the engine process said, newest last."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Footer, Log

from tui.screens.typed import VramdeckScreen


class LogScreen(VramdeckScreen):
    def compose(self) -> ComposeResult:
        yield Log(id="engine-log", max_lines=5000)
        yield Footer()

    def on_mount(self) -> None:
        log = self.query_one(Log)
        log.border_title = "llama.cpp and engine log, newest last"
        log.write_lines(list(self.app.engine.log))  # what came before this pane was opened
        self._written = self.app.log_count
        self.watch(self.app, "log_count", self._log_grew, init=False)

    def _log_grew(self, count: int) -> None:
        lines = list(self.app.engine.log)
        new = min(count - self._written, len(lines))
        if new > 0:
            self.query_one(Log).write_lines(lines[-new:])
        self._written = count
