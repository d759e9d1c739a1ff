"""A conversation: system prompt, turns, and each reply's figures."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

from tui.chat.think import split_think
from tui.engine.protocol import ChatStats

DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."


@dataclass
class Turn:
    role: str  # "user" or "assistant"
    content: str
    stats: ChatStats | None = None
    partial: bool = False
    """True for a reply that was stopped, or cut off by a crash, before it finished."""
    note: str = ""
    """Why a reply is partial, in words ("stopped", "the engine crashed", "interrupted")."""


def new_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]


@dataclass
class Conversation:
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    turns: list[Turn] = field(default_factory=list)
    id: str = field(default_factory=new_id)
    title: str = ""
    created: float = field(default_factory=time.time)
    skipped_lines: int = 0
    """Lines of its file that could not be read when it was opened (the user is told)."""

    def messages(self) -> list[dict[str, str]]:
        """What the engine is sent: the system prompt, then every turn with content."""
        out = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        for t in self.turns:
            # a reasoning model's <think> part is not sent back: only its answers are
            content = split_think(t.content)[1] if t.role == "assistant" else t.content
            if content:
                out.append({"role": t.role, "content": content})
        return out

    def add_user(self, text: str) -> Turn:
        turn = Turn("user", text)
        self.turns.append(turn)
        if not self.title:
            self.title = " ".join(text.split())[:60]
        return turn

    def add_reply(self) -> Turn:
        turn = Turn("assistant", "", partial=True)
        self.turns.append(turn)
        return turn

    def drop_oldest_exchange(self) -> bool:
        """Forget the oldest user turn and the replies after it (not the last user turn)."""
        users = [i for i, t in enumerate(self.turns) if t.role == "user"]
        if len(users) < 2:
            return False
        del self.turns[:users[1]]
        return True


def recent_user_text(conversation: "Conversation", n: int = 3) -> str:
    """The user's last `n` messages, joined ("" when there are none)."""
    return "\n\n".join([t.content for t in conversation.turns if t.role == "user" and t.content][-n:])
