"""One turn of the conversation as shown: the user's text, or a reply that may still be streaming."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Markdown, Static

from tui.engine.protocol import ChatStats


def stats_line(stats: ChatStats, partial: bool) -> str:
    parts = [f"{stats.generated_tokens} tok",
             f"{stats.generation_tokens_per_s:.1f} tok/s",
             f"first token {stats.time_to_first_token_s * 1000:.0f} ms",
             f"prompt {stats.prompt_tokens} tok"]
    if partial:
        parts.append("stopped" if stats.stop_reason == "cancelled" else stats.stop_reason)
    elif stats.stop_reason in ("length", "context"):
        parts.append({"length": "hit max tokens", "context": "context full"}[stats.stop_reason])
    return " · ".join(parts)


class UserMessage(Static):
    DEFAULT_CSS = """
    UserMessage { margin: 1 0 0 4; padding: 0 1; background: $boost; border-left: thick $primary; }
    """

    def __init__(self, text: str) -> None:
        super().__init__(text, markup=False)


class AssistantMessage(Vertical):
    DEFAULT_CSS = """
    AssistantMessage { height: auto; margin: 1 4 0 0; border-left: thick $secondary; }
    AssistantMessage Markdown { margin: 0; padding: 0 1; }
    AssistantMessage .reply-stats { color: $text-muted; padding: 0 1; height: auto; }
    AssistantMessage .reply-note { color: $warning; padding: 0 1; height: auto; }
    """

    def __init__(self, text: str = "") -> None:
        super().__init__()
        self._initial = text

    def compose(self) -> ComposeResult:
        yield Markdown(self._initial)
        yield Static("", classes="reply-stats")

    @property
    def markdown(self) -> Markdown:
        return self.query_one(Markdown)

    def show_stats(self, stats: ChatStats | None, partial: bool, note: str = "") -> None:
        label = self.query_one(".reply-stats", Static)
        text = stats_line(stats, partial) if stats else ""
        if note:
            text = (text + "\n" if text else "") + note
        label.update(text)
