"""The last few minutes of figures, for sparklines: fixed-size deques, one value per sample."""

from __future__ import annotations

from collections import deque

from tui.monitor.sample import Sample


class History:
    def __init__(self, points: int = 300):
        self.points = points
        self.vram_fraction: dict[int, deque[float]] = {}
        self.gpu_util: dict[int, deque[float]] = {}
        self.cpu: deque[float] = deque(maxlen=points)
        self.tokens_per_s: deque[float] = deque(maxlen=points)

    def _series(self, table: dict[int, deque[float]], index: int) -> deque[float]:
        if index not in table:
            table[index] = deque(maxlen=self.points)
        return table[index]

    def add(self, sample: Sample, tokens_per_s: float) -> None:
        for g in sample.gpus:
            used, total = g.memory_used_bytes, g.memory_total_bytes
            self._series(self.vram_fraction, g.index).append(used / total if used is not None and total else 0.0)
            self._series(self.gpu_util, g.index).append(float(g.util_percent or 0))
        self.cpu.append(sample.host.cpu_percent or 0.0)
        self.tokens_per_s.append(tokens_per_s)
