"""Run vramdeck in a pseudo-terminal, as a user's terminal would, and record what it writes.

Used by chat_stream.py (key-press-to-repaint latency) and terminal_traffic.py (bytes written).
"""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import threading
import time


class PtyApp:
    def __init__(self, args: list[str], cols: int = 100, rows: int = 30, term: str = "xterm-256color"):
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        env = dict(os.environ, TERM=term, COLUMNS=str(cols), LINES=str(rows))
        self.started = time.perf_counter()
        self.proc = subprocess.Popen([sys.executable, "-m", "tui", *args], stdin=slave,
                                     stdout=slave, stderr=slave, env=env, close_fds=True,
                                     start_new_session=True)
        os.close(slave)
        self.chunks: list[tuple[float, bytes]] = []
        self._lock = threading.Lock()
        self._stop = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while not self._stop:
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if not ready:
                continue
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            with self._lock:
                self.chunks.append((time.perf_counter(), data))

    def write(self, data: bytes | str) -> float:
        if isinstance(data, str):
            data = data.encode()
        t = time.perf_counter()
        os.write(self.master, data)
        return t

    def text(self) -> bytes:
        with self._lock:
            return b"".join(c for _, c in self.chunks)

    def bytes_between(self, start: float, end: float) -> int:
        with self._lock:
            return sum(len(c) for t, c in self.chunks if start <= t < end)

    def wait_for(self, needle: bytes, timeout: float = 60.0, after: float = 0.0) -> float:
        """The time `needle` first appeared in output written after `after`."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            with self._lock:
                seen = b""
                for t, c in self.chunks:
                    if t < after:
                        continue
                    seen += c
                    if needle in seen[-(len(c) + len(needle)):]:
                        return t
            time.sleep(0.002)
        raise TimeoutError(f"{needle!r} did not appear in {timeout} s")

    def count(self, needle: bytes, after: float = 0.0) -> int:
        with self._lock:
            return b"".join(c for t, c in self.chunks if t >= after).count(needle)

    def close(self) -> None:
        self.write(b"\x11")  # Ctrl+Q
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._stop = True
        os.close(self.master)
