"""Find every GGUF model on this machine: model folders, Hugging Face, LM Studio, llama.cpp, Ollama.

A scan never raises for what it finds: unreadable, truncated or non-GGUF files are listed with
the reason, folders it may not enter are noted and skipped, symlink loops are walked once.
Split models (`name-00001-of-00003.gguf`) are one entry. Parsed headers are cached by path, size
and modification time, so a rescan of unchanged files reads no file.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tui.files import read_regular_text, write_atomically
from tui.models.gguf_info import GgufError, check_model_file
from tui.models.model_info import ModelInfo, model_info_from_headers, split_parts

SPLIT = re.compile(r"^(?P<stem>.+)-(?P<part>\d{5})-of-(?P<count>\d{5})\.gguf$", re.IGNORECASE)
OLLAMA_MODEL_LAYER = "application/vnd.ollama.image.model"


@dataclass(frozen=True)
class Location:
    """A place to look, and what kind of store it is."""

    path: Path
    source: str  # "folder", "huggingface", "lmstudio", "llama.cpp", "ollama"


@dataclass(frozen=True)
class DiscoveredModel:
    path: str
    """The file to load (the first part of a split model, the blob of an Ollama model)."""
    name: str
    source: str
    parts: tuple[str, ...]
    size_bytes: int
    info: ModelInfo | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.info is not None


@dataclass
class ScanResult:
    models: list[DiscoveredModel] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    """Folders that could not be read, with the reason."""
    parsed: int = 0
    """Headers actually read this scan (the rest came from the cache)."""


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache, as huggingface_hub finds it (HF_HUB_CACHE, HF_HOME), read at
    call time: where discovery looks and where `pull` writes."""
    env = os.environ
    hf_home = Path(env.get("HF_HOME", Path.home() / ".cache" / "huggingface"))
    return Path(env.get("HF_HUB_CACHE", env.get("HUGGINGFACE_HUB_CACHE", hf_home / "hub")))


def default_locations(model_dirs: Sequence[str | Path] | None = None) -> list[Location]:
    home = Path.home()
    env = os.environ
    hf = hf_cache_dir()
    locations = [Location(Path(p).expanduser(), "folder") for p in (model_dirs or [home / "models"])]
    locations += [
        Location(hf, "huggingface"),
        Location(home / ".lmstudio" / "models", "lmstudio"),
        Location(home / ".cache" / "lm-studio" / "models", "lmstudio"),
        Location(Path(env.get("LLAMA_CACHE", home / ".cache" / "llama.cpp")), "llama.cpp"),
        Location(Path(env.get("OLLAMA_MODELS", home / ".ollama" / "models")), "ollama"),
    ]
    return locations


MAX_CACHE_BYTES = 64 << 20
MAX_MANIFEST_BYTES = 1 << 20


class HeaderCache:
    """ModelInfo (or the error) per file, keyed by path, size and mtime; optionally on disk.
    A cache file that is damaged, of another shape, or not a file at all is ignored (rebuilt)."""

    def __init__(self, path: Path | None = None):
        self.path = path
        self._entries: dict[str, dict] = {}
        if path is not None:
            try:
                data = json.loads(read_regular_text(path, MAX_CACHE_BYTES))
            except (OSError, ValueError, RecursionError):
                data = {}
            if isinstance(data, dict):
                self._entries = {k: v for k, v in data.items() if isinstance(v, dict)}
        self.dirty = False

    @staticmethod
    def _stamp(paths: tuple[str, ...]) -> list:
        stamp = []
        for p in paths:
            st = os.stat(p)
            stamp.append([p, st.st_size, st.st_mtime_ns])
        return stamp

    def get(self, parts: tuple[str, ...]) -> dict | None:
        """The entry for these files if they are unchanged and it is whole, else None."""
        entry = self._entries.get(parts[0])
        if not entry:
            return None
        try:
            if entry.get("stamp") != self._stamp(parts):
                return None
            info = entry.get("info")
            error = entry.get("error")
            if not (error is None or isinstance(error, str)):
                return None
            return {**entry, "info": ModelInfo.from_dict(info) if isinstance(info, dict) else None}
        except (OSError, TypeError, ValueError, AttributeError):
            return None  # changed, or a cache entry of another shape: read the file again

    def put(self, parts: tuple[str, ...], info: ModelInfo | None, error: str | None) -> dict:
        try:
            stamp = self._stamp(parts)
        except OSError:
            stamp = []
        self._entries[parts[0]] = {"stamp": stamp, "info": info.to_dict() if info else None,
                                   "error": error}
        self.dirty = True
        return {"stamp": stamp, "info": info, "error": error}

    def save(self) -> None:
        """Written atomically under a unique temp name: two scans at once each write a whole file."""
        if self.path is None or not self.dirty:
            return
        try:
            write_atomically(self.path, json.dumps(self._entries))
        except OSError:
            return  # a cache: the next scan reads the headers again
        self.dirty = False


def _walk(root: Path, skipped: list[str]):
    """Every *.gguf under root, following symlinks but never a folder twice (loops end)."""
    seen: set[tuple[int, int]] = set()
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            st = folder.stat()
        except OSError as exc:
            skipped.append(f"{folder}: {exc.strerror or exc}")
            continue
        key = (st.st_dev, st.st_ino)
        if key in seen:
            continue
        seen.add(key)
        try:
            entries = list(os.scandir(folder))
        except OSError as exc:
            skipped.append(f"{folder}: {exc.strerror or exc}")
            continue
        for entry in sorted(entries, key=lambda e: e.name):
            try:
                if entry.is_dir(follow_symlinks=True):
                    stack.append(Path(entry.path))
                elif entry.name.lower().endswith(".gguf") and entry.is_file(follow_symlinks=True):
                    yield Path(entry.path)
            except OSError:
                continue


def _group_splits(files: list[Path]) -> list[tuple[Path, ...]]:
    groups: dict[tuple[Path, str], list[Path]] = {}
    singles = []
    for f in files:
        m = SPLIT.match(f.name)
        if m:
            groups.setdefault((f.parent, m.group("stem")), []).append(f)
        else:
            singles.append((f,))
    out = singles + [tuple(sorted(parts)) for parts in groups.values()]
    return sorted(out, key=lambda parts: str(parts[0]))


def _display_name(parts: tuple[Path, ...], location: Location) -> str:
    first = parts[0]
    name = SPLIT.sub(r"\g<stem>.gguf", first.name) if len(parts) > 1 else first.name
    if location.source == "huggingface":
        repo = next((p for p in first.parts if p.startswith("models--")), None)
        if repo:
            return repo.removeprefix("models--").replace("--", "/") + ":" + name
    if location.source == "lmstudio":
        try:
            return str(first.relative_to(location.path).parent / name)
        except ValueError:
            return name
    return name


def _ollama_models(root: Path, skipped: list[str]) -> list[tuple[str, tuple[Path, ...]]]:
    """(name like 'llama3.1:70b', (blob path,)) for each Ollama manifest with a model layer."""
    manifests = root / "manifests"
    out = []
    if not manifests.is_dir():
        return out
    for dirpath, _dirs, files in os.walk(manifests, onerror=lambda e: skipped.append(f"{e.filename}: {e.strerror}")):
        for tag in files:
            manifest = Path(dirpath) / tag
            try:
                data = json.loads(read_regular_text(manifest, MAX_MANIFEST_BYTES))
                layer = next(layer for layer in data.get("layers", [])
                             if layer.get("mediaType") == OLLAMA_MODEL_LAYER)
                digest = layer.get("digest", "")
                if not isinstance(digest, str) or "/" in digest or digest.startswith("."):
                    continue  # a blob name that would leave the blobs folder
            except (OSError, ValueError, StopIteration, AttributeError, TypeError, RecursionError):
                continue
            rel = manifest.relative_to(manifests).parts  # host / namespace / model / tag
            model = rel[-2] if len(rel) >= 2 else "?"
            namespace = rel[-3] if len(rel) >= 3 else "library"
            name = f"{model}:{tag}" if namespace == "library" else f"{namespace}/{model}:{tag}"
            blob = root / "blobs" / digest.replace(":", "-")
            out.append((name, (blob,)))
    return sorted(out)


def _describe(parts: tuple[Path, ...], name: str, source: str, cache: HeaderCache,
              result: ScanResult) -> DiscoveredModel:
    keys = tuple(str(p) for p in parts)
    size = 0
    for p in parts:
        try:
            size += p.stat().st_size
        except OSError:
            pass
    entry = cache.get(keys)
    if entry is None:
        result.parsed += 1
        info, error = None, None
        try:
            info = model_info_from_headers([check_model_file(p) for p in parts])
        except GgufError as exc:
            error = str(exc)
        except OSError as exc:
            error = f"cannot read: {exc.strerror or exc}"
        entry = cache.put(keys, info, error)
    info = entry["info"]
    if len(parts) > 1 and info is not None:
        m = SPLIT.match(parts[0].name)
        expected = int(m.group("count")) if m else len(parts)
        if expected != len(parts):
            entry = {**entry, "error": f"split model has {len(parts)} of {expected} parts"}
    return DiscoveredModel(path=keys[0], name=name, source=source, parts=keys, size_bytes=size,
                           info=info, error=entry.get("error"))


def scan(locations: list[Location], cache: HeaderCache | None = None,
         known: Sequence[tuple[str | Path, str]] = ()) -> ScanResult:
    """Every model in `locations`, then each `known` (path, source) file not found there: the
    model loaded now, the built-in demo model, so a new user's list is never empty while a
    model is running."""
    cache = cache or HeaderCache()
    result = ScanResult()
    seen_files: set[str] = set()
    locations = list(locations) + [Location(Path(p), source) for p, source in known]
    for location in locations:
        if not location.path.exists():
            continue
        if location.source == "ollama":
            found = [(name, parts) for name, parts in _ollama_models(location.path, result.skipped)]
        elif location.path.is_file():  # a known file, not a folder
            found = [(location.path.name, tuple(split_parts(location.path)))]
        else:
            found = [(_display_name(parts, location), parts)
                     for parts in _group_splits(list(_walk(location.path, result.skipped)))]
        for name, parts in found:
            real = os.path.realpath(parts[0])
            if real in seen_files:  # the same file through two locations (HF blobs, symlinks)
                continue
            seen_files.add(real)
            result.models.append(_describe(parts, name, location.source, cache, result))
    cache.save()
    return result
