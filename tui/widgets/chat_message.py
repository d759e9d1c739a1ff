"""One turn of the conversation as shown: the user's text, or a reply that may still be streaming.

Messages take focus (Tab / Shift+Tab from the composer) so a key can act on one: c copies it
(OSC 52, which reaches the local clipboard over SSH), w saves its code blocks to a file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Collapsible, Markdown, Static

from tui.chat.speculation import reply_speculation
from tui.chat.think import split_think
from tui.engine.protocol import ChatStats
from tui.safe_text import terminal_safe


def stats_line(stats: ChatStats, partial: bool) -> str:
    parts = [f"{stats.generated_tokens} tok",
             f"{stats.generation_tokens_per_s:.1f} tok/s",
             f"first token {stats.time_to_first_token_s * 1000:.0f} ms",
             f"prompt {stats.prompt_tokens} tok"]
    if stats.speculative:
        parts.append(reply_speculation(stats))
    if partial:
        parts.append("stopped" if stats.stop_reason == "cancelled" else stats.stop_reason)
    elif stats.stop_reason in ("length", "context"):
        parts.append({"length": "hit max tokens", "context": "context full"}[stats.stop_reason])
    return " · ".join(parts)


@dataclass
class MessageAction(Message):
    """A key pressed on a message: "copy" or "save_code"; the screen does it."""

    action: str
    text: str


MESSAGE_KEYS: list[BindingType] = [Binding("c", "act('copy')", "Copy", id="message.copy"),
                                   Binding("w", "act('save_code')", "Save code", id="message.save-code")]


class _Focusable:
    """Mixed into the message widgets (not a widget itself, so it adds no CSS type)."""

    can_focus = True

    def text_for_copy(self) -> str:
        raise NotImplementedError

    def action_act(self, action: str) -> None:
        cast(Widget, self).post_message(MessageAction(action, self.text_for_copy()))


class UserMessage(_Focusable, Static):
    BINDINGS = MESSAGE_KEYS
    DEFAULT_CSS = """
    UserMessage { margin: 1 0 0 4; padding: 0 1; background: $boost; border-left: thick $primary; }
    UserMessage:focus { border-left: thick $accent; background: $primary 20%; }
    """

    def __init__(self, text: str) -> None:
        super().__init__(terminal_safe(text, multiline=True), markup=False)
        self.text = text

    def text_for_copy(self) -> str:
        return self.text


class AssistantMessage(_Focusable, Vertical):
    BINDINGS = MESSAGE_KEYS
    DEFAULT_CSS = """
    AssistantMessage { height: auto; margin: 1 4 0 0; border-left: thick $secondary; }
    AssistantMessage:focus { border-left: thick $accent; }
    AssistantMessage Markdown { margin: 0; padding: 0 1; }
    AssistantMessage Collapsible { margin: 0 1; padding: 0; border: none; background: $boost; }
    AssistantMessage .think { color: $text-muted; text-style: italic; padding: 0 1; }
    AssistantMessage .reply-stats { color: $text-muted; padding: 0 1; height: auto; }
    AssistantMessage .reply-note { color: $warning; padding: 0 1; height: auto; }
    """

    def __init__(self, text: str = "") -> None:
        super().__init__()
        self.text = text
        self._answer_sent = 0
        """How much of the answer (text after </think>) the Markdown stream has been given."""
        self._plain = False
        """Set once the reply is known to start without <think>."""

    def compose(self) -> ComposeResult:
        think, answer, _ = split_think(self.text)
        self._answer_sent = len(answer)
        with Collapsible(title="reasoning", collapsed=True) as c:
            c.display = bool(think)
            yield Static(terminal_safe(think, multiline=True), classes="think", markup=False)
        yield Markdown(terminal_safe(answer, multiline=True))
        yield Static("", classes="reply-stats", markup=False)

    @property
    def markdown(self) -> Markdown:
        return self.query_one(Markdown)

    def feed(self, piece: str) -> str:
        """Add a streamed piece; return what of it belongs to the answer's Markdown stream.
        Reasoning goes to the collapsed block as plain text."""
        self.text += piece
        if self._plain:  # no <think> part: every piece is answer, no need to look again
            self._answer_sent += len(piece)
            return terminal_safe(piece, multiline=True)
        think, answer, thinking = split_think(self.text)
        if not think and not thinking and self.text.strip():
            self._plain = True
        if think or thinking:
            block = self.query_one(Collapsible)
            block.display = bool(think)
            block.title = "reasoning…" if thinking else "reasoning"
            self.query_one(".think", Static).update(terminal_safe(think, multiline=True))
        delta = answer[self._answer_sent:]
        self._answer_sent = len(answer)
        return terminal_safe(delta, multiline=True)

    def text_for_copy(self) -> str:
        return split_think(self.text)[1]

    def show_stats(self, stats: ChatStats | None, partial: bool, note: str = "") -> None:
        label = self.query_one(".reply-stats", Static)
        text = stats_line(stats, partial) if stats else ""
        if note:
            text = (text + "\n" if text else "") + note
        label.update(text)
