"""Pre-load checks: settings llama.cpp would refuse, or that would work badly, said in words
before anything is loaded. Each check is a small pure function of the model, the settings and
the machine, so each can be tested with a crafted setting."""

from __future__ import annotations

import resource
from dataclasses import dataclass

import psutil

from tui.engine.settings import LoadSettings
from tui.fit.estimate import layer_devices
from tui.models.gguf_tables import GGML_QUANT_SIZES, GGMLQuantizationType
from tui.models.model_info import ModelInfo


def values_per_block(type_name: str) -> int:
    """How many values a ggml type packs in one block (1 for f16; 32 for q8_0 and q4_0)."""
    return GGML_QUANT_SIZES[GGMLQuantizationType[type_name.upper()]][0]


@dataclass(frozen=True)
class Check:
    level: str
    """"error": llama.cpp would refuse or fail; "warning": it would load, but not as you want."""
    message: str


@dataclass(frozen=True)
class Machine:
    n_gpus: int
    gpu_offload: bool | None
    """Whether the llama.cpp build can offload (None: not known yet)."""
    physical_cores: int
    memlock_limit: int | None
    """RLIMIT_MEMLOCK soft limit in bytes; None for unlimited."""


def this_machine(n_gpus: int, gpu_offload: bool | None) -> Machine:
    soft, _ = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    return Machine(n_gpus=n_gpus, gpu_offload=gpu_offload,
                   physical_cores=psutil.cpu_count(logical=False) or 1,
                   memlock_limit=None if soft == resource.RLIM_INFINITY else soft)


def preload_checks(info: ModelInfo, s: LoadSettings, m: Machine) -> list[Check]:
    out: list[Check] = []
    if s.type_v != "f16" and s.flash_attn == "off":
        out.append(Check("error", f"A quantized V cache ({s.type_v}) needs flash attention, which "
                                  "is off: llama.cpp refuses the context. Turn flash attention on "
                                  "(x) or use an f16 V cache."))
    elif s.type_v != "f16" and s.flash_attn == "auto":
        out.append(Check("warning", f"A quantized V cache ({s.type_v}) needs flash attention; "
                                    "'auto' must turn it on or the load fails. Set it on (x)."))
    for which, kv, dim in (("K", s.type_k, info.head_dim_k), ("V", s.type_v, info.head_dim_v)):
        block = values_per_block(kv)
        if dim and dim % block:
            out.append(Check("error", f"The {which} cache type {kv} packs {block} values a block, "
                                      f"but this model's heads are {dim} wide: use f16 or another "
                                      "type."))
    if info.n_ctx_train and s.n_ctx > info.n_ctx_train:
        out.append(Check("warning", f"Context {s.n_ctx:,} is above what the model was trained on "
                                    f"({info.n_ctx_train:,}): replies past that will degrade."))
    if s.n_ubatch > s.n_batch:
        out.append(Check("warning", f"n_ubatch {s.n_ubatch} is above n_batch {s.n_batch}; "
                                    f"llama.cpp will use {s.n_batch}."))
    if s.n_threads and s.n_threads > m.physical_cores:
        out.append(Check("warning", f"{s.n_threads} threads on {m.physical_cores} physical cores: "
                                    "more threads than cores slows generation down."))
    if s.use_mlock and m.memlock_limit is not None and m.memlock_limit < info.tensor_bytes:
        out.append(Check("warning", f"mlock asks to lock {info.tensor_bytes / 2**30:.1f} GiB but "
                                    f"the memory-lock limit is {m.memlock_limit / 2**20:.0f} MiB "
                                    "(ulimit -l): the lock will fail. Raise the limit or turn "
                                    "mlock off."))
    if m.n_gpus > 1:
        devices = layer_devices(info.n_layer, s.n_gpu_layers, m.n_gpus, s.tensor_split)
        offloaded = any(d is not None for d in devices)
        empty = [i for i in range(m.n_gpus) if i not in devices]
        if offloaded and empty:
            out.append(Check("warning", f"The split {':'.join(f'{x:g}' for x in s.tensor_split) or 'auto'} "
                                        f"leaves GPU{', GPU'.join(map(str, empty))} without a layer."))
        if s.main_gpu >= m.n_gpus:
            out.append(Check("error", f"main GPU {s.main_gpu} does not exist ({m.n_gpus} GPUs)."))
    if m.gpu_offload is False and m.n_gpus > 0 and s.n_gpu_layers != 0:
        out.append(Check("warning", "This llama.cpp build is CPU-only, so every layer runs on the "
                                    "CPU whatever n_gpu_layers says; reinstall it with CUDA."))
    return out
