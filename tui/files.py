"""The files vramdeck reads and writes for the user: private, atomic, never through a FIFO.

Everything written holds the user's data (chats, profiles, model paths), so files are 0600 and
folders 0700. A save is atomic (temp file, fsync, rename), so a reader sees the old file or the
new one, never a part. Reads go through `read_regular_text`, which refuses a FIFO or a device
(an open on a FIFO would block the app forever) and a file larger than the caller expects.
Under `vramdeck web` (VRAMDECK_WEB=1) the app writes files the user names only inside the
exports folder: a browser tab must not be able to write ~/.bashrc.
"""

from __future__ import annotations

import os
import stat
import tempfile
import time
from pathlib import Path

from platformdirs import user_data_dir

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700
WEB_MODE_ENV = "VRAMDECK_WEB"


class NotARegularFile(OSError):
    """A FIFO, socket or device where a file was expected."""


class FileTooLarge(OSError):
    """Larger than anything vramdeck writes there."""


class OutsideExports(PermissionError):
    """Under `vramdeck web`, a path outside the exports folder."""


def private_dir(path: Path) -> Path:
    """`path` as a folder, created 0700 (with its parents) if it was missing."""
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    return path


def read_regular_text(path: Path, limit: int = 64 << 20) -> str:
    """The text of a regular file of at most `limit` bytes (NotARegularFile, FileTooLarge)."""
    return read_regular_bytes(path, limit).decode("utf-8", errors="replace")


def read_regular_bytes(path: Path, limit: int = 64 << 20) -> bytes:
    """The bytes of a regular file of at most `limit` bytes (NotARegularFile, FileTooLarge)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with open(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotARegularFile(f"{path} is not a regular file")
        if st.st_size > limit:
            raise FileTooLarge(f"{path} is {st.st_size:,} bytes (at most {limit:,} expected)")
        data = f.read(min(st.st_size, limit) + 1)  # read(limit + 1) would allocate all of limit
    if len(data) > limit:
        raise FileTooLarge(f"{path} grew past {limit:,} bytes while being read")
    return data


def write_atomically(path: Path, text: str | bytes, mode: int = PRIVATE_FILE) -> None:
    """Readers see the old file or the new one, never a part: temp file, fsync, rename, fsync dir.
    A symlink at `path` is replaced, not followed."""
    private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            f.write(text.encode("utf-8") if isinstance(text, str) else text)
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


def create_new(path: Path, text: str) -> None:
    """Write a file that must not exist yet (FileExistsError if anything, a symlink too, is there)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, PRIVATE_FILE)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def remove_stale_temps(folder: Path, older_than_s: float = 3600.0) -> int:
    """Remove temp files (`.NAME.XXXX.tmp`) that a save killed mid-write left behind; a save
    under way is younger than `older_than_s`. Returns how many were removed."""
    removed = 0
    cutoff = time.time() - older_than_s
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for entry in entries:
        if entry.name.startswith(".") and entry.name.endswith(".tmp"):
            try:
                if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)
                    removed += 1
            except OSError:
                continue
    return removed


def exports_dir() -> Path:
    return Path(user_data_dir("vramdeck")) / "exports"


def web_mode() -> bool:
    return os.environ.get(WEB_MODE_ENV) == "1"


def check_write_target(path: Path) -> Path:
    """The path to write a user-named file to. Under `vramdeck web` only the exports folder is
    allowed (OutsideExports otherwise); relative paths are taken inside it there."""
    if not web_mode():
        return path
    folder = private_dir(exports_dir()).resolve()
    target = (folder / path if not path.is_absolute() else path)
    resolved = target.parent.resolve() / target.name
    if resolved.parent != folder and folder not in resolved.parent.parents:
        raise OutsideExports(f"under vramdeck web, files are written only inside {folder}")
    return resolved
