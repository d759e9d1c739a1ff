"""A streamed reply drawn at most 10 times a second: Textual's MarkdownStream, throttled.

Pieces arrive up to ~60 times a second; each Markdown write re-parses the open block, so pieces
are held and written together at most every RENDER_INTERVAL, and one left over is written soon
after even if nothing more comes.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from textual.timer import Timer
from textual.widgets import Markdown

RENDER_INTERVAL = 0.1
"""Each write re-lays out the conversation; at 20 a second a key press waited behind it (p95
66 ms on 2 cores), at 10 a second it does not (p95 13 ms): benchmarks/chat_stream.py."""


class ThrottledStream:
    def __init__(self, markdown: Markdown, set_timer: Callable[[float, Callable], Timer],
                 interval: float = RENDER_INTERVAL):
        self.stream = Markdown.get_stream(markdown)
        self.set_timer = set_timer
        self.interval = interval
        self.pending: list[str] = []
        self.last_write = 0.0
        self.timer: Timer | None = None

    async def add(self, text: str) -> None:
        if not text:
            return
        self.pending.append(text)
        now = time.monotonic()
        if now - self.last_write >= self.interval:
            await self.flush()
        elif self.timer is None:  # write it soon even if nothing more comes
            self.timer = self.set_timer(self.interval - (now - self.last_write), self.flush)

    async def flush(self) -> None:
        self.timer = None
        if self.pending:
            text = "".join(self.pending)
            self.pending.clear()
            self.last_write = time.monotonic()
            await self.stream.write(text)

    async def close(self) -> None:
        if self.timer is not None:
            self.timer.stop()
        await self.flush()
        await self.stream.stop()
