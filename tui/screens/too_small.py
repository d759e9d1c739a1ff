"""Shown instead of a broken layout while the terminal is smaller than vramdeck needs."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Center, Middle
from textual.screen import ModalScreen
from textual.widgets import Static

MIN_WIDTH, MIN_HEIGHT = 80, 24


class TooSmallScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    TooSmallScreen { align: center middle; background: $background; }
    TooSmallScreen Static { width: auto; max-width: 100%; text-align: center; color: $warning; }
    """

    def compose(self) -> ComposeResult:
        with Middle(), Center():
            yield Static("", id="too-small")

    def show_size(self, width: int, height: int) -> None:
        self.query_one("#too-small", Static).update(
            f"Terminal too small: {width}x{height}.\nvramdeck needs {MIN_WIDTH}x{MIN_HEIGHT}.\n"
            f"Enlarge the window (or zoom out); Ctrl+Q quits.")
