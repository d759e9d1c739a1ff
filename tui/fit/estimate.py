"""Predict the memory a load takes, per GPU and on the host, before loading anything.

Weights come from the GGUF tensor table, placed the way llama.cpp 0.3.36 places them
(src/llama-model.cpp, `i_gpu_start`): the output layer counts as layer n_layer and is offloaded
first, so n_gpu_layers = N puts output.weight and the last N-1 blocks on the GPUs; the input
embeddings always stay on the CPU; tensor_split divides the offloaded layers in proportion.
KV-cache and compute-buffer sizes come from llama.cpp's own no-alloc dry run (see calibration.py)
or, without a GPU build, from a formula. Per-GPU runtime overhead (CUDA context, cuBLAS) is
measured at the first real load on this machine (overhead.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from tui.engine.settings import ALL_LAYERS, LoadSettings
from tui.fit.budget import MemoryBudget
from tui.models.model_info import ModelInfo

MIB = 1024**2

# bytes per element of each KV cache type (block bytes / block size)
KV_BYTES_PER_ELEMENT = {"f32": 4.0, "f16": 2.0, "bf16": 2.0, "q8_0": 34 / 32, "q5_1": 24 / 32,
                        "q5_0": 22 / 32, "q4_1": 20 / 32, "q4_0": 18 / 32, "iq4_nl": 18 / 32}


@dataclass(frozen=True)
class DeviceMemory:
    """Bytes one device needs, by what they are for."""

    name: str
    weights: int = 0
    kv: int = 0
    compute: int = 0
    overhead: int = 0
    budget: int | None = None
    """What the device may use (VRAM budget or host RAM), when known."""
    draft: int = 0
    """A draft model's weights, KV and compute buffer on this device (speculative decoding)."""

    @property
    def total(self) -> int:
        return self.weights + self.kv + self.compute + self.overhead + self.draft

    @property
    def fits(self) -> bool:
        return self.budget is None or self.total <= self.budget


@dataclass(frozen=True)
class Calibration:
    """KV and compute sizes for one model and context settings, from a dry run or the formula."""

    kv_bytes_per_layer: int
    gpu_compute_all: int
    """Compute buffer of the GPU holding the output layer, all layers offloaded."""
    gpu_compute_partial: int
    """The same with only some layers offloaded (llama.cpp reserves a little more then)."""
    gpu_compute_none: int
    """Compute buffer on the GPU with 0 layers offloaded (llama.cpp still offloads big matmuls)."""
    host_compute: int
    source: str = "formula"
    """'dry-run' (llama.cpp itself) or 'formula' (no GPU build to ask)."""


@dataclass(frozen=True)
class MemoryEstimate:
    gpus: tuple[DeviceMemory, ...]
    host: DeviceMemory
    n_gpu_layers: int
    """Layers offloaded (output layer included), 0..n_layer+1."""
    layers_per_gpu: tuple[int, ...]
    source: str
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def fits(self) -> bool:
        return all(g.fits for g in self.gpus) and self.host.fits


@dataclass(frozen=True)
class DraftMemory:
    """What a draft model adds to the target's process: its weights, KV cache and compute buffer
    per GPU and on the host (no CUDA context of its own: it shares the target's)."""

    gpus: tuple[int, ...]
    host: int
    name: str = ""


def draft_memory(info: ModelInfo, draft_settings: LoadSettings, calibration: Calibration,
                 n_gpus: int) -> DraftMemory:
    e = estimate(info, draft_settings, calibration, MemoryBudget(gpus=(None,) * n_gpus), host_overhead=0)
    return DraftMemory(gpus=tuple(g.weights + g.kv + g.compute for g in e.gpus),
                       host=e.host.weights + e.host.kv + e.host.compute, name=info.name or info.path)


def padded_ctx(n_ctx: int, n_ctx_train: int) -> int:
    """llama.cpp's context size for a request: 0 means the trained one; padded to 256."""
    n = n_ctx or n_ctx_train or 4096
    return max(256, math.ceil(n / 256) * 256)


def offloaded_layers(n_gpu_layers: int, n_layer: int) -> int:
    return n_layer + 1 if n_gpu_layers == ALL_LAYERS else max(0, min(n_gpu_layers, n_layer + 1))


def cpu_experts(info: ModelInfo, s: LoadSettings, il: int) -> int:
    """Bytes of block il's expert tensors kept in host memory by s.n_cpu_moe."""
    if il < s.n_cpu_moe and il < len(info.block_expert_bytes):
        return info.block_expert_bytes[il]
    return 0


def layer_devices(n_layer: int, n_gpu_layers: int, n_gpus: int,
                  split: tuple[float, ...] = ()) -> list[int | None]:
    """The GPU index of each layer 0..n_layer (n_layer is the output layer), None for the CPU.

    The same rule as llama.cpp: the last `act` layers go to the GPUs; a layer's GPU is found
    from its position among them and the cumulative, normalised split."""
    act = offloaded_layers(n_gpu_layers, n_layer) if n_gpus > 0 else 0
    start = n_layer + 1 - act
    shares = list(split[:n_gpus]) if split and any(split[:n_gpus]) else [1.0] * n_gpus
    shares += [0.0] * (n_gpus - len(shares))
    total = sum(shares) or 1.0
    bounds, acc = [], 0.0
    for s in shares:
        acc += s
        bounds.append(acc / total)
    out: list[int | None] = []
    for il in range(n_layer + 1):
        if il < start or act == 0:
            out.append(None)
            continue
        pos = (il - start) / act
        gpu = next((i for i, b in enumerate(bounds) if pos < b), n_gpus - 1)
        out.append(gpu)
    return out


def formula_calibration(info: ModelInfo, s: LoadSettings) -> Calibration:
    """An approximation for when no GPU build of llama.cpp can be asked (fitted on H100 dry runs:
    within ~10 MiB of the compute buffer for Llama-3-8B/70B shapes with flash attention on)."""
    n_ctx = padded_ctx(s.n_ctx, info.n_ctx_train)
    per_layer = int(n_ctx * info.n_head_kv * (info.head_dim_k * KV_BYTES_PER_ELEMENT[s.type_k]
                                              + info.head_dim_v * KV_BYTES_PER_ELEMENT[s.type_v]))
    ub = min(s.n_ubatch, s.n_batch, n_ctx)
    logits = ub * info.n_vocab * 4
    scratch = ub * info.n_embd * 4 * 2
    attention = 0 if s.flash_attn == "on" else ub * n_ctx * info.n_head * 4
    gpu_all = logits + scratch + attention
    return Calibration(kv_bytes_per_layer=per_layer, gpu_compute_all=gpu_all,
                       gpu_compute_partial=gpu_all + scratch, gpu_compute_none=logits + info.output_bytes,
                       host_compute=ub * info.n_embd * 4 * 8 + attention, source="formula")


def estimate(info: ModelInfo, s: LoadSettings, calibration: Calibration, budget: MemoryBudget | None = None,
             host_overhead: int = 400 * MIB, draft: DraftMemory | None = None) -> MemoryEstimate:
    """Memory per GPU and on the host for `s` (and its draft model, if given), against `budget`,
    whose GPUs say how many there are (none: no budget, no GPU)."""
    budget = budget or MemoryBudget()
    gpu_budgets, gpu_overheads, host_budget = budget.gpus, budget.overheads, budget.host
    n_gpus = len(gpu_budgets)
    devices = layer_devices(info.n_layer, s.n_gpu_layers, n_gpus, s.tensor_split)
    weights = [0] * n_gpus
    layers = [0] * n_gpus
    kv = [0] * n_gpus
    host_weights = info.input_bytes
    host_kv = 0
    for il, dev in enumerate(devices):
        size = info.block_bytes[il] if il < info.n_layer else info.output_bytes
        if dev is None:
            host_weights += size
        else:
            experts = cpu_experts(info, s, il)  # --n-cpu-moe: this block's experts stay on the host
            weights[dev] += size - experts
            host_weights += experts
            layers[dev] += 1
        if il < info.n_layer:
            if dev is not None and s.offload_kqv:
                kv[dev] += calibration.kv_bytes_per_layer
            else:
                host_kv += calibration.kv_bytes_per_layer
    act = sum(layers)
    output_gpu = devices[info.n_layer]
    gpus = []
    for i in range(n_gpus):
        if act == 0:
            compute = calibration.gpu_compute_none if i == (s.main_gpu if s.main_gpu < n_gpus else 0) else 0
        elif layers[i] == 0:
            compute = 0
        elif act == info.n_layer + 1:
            compute = calibration.gpu_compute_all
        else:
            compute = calibration.gpu_compute_partial
        if act and i != output_gpu and layers[i]:
            compute = min(compute, calibration.gpu_compute_partial)
        overhead = gpu_overheads[i] if i < len(gpu_overheads) else gpu_overheads[-1] if gpu_overheads else 0
        drafted = draft.gpus[i] if draft is not None and i < len(draft.gpus) else 0
        gpus.append(DeviceMemory(name=f"GPU{i}", weights=weights[i], kv=kv[i], compute=compute,
                                 overhead=overhead, budget=gpu_budgets[i], draft=drafted))
    notes = []
    if n_gpus and not act:
        notes.append("no layers on the GPU: everything runs on the CPU")
    host = DeviceMemory(name="host", weights=host_weights, kv=host_kv,
                        compute=calibration.host_compute, overhead=host_overhead, budget=host_budget,
                        draft=draft.host if draft is not None else 0)
    return MemoryEstimate(gpus=tuple(gpus), host=host, n_gpu_layers=act,
                          layers_per_gpu=tuple(layers), source=calibration.source, notes=tuple(notes))


def rule_of_thumb(info: ModelInfo, n_gpu_layers: int, overhead: int = 512 * MIB) -> int:
    """What people estimate by hand: file size x layers / n_layer + a fixed overhead."""
    act = offloaded_layers(n_gpu_layers, info.n_layer)
    return int(info.file_size * min(act, info.n_layer) / max(1, info.n_layer)) + overhead
