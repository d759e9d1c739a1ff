"""The configurations tried this session: what was predicted, what was measured, how fast."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tui.engine.settings import LoadSettings


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
