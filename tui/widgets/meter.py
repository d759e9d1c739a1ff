"""A text gauge: ████████░░░░ 62%."""

from __future__ import annotations

from textual.content import Content


def meter(fraction: float | None, width: int = 20) -> Content:
    if fraction is None:
        return Content.assemble(("·" * width, "$text-muted"), " n/a")
    fraction = max(0.0, min(1.0, fraction))
    filled = round(fraction * width)
    style = "$error" if fraction >= 0.9 else "$warning" if fraction >= 0.75 else "$success"
    return Content.assemble(("█" * filled, style), ("░" * (width - filled), "$text-muted"),
                            f" {fraction * 100:3.0f}%")
