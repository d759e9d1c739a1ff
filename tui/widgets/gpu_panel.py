"""One GPU: its figures (GpuCard) and the last minutes of VRAM and load as sparklines."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.widgets import Label, Sparkline

from tui.monitor.sample import GpuSample
from tui.widgets.gpu_card import GpuCard


class GpuPanel(Vertical):
    DEFAULT_CSS = """
    GpuPanel { height: auto; }
    GpuPanel Horizontal { height: 1; padding: 0 1; }
    GpuPanel Label { width: 10; color: $text-muted; }
    GpuPanel Sparkline { height: 1; width: 1fr; }
    """

    gpu: reactive[GpuSample | None] = reactive(None)
    vram_history: reactive[list[float]] = reactive(list, always_update=True)
    util_history: reactive[list[float]] = reactive(list, always_update=True)

    def compose(self) -> ComposeResult:
        yield GpuCard()
        with Horizontal():
            yield Label("VRAM hist")
            yield Sparkline([], summary_function=max, id="vram")
        with Horizontal():
            yield Label("util hist")
            yield Sparkline([], summary_function=max, id="util")

    def watch_gpu(self, gpu: GpuSample | None) -> None:
        self.query_one(GpuCard).gpu = gpu

    def watch_vram_history(self, values: list[float]) -> None:
        self.query_one("#vram", Sparkline).data = values or [0.0]

    def watch_util_history(self, values: list[float]) -> None:
        self.query_one("#util", Sparkline).data = values or [0.0]
