"""Bar charts as text, for the CLI and the panes: one line a value, bars scaled to the largest."""

from __future__ import annotations


def bar(value: float, top: float, width: int) -> str:
    """At least one cell for any value, `width` cells for the largest."""
    return "█" * max(1, round(value / (top or 1) * width))


def depth_lines(depth_tg: list[tuple[int, float]], width: int = 24) -> list[str]:
    """Generation speed against context depth."""
    top = max((tg for _, tg in depth_tg), default=0)
    return [f"  depth {d:>8,} | {bar(tg, top, width):<{width}} {tg:8.1f} tok/s" for d, tg in depth_tg]
