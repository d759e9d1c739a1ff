"""One GPU as figures: memory bar, load, heat, power, clocks, link, and who holds its memory."""

from __future__ import annotations

from textual.content import Content
from textual.reactive import reactive
from textual.widgets import Static

from tui.monitor.sample import GpuSample
from tui.units import format_bytes, na
from tui.widgets.meter import meter


class GpuCard(Static):
    DEFAULT_CSS = """
    GpuCard { border: round $primary; padding: 0 1; height: auto; }
    """

    gpu: reactive[GpuSample | None] = reactive(None)

    def watch_gpu(self, gpu: GpuSample | None) -> None:
        self.border_title = f"GPU {gpu.index}: {gpu.name}" if gpu else "GPU"

    def render(self) -> Content:
        g = self.gpu
        if g is None:
            return Content("")
        used, total = g.memory_used_bytes, g.memory_total_bytes
        frac = used / total if used is not None and total else None
        lines = [
            Content.assemble("VRAM ", meter(frac), f"  {format_bytes(used)} / {format_bytes(total)}"),
            Content.assemble("util ", meter(g.util_percent / 100 if g.util_percent is not None else None),
                             f"  mem-ctl {na(g.memory_util_percent, '{}%')}"),
            Content(f"temp {na(g.temperature_c, '{}°C')}  ·  power {na(g.power_w, '{:.0f}')}"
                    f"/{na(g.power_limit_w, '{:.0f} W')}  ·  fan {na(g.fan_percent, '{}%')}"),
            Content(f"SM {na(g.sm_clock_mhz, '{} MHz')} mem {na(g.memory_clock_mhz, '{} MHz')}"
                    f" · PCIe {na(g.pcie_gen)}x{na(g.pcie_width)} "
                    f"rx {na(g.pcie_rx_kib_s, '{}')} tx {na(g.pcie_tx_kib_s, '{} KiB/s')}"),
        ]
        for p in g.processes[:6]:
            name = ("▶ vramdeck engine", "bold $accent") if p.is_engine else (p.name[:22], "")
            lines.append(Content.assemble(f"{p.pid:>8}  ", (f"{name[0]:<22}", name[1]),
                                          f" {format_bytes(p.used_bytes):>10}"))
        if not g.processes:
            lines.append(Content.assemble(("  no processes listed", "$text-muted")))
        return Content("\n").join(lines)
