"""Profiles on disk: one TOML file each in the user config dir, written atomically."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from platformdirs import user_config_dir

from tui.files import FileTooLarge, NotARegularFile, read_regular_text, remove_stale_temps, write_atomically
from tui.profiles.schema import Profile, ProfileError, parse_profile, profile_to_toml

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,79}$")
MAX_PROFILE_BYTES = 1 << 20
"""A profile is a few hundred bytes; a file past this is not one."""


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
        """Profiles by name. Hidden files (editor locks such as `.#x.toml`, our own temp files)
        are not profiles; other names vramdeck cannot use are reported by `list()`."""
        return sorted(n for n in self._files() if _NAME.match(n))

    def _files(self) -> list[str]:
        if not self.folder.is_dir():
            return []
        return [p.stem for p in self.folder.glob("*.toml") if not p.name.startswith(".")]

    def load(self, name: str) -> Profile:
        path = self.path(name)
        try:
            text = read_regular_text(path, MAX_PROFILE_BYTES)
        except FileNotFoundError:
            raise ProfileError(str(path), f"no profile named '{name}'") from None
        except (NotARegularFile, FileTooLarge) as exc:
            raise ProfileError(str(path), f"not a profile: {exc}") from None
        except OSError as exc:
            raise ProfileError(str(path), f"cannot be read: {exc.strerror or exc}") from None
        except UnicodeError as exc:
            raise ProfileError(str(path), f"cannot be read: {exc}") from None
        return parse_profile(text, str(path), name)

    def list(self) -> ProfileList:
        """Every profile that loads; the others as errors (one bad file never hides the rest)."""
        out = ProfileList()
        remove_stale_temps(self.folder)
        for name in sorted(set(self._files()) - set(self.names())):
            out.errors.append(ProfileError(str(self.folder / f"{name}.toml"),
                                           "not loaded: a profile's name starts with a letter or "
                                           "digit and uses letters, digits, space, '.', '_', '-'"))
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
        write_atomically(self.path(new), read_regular_text(self.path(name), MAX_PROFILE_BYTES))

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
