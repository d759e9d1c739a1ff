"""The configurations tried this session: what was predicted, what was measured, how fast."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tui.engine.settings import LoadSettings


@dataclass(frozen=True)
class Spread:
    """How sure a pp/tg figure is: the standard deviation of its runs and how many there were."""

    pp_stdev: float = 0.0
    tg_stdev: float = 0.0
    runs: int = 1

    @classmethod
    def of(cls, pp: Sequence[float], tg: Sequence[float]) -> "Spread":
        def sd(xs: Sequence[float]) -> float:
            return statistics.stdev(xs) if len(xs) > 1 else 0.0
        return cls(sd(pp), sd(tg), max(len(pp), len(tg), 1))



def speed_text(mean: float, stdev: float, runs: int) -> str:
    """A speed and how sure it is: `29.0 ±1.2 (3)`; one run has no spread, so `29.0 n=1`
    (never `±0.0`, which would claim a certainty one run cannot give)."""
    return f"{mean:,.1f} ±{stdev:.1f} ({runs})" if runs > 1 else f"{mean:,.1f} n=1"


@dataclass(frozen=True)
class TriedConfig:
    settings: LoadSettings
    n_layer: int | None
    predicted_vram: tuple[int, ...]
    """Predicted bytes per GPU when it was applied (empty when nothing was predicted)."""
    measured_vram: tuple[int, ...]
    """What NVML saw the engine use per GPU once it had loaded."""
    load_seconds: float
    pp_tokens_per_s: float | None = None
    tg_tokens_per_s: float | None = None
    gpu_names: tuple[str, ...] = ()
    spread: Spread | None = None
    """How sure the pp/tg figures are (None: not benchmarked)."""
    contended: bool = False
    """Measured while other processes kept the CPU busy: the figures are low."""

    @property
    def model_name(self) -> str:
        return Path(self.settings.model_path).name.removesuffix(".gguf")


SORTS: tuple[tuple[str, str], ...] = (
    ("order", "order tried"),
    ("tg", "generation tok/s, fastest first"),
    ("pp", "prompt tok/s, fastest first"),
    ("vram", "measured VRAM, least first"),
    ("load", "load time, quickest first"),
)


def sort_rows(rows: list[TriedConfig], by: str) -> list[TriedConfig]:
    """Rows with no figure for the key go last."""
    if by == "order":
        return list(rows)
    key = {
        "tg": lambda r: -(r.tg_tokens_per_s or 0),
        "pp": lambda r: -(r.pp_tokens_per_s or 0),
        "vram": lambda r: sum(r.measured_vram) if r.measured_vram else float("inf"),
        "load": lambda r: r.load_seconds,
    }[by]
    return sorted(rows, key=key)
