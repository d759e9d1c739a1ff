"""Conversations on disk: one append-only JSON-lines file each, in the user data dir.

Every event is a line, written and flushed as it happens (a reply's text as it streams), so a
kill of the app or the engine loses nothing: a reply without its closing line comes back marked
as interrupted. Lines that cannot be parsed (a torn last line) are skipped, never fatal.

    {"t": "meta", "id": ..., "created": ..., "system_prompt": ...}
    {"t": "user", "text": ...}
    {"t": "reply"}                      a reply starts
    {"t": "text", "text": ...}          a piece of it
    {"t": "done", "stats": {...}, "partial": false, "note": ""}
    {"t": "title", "title": ...}        renamed
    {"t": "system", "system_prompt": ...}
    {"t": "truncate", "turns": N}       keep the first N turns (regenerate, edit, drop oldest)
    {"t": "drop_oldest"}                the oldest exchange was dropped to fit the context
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

from platformdirs import user_data_dir

from tui.chat.conversation import Conversation, Turn
from tui.engine.protocol import ChatStats
from tui.files import PRIVATE_FILE, NotARegularFile, private_dir, read_regular_text


@dataclass(frozen=True)
class ConversationSummary:
    id: str
    title: str
    created: float
    modified: float
    turns: int
    path: Path


def _stats(data: dict | None) -> ChatStats | None:
    if not isinstance(data, dict):
        return None
    known = {k: v for k, v in data.items() if k in ChatStats.__dataclass_fields__}
    try:
        return ChatStats(**known)
    except TypeError:
        return None


MAX_CONVERSATION_BYTES = 256 << 20
_TEXT_EVENT = '{"t": "text"'
"""How a reply's piece starts on disk (json.dumps' own spacing): the bulk of a file's lines."""


def _number(value: object, default: float) -> float:
    """A finite number from a line, else `default` (a 'created' of "yesterday" or 1e999)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return default
    return float(value)


def replay(lines: list[str], summary: bool = False) -> Conversation:
    """The conversation a file's lines describe. Lines that cannot be read are skipped and
    counted in `skipped_lines`. With `summary`, reply text is not decoded (for the list: turns,
    title and dates only), so listing a folder of long chats stays fast."""
    conv = Conversation(title="")
    pieces: list[str] = []  # the open reply's text, joined once: += per piece is quadratic

    def close_reply() -> None:
        if pieces and conv.turns and conv.turns[-1].role == "assistant":
            conv.turns[-1].content += "".join(pieces)
        pieces.clear()

    skipped = 0
    for raw in lines:
        if summary and raw.startswith(_TEXT_EVENT):
            if conv.turns and conv.turns[-1].role == "assistant" and not pieces:
                pieces.append("…")
            continue
        try:
            e = json.loads(raw)
        except (ValueError, RecursionError):
            skipped += bool(raw.strip())  # a line torn by a kill mid-write, or damage
            continue
        if not isinstance(e, dict):
            skipped += 1
            continue
        kind = e.get("t")
        if kind == "text":
            if conv.turns and conv.turns[-1].role == "assistant":
                pieces.append(str(e.get("text", "")))
            continue
        close_reply()
        if kind == "meta":
            conv.id = str(e.get("id", conv.id))
            conv.created = _number(e.get("created"), conv.created)
            conv.system_prompt = str(e.get("system_prompt", conv.system_prompt))
        elif kind == "user":
            conv.add_user(str(e.get("text", "")))
        elif kind == "reply":
            conv.turns.append(Turn("assistant", "", partial=True, note="interrupted"))
        elif kind == "done" and conv.turns and conv.turns[-1].role == "assistant":
            turn = conv.turns[-1]
            turn.stats = _stats(e.get("stats"))
            turn.partial = e.get("partial") is True
            turn.note = str(e.get("note", ""))
        elif kind == "title":
            conv.title = str(e.get("title", ""))
        elif kind == "system":
            conv.system_prompt = str(e.get("system_prompt", ""))
        elif kind == "truncate":
            keep = e.get("turns")
            if isinstance(keep, bool) or not isinstance(keep, int) or keep < 0:
                skipped += 1
                continue
            del conv.turns[keep:]
        elif kind == "drop_oldest":
            conv.drop_oldest_exchange()
    close_reply()
    # a reply that was never written to (killed right after it started) is no turn at all
    if conv.turns and conv.turns[-1].role == "assistant" and not conv.turns[-1].content \
            and conv.turns[-1].note == "interrupted":
        conv.turns.pop()
    conv.skipped_lines = skipped
    return conv


class ConversationLog:
    """The open file of one conversation; each call appends one line and flushes it.

    The file is opened once, 0600, never through a symlink or a FIFO. If its last line was torn
    (the app or the machine died mid-write), a line break goes first, so the next event starts a
    line of its own instead of being glued onto the torn one and lost with it."""

    def __init__(self, path: Path):
        self.path = path
        self._file: IO[str] | None = None

    def _open(self) -> IO[str]:
        private_dir(self.path.parent)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW
                     | os.O_NONBLOCK, PRIVATE_FILE)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise NotARegularFile(f"{self.path} is not a regular file")
            if st.st_size and os.pread(fd, 1, st.st_size - 1) != b"\n":
                os.write(fd, b"\n")
        except BaseException:
            os.close(fd)
            raise
        return os.fdopen(fd, "a", encoding="utf-8")

    def append(self, **event) -> None:
        if self._file is None:
            self._file = self._open()
        self._file.write(json.dumps(event, ensure_ascii=False) + "\n")
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class ConversationStore:
    def __init__(self, folder: Path | None = None):
        self.folder = folder or Path(user_data_dir("vramdeck")) / "conversations"

    def path(self, conv_id: str) -> Path:
        if not _ID.match(conv_id or ""):
            raise ValueError(f"bad conversation id {conv_id!r}")
        return self.folder / f"{conv_id}.jsonl"

    def start(self, conv: Conversation) -> ConversationLog:
        """A log for `conv`; its first line (meta) is written with the first message."""
        return ConversationLog(self.path(conv.id))

    def load(self, conv_id: str, summary: bool = False) -> Conversation:
        """Raises OSError (a FIFO, too large, unreadable) or ValueError (a bad id)."""
        text = read_regular_text(self.path(conv_id), MAX_CONVERSATION_BYTES)
        conv = replay(text.splitlines(), summary=summary)
        conv.id = conv_id
        return conv

    def list(self) -> list[ConversationSummary]:
        """Newest first. Hidden files, names that are no conversation id and files that cannot
        be read are left out."""
        out = []
        if not self.folder.is_dir():
            return out
        for p in self.folder.glob("*.jsonl"):
            if not _ID.match(p.stem):
                continue
            try:
                conv = self.load(p.stem, summary=True)
                modified = p.stat().st_mtime
            except (OSError, ValueError):
                continue
            out.append(ConversationSummary(conv.id, conv.title or "(untitled)", conv.created,
                                           modified, len(conv.turns), p))
        return sorted(out, key=lambda c: c.modified, reverse=True)

    def rename(self, conv_id: str, title: str) -> None:
        log = ConversationLog(self.path(conv_id))
        log.append(t="title", title=title)
        log.close()

    def delete(self, conv_id: str) -> None:
        os.unlink(self.path(conv_id))


_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
"""What new_id() makes (and a little more): no dots, slashes or control characters."""


def stats_dict(stats: ChatStats | None) -> dict | None:
    return asdict(stats) if stats else None
