"""How Ollama reads a Modelfile, for the export tests: the states and rules of ParseFile in
ollama/ollama parser/parser.go, restated in Python (commands, quotes, comments, and which
characters its buffer keeps: only what Go's strconv.IsPrint accepts, plus the spaces, tabs and
line breaks it writes itself). Returns (command, argument) pairs, or raises ValueError where
Ollama would refuse the file."""

from __future__ import annotations

import unicodedata

COMMANDS = {"from", "license", "template", "system", "adapter", "draft", "renderer", "parser",
            "parameter", "message", "requires"}


def _go_print(c: str) -> bool:
    return c == " " or unicodedata.category(c)[0] in "LMNPS"


def _space(c: str) -> bool:
    return c in " \t"


def _newline(c: str) -> bool:
    return c in "\r\n"


def _unquote(s: str) -> tuple[str, bool]:
    if s[:3] == '"""':
        return (s[3:-3], True) if len(s) >= 6 and s[-3:] == '"""' else ("", False)
    if s[:1] == '"':
        return (s[1:-1], True) if len(s) >= 2 and s[-1] == '"' else ("", False)
    return s, True


def _go_trim_space(s: str) -> str:
    return s.strip(" \t\n\v\f\r\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
                   "\u2009\u200a\u2028\u2029\u202f\u205f\u3000")


def _next(c: str, state: str) -> tuple[str, str]:
    """(next state, the rune to keep: '' for none), as parseRuneForState."""
    if state == "nil":
        if c == "#":
            return "comment", ""
        if _space(c) or _newline(c):
            return "nil", ""
        return "name", c
    if state == "name":
        if c.isascii() and c.isalpha():
            return "name", c
        if _space(c):
            return "value", ""
        raise ValueError("invalid command")
    if state == "value":
        return ("nil", c) if (_newline(c) or _space(c)) else ("value", c)
    if state in ("parameter", "message"):
        if c.isascii() and (c.isalpha() or (state == "parameter" and (c.isdigit() or c == "_"))):
            return state, c
        if _space(c):
            return "value", ""
        raise ValueError("unexpected end")
    if state == "comment":
        return ("nil", "") if _newline(c) else ("comment", "")
    raise AssertionError(state)


def parse_modelfile(text: str) -> list[tuple[str, str]]:
    commands: list[tuple[str, str]] = []
    state, buf, name, role = "nil", "", "", ""
    for c in text:
        nxt, r = _next(c, state)
        if nxt != state:
            if state == "name":
                if buf.lower() not in COMMANDS:
                    raise ValueError(f"invalid command {buf!r}")
                low = buf.lower()
                if low == "from":
                    name = "model"
                elif low == "parameter":
                    nxt = "parameter"
                else:
                    if low == "message":
                        nxt = "message"
                    name = low
            elif state == "parameter":
                name = buf
            elif state == "message":
                role = buf
            elif state == "value":
                value, ok = _unquote(_go_trim_space(buf))
                if not ok or _space(r):
                    buf += r
                    continue
                if role:
                    value, role = f"{role}: {value}", ""
                commands.append((name, value))
            buf, state = "", nxt
        if r and _go_print(r):
            buf += r
    if state == "value":
        value, ok = _unquote(_go_trim_space(buf))
        if not ok:
            raise ValueError("unexpected end of file")
        commands.append((name, f"{role}: {value}" if role else value))
    elif state not in ("nil", "comment"):
        raise ValueError("unexpected end of file")
    if not any(n == "model" for n, _ in commands):
        raise ValueError("no FROM line")
    return commands
