"""Profiles on disk: one TOML file each in the user config dir, written atomically."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from platformdirs import user_config_dir

from tui.profiles.schema import Profile, ProfileError, parse_profile, profile_to_toml

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,79}$")


def fingerprint(path: str | Path, chunk: int = 1 << 20) -> str:
    """A quick identity for a model file: size plus a hash of its first and last MiB."""
    p = Path(path)
    size = p.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with open(p, "rb") as f:
        h.update(f.read(chunk))
        if size > chunk:
            f.seek(max(chunk, size - chunk))
            h.update(f.read(chunk))
    return h.hexdigest()[:24]


def write_atomically(path: Path, text: str) -> None:
    """Readers see the old file or the new one, never a part: temp file, fsync, rename, fsync dir."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


@dataclass
class ProfileList:
    profiles: list[Profile] = field(default_factory=list)
    errors: list[ProfileError] = field(default_factory=list)


class ProfileExists(Exception):
    pass


class ProfileStore:
    def __init__(self, folder: Path | None = None):
        self.folder = folder or Path(user_config_dir("vramdeck")) / "profiles"

    def path(self, name: str) -> Path:
        if not _NAME.match(name):
            raise ValueError(f"profile names use letters, digits, space, '.', '_' and '-' "
                             f"(up to 80), not {name!r}")
        return self.folder / f"{name}.toml"

    def names(self) -> list[str]:
        return sorted(p.stem for p in self.folder.glob("*.toml")) if self.folder.is_dir() else []

    def load(self, name: str) -> Profile:
        path = self.path(name)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ProfileError(str(path), f"no profile named '{name}'") from None
        except (OSError, UnicodeError) as exc:
            raise ProfileError(str(path), f"cannot be read: {exc}") from None
        return parse_profile(text, str(path), name)

    def list(self) -> ProfileList:
        """Every profile that loads; the others as errors (one bad file never hides the rest)."""
        out = ProfileList()
        for name in self.names():
            try:
                out.profiles.append(self.load(name))
            except ProfileError as exc:
                out.errors.append(exc)
        return out

    def save(self, profile: Profile, overwrite: bool = False) -> Path:
        path = self.path(profile.name)
        if path.exists() and not overwrite:
            raise ProfileExists(f"a profile named '{profile.name}' exists")
        model = Path(profile.load.model_path)
        if model.is_file() and not profile.model_fingerprint:
            profile.model_size_bytes = model.stat().st_size
            profile.model_fingerprint = fingerprint(model)
        write_atomically(path, profile_to_toml(profile))
        return path

    def rename(self, old: str, new: str) -> None:
        src, dst = self.path(old), self.path(new)
        if dst.exists():
            raise ProfileExists(f"a profile named '{new}' exists")
        os.replace(src, dst)

    def duplicate(self, name: str, new: str) -> None:
        if self.path(new).exists():
            raise ProfileExists(f"a profile named '{new}' exists")
        write_atomically(self.path(new), self.path(name).read_text(encoding="utf-8"))

    def delete(self, name: str) -> None:
        self.path(name).unlink()


def diff(a: Profile, b: Profile) -> list[tuple[str, object, object]]:
    """(setting, value in a, value in b) for every setting that differs."""
    rows = []
    for section, x, y in (("load", a.load.to_dict(), b.load.to_dict()),
                          ("sampling", a.sampling.to_dict(), b.sampling.to_dict())):
        for key in x:
            if x[key] != y.get(key):
                rows.append((f"{section}.{key}", x[key], y.get(key)))
    for key in ("system_prompt", "notes"):
        if getattr(a, key) != getattr(b, key):
            rows.append((key, getattr(a, key), getattr(b, key)))
    return rows
