"""Which file is the reference: the highest-precision file of the same model on disk, or the
one the user names."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from platformdirs import user_cache_dir

from tui.models.discovery import HeaderCache, Location, scan
from tui.models.gguf_info import GgufError
from tui.models.model_info import ModelInfo, load_model_info


def same_model(a: ModelInfo, b: ModelInfo) -> bool:
    return (a.architecture, a.n_layer, a.n_embd, a.name) == (b.architecture, b.n_layer, b.n_embd, b.name)


def _read(path: Path) -> ModelInfo | None:
    try:
        return load_model_info(str(path))
    except (GgufError, OSError, ValueError):
        return None


def pick_reference(candidates: Sequence[str | Path], locations: list[Location] | None = None) -> Path | None:
    """The file with the most bits per weight among `candidates`, the GGUF files beside them and
    the files of the same model found in `locations` (not searched when None). None when no
    candidate can be read. Headers come from the header cache the model list keeps."""
    infos: dict[Path, ModelInfo] = {}
    for path in candidates:
        info = _read(Path(path))
        if info is not None:
            infos[Path(path).resolve()] = info
    if not infos:
        return None
    first = next(iter(infos.values()))
    beside = sorted({p for c in list(infos) for p in c.parent.glob("*.gguf")} - set(infos))
    where = [Location(p, "folder") for p in beside] + list(locations or [])
    cache = HeaderCache(Path(user_cache_dir("vramdeck")) / "gguf_headers.json")
    for m in scan(where, cache).models:
        if m.ok and m.info is not None and same_model(m.info, first):
            infos.setdefault(Path(m.path).resolve(), m.info)
    return max(infos, key=lambda p: (infos[p].bits_per_weight, -len(str(p))))
