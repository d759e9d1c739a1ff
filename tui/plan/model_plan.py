"""One model's plan: its source, every quant's row, the verdicts, and where each figure came from.

llama.cpp's dry runs (the quant sizes, and KV/compute at the chosen context) start first and run
side by side in child processes; the rest is arithmetic on their answers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from tui.engine.settings import LoadSettings
from tui.fit.budget import MemoryBudget
from tui.fit.calibration import start_calibration
from tui.plan.quants import PLAN_TYPES, file_type_id
from tui.plan.sizes import quant_targets
from tui.plan.sources import PlanSource
from tui.plan.table import QuantRow, Verdict, plan_rows, verdicts
from tui.quality.figures import QualityFigures
from tui.speed.model import SpeedModel


@dataclass
class ModelPlan:
    """Made once by make_plan; only the measurements of files on disk are added later."""

    source: PlanSource
    base: LoadSettings
    rows: list[QuantRow]
    refused: dict[str, str]
    verdicts: list[Verdict]
    speed: SpeedModel
    speed_source: str
    """Where the speed figures come from, in words."""
    calibration_source: str
    on_disk: dict[str, Path] = field(default_factory=dict)
    in_repo: dict[str, int] = field(default_factory=dict)
    """Quants the source's repo has, with their listed size in bytes."""
    measured: dict[str, float | str] = field(default_factory=dict)
    """The user's own perplexity of each quant on disk (the shipped text), when measured."""
    quality: dict[str, QualityFigures | str] = field(default_factory=dict)
    """KL divergence and the rest of each quant on disk against `quality_reference`, when measured."""
    quality_reference: str = ""
    seconds: float = 0.0


def with_own_types(quants: tuple[str, ...], own: list[str]) -> tuple[str, ...]:
    """`quants` and the type of the file planned from (the demo's Q4_1 was left out of its own
    plan): a type llama.cpp can make is added after the others; "?" and unknown names are not."""
    extra = []
    for q in own:
        q = q.upper()
        if q in quants or q in extra:
            continue
        try:
            file_type_id(q)
        except ValueError:
            continue
        extra.append(q)
    return (*quants, *extra)


def make_plan(source: PlanSource, base: LoadSettings, budget: MemoryBudget,
              speed: tuple[SpeedModel, str], min_tps: float | None = None, quants: tuple[str, ...] = PLAN_TYPES,
              on_disk: dict[str, Path] | None = None, use_dry_run: bool = True) -> ModelPlan:
    started = time.perf_counter()
    base = base.with_changes(model_path=str(source.gguf))
    quants = with_own_types(quants, [source.quant])
    pending = start_calibration(source.info, base, use_dry_run)  # its child starts now
    targets = quant_targets(source.gguf, quants)
    calibration = pending()
    rows, refused = plan_rows(targets, base, calibration, budget, speed[0])
    in_repo = {m.quant: m.size for m in source.remote.models} if source.remote else {}
    return ModelPlan(source=source, base=base, rows=rows, refused=refused,
                     verdicts=verdicts(rows, min_tps), speed=speed[0], speed_source=speed[1],
                     calibration_source=calibration.source, on_disk=dict(on_disk or {}),
                     in_repo=in_repo, seconds=time.perf_counter() - started)


def add_measured(plan: ModelPlan, quality: dict[str, QualityFigures | str], reference: Path | None) -> None:
    """Record what `plan.measure` found: the figures, and the perplexity alone (older readers)."""
    plan.quality.update(quality)
    plan.quality_reference = str(reference or "")
    plan.measured.update({q: (round(f.ppl, 4) if isinstance(f, QualityFigures) else f) for q, f in quality.items()})
