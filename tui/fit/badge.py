"""The fit badge of a model in the Tuner's list: how many of its layers fit the GPU budget now."""

from __future__ import annotations

from dataclasses import dataclass

from tui.engine.settings import LoadSettings
from tui.fit.budget import MemoryBudget
from tui.fit.estimate import formula_calibration
from tui.fit.search import fit_layers
from tui.models.model_info import ModelInfo


@dataclass(frozen=True)
class FitBadge:
    kind: str
    """"all" (every layer fits), "some" (part of the layers), "none" (not even 0 layers fit the
    GPU or the host RAM), "unknown" (no budget to compare with)."""
    text: str


def fit_badge(info: ModelInfo, settings: LoadSettings, budget: MemoryBudget) -> FitBadge:
    """The most layers of `info` that fit with `settings`' context, KV type and batch sizes.

    Uses the formula (arithmetic only, no dry run) so a list of many models stays instant."""
    s = settings.with_changes(model_path=info.path)
    result = fit_layers(info, s, formula_calibration(info, s), budget)
    gpu_budgets = budget.gpus
    top = info.n_layer + 1
    if not result.host_fits or (gpu_budgets and not result.gpu_fits):
        return FitBadge("none", "✗ too big")
    if not gpu_budgets or all(b is None for b in gpu_budgets):
        return FitBadge("unknown", "cpu")
    n = result.estimate.n_gpu_layers
    if n >= top:
        return FitBadge("all", "✓ all")
    return FitBadge("some", f"◐ {n}/{top}")
