"""Values a hub sends, checked before any of them touches the disk or a size sum.

A repo listing is untrusted input: its file names, revision and LFS SHA-256 become paths in the
Hugging Face cache, and its sizes decide how much is read and whether the disk has room. Each check
raises HubValueError naming the field; `inside()` is the last word on every path written.
"""

from __future__ import annotations

import math
import re
import unicodedata
from pathlib import Path, PurePosixPath

SHA256 = re.compile(r"^[0-9a-f]{64}$")
COMMIT = re.compile(r"^[0-9a-f]{40}$")
REVISION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
"""A branch or tag name safe as one path component (no '/', so `refs/pr/1` is not taken)."""
MAX_COMPONENT = 255
"""Bytes in one file name: what ext4, XFS and APFS allow."""
MAX_PATH = 1024
MAX_FILE_BYTES = 1 << 44
"""16 TiB: larger than any model file published; a listing beyond it is not a model repo."""


class HubValueError(ValueError):
    """A value from the hub that vramdeck will not use; the message names the field."""


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def checked_sha256(value: object, field: str) -> str | None:
    """The LFS SHA-256 of a file: 64 lowercase hex characters, or None when the file has none."""
    if value is None:
        return None
    if not isinstance(value, str) or not SHA256.match(value):
        raise HubValueError(f"{field} is not a SHA-256 (64 hex characters): {_show(value)}")
    return value


def checked_revision(value: object, field: str) -> str:
    """A commit (40 hex characters) or a branch or tag name that is one safe path component."""
    if not isinstance(value, str) or not (COMMIT.match(value) or REVISION.match(value)) or ".." in value:
        raise HubValueError(f"{field} is not a commit or a plain branch name: {_show(value)}")
    return value


def checked_repo_path(value: object, field: str) -> str:
    """A file's path inside the repo: relative, '/'-separated, no '.' or '..' parts, no empty
    parts, no control or invisible characters, each part at most 255 bytes."""
    if not isinstance(value, str) or not value:
        raise HubValueError(f"{field} is not a file name: {_show(value)}")
    if len(value.encode("utf-8", "surrogatepass")) > MAX_PATH:
        raise HubValueError(f"{field} is longer than {MAX_PATH} bytes")
    bad = next((c for c in value if unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")
                or c == "\\"), None)
    if bad is not None:
        raise HubValueError(f"{field} holds the character U+{ord(bad):04X}: {_show(value)}")
    parts = value.split("/")
    if value.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise HubValueError(f"{field} is not a relative path inside the repo: {_show(value)}")
    if any(len(p.encode("utf-8")) > MAX_COMPONENT for p in parts):
        raise HubValueError(f"{field} has a name longer than {MAX_COMPONENT} bytes")
    return str(PurePosixPath(value))


def checked_size(value: object, field: str) -> int:
    """A file size in bytes: a whole number from 0 to 16 TiB (a float that is whole is taken)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise HubValueError(f"{field} is not a number of bytes: {_show(value)}")
    if isinstance(value, float):
        if not math.isfinite(value) or value != int(value):
            raise HubValueError(f"{field} is not a whole number of bytes: {_show(value)}")
        value = int(value)
    if not 0 <= value <= MAX_FILE_BYTES:
        raise HubValueError(f"{field} is out of range ({value} bytes)")
    return value


def inside(base: Path, path: Path) -> Path:
    """`path`, when it stays inside `base` once every link and '..' is resolved; else
    HubValueError. The last check before a path built from hub values is written to."""
    root = base.resolve()
    resolved = path.resolve()
    if resolved != root and not resolved.is_relative_to(root):
        raise HubValueError(f"{path} would be outside the cache folder {base}")
    return path
