"""The engine's side of the pipe: send messages, and forward llama.cpp's log as messages."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import deque

from tui.engine.protocol import HEARTBEAT_S, Heartbeat, LogLine, Message

_LEVELS = {0: "none", 1: "debug", 2: "info", 3: "warn", 4: "error", 5: "cont"}


class Channel:
    """Owns the protocol pipe. C code's prints to stdout are sent to stderr instead."""

    def __init__(self) -> None:
        self._fd = os.dup(1)
        os.dup2(2, 1)  # llama.cpp / CUDA printf now lands in stderr, never in the protocol
        sys.stdout = sys.stderr
        self._lock = threading.Lock()
        self.recent_log: deque[str] = deque(maxlen=2000)
        self._partial = ""
        self._partial_level = "info"
        self.busy_since: float | None = None
        """When the command under way last sent something (None: waiting for a command)."""

    def busy(self, yes: bool) -> None:
        """The main thread starts (True) or ends (False) a command."""
        self.busy_since = time.monotonic() if yes else None

    def start_heartbeat(self) -> None:
        def beat() -> None:
            while True:
                time.sleep(HEARTBEAT_S)
                since = self.busy_since
                self.send(Heartbeat(busy_s=0.0 if since is None
                                    else round(time.monotonic() - since, 1)))
        threading.Thread(target=beat, name="heartbeat", daemon=True).start()

    def send(self, message: Message) -> None:
        if self.busy_since is not None and not isinstance(message, Heartbeat):
            self.busy_since = time.monotonic()  # the command under way made progress
        data = message.to_wire()
        with self._lock:
            view = memoryview(data)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]

    def log(self, level_id: int, raw: bytes | None) -> None:
        """llama.cpp log callback body: join fragments into lines, keep the recent ones, send them."""
        text = (raw or b"").decode("utf-8", errors="replace")
        level = _LEVELS.get(level_id, "info")
        if level == "cont":
            level = self._partial_level
        elif self._partial == "":
            self._partial_level = level
        self._partial += text
        while "\n" in self._partial:
            line, self._partial = self._partial.split("\n", 1)
            self._emit(self._partial_level, line)
            self._partial_level = level

    def _emit(self, level: str, line: str) -> None:
        if not line.strip() or set(line.strip()) == {"."}:
            return  # llama.cpp's progress dots
        if level == "debug":
            return  # thousands per load on a GPU build: they would push the useful lines out
        self.recent_log.append(line)
        self.send(LogLine(level=level, text=line))

    def tail(self, n: int = 12) -> tuple[str, ...]:
        return tuple(list(self.recent_log)[-n:])
