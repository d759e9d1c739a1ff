"""A conversation: system prompt, turns, and each reply's figures."""

from __future__ import annotations

from dataclasses import dataclass, field

from tui.engine.protocol import ChatStats

DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."


@dataclass
class Turn:
    role: str  # "user" or "assistant"
    content: str
    stats: ChatStats | None = None
    partial: bool = False
    """True for a reply that was stopped, or cut off by a crash, before it finished."""


@dataclass
class Conversation:
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    turns: list[Turn] = field(default_factory=list)

    def messages(self) -> list[dict[str, str]]:
        """What the engine is sent: the system prompt, then every turn with content."""
        out = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        out += [{"role": t.role, "content": t.content} for t in self.turns if t.content]
        return out

    def add_user(self, text: str) -> Turn:
        turn = Turn("user", text)
        self.turns.append(turn)
        return turn

    def add_reply(self) -> Turn:
        turn = Turn("assistant", "", partial=True)
        self.turns.append(turn)
        return turn
