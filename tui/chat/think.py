"""Reasoning models write `<think>…</think>` before the answer: split the two apart."""

from __future__ import annotations

import re

OPEN, CLOSE = "<think>", "</think>"
CODE_BLOCK = re.compile(r"```[^\n`]*\n(.*?)```", re.DOTALL)


def split_think(text: str) -> tuple[str, str, bool]:
    """(reasoning, answer, still thinking) of a reply, complete or still streaming."""
    stripped = text.lstrip()
    if not stripped.startswith(OPEN):
        if stripped and OPEN.startswith(stripped):  # "<thi" so far: wait for the rest
            return "", "", True
        return "", text, False
    body = stripped[len(OPEN):]
    end = body.find(CLOSE)
    if end < 0:
        return body.strip(), "", True
    return body[:end].strip(), body[end + len(CLOSE):].lstrip(), False


def code_blocks(markdown: str) -> list[str]:
    """The fenced code blocks of a reply, in order, without their fences."""
    return [m.group(1) for m in CODE_BLOCK.finditer(markdown)]
