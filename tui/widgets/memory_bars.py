"""Predicted memory per device as stacked bars: weights, KV, compute, overhead, against the budget."""

from __future__ import annotations

from textual.content import Content
from textual.reactive import reactive
from textual.widgets import Static

from tui.fit.estimate import DeviceMemory, MemoryEstimate
from tui.units import format_bytes

PARTS = (("weights", "█", "$primary"), ("kv", "█", "$secondary"), ("compute", "█", "$accent"),
         ("overhead", "█", "$warning"), ("draft", "▓", "$primary-lighten-2"))


def bar(d: DeviceMemory, width: int) -> Content:
    scale = max(d.budget or 0, d.total) or 1
    pieces: list[tuple[str, str]] = []
    used = 0
    for name, char, style in PARTS:
        n = round(getattr(d, name) / scale * width)
        n = min(n, width - used)
        pieces.append((char * n, style))
        used += n
    pieces.append(("░" * (width - used), "$text-muted"))
    return Content.assemble(*pieces)


class MemoryBars(Static):
    DEFAULT_CSS = """
    MemoryBars { border: round $secondary; padding: 0 1; height: auto; }
    """

    estimate: reactive[MemoryEstimate | None] = reactive(None, layout=True)
    refining: reactive[bool] = reactive(False)

    def on_mount(self) -> None:
        self.border_title = "Predicted memory"

    def watch_refining(self, refining: bool) -> None:
        self.border_subtitle = "asking llama.cpp…" if refining else ""

    def render(self) -> Content:
        e = self.estimate
        if e is None:
            return Content("open a model to see what it will take")
        lines = []
        for d in (*e.gpus, e.host):
            verdict = ("fits", "$success") if d.fits else ("does not fit", "bold $error")
            budget = f" / {format_bytes(d.budget)}" if d.budget else ""
            lines.append(Content.assemble(f"{d.name:<5} ", bar(d, 24),
                                          f" {format_bytes(d.total)}{budget} ", verdict))
        draft = any(d.draft for d in (*e.gpus, e.host))
        lines.append(Content.assemble(("█", "$primary"), " weights  ", ("█", "$secondary"), " KV  ",
                                      ("█", "$accent"), " compute  ", ("█", "$warning"), " overhead  ",
                                      *((("▓", "$primary-lighten-2"), " draft  ") if draft else ()),
                                      f" ({e.source})"))
        return Content("\n").join(lines)
