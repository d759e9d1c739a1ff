"""Where each block lives: one cell per layer (the output layer last), GPU n or CPU, with the
bytes on each side and the generation speed the bandwidth model predicts."""

from __future__ import annotations

from textual.content import Content
from textual.reactive import reactive
from textual.widgets import Static

from tui.units import format_bytes

GPU_STYLES = ("$primary", "$secondary", "$accent", "$success")


class LayerMap(Static):
    DEFAULT_CSS = """
    LayerMap { border: round $panel; border-title-color: $text-muted; padding: 0 1; height: auto; }
    """

    devices: reactive[tuple[int | None, ...]] = reactive((), layout=True)
    """The device of each layer 0..n_layer (n_layer is the output layer); None for the CPU."""
    experts_on_cpu: reactive[int] = reactive(0)
    """MoE: the first N blocks keep their experts in host memory (drawn ▒ in their GPU's colour)."""
    side_bytes: reactive[tuple[int, int]] = reactive((0, 0))
    """(GPU bytes, CPU bytes) read per token."""
    predicted: reactive[float | None] = reactive(None)
    measured: reactive[float | None] = reactive(None)
    calibration: reactive[str] = reactive("")
    speculative: reactive[str] = reactive("", layout=True)
    """With a draft: the two options' predicted speeds, in words."""

    def on_mount(self) -> None:
        self.border_title = "Layer map"

    def render(self) -> Content:
        if not self.devices:
            return Content("no model")
        n_blocks = len(self.devices) - 1
        cells = []
        for il, d in enumerate(self.devices):
            if d is None:
                cells.append(("░", "$text-muted"))
            else:
                split = il < min(self.experts_on_cpu, n_blocks)
                cells.append(("▒" if split else "█", GPU_STYLES[d % len(GPU_STYLES)]))
        gpus = sorted({d for d in self.devices if d is not None})
        counts = [f"GPU{g} {sum(1 for d in self.devices if d == g)}" for g in gpus]
        cpu = sum(1 for d in self.devices if d is None)
        legend = [("░", "$text-muted"), f" CPU {cpu}  "]
        for g, text in zip(gpus, counts, strict=True):
            legend += [("█", GPU_STYLES[g % len(GPU_STYLES)]), f" {text}  "]
        split = sum(1 for il, d in enumerate(self.devices[:-1])
                    if d is not None and il < self.experts_on_cpu)
        if split:
            legend += ["▒", f" experts on CPU {split}  "]
        gpu_b, cpu_b = self.side_bytes
        legend.append(f"read per token: GPU {format_bytes(gpu_b)}, CPU {format_bytes(cpu_b)}")
        speed = []
        if self.predicted:
            speed.append(f"predicted tg ≈ {self.predicted:,.1f} tok/s ({self.calibration})")
        if self.measured:
            speed.append(f"measured {self.measured:,.1f} tok/s")
        lines = [Content.assemble(*cells), Content.assemble(*legend)]
        if speed:
            lines.append(Content("  ·  ".join(speed)))
        if self.speculative:
            lines.append(Content(self.speculative))
        return Content("\n").join(lines)
