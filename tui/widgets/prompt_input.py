"""The chat composer: a multi-line TextArea where Enter sends and Ctrl+J inserts a newline."""

from __future__ import annotations

from dataclasses import dataclass

from textual import events
from textual.message import Message
from textual.widgets import TextArea


class PromptInput(TextArea):
    DEFAULT_CSS = """
    PromptInput { height: auto; min-height: 3; max-height: 10; }
    """

    @dataclass
    class Submitted(Message):
        input: "PromptInput"
        text: str

    def __init__(self, **kwargs) -> None:
        # No blinking cursor: a blink is a redraw twice a second, ~400 bytes/s down an idle SSH link.
        super().__init__(soft_wrap=True, show_line_numbers=False, tab_behavior="focus", **kwargs)
        self.cursor_blink = False
        self.sent: list[str] = []
        self._history_index: int | None = None

    async def _on_key(self, event: events.Key) -> None:
        if event.key == "enter":
            event.prevent_default()
            event.stop()
            text = self.text.strip()
            if text:
                self.sent.append(text)
                self._history_index = None
                self.post_message(self.Submitted(self, text))
            return
        if event.key in ("ctrl+j", "alt+enter", "shift+enter"):
            event.prevent_default()
            event.stop()
            self.insert("\n")
            return
        if event.key in ("up", "down") and self.sent and self._at_edge(event.key):
            event.prevent_default()
            event.stop()
            self._recall(-1 if event.key == "up" else 1)
            return
        await super()._on_key(event)

    def _at_edge(self, key: str) -> bool:
        row, _ = self.cursor_location
        return row == 0 if key == "up" else row == self.document.line_count - 1

    def _recall(self, step: int) -> None:
        index = len(self.sent) if self._history_index is None else self._history_index
        index = max(0, min(len(self.sent), index + step))
        self._history_index = index
        self.load_text(self.sent[index] if index < len(self.sent) else "")
        self.move_cursor(self.document.end)
