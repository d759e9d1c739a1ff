"""The host: CPU load, RAM, swap, and the engine's resident memory."""

from __future__ import annotations

from textual.content import Content
from textual.reactive import reactive
from textual.widgets import Static

from tui.monitor.sample import HostSample
from tui.units import format_bytes
from tui.widgets.meter import meter


def _frac(used: int | None, total: int | None) -> float | None:
    return used / total if used is not None and total else None


class HostCard(Static):
    DEFAULT_CSS = """
    HostCard { border: round $secondary; padding: 0 1; height: auto; }
    """

    host: reactive[HostSample | None] = reactive(None)

    def on_mount(self) -> None:
        self.border_title = "Host"

    def render(self) -> Content:
        h = self.host
        if h is None:
            return Content("reading…")
        cpu = h.cpu_percent / 100 if h.cpu_percent is not None else None
        cores = " ".join(f"{p:3.0f}" for p in h.per_cpu_percent[:16])
        return Content("\n").join([
            Content.assemble("CPU  ", meter(cpu), f"  {len(h.per_cpu_percent)} cores: {cores}"),
            Content.assemble("RAM  ", meter(_frac(h.ram_used_bytes, h.ram_total_bytes)),
                             f"  {format_bytes(h.ram_used_bytes)} / {format_bytes(h.ram_total_bytes)}"),
            Content.assemble("swap ", meter(_frac(h.swap_used_bytes, h.swap_total_bytes)),
                             f"  {format_bytes(h.swap_used_bytes)} / {format_bytes(h.swap_total_bytes)}"),
            Content(f"engine RSS {format_bytes(h.engine_rss_bytes)}" + (
                f"  CPU: engine {h.engine_cpu_cores:.1f}, other processes {h.other_cpu_cores:.1f} cores"
                if h.engine_cpu_cores is not None and h.other_cpu_cores is not None else "")),
        ])
