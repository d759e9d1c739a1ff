"""What an auto-tune measures, one strategy for `vramdeck tune` and T in the app.

With a GPU: per file, KV type, flash attention and n_ubatch, the most layers the estimate allows;
then thread counts around the best when layers stay on the CPU, and the draft's set-ups. With no
GPU (and no --vram): what matters on the CPU, KV type, flash attention and n_ubatch first, then
threads, batch threads, mmap and mlock around the best. The copies of this in the CLI and the
Tuner had drifted: the app never tuned the CPU, and it ignored the margin.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tui.engine.settings import ALL_LAYERS, LoadSettings
from tui.fit.budget import MemoryBudget
from tui.fit.estimate import Calibration
from tui.models.model_info import ModelInfo
from tui.tune.run import TuneReport
from tui.tune.space import (
    Candidate,
    cpu_candidates,
    cpu_extra,
    draft_candidates,
    thread_choices,
    tune_candidates,
    with_threads,
)


@dataclass(frozen=True)
class TuneStrategy:
    budget: MemoryBudget
    calibrate: Callable[[ModelInfo, LoadSettings], Calibration]
    draft_path: str = ""
    """A draft model to try on the best set-up (its lengths, and the layers it leaves)."""
    draft_n_gpu_layers: int = ALL_LAYERS
    objective: str = "tg"

    @property
    def cpu_only(self) -> bool:
        """No GPU in the budget: tune what matters on the CPU."""
        return not self.budget.gpus

    def candidates(self, infos: list[ModelInfo], base: LoadSettings) -> tuple[list[Candidate], list[str]]:
        """What to measure first, and what the estimate pruned (in words)."""
        b = self.budget
        if self.cpu_only:
            return cpu_candidates(infos, base, self.calibrate, b)
        return tune_candidates(infos, base, self.calibrate, b)

    def extra(self, report: TuneReport) -> list[Candidate]:
        """What to measure once the first list is done: around the best so far. GgufError when
        the draft model cannot be read."""
        ranked = report.ranked(self.objective)
        if not ranked:
            return []
        best = ranked[0].candidate
        b = self.budget
        if self.cpu_only:
            return cpu_extra(best, b)
        more: list[Candidate] = []
        if not best.all_on_gpu:
            cal = self.calibrate(best.info, best.settings)
            more = [with_threads(best, t, cal, b) for t in thread_choices()]
        if self.draft_path:
            more += draft_candidates(best, self.draft_path, self.draft_n_gpu_layers, self.calibrate, b)
        return more
