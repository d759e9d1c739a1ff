"""`fit`: the most layers (and, if asked, the longest context) that fit the memory budget."""

from __future__ import annotations

from dataclasses import dataclass, replace

from tui.engine.settings import ALL_LAYERS, LoadSettings
from tui.fit.budget import MemoryBudget
from tui.fit.estimate import Calibration, DraftMemory, MemoryEstimate, estimate, formula_calibration, padded_ctx
from tui.models.model_info import ModelInfo


@dataclass(frozen=True)
class FitResult:
    settings: LoadSettings
    """The input settings with the fitted n_gpu_layers (and n_ctx, when asked)."""
    estimate: MemoryEstimate
    next_estimate: MemoryEstimate | None
    """What one more layer would take (None when every layer already fits)."""
    gpu_fits: bool
    """False when not even 0 layers fit the GPU budgets (the GPU cannot hold the compute buffer)."""
    host_fits: bool
    margin: int


def _fits_gpus(est: MemoryEstimate, margin: int) -> bool:
    return all(g.budget is None or g.total + margin <= g.budget for g in est.gpus)


def fit_layers(info: ModelInfo, s: LoadSettings, calibration: Calibration, budget: MemoryBudget,
               draft: DraftMemory | None = None) -> FitResult:
    """The largest n_gpu_layers whose estimate fits every GPU of `budget` with its margin to
    spare (beside the draft model, when there is one: its memory comes first).

    Monotone by construction: a larger budget admits every layer count a smaller one did."""
    margin = budget.margin

    def est(n: int) -> MemoryEstimate:
        return estimate(info, s.with_changes(n_gpu_layers=n), calibration, budget, draft=draft)

    top = info.n_layer + 1
    chosen, chosen_est = None, None
    for n in range(top, -1, -1):
        e = est(n)
        if _fits_gpus(e, margin):
            chosen, chosen_est = n, e
            break
    gpu_fits = chosen is not None
    if chosen is None or chosen_est is None:
        chosen, chosen_est = 0, est(0)
    nxt = est(chosen + 1) if chosen < top else None
    ngl = ALL_LAYERS if chosen == top else chosen
    return FitResult(settings=s.with_changes(n_gpu_layers=ngl), estimate=chosen_est,
                     next_estimate=nxt, gpu_fits=gpu_fits, host_fits=chosen_est.host.fits,
                     margin=margin)


def scaled_calibration(info: ModelInfo, s: LoadSettings, calibration: Calibration,
                       n_ctx: int) -> Calibration:
    """`calibration` (made at s.n_ctx) moved to another context: KV scales linearly with the
    cells; compute buffers move by what the formula says the context changes them by."""
    base_ctx = padded_ctx(s.n_ctx, info.n_ctx_train)
    ctx = padded_ctx(n_ctx, info.n_ctx_train)
    old, new = formula_calibration(info, s), formula_calibration(info, s.with_changes(n_ctx=ctx))

    def moved(name: str) -> int:
        return max(0, getattr(calibration, name) + getattr(new, name) - getattr(old, name))

    return replace(calibration, kv_bytes_per_layer=int(calibration.kv_bytes_per_layer * ctx / base_ctx),
                   gpu_compute_all=moved("gpu_compute_all"), gpu_compute_partial=moved("gpu_compute_partial"),
                   gpu_compute_none=moved("gpu_compute_none"), host_compute=moved("host_compute"))


def fit_context(info: ModelInfo, s: LoadSettings, calibration: Calibration, budget: MemoryBudget,
                draft: DraftMemory | None = None) -> LoadSettings:
    """With s.n_gpu_layers fixed, the longest context (a multiple of 256, at most the trained
    context) that fits, by `scaled_calibration`. Callers with llama.cpp at hand should check the
    answer with a fresh calibration (the `fit` command does)."""
    def fits(n_ctx: int) -> bool:
        c = scaled_calibration(info, s, calibration, n_ctx)
        e = estimate(info, s.with_changes(n_ctx=n_ctx), c, budget, draft=draft)
        return _fits_gpus(e, budget.margin)

    lo, hi = 1, max(1, (info.n_ctx_train or padded_ctx(s.n_ctx, 0)) // 256)
    if not fits(256):
        return s.with_changes(n_ctx=256)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fits(mid * 256):
            lo = mid
        else:
            hi = mid - 1
    return s.with_changes(n_ctx=lo * 256)
