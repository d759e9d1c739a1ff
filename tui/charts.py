"""Bar charts as text, for the CLI and the panes: one line a value, bars scaled to the largest."""

from __future__ import annotations


def bar(value: float, top: float, width: int) -> str:
    """At least one cell for any value, `width` cells for the largest."""
    return "█" * max(1, round(value / (top or 1) * width))


def depth_lines(depth_tg: list[tuple[int, float, float, int]], width: int = 24) -> list[str]:
    """Generation speed against context depth: (depth, mean, standard deviation, runs) each."""
    top = max((tg for _, tg, _, _ in depth_tg), default=0)
    return [f"  depth {d:>8,} | {bar(tg, top, width):<{width}} {tg:8.1f} ± {sd:.1f} tok/s ({n} run{'s' * (n > 1)})"
            for d, tg, sd, n in depth_tg]
