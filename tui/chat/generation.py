"""The live figures of the reply being generated, as a pure reducer (like EngineStatus.apply).

The chat screen feeds it each engine event with the time it arrived; the app keeps the result in
one var that the status line, the model card and the Monitor's history follow.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from tui.engine.protocol import ChatDone, ChatStats, PromptProcessed, PromptProgress, TextPiece


@dataclass(frozen=True)
class GenerationStatus:
    context_used: int = 0
    """Tokens in the KV cache after the last reply."""
    prompt_progress: tuple[int, int, float] | None = None
    """(tokens done, tokens in all, tok/s) while a long prompt is read; None otherwise."""
    prompt_tokens_per_s: float = 0.0
    """Prompt speed of the request being answered now (0 when none is)."""
    tokens_per_s: float = 0.0
    """Generation speed of the reply streaming now (0 when none is)."""
    last_stats: ChatStats | None = None
    """Figures of the last finished reply."""
    tokens: int = 0
    """Tokens of the reply streaming now."""
    first_token_at: float = 0.0

    def apply(self, event: object, now: float) -> "GenerationStatus":
        if isinstance(event, TextPiece):
            first = now if self.tokens == 0 else self.first_token_at
            tokens = self.tokens + event.tokens
            speed = (tokens - 1) / (now - first) if now > first else self.tokens_per_s
            return replace(self, tokens=tokens, first_token_at=first, tokens_per_s=speed)
        if isinstance(event, PromptProgress):
            return replace(self, prompt_progress=(event.done, event.total, event.tokens_per_s))
        if isinstance(event, PromptProcessed):
            return replace(self, prompt_progress=None, prompt_tokens_per_s=event.tokens_per_s)
        if isinstance(event, ChatDone):
            return replace(self, last_stats=event.stats, context_used=event.stats.context_used)
        return self

    def ended(self) -> "GenerationStatus":
        """The reply is over, however it ended: no live figures."""
        return replace(self, prompt_progress=None, prompt_tokens_per_s=0.0, tokens_per_s=0.0,
                       tokens=0, first_token_at=0.0)

    def context_reset(self) -> "GenerationStatus":
        """A new conversation, or another model: the cache holds nothing yet."""
        return replace(self, context_used=0)
