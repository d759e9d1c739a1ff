"""The one way a model gets loaded: apply settings, roll back when they fail, remember what was tried.

Headless (no textual): the app, the auto-tune and tests go through it. It owns the last settings
that worked, the table of configurations tried this session, and learning each GPU's runtime
overhead from a load (a small fsync'd file write, so it runs off the caller's thread).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, replace

from tui.engine.engine_like import EngineLike
from tui.engine.protocol import Loaded, LoadFailed
from tui.engine.settings import LoadSettings
from tui.fit.overhead import OverheadStore, remember_from_load
from tui.profiles.tried import Spread, TriedConfig
from tui.quality.figures import QualityFigures


@dataclass(frozen=True)
class LoadOutcome:
    """What one apply did, for the screen to word."""

    settings: LoadSettings
    """What was asked for."""
    predicted: tuple[int, ...] = ()
    """What the estimate said each GPU would take (empty when nothing was predicted)."""
    loaded: Loaded | None = None
    """Set when `settings` loaded."""
    failure: LoadFailed | None = None
    """Why `settings` did not load."""
    rolled_back_to: LoadSettings | None = None
    """The last settings that worked, loaded again after the failure (None: nothing to go back to)."""
    rollback_failure: LoadFailed | None = None
    """Set when going back failed too: then no model is loaded."""

    @property
    def ok(self) -> bool:
        return self.loaded is not None

    @property
    def back_on_last_working(self) -> bool:
        return self.rolled_back_to is not None and self.rollback_failure is None


class LoadService:
    def __init__(self, engine: EngineLike, overhead_store: OverheadStore | None = None,
                 gpu_names: Callable[[], tuple[str, ...]] = tuple):
        self.engine = engine
        self.overhead_store = overhead_store
        self.gpu_names = gpu_names
        """The GPUs of this machine now (the sampler's), to name the rows and the overheads."""
        self.last_working: LoadSettings | None = None
        self.tried: list[TriedConfig] = []
        """Configurations loaded (and benchmarked) this session, oldest first."""
        self.quality: dict[str, tuple[QualityFigures, str]] = {}
        """Quality measured this session per model file: the figures and the reference's name."""

    def record_quality(self, model_path: str, figures: QualityFigures, reference: str) -> None:
        self.quality[model_path] = (figures, reference)

    async def apply(self, settings: LoadSettings, predicted: tuple[int, ...] = ()) -> LoadOutcome:
        """Load `settings`; if that fails, load the last settings that worked again."""
        result = await self.load(settings, predicted)
        if isinstance(result, Loaded):
            return LoadOutcome(settings, predicted, loaded=result)
        previous = self.last_working
        if previous is None or previous == settings:
            return LoadOutcome(settings, predicted, failure=result)
        back = await self.load(previous)
        return LoadOutcome(settings, predicted, failure=result, rolled_back_to=previous,
                           rollback_failure=back if isinstance(back, LoadFailed) else None)

    async def load(self, settings: LoadSettings,
                   predicted: tuple[int, ...] = ()) -> Loaded | LoadFailed:
        """Load `settings` with no rollback (the auto-tune's way), recording what it cost."""
        result = await self.engine.load(settings)
        if isinstance(result, Loaded):
            self.last_working = settings
            await self._record(settings, result, predicted)
        return result

    async def _record(self, settings: LoadSettings, loaded: Loaded,
                      predicted: tuple[int, ...]) -> None:
        f = loaded.facts
        names = self.gpu_names()
        self.tried.append(TriedConfig(settings=settings, n_layer=f.n_layer, predicted_vram=predicted,
                                      measured_vram=tuple(f.vram_bytes_per_gpu),
                                      load_seconds=f.load_seconds, gpu_names=names))
        if self.overhead_store is not None and names:
            await asyncio.to_thread(remember_from_load, f.vram_bytes_per_gpu, f.buffers,
                                    list(names), self.overhead_store)

    def predicted_for(self, settings: LoadSettings | None) -> tuple[int, ...]:
        """What was predicted when `settings` were last loaded."""
        row = next((r for r in reversed(self.tried) if r.settings == settings), None)
        return row.predicted_vram if row else ()

    def record_bench(self, settings: LoadSettings | None, pp: float, tg: float,
                     spread: Spread | None = None, contended: bool = False) -> None:
        """Benchmark figures of `settings` (means, and how sure they are): fill their last row,
        or add a row after it."""
        for i in range(len(self.tried) - 1, -1, -1):
            row = self.tried[i]
            if row.settings == settings:
                measured = replace(row, pp_tokens_per_s=pp, tg_tokens_per_s=tg, spread=spread or Spread(),
                                   contended=contended)
                if row.tg_tokens_per_s is None:
                    self.tried[i] = measured
                else:
                    self.tried.append(measured)
                return

    def measured(self, settings: LoadSettings) -> TriedConfig | None:
        """The last row of `settings`, a benchmarked one if there is one."""
        rows = [r for r in self.tried if r.settings == settings]
        return next((r for r in reversed(rows) if r.tg_tokens_per_s is not None),
                    rows[-1] if rows else None)
