"""Text from files (model names, tensor names, file names, chats) made safe to show in a terminal.

A GGUF header, a file name or a profile can hold escape sequences: printed raw they set the
window title, clear the screen or write the clipboard (OSC 52). Control characters are shown as
visible escapes (`\\x1b`) instead, and so are the Unicode controls that reorder text (bidi
overrides), which could make a path read as something it is not.
"""

from __future__ import annotations

import io
import re
from typing import TextIO

_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_CONTROL_OR_NEWLINE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal_safe(text: object, multiline: bool = False) -> str:
    """`text` with every control character shown as an escape; newlines and tabs are kept only
    when `multiline`."""
    pattern = _CONTROL if multiline else _CONTROL_OR_NEWLINE
    return pattern.sub(_visible, str(text))


class SafeWriter(io.TextIOBase):
    """A text stream that passes everything through terminal_safe (newlines and tabs kept): the
    headless commands print through it, so no file's text reaches the terminal raw."""

    def __init__(self, stream: TextIO):
        self.stream = stream

    def write(self, text: str) -> int:
        self.stream.write(terminal_safe(text, multiline=True))
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()
