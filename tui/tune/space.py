"""The configurations an auto-tune may try, pruned by the estimator before anything is loaded.

For a given model file, KV type, flash-attention mode and n_ubatch, generation speed rises with
every layer moved to the GPU, so the only layer count worth measuring is the most that fits (the
estimator's answer, with a margin). Thread counts matter only while some layers run on the CPU.
A configuration predicted not to fit is never loaded.
"""

from __future__ import annotations

import os
import resource
from collections.abc import Callable
from dataclasses import dataclass

import psutil

from tui.engine.settings import LoadSettings
from tui.fit.budget import MemoryBudget
from tui.fit.estimate import Calibration, MemoryEstimate, draft_memory, estimate
from tui.fit.search import fit_layers
from tui.models.model_info import ModelInfo, load_model_info

KV_CHOICES = ("f16", "q8_0", "q4_0")
FLASH_CHOICES = ("on", "off")
UBATCH_CHOICES = (512, 256)


@dataclass(frozen=True)
class Candidate:
    settings: LoadSettings
    info: ModelInfo
    estimate: MemoryEstimate

    @property
    def all_on_gpu(self) -> bool:
        return self.estimate.n_gpu_layers >= self.info.n_layer + 1


def valid(kv: str, flash: str) -> bool:
    """llama.cpp needs flash attention for a quantized V cache."""
    return kv == "f16" or flash == "on"


def thread_choices() -> tuple[int, ...]:
    cores = psutil.cpu_count(logical=False) or 1
    return tuple(sorted({cores, max(1, cores // 2), max(1, cores - 1)}, reverse=True))


def tune_candidates(infos: list[ModelInfo], base: LoadSettings,
                    calibrate: Callable[[ModelInfo, LoadSettings], Calibration], budget: MemoryBudget,
                    kv_choices=KV_CHOICES, flash_choices=FLASH_CHOICES,
                    ubatch_choices=UBATCH_CHOICES) -> tuple[list[Candidate], list[str]]:
    """The candidates worth measuring, most promising first, and what was pruned and why."""
    out: list[Candidate] = []
    pruned: list[str] = []
    for info in infos:
        for kv in kv_choices:
            for flash in flash_choices:
                if not valid(kv, flash):
                    continue
                for ub in ubatch_choices:
                    s = base.with_changes(model_path=info.path, type_k=kv, type_v=kv,
                                          flash_attn=flash, n_ubatch=ub,
                                          n_batch=max(base.n_batch, ub), n_threads=None)
                    cal = calibrate(info, s)
                    result = fit_layers(info, s, cal, budget)
                    name = info.path.rsplit("/", 1)[-1]
                    if not result.host_fits or (budget.gpus and not result.gpu_fits):
                        pruned.append(f"{name} KV {kv} fa {flash} ub {ub}: does not fit even "
                                      "with 0 layers on the GPU")
                        continue
                    out.append(Candidate(result.settings, info, result.estimate))
    # most layers on the GPU first, then the smaller KV cache (more room), then bigger ubatch
    out.sort(key=lambda c: (-c.estimate.n_gpu_layers, KV_CHOICES.index(c.settings.type_k)
                            if c.settings.type_k in KV_CHOICES else 9, -c.settings.n_ubatch))
    return out, pruned


def cpu_candidates(infos: list[ModelInfo], base: LoadSettings, calibration: Callable[[ModelInfo, LoadSettings],
                   Calibration], budget: MemoryBudget) -> tuple[list[Candidate], list[str]]:
    """With no GPU: what matters on the CPU, no GPU layers. KV type, flash attention and n_ubatch
    first (at the default threads), most promising first; thread counts come after (`cpu_extra`)."""
    out: list[Candidate] = []
    pruned: list[str] = []
    for info in infos:
        for kv in ("f16", "q8_0"):
            for flash in FLASH_CHOICES:
                if not valid(kv, flash):
                    continue
                for ub in (512, 128):
                    s = base.with_changes(model_path=info.path, n_gpu_layers=0, type_k=kv, type_v=kv,
                                          flash_attn=flash, n_ubatch=ub, n_batch=max(base.n_batch, ub))
                    e = estimate(info, s, calibration(info, s), MemoryBudget(host=budget.host))
                    if not e.host.fits:
                        pruned.append(f"{info.path.rsplit('/', 1)[-1]} KV {kv} fa {flash} ub {ub}: "
                                      "does not fit the RAM available")
                        continue
                    out.append(Candidate(s, info, e))
    return out, pruned


def mlock_allowed(info: ModelInfo) -> bool:
    """The memory-lock limit (ulimit -l) lets llama.cpp lock the whole model in RAM (root is not
    held to it)."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    return os.geteuid() == 0 or soft == resource.RLIM_INFINITY or soft >= info.tensor_bytes


def cpu_extra(best: Candidate, budget: MemoryBudget) -> list[Candidate]:
    """Around the best CPU set-up: generation threads (physical cores, half, one less), batch
    threads on every logical CPU, reading the file instead of mapping it, and locking it in RAM
    (mlock: no page of it swapped out or dropped under memory pressure) where ulimit -l allows."""
    logical = psutil.cpu_count(logical=True) or 1
    options = [best.settings.with_changes(n_threads=t) for t in thread_choices()]
    options.append(best.settings.with_changes(n_threads_batch=logical))
    options.append(best.settings.with_changes(use_mmap=False))
    if mlock_allowed(best.info):
        options.append(best.settings.with_changes(use_mlock=True))
    return [Candidate(s, best.info, best.estimate) for s in options if s != best.settings]


def with_threads(c: Candidate, threads: int, calibration: Calibration, budget: MemoryBudget) -> Candidate:
    s = c.settings.with_changes(n_threads=threads)
    return Candidate(s, c.info, estimate(c.info, s, calibration, budget))


DRAFT_LENGTHS = (4, 8, 16)
"""Draft lengths a tune with a draft tries: short drafts lose least when checking a batch is not
free (layers on the CPU), long ones win when most drafts are kept."""


def draft_candidates(best: Candidate, draft_path: str, draft_ngl: int,
                     calibrate: Callable[[ModelInfo, LoadSettings], Calibration],
                     budget: MemoryBudget) -> list[Candidate]:
    """`best` with the draft model at each draft length, with the target layers the draft's
    memory leaves (the same fit, the draft's weights, KV and compute counted first)."""
    draft_info = load_model_info(draft_path)
    out = []
    for k in DRAFT_LENGTHS:
        s = best.settings.with_changes(draft_model_path=draft_path, draft_n_gpu_layers=draft_ngl,
                                       draft_max=k, draft_min=0, draft_lookup=False)
        ds = s.draft_settings()
        draft = draft_memory(draft_info, ds, calibrate(draft_info, ds), len(budget.gpus))
        result = fit_layers(best.info, s, calibrate(best.info, s), budget, draft)
        if result.host_fits and (not budget.gpus or result.gpu_fits):
            out.append(Candidate(result.settings, best.info, result.estimate))
    return out
