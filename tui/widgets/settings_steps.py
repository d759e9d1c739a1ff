"""The Tuner's keyboard steps over LoadSettings: one key press, one valid new value, and how
each setting is shown in its table."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tui.engine.settings import ALL_LAYERS, FLASH_ATTN_MODES, KV_TYPES, LoadSettings


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    help: str


HELP_WIDTH = 44
"""A row's help is the settings box's subtitle: at 80x24 the box shows 44 characters of it."""

FIELDS: tuple[Field, ...] = (
    Field("n_gpu_layers", "GPU layers", "layers on the GPU; all = blocks + output"),
    Field("n_ctx", "context", "context tokens (KV cache grows with it)"),
    Field("type_k", "KV type K", "element type of the K cache"),
    Field("type_v", "KV type V", "V cache type (quantized V needs flash attn)"),
    Field("flash_attn", "flash attention", "auto lets llama.cpp decide"),
    Field("n_batch", "n_batch", "logical batch for prompt processing"),
    Field("n_ubatch", "n_ubatch", "physical batch: compute buffer grows with it"),
    Field("n_threads", "threads", "generation threads (auto = physical cores)"),
    Field("offload_kqv", "KV on GPU", "KV cache of offloaded layers on the GPU"),
    Field("use_mmap", "mmap", "map the file instead of reading it"),
    Field("use_mlock", "mlock", "lock the model in RAM (needs ulimit -l)"),
)

GPU_ONLY = ("n_gpu_layers", "offload_kqv")
"""Rows that mean nothing without a GPU to offload to."""
THREADS_BATCH_FIELD = Field("n_threads_batch", "batch threads", "prompt threads (auto = every core)")

MOE_FIELDS: tuple[Field, ...] = (
    Field("n_cpu_moe", "experts on CPU", "MoE: experts of the first N blocks in RAM"),
)

GPU_FIELDS: tuple[Field, ...] = (
    Field("tensor_split", "tensor split", "share per GPU; auto = by free memory"),
    Field("main_gpu", "main GPU", "GPU for the output layer and scratch buffers"),
)

SPECULATIVE_FIELD = Field("speculative", "speculative",
                          "draft, then check in a batch; d: draft file")
DRAFT_FIELDS: tuple[Field, ...] = (
    Field("draft_n_gpu_layers", "draft layers", "draft blocks on the GPU (cost target layers)"),
)
DRAFT_LENGTH_FIELDS: tuple[Field, ...] = (
    Field("draft_max", "draft max", "most tokens drafted per round (--draft-max)"),
    Field("draft_min", "draft min", "a shorter draft is not checked (--draft-min)"),
)
DRAFT_MAX_STEPS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)

SPLIT_PRESETS: tuple[tuple[float, ...], ...] = ((), (1.0, 1.0), (2.0, 1.0), (1.0, 2.0), (3.0, 1.0),
                                                 (1.0, 3.0), (3.0, 2.0), (2.0, 3.0))


def fields_for(n_gpus: int, moe: bool = False, speculative: str = "", cpu_only: bool = False) -> tuple[Field, ...]:
    """The rows of the settings form: the split rows only when there are several GPUs, the
    experts row only for a mixture-of-experts model, the draft's rows only while drafting. With
    no GPU to offload to (`cpu_only`), no GPU rows ("GPU layers all/31" read as if they applied)
    and the batch threads, which matter there."""
    draft = ((SPECULATIVE_FIELD,) + (DRAFT_FIELDS if speculative == "model" else ())
             + (DRAFT_LENGTH_FIELDS if speculative else ()))
    if cpu_only:
        base: tuple[Field, ...] = ()
        for f in FIELDS:
            if f.name not in GPU_ONLY:
                base += (f, THREADS_BATCH_FIELD) if f.name == "n_threads" else (f,)
        return base + tuple(f for f in draft if f.name != "draft_n_gpu_layers")
    return FIELDS + (MOE_FIELDS if moe else ()) + (GPU_FIELDS if n_gpus > 1 else ()) + draft


def _cycle(options: tuple[str, ...], current: str, direction: int) -> str:
    i = options.index(current) if current in options else 0
    return options[(i + direction) % len(options)]


def _pow2(value: int, direction: int, low: int, high: int) -> int:
    """The next power of two up or down from `value`, within [low, high]."""
    if value & (value - 1) == 0:
        new = value * 2 if direction > 0 else value // 2
    else:
        below = 1 << (value.bit_length() - 1)
        new = below * 2 if direction > 0 else below
    return max(low, min(high, new))


def step(s: LoadSettings, name: str, direction: int, n_layer: int | None, big: bool = False,
         n_gpus: int = 1) -> LoadSettings:
    """`direction` is +1 or -1; `big` is PgUp/PgDn (several layers at once)."""
    if name == "n_gpu_layers":
        top = (n_layer + 1) if n_layer else 999
        current = top if s.n_gpu_layers == ALL_LAYERS else min(s.n_gpu_layers, top)
        new = max(0, min(top, current + direction * (max(1, top // 8) if big else 1)))
        return s.with_changes(n_gpu_layers=ALL_LAYERS if new >= top else new)
    if name == "n_ctx":
        return s.with_changes(n_ctx=_pow2(s.n_ctx or 4096, direction, 256, 1 << 20))
    if name in ("type_k", "type_v"):
        return s.with_changes(**{name: _cycle(KV_TYPES, getattr(s, name), direction)})
    if name == "flash_attn":
        return s.with_changes(flash_attn=_cycle(FLASH_ATTN_MODES, s.flash_attn, direction))
    if name == "n_batch":
        n_batch = _pow2(s.n_batch, direction, 32, 8192)
        return s.with_changes(n_batch=n_batch, n_ubatch=min(s.n_ubatch, n_batch))
    if name == "n_ubatch":
        return s.with_changes(n_ubatch=min(s.n_batch, _pow2(s.n_ubatch, direction, 32, 8192)))
    if name in ("n_threads", "n_threads_batch"):
        value = (getattr(s, name) or 0) + direction
        return s.with_changes(**{name: None if value <= 0 else min(value, 256)})
    if name in ("offload_kqv", "use_mmap", "use_mlock"):
        return s.with_changes(**{name: not getattr(s, name)})
    if name == "tensor_split":
        presets = SPLIT_PRESETS if n_gpus == 2 else ((), tuple(1.0 for _ in range(max(1, n_gpus))))
        i = presets.index(s.tensor_split) if s.tensor_split in presets else 0
        return s.with_changes(tensor_split=presets[(i + direction) % len(presets)])
    if name == "n_cpu_moe":
        top = n_layer or 999
        return s.with_changes(n_cpu_moe=max(0, min(top, s.n_cpu_moe + direction * (
            max(1, top // 8) if big else 1))))
    if name == "main_gpu":
        return s.with_changes(main_gpu=(s.main_gpu + direction) % max(1, n_gpus))
    if name == "speculative":  # off <-> prompt lookup; a draft model comes from its file (d)
        if s.speculative:
            return s.without_draft()
        return s.with_changes(draft_lookup=True)
    if name == "draft_n_gpu_layers":
        top = 999
        current = top if s.draft_n_gpu_layers == ALL_LAYERS else s.draft_n_gpu_layers
        new = max(0, min(top, current + direction * (8 if big else 1)))
        if s.draft_n_gpu_layers == ALL_LAYERS and direction < 0:
            new = 0  # from all, one step down means none: the draft is small, so all or none
        return s.with_changes(draft_n_gpu_layers=ALL_LAYERS if new >= top else new)
    if name == "draft_max":
        i = min(range(len(DRAFT_MAX_STEPS)), key=lambda j: abs(DRAFT_MAX_STEPS[j] - s.draft_max))
        new = DRAFT_MAX_STEPS[max(0, min(len(DRAFT_MAX_STEPS) - 1, i + direction))]
        return s.with_changes(draft_max=new, draft_min=min(s.draft_min, new))
    if name == "draft_min":
        return s.with_changes(draft_min=max(0, min(s.draft_max, s.draft_min + direction)))
    raise KeyError(name)


def show(s: LoadSettings, name: str, n_layer: int | None) -> str:
    if name == "speculative":
        if s.draft_model_path:
            return Path(s.draft_model_path).name
        return "prompt lookup" if s.draft_lookup else "off"
    if name == "draft_n_gpu_layers":
        return "all" if s.draft_n_gpu_layers == ALL_LAYERS else str(s.draft_n_gpu_layers)
    value = getattr(s, name)
    if name == "n_gpu_layers":
        total = f"/{n_layer + 1}" if n_layer else ""
        return f"all{total}" if value == ALL_LAYERS else f"{value}{total}"
    if name in ("n_threads", "n_threads_batch"):
        return "auto" if value is None else str(value)
    if name == "tensor_split":
        return ":".join(f"{x:g}" for x in value) if value else "auto"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
