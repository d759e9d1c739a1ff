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
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

from platformdirs import user_data_dir

from tui.chat.conversation import Conversation, Turn
from tui.engine.protocol import ChatStats


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


def replay(lines: list[str]) -> Conversation:
    """The conversation a file's lines describe."""
    conv = Conversation(title="")
    for raw in lines:
        try:
            e = json.loads(raw)
        except ValueError:
            continue  # a line torn by a kill mid-write
        if not isinstance(e, dict):
            continue
        kind = e.get("t")
        if kind == "meta":
            conv.id = str(e.get("id", conv.id))
            conv.created = float(e.get("created", conv.created))
            conv.system_prompt = str(e.get("system_prompt", conv.system_prompt))
        elif kind == "user":
            conv.add_user(str(e.get("text", "")))
        elif kind == "reply":
            conv.turns.append(Turn("assistant", "", partial=True, note="interrupted"))
        elif kind == "text" and conv.turns and conv.turns[-1].role == "assistant":
            conv.turns[-1].content += str(e.get("text", ""))
        elif kind == "done" and conv.turns and conv.turns[-1].role == "assistant":
            turn = conv.turns[-1]
            turn.stats = _stats(e.get("stats"))
            turn.partial = bool(e.get("partial", False))
            turn.note = str(e.get("note", ""))
        elif kind == "title":
            conv.title = str(e.get("title", ""))
        elif kind == "system":
            conv.system_prompt = str(e.get("system_prompt", ""))
        elif kind == "truncate":
            del conv.turns[int(e.get("turns", len(conv.turns))):]
        elif kind == "drop_oldest":
            conv.drop_oldest_exchange()
    # a reply that was never written to (killed right after it started) is no turn at all
    if conv.turns and conv.turns[-1].role == "assistant" and not conv.turns[-1].content \
            and conv.turns[-1].note == "interrupted":
        conv.turns.pop()
    return conv


class ConversationLog:
    """The open file of one conversation; each call appends one line and flushes it."""

    def __init__(self, path: Path):
        self.path = path
        self._file: IO[str] | None = None

    def append(self, **event) -> None:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (kept open)
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
        if not conv_id or "/" in conv_id or conv_id.startswith("."):
            raise ValueError(f"bad conversation id {conv_id!r}")
        return self.folder / f"{conv_id}.jsonl"

    def start(self, conv: Conversation) -> ConversationLog:
        """A log for `conv`; its first line (meta) is written with the first message."""
        return ConversationLog(self.path(conv.id))

    def load(self, conv_id: str) -> Conversation:
        text = self.path(conv_id).read_text(encoding="utf-8", errors="replace")
        conv = replay(text.splitlines())
        conv.id = conv_id
        return conv

    def list(self) -> list[ConversationSummary]:
        """Newest first."""
        out = []
        if not self.folder.is_dir():
            return out
        for p in self.folder.glob("*.jsonl"):
            try:
                conv = self.load(p.stem)
                modified = p.stat().st_mtime
            except OSError:
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


def stats_dict(stats: ChatStats | None) -> dict | None:
    return asdict(stats) if stats else None
