"""What the Tuner shows for a draft of settings, computed in one place and handed out whole.

The memory estimate, the pre-load checks, where each layer goes and the speed the bandwidth model
expects, from one call: the screen gives each widget its part, and what was predicted for an
apply comes from the plan, never back out of a widget. Calibrations (llama.cpp's dry runs, the
slow part) are cached by the settings they depend on, so changing only the layer count is
arithmetic.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from tui.engine.settings import LoadSettings
from tui.fit.budget import MemoryBudget
from tui.fit.checks import Check, Machine, preload_checks
from tui.fit.estimate import (
    Calibration,
    MemoryEstimate,
    draft_memory,
    estimate,
    formula_calibration,
    layer_devices,
)
from tui.fit.search import fit_layers
from tui.fit.speed import DEFAULT_ACCEPTANCE, speculative_tg
from tui.models.model_info import ModelInfo
from tui.profiles.tried import TriedConfig
from tui.speed.model import SpeedModel, reads


def context_key(s: LoadSettings) -> tuple:
    """The settings a calibration depends on (everything but the layer placement)."""
    return (s.model_path, s.n_ctx, s.n_batch, s.n_ubatch, s.type_k, s.type_v, s.flash_attn,
            s.offload_kqv)


@dataclass(frozen=True)
class LayerPlan:
    devices: tuple[int | None, ...]
    """The GPU of each block and the output layer (None: the CPU)."""
    experts_on_cpu: int
    side_bytes: tuple[int, int]
    """Bytes read per token on the GPUs and on the CPU."""
    predicted_tg: float
    measured_tg: float | None
    """The last benchmark of exactly these settings, if any."""
    calibration: str
    """Where the speed model's rates come from, in words."""
    speculative: str = ""
    """With a draft: its predicted speed against giving its VRAM to target layers instead."""


@dataclass(frozen=True)
class Plan:
    settings: LoadSettings
    estimate: MemoryEstimate
    checks: tuple[Check, ...]
    layers: LayerPlan
    precise: bool
    """The KV and compute sizes are llama.cpp's own (a dry run), not the formula's."""

    @property
    def predicted_vram(self) -> tuple[int, ...]:
        """What each GPU is expected to hold: what an apply records beside what was measured."""
        return tuple(g.total for g in self.estimate.gpus)


class Planner:
    def __init__(self, calibrate: Callable[[ModelInfo, LoadSettings], Calibration],
                 speed: SpeedModel | None = None):
        self._calibrate = calibrate
        self.speed = speed or SpeedModel()
        """This machine's speed model (`vramdeck calibrate`), refitted to each model's benchmarks."""
        self._identity: str | None = None
        self._calibrations: dict[tuple, Calibration] = {}

    def use_machine(self, identity: str, fresh: bool = False) -> None:
        """Predict from this machine's calibration for the GPU `identity` (sample_identity): read
        when the GPU seen changes, or with `fresh` (a calibration just finished), never per plan."""
        if fresh or identity != self._identity:
            from tui.speed.machine import machine_speed_model

            self._identity = identity
            self.speed = machine_speed_model(identity=identity)[0]

    def calibrated(self, settings: LoadSettings) -> bool:
        return context_key(settings) in self._calibrations

    def calibrate(self, info: ModelInfo, settings: LoadSettings) -> Calibration:
        """llama.cpp's KV and compute sizes for these settings (slow: run it off the UI thread)."""
        key = context_key(settings)
        if key not in self._calibrations:
            self._calibrations[key] = self._calibrate(info, settings)
        return self._calibrations[key]

    def calibration(self, info: ModelInfo, settings: LoadSettings) -> Calibration:
        """The cached calibration of these settings, else the formula's (instant)."""
        return self._calibrations.get(context_key(settings)) or formula_calibration(info, settings)

    def plan(self, info: ModelInfo, settings: LoadSettings, budget: MemoryBudget, machine: Machine,
             tried: Sequence[TriedConfig] = (), draft_info: ModelInfo | None = None,
             acceptance: float | None = None) -> Plan:
        """Everything the Tuner shows for `settings`, from the cached calibration if there is
        one, else from the formula (then `precise` is False and a calibration is worth running).
        With `draft_info` (the header of settings' draft model), the draft's memory is in it too
        (by the formula: the draft is small, and a dry run of it would be a second wait)."""
        precise = self.calibrated(settings)
        calibration = self.calibration(info, settings)
        draft = None
        if draft_info is not None and settings.draft_model_path:
            ds = settings.draft_settings()
            draft = draft_memory(draft_info, ds, formula_calibration(draft_info, ds), len(budget.gpus))
        est = estimate(info, settings, calibration, budget, draft=draft)
        layers = self._layers(self.speed, info, settings, len(budget.gpus), tried)
        if draft is not None and draft_info is not None and budget.gpus:
            alone = fit_layers(info, settings.without_draft(), calibration, budget)
            layers = replace(layers, speculative=self._speculative(
                self.speed, info, settings, draft_info, alone.settings, len(budget.gpus), tried, acceptance))
        return Plan(settings=settings, estimate=est,
                    checks=tuple(preload_checks(info, settings, machine)), layers=layers, precise=precise)

    @staticmethod
    def _fitted(speed: SpeedModel, info: ModelInfo, n_gpus: int,
                tried: Sequence[TriedConfig]) -> tuple[SpeedModel, list]:
        rows = [r for r in tried if r.tg_tokens_per_s and r.settings.model_path == info.path]
        return speed.refitted([(info, r.settings, n_gpus, r.tg_tokens_per_s or 0.0) for r in rows]), rows

    @staticmethod
    def _speculative(speed: SpeedModel, info: ModelInfo, s: LoadSettings, draft_info: ModelInfo,
                     alone: LoadSettings, n_gpus: int, tried: Sequence[TriedConfig],
                     acceptance: float | None) -> str:
        """The speed model's two options: this target layout with the draft, or no draft and
        the layers its VRAM would hold instead."""
        model, _ = Planner._fitted(speed, info, n_gpus, tried)
        target = model.predict(info, s, n_gpus).tg
        drafting = model.predict(draft_info, s.draft_settings(), n_gpus).tg
        a = acceptance if acceptance is not None else DEFAULT_ACCEPTANCE
        source = "measured" if acceptance is not None else "default"
        terms, _ = model.step_terms(reads(info, s, n_gpus), 0)
        cpu_share = (terms.get("CPU bandwidth", 0.0) + terms.get("CPU compute", 0.0)) / (sum(terms.values()) or 1.0)
        with_draft = speculative_tg(target, drafting, a, s.draft_max, cpu_share)
        instead = model.predict(info, alone, n_gpus).tg
        layers = "all" if alone.n_gpu_layers < 0 else str(alone.n_gpu_layers)
        return (f"with the draft ≈ {with_draft:,.1f} tok/s (kept {a:.0%}, {source}; d{s.draft_max})  ·  "
                f"without it, {layers} layers ≈ {instead:,.1f} tok/s")

    @staticmethod
    def _layers(speed: SpeedModel, info: ModelInfo, s: LoadSettings, n_gpus: int,
                tried: Sequence[TriedConfig]) -> LayerPlan:
        model, rows = Planner._fitted(speed, info, n_gpus, tried)
        r = reads(info, s, n_gpus)
        side = (sum(n for (dev, _), n in r.weights.items() if dev == "gpu"),
                sum(n for (dev, _), n in r.weights.items() if dev == "cpu"))
        same = [t for t in rows if t.settings == s]
        p = model.predict(info, s, n_gpus)
        words = (f"{p.basis} rates ±{p.band:.0%}" if speed.calibrated
                 else "default rates; vramdeck calibrate measures them")
        if rows:
            words += f", refitted to {len(rows)} benchmark{'s' if len(rows) > 1 else ''}"
        return LayerPlan(
            devices=tuple(layer_devices(info.n_layer, s.n_gpu_layers, n_gpus, s.tensor_split)),
            experts_on_cpu=s.n_cpu_moe if info.block_expert_bytes else 0,
            side_bytes=side, predicted_tg=p.tg,
            measured_tg=same[-1].tg_tokens_per_s if same else None, calibration=words)
