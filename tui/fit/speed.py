"""Predicted generation speed from memory bandwidth: each token reads every offloaded layer's
weights from VRAM and every other layer's from host RAM, so

    seconds per token ~= GPU bytes / GPU bandwidth + CPU bytes / CPU bandwidth.

The two bandwidths start from rough defaults and are fitted to the benchmarks the user ran (each
gives one equation); the Tuner shows the prediction beside what was measured."""

from __future__ import annotations

from dataclasses import dataclass

from tui.engine.settings import LoadSettings
from tui.fit.estimate import cpu_experts, layer_devices
from tui.models.model_info import ModelInfo

GB = 1e9
DEFAULT_GPU_BW = 700 * GB
"""Effective bytes/s a discrete GPU streams weights at (a 3090 is ~936 GB/s peak)."""
DEFAULT_CPU_BW = 40 * GB
"""Effective bytes/s of a desktop's dual-channel DDR4/5 (a server has more)."""


@dataclass(frozen=True)
class SpeedModel:
    gpu_bandwidth: float = DEFAULT_GPU_BW
    cpu_bandwidth: float = DEFAULT_CPU_BW
    points: int = 0
    """Benchmarks it was fitted to (0: the defaults)."""

    def predict(self, gpu_bytes: int, cpu_bytes: int) -> float:
        seconds = gpu_bytes / self.gpu_bandwidth + cpu_bytes / self.cpu_bandwidth
        return 1.0 / seconds if seconds > 0 else 0.0

    def cpu_share(self, gpu_bytes: int, cpu_bytes: int) -> float:
        """The share of a step's time spent reading the CPU layers."""
        cpu = cpu_bytes / self.cpu_bandwidth
        total = gpu_bytes / self.gpu_bandwidth + cpu
        return cpu / total if total > 0 else 0.0


def bytes_per_token(info: ModelInfo, s: LoadSettings, n_gpus: int) -> tuple[int, int]:
    """(bytes read from VRAM, bytes read from host RAM) for one generated token."""
    gpu = cpu = 0
    for il, dev in enumerate(layer_devices(info.n_layer, s.n_gpu_layers, n_gpus, s.tensor_split)):
        size = info.block_bytes[il] if il < info.n_layer else info.output_bytes
        if dev is None:
            cpu += size
        else:
            experts = cpu_experts(info, s, il)
            gpu += size - experts
            cpu += experts
    return gpu, cpu


def fitted(points: list[tuple[int, int, float]], base: SpeedModel = SpeedModel()) -> SpeedModel:
    """Bandwidths that best explain measured (gpu bytes, cpu bytes, tg tok/s) points.

    One point, or points that cannot separate the two sides, scale both defaults by the same
    factor; two or more independent points solve for both (least squares on seconds per token)."""
    pts = [(g, c, 1.0 / tg) for g, c, tg in points if tg > 0 and (g or c)]
    if not pts:
        return base
    # seconds = g * x + c * y, with x = 1/gpu_bw, y = 1/cpu_bw
    sgg = sum(g * g for g, _, _ in pts)
    scc = sum(c * c for _, c, _ in pts)
    sgc = sum(g * c for g, c, _ in pts)
    sgt = sum(g * t for g, _, t in pts)
    sct = sum(c * t for _, c, t in pts)
    det = sgg * scc - sgc * sgc
    if len(pts) >= 2 and det > 1e-9 * sgg * scc:
        x = (sgt * scc - sct * sgc) / det
        y = (sct * sgg - sgt * sgc) / det
        if x > 0 and y > 0:
            return SpeedModel(1.0 / x, 1.0 / y, len(pts))
    # one scale for both: seconds = k * (g / gpu_bw + c / cpu_bw)
    predicted = sum(g / base.gpu_bandwidth + c / base.cpu_bandwidth for g, c, _ in pts)
    k = sum(t for _, _, t in pts) / predicted if predicted else 1.0
    return SpeedModel(base.gpu_bandwidth / k, base.cpu_bandwidth / k, len(pts))


DEFAULT_ACCEPTANCE = 0.7
"""What a draft of the same family gets accepted at when nothing was measured: the middle of the
60-80 % llama.cpp users report for Llama-3.2-1B drafting Llama-3.1-70B on chat text."""


CPU_BATCH_COST = 0.55
"""What each extra token of a verify batch adds to the CPU layers' share of a target step.
Measured on the H200 host (16 cores) with the 70B shape in Q4_K_M at 40 of 81 layers: a batch of
5 cost 2.8 single steps, one of 17 cost 11 (llama.cpp's CPU matmuls for K-quants grow with the
batch); the GPU layers' share stays about one step while memory-bound. docs/benchmarks.md."""


def speculative_tg(target_tg: float, draft_tg: float, acceptance: float, draft_max: int,
                   cpu_share: float = 0.0) -> float:
    """Expected tokens per second with a draft. A round drafts k tokens (k draft steps) and
    checks them in one target batch: about one target step for the layers on a GPU, and
    1 + CPU_BATCH_COST x k steps for the share `cpu_share` of the step spent on CPU layers. With
    each drafted token kept with probability a, a round yields (1 - a^(k+1)) / (1 - a) tokens.
    (Rounds that stop early at --draft-p-min cost less than this counts, so it errs low.)"""
    if target_tg <= 0 or draft_tg <= 0 or draft_max <= 0:
        return target_tg
    a = min(max(acceptance, 0.0), 0.999)
    k = draft_max
    tokens = (1 - a ** (k + 1)) / (1 - a)
    verify = (1 + CPU_BATCH_COST * k * min(max(cpu_share, 0.0), 1.0)) / target_tg
    return tokens / (k / draft_tg + verify)
