"""The user's own quality figures for each quant that is on disk: KL divergence, same top token
and perplexity against the highest-precision file of the model (tui.quality), measured here on
the shipped text, one load per file, each file once (the store keeps them)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tui.engine.settings import LoadSettings
from tui.quality.errors import QualityError
from tui.quality.figures import QualityFigures
from tui.quality.reference import pick_reference


async def _measure(paths: dict[str, Path], base: LoadSettings,
                   reference: Path) -> dict[str, QualityFigures | str]:
    from tui.quality.measure import QualityMeter

    meter = QualityMeter(reference, base.with_changes(model_path=str(reference)))
    out: dict[str, QualityFigures | str] = {}
    for quant, path in paths.items():
        try:
            out[quant] = await meter.measure_file(path)
        except QualityError as exc:
            out[quant] = str(exc)
    return out


def measured_quality(paths: dict[str, Path], base: LoadSettings,
                     reference: Path | None = None) -> tuple[dict[str, QualityFigures | str], Path | None]:
    """Figures of each file (or why there are none), and the reference they are against: the
    one given, else the highest-precision file among `paths` and the files beside them."""
    reference = reference or pick_reference(list(paths.values()))
    if reference is None:
        return {q: "not a GGUF model vramdeck can read" for q in paths}, None
    return asyncio.run(_measure(paths, base, reference)), reference
