"""The plan table: for each quant, its size, the layers that fit the budget (and the longest
context when every layer fits), the host RAM it needs, the speed it should make on this machine,
what it costs in quality, and the verdicts people weigh."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tui.engine.settings import LoadSettings
from tui.fit.budget import MemoryBudget
from tui.fit.estimate import Calibration
from tui.fit.search import fit_context, fit_layers
from tui.plan.quants import PublishedQuality, published_quality
from tui.plan.sizes import QuantTarget
from tui.speed.model import Prediction, SpeedModel


@dataclass(frozen=True)
class QuantRow:
    quant: str
    file_bytes: int
    bits_per_weight: float
    needs_imatrix: bool
    n_gpu_layers: int
    """Layers that fit the GPU budget (output layer included); 0 with no GPU."""
    n_layers: int
    """All of them: n_layer + 1."""
    gpu_fits: bool
    host_fits: bool
    max_ctx: int | None
    """With every layer on the GPU: the longest context that still fits."""
    host_bytes: int
    gpu_bytes: tuple[int, ...]
    tg_tokens_per_s: float
    pp_tokens_per_s: float
    bound: str
    """What limits generation: "GPU bandwidth", "CPU bandwidth", "CPU compute"..."""
    speed: Prediction
    """The whole prediction: its basis (measured, from neighbouring types, default, assumed),
    error band and what bounds prompts."""
    quality: PublishedQuality
    settings: LoadSettings
    """The fitted settings (what `pull` then opens in the Tuner)."""

    @property
    def all_on_gpu(self) -> bool:
        return self.gpu_fits and self.n_gpu_layers >= self.n_layers


def plan_rows(targets: dict[str, QuantTarget | str], base: LoadSettings, calibration: Calibration,
              budget: MemoryBudget, speed: SpeedModel) -> tuple[list[QuantRow], dict[str, str]]:
    """A row per quant that llama.cpp would make, and why the others have none."""
    rows, refused = [], {}
    n_gpus = len(budget.gpus)
    for quant, target in targets.items():
        if isinstance(target, str):
            refused[quant] = target
            continue
        info = target.info
        s = base.with_changes(model_path=info.path or base.model_path)
        fit = fit_layers(info, s, calibration, budget)
        e = fit.estimate
        max_ctx = None
        if n_gpus and fit.gpu_fits and e.n_gpu_layers >= info.n_layer + 1:
            max_ctx = fit_context(info, fit.settings, calibration, budget).n_ctx
        p = speed.predict(info, fit.settings, n_gpus)
        rows.append(QuantRow(quant=quant, file_bytes=target.file_bytes,
                             bits_per_weight=info.bits_per_weight, needs_imatrix=target.needs_imatrix,
                             n_gpu_layers=e.n_gpu_layers if n_gpus else 0, n_layers=info.n_layer + 1,
                             gpu_fits=fit.gpu_fits, host_fits=fit.host_fits, max_ctx=max_ctx,
                             host_bytes=e.host.total, gpu_bytes=tuple(g.total for g in e.gpus),
                             tg_tokens_per_s=p.tg, pp_tokens_per_s=p.pp, bound=p.bound, speed=p,
                             quality=published_quality(quant), settings=fit.settings))
    return rows, refused


@dataclass(frozen=True)
class Verdict:
    label: str
    row: QuantRow | None
    why: str


def verdicts(rows: Sequence[QuantRow], min_tps: float | None = None) -> list[Verdict]:
    """The routes people weigh. Quality is ranked by bits per weight (exact, from the planned
    tensor table); the published figures are shown beside it, where there are some."""
    usable = [r for r in rows if r.gpu_fits and r.host_fits]
    best_quality = lambda rs: max(rs, key=lambda r: r.bits_per_weight, default=None)  # noqa: E731
    full = best_quality([r for r in usable if r.all_on_gpu])
    partial = best_quality([r for r in usable if not r.all_on_gpu])
    fastest = max(usable, key=lambda r: r.tg_tokens_per_s, default=None)
    out = [Verdict("fully on the GPU", full, "the best quality with every layer on the GPU"
                   if full else "no quant fits entirely"),
           Verdict("layers on the CPU", partial,
                   f"the best quality that fits RAM, {partial.n_layers - partial.n_gpu_layers} "
                   f"layers on the CPU" if partial else "nothing larger fits RAM"),
           Verdict("fastest that fits", fastest, "the highest predicted generation speed"
                   if fastest else "nothing fits")]
    if min_tps is not None:
        quick = best_quality([r for r in usable if r.tg_tokens_per_s >= min_tps])
        out.insert(0, Verdict(f"best at ≥ {min_tps:g} tok/s", quick,
                              "the best quality predicted to reach it" if quick else
                              f"no quant is predicted to reach {min_tps:g} tok/s here"))
    return out
