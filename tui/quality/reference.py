"""Which file is the reference: the highest-precision file of the same model on disk, or the
one the user names."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tui.models.discovery import Location, scan
from tui.models.gguf_info import GgufError
from tui.models.model_info import ModelInfo, load_model_info


def same_model(a: ModelInfo, b: ModelInfo) -> bool:
    return (a.architecture, a.n_layer, a.n_embd, a.name) == (b.architecture, b.n_layer, b.n_embd, b.name)


def pick_reference(candidates: Sequence[str | Path], locations: list[Location] | None = None) -> Path | None:
    """The file with the most bits per weight among `candidates` and the files of the same model
    found in `locations` (none searched when None). None when there are no candidates."""
    infos: dict[Path, ModelInfo] = {}
    for path in candidates:
        try:
            infos[Path(path)] = load_model_info(str(path))
        except (GgufError, OSError):
            continue
    if not infos:
        return None
    if locations:
        first = next(iter(infos.values()))
        for m in scan(locations).models:
            if m.ok and m.info is not None and same_model(m.info, first):
                infos.setdefault(Path(m.path), m.info)
    return max(infos, key=lambda p: (infos[p].bits_per_weight, -len(str(p))))
