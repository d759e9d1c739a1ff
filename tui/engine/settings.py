"""What a load and a chat request are asked to do: plain, validated, serialisable data.

These are the settings a user tunes. They cross the process boundary as dicts, are stored in
profiles as TOML tables, and are validated in one place so every front end says the same thing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

#: KV-cache element types llama.cpp accepts for K and V, by the names its CLI uses.
KV_TYPES: tuple[str, ...] = ("f16", "q8_0", "q5_1", "q5_0", "q4_1", "q4_0", "iq4_nl")
#: ggml_type ids of the cache types (what llama.cpp's C API and Llama(type_k=...) take).
GGML_TYPE_IDS = {"f32": 0, "f16": 1, "q4_0": 2, "q4_1": 3, "q5_0": 6, "q5_1": 7, "q8_0": 8,
                 "iq4_nl": 20, "bf16": 30}
FLASH_ATTN_MODES: tuple[str, ...] = ("auto", "on", "off")
SPLIT_MODES: tuple[str, ...] = ("layer", "row", "none")

#: n_gpu_layers value that means "every layer, and the output layer too".
ALL_LAYERS = -1

MAX_CTX = 1 << 21
MAX_LAYERS = 10_000
"""More blocks than any model has (users write 999 for "all"); a profile past it is damaged."""
MAX_GPUS = 64
MAX_STOP_STRINGS, MAX_STOP_CHARS = 16, 256
MAX_DRAFT = 64
"""Most tokens one speculative round may propose (llama.cpp's --draft-max goes to 16 by default)."""


class SettingsError(ValueError):
    """One or more settings are out of range; `problems` maps field name to a sentence."""

    def __init__(self, problems: dict[str, str]):
        self.problems = problems
        super().__init__("; ".join(f"{k}: {v}" for k, v in problems.items()))


@dataclass(frozen=True)
class LoadSettings:
    """How to load one GGUF model (the knobs of llama.cpp's model and context parameters)."""

    model_path: str
    n_gpu_layers: int = ALL_LAYERS
    """Blocks to put on the GPU, counted from the last one; -1 means all plus the output layer."""
    n_ctx: int = 4096
    n_batch: int = 2048
    n_ubatch: int = 512
    type_k: str = "f16"
    type_v: str = "f16"
    flash_attn: str = "auto"
    offload_kqv: bool = True
    use_mmap: bool = True
    use_mlock: bool = False
    n_threads: int | None = None
    """Generation threads; None lets vramdeck pick the number of physical cores."""
    n_threads_batch: int | None = None
    main_gpu: int = 0
    split_mode: str = "layer"
    tensor_split: tuple[float, ...] = ()
    """Proportions of the offloaded layers per GPU, e.g. (1.0, 1.0); empty means llama.cpp decides."""
    n_cpu_moe: int = 0
    """MoE models: keep the expert tensors of the first N blocks in host memory (llama.cpp's
    --n-cpu-moe); the rest of those blocks still goes where n_gpu_layers says."""
    draft_model_path: str = ""
    """Speculative decoding: a small model with the same vocabulary that proposes tokens for this
    one to check in a batch (llama.cpp's -md). Empty: no draft model."""
    draft_lookup: bool = False
    """Speculative decoding without a model: propose the tokens that followed the latest n-gram
    the last time it occurred in the conversation (prompt lookup). Not with a draft model."""
    draft_n_gpu_layers: int = ALL_LAYERS
    draft_n_ctx: int = 0
    """The draft's context; 0 means the same as the target's."""
    draft_type_k: str = "f16"
    draft_type_v: str = "f16"
    draft_max: int = 16
    """Most tokens proposed per round (--draft-max)."""
    draft_min: int = 0
    """A draft shorter than this is not checked at all (--draft-min)."""
    draft_p_min: float = 0.75
    """Stop drafting when the draft model gives its next token less than this probability
    (--draft-p-min): drafting further is likely wasted."""

    @property
    def speculative(self) -> str:
        """"model", "lookup" or "" (none)."""
        return "model" if self.draft_model_path else "lookup" if self.draft_lookup else ""

    def problems(self) -> dict[str, str]:
        """Every out-of-range value, as field -> sentence. Empty when the settings are usable."""
        p: dict[str, str] = {}
        if not self.model_path:
            p["model_path"] = "no model file given"
        if not ALL_LAYERS <= self.n_gpu_layers <= MAX_LAYERS:
            p["n_gpu_layers"] = f"must be -1 (all) or 0 to {MAX_LAYERS:,}, not {self.n_gpu_layers}"
        if not 0 <= self.n_ctx <= MAX_CTX:
            p["n_ctx"] = f"must be between 0 (the model's own) and {MAX_CTX}, not {self.n_ctx}"
        if not 1 <= self.n_batch <= MAX_CTX:
            p["n_batch"] = f"must be between 1 and {MAX_CTX}, not {self.n_batch}"
        if not 1 <= self.n_ubatch <= MAX_CTX:
            p["n_ubatch"] = f"must be between 1 and {MAX_CTX}, not {self.n_ubatch}"
        elif self.n_ubatch > self.n_batch:
            p["n_ubatch"] = f"({self.n_ubatch}) cannot exceed n_batch ({self.n_batch})"
        for name in ("type_k", "type_v"):
            if getattr(self, name) not in KV_TYPES:
                p[name] = f"must be one of {', '.join(KV_TYPES)}, not {getattr(self, name)!r}"
        if self.flash_attn not in FLASH_ATTN_MODES:
            p["flash_attn"] = f"must be one of {', '.join(FLASH_ATTN_MODES)}, not {self.flash_attn!r}"
        if self.split_mode not in SPLIT_MODES:
            p["split_mode"] = f"must be one of {', '.join(SPLIT_MODES)}, not {self.split_mode!r}"
        for name in ("n_threads", "n_threads_batch"):
            value = getattr(self, name)
            if value is not None and not 1 <= value <= 1024:
                p[name] = f"must be between 1 and 1024, not {value}"
        if not 0 <= self.n_cpu_moe <= MAX_LAYERS:
            p["n_cpu_moe"] = f"must be 0 to {MAX_LAYERS:,}, not {self.n_cpu_moe}"
        if not 0 <= self.main_gpu < MAX_GPUS:
            p["main_gpu"] = f"must be 0 to {MAX_GPUS - 1}, not {self.main_gpu}"
        if len(self.tensor_split) > MAX_GPUS:
            p["tensor_split"] = f"at most {MAX_GPUS} GPUs, not {len(self.tensor_split)}"
        elif not all(0 <= x < 1e9 for x in self.tensor_split):  # NaN and inf fail this too
            p["tensor_split"] = "proportions must be numbers from 0 up"
        elif self.tensor_split and sum(self.tensor_split) <= 0:
            p["tensor_split"] = "at least one GPU needs a share above 0"
        p.update(self._draft_problems())
        return p

    def _draft_problems(self) -> dict[str, str]:
        p: dict[str, str] = {}
        if self.draft_model_path and self.draft_lookup:
            p["draft_lookup"] = "prompt lookup and a draft model are two ways to draft: pick one"
        if not ALL_LAYERS <= self.draft_n_gpu_layers <= MAX_LAYERS:
            p["draft_n_gpu_layers"] = f"must be -1 (all) or 0 to {MAX_LAYERS:,}, not {self.draft_n_gpu_layers}"
        if not 0 <= self.draft_n_ctx <= MAX_CTX:
            p["draft_n_ctx"] = f"must be between 0 (the target's) and {MAX_CTX}, not {self.draft_n_ctx}"
        for name in ("draft_type_k", "draft_type_v"):
            if getattr(self, name) not in KV_TYPES:
                p[name] = f"must be one of {', '.join(KV_TYPES)}, not {getattr(self, name)!r}"
        if not 1 <= self.draft_max <= MAX_DRAFT:
            p["draft_max"] = f"must be between 1 and {MAX_DRAFT}, not {self.draft_max}"
        if not 0 <= self.draft_min <= self.draft_max:
            p["draft_min"] = f"must be between 0 and draft_max ({self.draft_max}), not {self.draft_min}"
        if not 0.0 <= self.draft_p_min <= 1.0:  # NaN fails this too
            p["draft_p_min"] = f"must be between 0 and 1, not {self.draft_p_min}"
        return p

    def draft_settings(self) -> "LoadSettings":
        """How to load the draft model: its own file, layers, context and KV type; the rest
        (batch, threads, flash attention, placement) as for the target."""
        return replace(self, model_path=self.draft_model_path, n_gpu_layers=self.draft_n_gpu_layers,
                       n_ctx=self.draft_n_ctx or self.n_ctx, type_k=self.draft_type_k,
                       type_v=self.draft_type_v, n_cpu_moe=0, draft_model_path="",
                       draft_lookup=False)

    def without_draft(self) -> "LoadSettings":
        return replace(self, draft_model_path="", draft_lookup=False)

    def validated(self) -> "LoadSettings":
        """Return self, or raise SettingsError naming every bad field."""
        problems = self.problems()
        if problems:
            raise SettingsError(problems)
        return self

    def with_changes(self, **changes: Any) -> "LoadSettings":
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["tensor_split"] = list(self.tensor_split)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "LoadSettings":
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        if "tensor_split" in kwargs:
            kwargs["tensor_split"] = tuple(float(x) for x in kwargs["tensor_split"] or ())
        return cls(**kwargs)


@dataclass(frozen=True)
class SamplingSettings:
    """How to pick each next token. temperature <= 0 means greedy (deterministic)."""

    temperature: float = 0.7
    top_p: float = 0.95
    top_k: int = 40
    min_p: float = 0.05
    repeat_penalty: float = 1.0
    repeat_last_n: int = 64
    max_tokens: int = 1024
    seed: int = -1
    """-1 picks a fresh random seed per request."""
    stop: tuple[str, ...] = field(default_factory=tuple)

    def problems(self) -> dict[str, str]:
        p: dict[str, str] = {}
        if not 0.0 <= self.temperature <= 5.0:
            p["temperature"] = f"must be between 0 and 5, not {self.temperature}"
        if not 0.0 < self.top_p <= 1.0:
            p["top_p"] = f"must be above 0 and at most 1, not {self.top_p}"
        if not 0 <= self.top_k <= 1 << 20:
            p["top_k"] = f"must be 0 (off) to {1 << 20}, not {self.top_k}"
        if not 0.0 <= self.min_p < 1.0:
            p["min_p"] = f"must be at least 0 and below 1, not {self.min_p}"
        if not 0.0 < self.repeat_penalty <= 5.0:
            p["repeat_penalty"] = f"must be above 0 and at most 5, not {self.repeat_penalty}"
        if not -1 <= self.repeat_last_n <= MAX_CTX:
            p["repeat_last_n"] = f"must be -1 (the whole context) to {MAX_CTX}, not {self.repeat_last_n}"
        if not 1 <= self.max_tokens <= MAX_CTX:
            p["max_tokens"] = f"must be between 1 and {MAX_CTX}, not {self.max_tokens}"
        if not -1 <= self.seed < 1 << 32:
            p["seed"] = f"must be -1 (random) or 0 to {(1 << 32) - 1}, not {self.seed}"
        if any(not s for s in self.stop):
            p["stop"] = "stop strings cannot be empty"
        elif len(self.stop) > MAX_STOP_STRINGS or any(len(s) > MAX_STOP_CHARS for s in self.stop):
            p["stop"] = f"at most {MAX_STOP_STRINGS} stop strings of {MAX_STOP_CHARS} characters"
        return p

    def validated(self) -> "SamplingSettings":
        problems = self.problems()
        if problems:
            raise SettingsError(problems)
        return self

    def with_max_tokens(self, n: int) -> "SamplingSettings":
        return replace(self, max_tokens=n).validated()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["stop"] = list(self.stop)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SamplingSettings":
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        if "stop" in kwargs:
            kwargs["stop"] = tuple(kwargs["stop"] or ())
        return cls(**kwargs)


def compact(s: LoadSettings, n_layer: int | None = None) -> str:
    """The settings that matter most for memory and speed, in a few characters (table cells,
    messages): `40/81 8k f16 fa-auto ub512`."""
    kv = s.type_k if s.type_k == s.type_v else f"{s.type_k}/{s.type_v}"
    ctx = f"{s.n_ctx // 1024}k" if s.n_ctx % 1024 == 0 else f"{s.n_ctx}"
    split = f" ts {':'.join(f'{x:g}' for x in s.tensor_split)}" if s.tensor_split else ""
    total = f"/{n_layer + 1}" if n_layer else ""
    layers = f"all{total}" if s.n_gpu_layers == ALL_LAYERS else f"{s.n_gpu_layers}{total}"
    draft = ""
    if s.draft_model_path:
        dl = "all" if s.draft_n_gpu_layers == ALL_LAYERS else str(s.draft_n_gpu_layers)
        draft = f" +draft {dl} d{s.draft_max}"
    elif s.draft_lookup:
        draft = f" +lookup d{s.draft_max}"
    return f"{layers} {ctx} {kv} fa-{s.flash_attn} ub{s.n_ubatch}{split}{draft}"
