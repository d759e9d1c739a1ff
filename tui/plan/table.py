"""The plan table: for each quant, its size, the layers that fit the budget (and the longest
context when every layer fits), the host RAM it needs, the speed it should make on this machine,
what it costs in quality, and the verdicts people weigh."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from tui.engine.settings import LoadSettings
from tui.fit.budget import MemoryBudget
from tui.fit.estimate import Calibration
from tui.fit.search import fit_context, fit_layers
from tui.fit.speed import DEFAULT_GPU_BW, bytes_per_token
from tui.plan.bandwidth import MachineSpeeds
from tui.plan.quants import PublishedQuality, published_quality
from tui.plan.sizes import QuantTarget

DEFAULT_GPU_FLOPS = 50e12
"""Dense FP16 FLOP/s llama.cpp's prompt kernels reach on a current discrete GPU (rough default)."""


@dataclass(frozen=True)
class Speeds:
    """The bandwidths and compute the predictions use, and where each came from."""

    gpu_bandwidth: float = DEFAULT_GPU_BW
    cpu_bandwidth: float = 40e9
    cpu_flops: float = 50e9
    gpu_flops: float = DEFAULT_GPU_FLOPS
    sources: dict[str, str] = field(default_factory=dict)

    @classmethod
    def measured(cls, machine: MachineSpeeds, gpu_bandwidth: float | None = None,
                 gpu_source: str = "not probed") -> "Speeds":
        return cls(gpu_bandwidth=gpu_bandwidth or DEFAULT_GPU_BW,
                   cpu_bandwidth=machine.host_read_bytes_per_s, cpu_flops=machine.cpu_kernel_flops,
                   sources={"cpu": f"measured on this machine ({machine.measured_at})",
                            "gpu": (gpu_source if gpu_bandwidth else
                                    f"default {DEFAULT_GPU_BW / 1e9:.0f} GB/s ({gpu_source})")})


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
    """What limits generation: "GPU bandwidth", "CPU bandwidth" or "CPU compute"."""
    quality: PublishedQuality
    settings: LoadSettings
    """The fitted settings (what `pull` then opens in the Tuner)."""

    @property
    def all_on_gpu(self) -> bool:
        return self.gpu_fits and self.n_gpu_layers >= self.n_layers


def predict(target: QuantTarget, s: LoadSettings, n_gpus: int, speeds: Speeds) -> tuple[float, float, str]:
    """(tg tok/s, pp tok/s, what bounds tg) for `s` on this machine."""
    info = target.info
    gpu_b, cpu_b = bytes_per_token(info, s, n_gpus)
    total = gpu_b + cpu_b or 1
    cpu_params, gpu_params = info.n_params * cpu_b / total, info.n_params * gpu_b / total
    cpu_read = cpu_b / speeds.cpu_bandwidth
    cpu_compute = 2 * cpu_params / speeds.cpu_flops
    gpu_read = gpu_b / speeds.gpu_bandwidth
    seconds = gpu_read + max(cpu_read, cpu_compute)
    if cpu_b == 0:
        bound = "GPU bandwidth"
    else:
        bound = "CPU compute" if cpu_compute > cpu_read else "CPU bandwidth"
    pp_seconds = 2 * cpu_params / speeds.cpu_flops + 2 * gpu_params / speeds.gpu_flops
    return (1.0 / seconds if seconds > 0 else 0.0, 1.0 / pp_seconds if pp_seconds > 0 else 0.0, bound)


def plan_rows(targets: dict[str, QuantTarget | str], base: LoadSettings, calibration: Calibration,
              budget: MemoryBudget, speeds: Speeds) -> tuple[list[QuantRow], dict[str, str]]:
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
        tg, pp, bound = predict(target, fit.settings, n_gpus, speeds)
        rows.append(QuantRow(quant=quant, file_bytes=target.file_bytes,
                             bits_per_weight=info.bits_per_weight, needs_imatrix=target.needs_imatrix,
                             n_gpu_layers=e.n_gpu_layers if n_gpus else 0, n_layers=info.n_layer + 1,
                             gpu_fits=fit.gpu_fits, host_fits=fit.host_fits, max_ctx=max_ctx,
                             host_bytes=e.host.total, gpu_bytes=tuple(g.total for g in e.gpus),
                             tg_tokens_per_s=tg, pp_tokens_per_s=pp, bound=bound,
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
