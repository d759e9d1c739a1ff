"""The messages between the UI process and the engine process: the only engine types the UI sees.

One JSON object per line, each with a "type". The engine writes on a private pipe (not stdout, which
llama.cpp and its libraries may print to); the UI writes commands to the engine's stdin.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import statistics
import types
import typing
from dataclasses import asdict, dataclass, field, fields
from enum import Enum
from typing import Any, ClassVar


class FailureKind(str, Enum):
    """Why a load did not give a usable model. Each has a sentence a user understands (see errors.py)."""

    MISSING = "missing"
    NOT_GGUF = "not_gguf"
    CORRUPT = "corrupt"
    UNSUPPORTED_ARCH = "unsupported_arch"
    OOM_DEVICE = "oom_device"
    OOM_HOST = "oom_host"
    BAD_SETTINGS = "bad_settings"
    CRASHED = "crashed"
    STALLED = "stalled"
    OTHER = "other"


_REGISTRY: dict[str, type["Message"]] = {}


@dataclass(frozen=True)
class Message:
    """Base of every wire message; subclasses set TYPE and are registered for decoding."""

    TYPE: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.TYPE:
            _REGISTRY[cls.TYPE] = cls

    def to_wire(self) -> bytes:
        return (json.dumps({"type": self.TYPE, **asdict(self)}, ensure_ascii=False) + "\n").encode()


def decode(line: bytes | str) -> Message:
    """Parse one wire line. Raises ValueError on anything that is not a known message."""
    data = json.loads(line)
    if not isinstance(data, dict) or data.get("type") not in _REGISTRY:
        raise ValueError(f"not an engine message: {str(line)[:200]}")
    cls = _REGISTRY[data.pop("type")]
    return _build(cls, data)


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _convert(hint: Any, value: Any) -> Any:
    """A JSON value as the type its field is annotated with: tuples (of tuples), nested
    dataclasses and enums come back as themselves, so a decoded message equals (and hashes like)
    the one that was sent."""
    if value is None or hint is Any:
        return value
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        for arg in args:
            if arg is not type(None):
                return _convert(arg, value)
        return value
    if dataclasses.is_dataclass(hint) and isinstance(value, dict):
        return _build(hint, value)  # type: ignore[arg-type]
    if isinstance(hint, type) and issubclass(hint, Enum):
        return hint(value)
    if origin is tuple and isinstance(value, list):
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v) for v in value)
        return tuple(_convert(a, v) for a, v in zip(args, value, strict=False))
    return value


def _build(cls: type, data: dict[str, Any]) -> Any:
    hints = _hints(cls)
    known = {f.name for f in fields(cls)}
    return cls(**{name: _convert(hints.get(name, Any), value)
                  for name, value in data.items() if name in known})


# ---------------------------------------------------------------- commands (UI -> engine)

@dataclass(frozen=True)
class LoadCommand(Message):
    TYPE: ClassVar[str] = "load"
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ChatCommand(Message):
    TYPE: ClassVar[str] = "chat"
    request_id: int = 0
    messages: tuple[dict[str, str], ...] = ()
    sampling: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CancelCommand(Message):
    TYPE: ClassVar[str] = "cancel"
    request_id: int = 0


@dataclass(frozen=True)
class BenchCommand(Message):
    TYPE: ClassVar[str] = "bench"
    request_id: int = 0
    n_prompt: int = 512
    n_gen: int = 128
    repetitions: int = 3
    depths: tuple[int, ...] = ()
    """If given: generation speed at each of these context depths instead of pp/tg."""


@dataclass(frozen=True)
class DraftBenchCommand(Message):
    """Generation speed with the loaded draft (or prompt lookup) and without it, interleaved in
    one run: greedy replies of n_gen tokens to `prompt`."""

    TYPE: ClassVar[str] = "draft_bench"
    request_id: int = 0
    prompt: str = ""
    n_gen: int = 128
    repetitions: int = 3
    forced_acceptance: float = -1.0
    """0..1: accept each drafted token with this probability whatever the target says (the
    text is then nonsense, the speed is that of this acceptance rate); below 0: the real rule."""


@dataclass(frozen=True)
class PerplexityCommand(Message):
    TYPE: ClassVar[str] = "perplexity"
    request_id: int = 0
    text: str = ""
    chunk: int = 512


@dataclass(frozen=True)
class TopKCommand(Message):
    """The loaded model as a KL-divergence reference: at every position perplexity scores in
    `text`, its k most likely next tokens and m tokens drawn from the rest (see host/kld.py)."""

    TYPE: ClassVar[str] = "top_k"
    request_id: int = 0
    text: str = ""
    chunk: int = 512
    k: int = 64
    m: int = 64


@dataclass(frozen=True)
class PackedReference:
    """A KL-divergence reference's distributions on the wire, arrays packed by
    tui.quality.arrays: tokens (i4 [n]: the text as it read it), ids and logprobs (i4, f4
    [positions, k]: its top k), rest_logp (f8 [positions]: the rest's log-probability),
    tail_ids and tail_logprobs (i4, f4 [positions, m]: tokens drawn from the rest)."""

    n_vocab: int = 0
    chunk: int = 512
    tokens: str = ""
    ids: str = ""
    logprobs: str = ""
    rest_logp: str = ""
    tail_ids: str = ""
    tail_logprobs: str = ""


@dataclass(frozen=True)
class KldCommand(Message):
    """The loaded model against a reference's distributions (from a TopKResult): per-token KL
    divergence, negative log-likelihood and same-top-token."""

    TYPE: ClassVar[str] = "kld"
    request_id: int = 0
    text: str = ""
    reference: PackedReference = field(default_factory=PackedReference)


@dataclass(frozen=True)
class ShutdownCommand(Message):
    TYPE: ClassVar[str] = "shutdown"


# ---------------------------------------------------------------- events (engine -> UI)

@dataclass(frozen=True)
class Hello(Message):
    """First message of every engine: what this llama.cpp build can do."""

    TYPE: ClassVar[str] = "hello"
    pid: int = 0
    llama_cpp_version: str = ""
    gpu_offload: bool = False
    """False on a CPU-only build of llama.cpp: n_gpu_layers is then ignored."""
    devices: tuple[str, ...] = ()


@dataclass(frozen=True)
class LogLine(Message):
    TYPE: ClassVar[str] = "log"
    level: str = "info"
    text: str = ""


@dataclass(frozen=True)
class LoadProgress(Message):
    TYPE: ClassVar[str] = "progress"
    fraction: float = 0.0


@dataclass(frozen=True)
class ModelFacts:
    """What a loaded model is, and what loading it cost on this machine."""

    path: str = ""
    name: str = ""
    architecture: str = ""
    n_layer: int = 0
    n_params: int = 0
    size_bytes: int = 0
    quant: str = ""
    n_ctx: int = 0
    n_ctx_train: int = 0
    has_chat_template: bool = False
    layers_offloaded: int = 0
    layers_total: int = 0
    load_seconds: float = 0.0
    vram_bytes_per_gpu: tuple[int, ...] = ()
    """Measured by NVML for the engine process, one entry per GPU; empty where NVML cannot say."""
    rss_bytes: int = 0
    kv_type_k: str = "f16"
    kv_type_v: str = "f16"
    flash_attn: str = "auto"
    buffers: dict = field(default_factory=dict)
    """What llama.cpp logged it allocated: {kind: {device: bytes}}, kind in model/kv/compute."""
    speculative: str = ""
    """"model" (a draft model is loaded), "lookup" (prompt lookup) or "" (none)."""
    draft_path: str = ""
    draft_name: str = ""
    draft_quant: str = ""
    draft_size_bytes: int = 0
    draft_layers_offloaded: int = 0
    draft_layers_total: int = 0
    draft_n_ctx: int = 0
    draft_buffers: dict = field(default_factory=dict)
    draft_problem: str = ""
    """Why the draft asked for is not used (missing, damaged, another vocabulary, no room): the
    target is loaded and works without it."""


@dataclass(frozen=True)
class Loaded(Message):
    TYPE: ClassVar[str] = "loaded"
    facts: ModelFacts = field(default_factory=ModelFacts)


@dataclass(frozen=True)
class LoadFailed(Message):
    """Why a load gave no model: the kind and llama.cpp's (or vramdeck's) own line. The UI words
    it, once, with tui.engine.errors.failure_text."""

    TYPE: ClassVar[str] = "load_failed"
    kind: str = FailureKind.OTHER.value
    detail: str = ""
    log_tail: tuple[str, ...] = ()


@dataclass(frozen=True)
class Unloaded(Message):
    TYPE: ClassVar[str] = "unloaded"


@dataclass(frozen=True)
class TextPiece(Message):
    TYPE: ClassVar[str] = "piece"
    request_id: int = 0
    text: str = ""
    tokens: int = 1
    """Tokens generated for this piece (pieces coalesce up to 15 ms of tokens)."""
    sent_at: float = 0.0
    """time.monotonic() in the engine when the piece was sent (one clock for all processes on
    Linux), so a client can tell its own delay from the engine's pace."""


@dataclass(frozen=True)
class PromptProgress(Message):
    """How much of a long prompt is in the KV cache so far (sent after each n_batch chunk)."""

    TYPE: ClassVar[str] = "prompt_progress"
    request_id: int = 0
    done: int = 0
    total: int = 0
    tokens_per_s: float = 0.0


@dataclass(frozen=True)
class PromptProcessed(Message):
    """The prompt of a request is in the KV cache; generation starts now."""

    TYPE: ClassVar[str] = "prompt_done"
    request_id: int = 0
    prompt_tokens: int = 0
    """Tokens of the prompt evaluated now (the rest came from the cache of earlier turns)."""
    tokens_per_s: float = 0.0


@dataclass(frozen=True)
class ChatStats:
    """Figures for one reply: prompt speed from llama.cpp's own counters, generation speed by the
    clock from the first token on (with a draft, the counters also count the rejected tokens)."""

    prompt_tokens: int = 0
    generated_tokens: int = 0
    time_to_first_token_s: float = 0.0
    prompt_tokens_per_s: float = 0.0
    generation_tokens_per_s: float = 0.0
    stop_reason: str = ""
    """eos, stop (a stop string), length (max_tokens), context (n_ctx full) or cancelled."""
    context_used: int = 0
    n_ctx: int = 0
    speculative: str = ""
    """How tokens were drafted: "model", "lookup" or "" (no speculative decoding)."""
    draft_rounds: int = 0
    """Target batches that checked a draft."""
    drafted_tokens: int = 0
    accepted_tokens: int = 0
    target_alone_tokens_per_s: float = 0.0
    """Speed of this reply's target steps that had no draft to check (0: too few to say)."""

    @property
    def acceptance(self) -> float | None:
        return self.accepted_tokens / self.drafted_tokens if self.drafted_tokens else None


@dataclass(frozen=True)
class ChatDone(Message):
    TYPE: ClassVar[str] = "chat_done"
    request_id: int = 0
    stats: ChatStats = field(default_factory=ChatStats)


@dataclass(frozen=True)
class ChatFailed(Message):
    TYPE: ClassVar[str] = "chat_failed"
    request_id: int = 0
    message: str = ""
    reason: str = ""
    """"prompt_too_long" when the conversation no longer fits the context; empty otherwise."""


@dataclass(frozen=True)
class BenchResult(Message):
    """pp and tg like llama-bench: tokens per second of each repetition, after one warm-up."""

    TYPE: ClassVar[str] = "bench_result"
    request_id: int = 0
    n_prompt: int = 0
    n_gen: int = 0
    pp_tokens_per_s: tuple[float, ...] = ()
    tg_tokens_per_s: tuple[float, ...] = ()
    depth_tg: tuple[tuple[int, float], ...] = ()
    """(depth, mean tg tok/s) for a depth benchmark."""
    depth_runs: tuple[tuple[float, ...], ...] = ()
    """Each depth's runs (tok/s), in the order of depth_tg."""

    def depth_figures(self) -> list[tuple[int, float, float, int]]:
        """(depth, mean, standard deviation, runs) of each depth."""
        out = []
        for i, (depth, mean) in enumerate(self.depth_tg):
            runs = self.depth_runs[i] if i < len(self.depth_runs) else (mean,)
            sd = statistics.stdev(runs) if len(runs) > 1 else 0.0
            out.append((depth, mean, sd, len(runs)))
        return out


@dataclass(frozen=True)
class DraftBenchResult(Message):
    TYPE: ClassVar[str] = "draft_bench_result"
    request_id: int = 0
    n_gen: int = 0
    speculative: str = ""
    alone_tokens_per_s: tuple[float, ...] = ()
    draft_tokens_per_s: tuple[float, ...] = ()
    drafted_tokens: int = 0
    accepted_tokens: int = 0
    forced_acceptance: float = -1.0


@dataclass(frozen=True)
class PerplexityResult(Message):
    TYPE: ClassVar[str] = "perplexity_result"
    request_id: int = 0
    perplexity: float = 0.0
    tokens: int = 0
    """Tokens scored."""


@dataclass(frozen=True)
class TopKResult(Message):
    """The loaded model as a reference, and its nll (f8 [positions]: -log p of each actual next
    token), packed."""

    TYPE: ClassVar[str] = "top_k_result"
    request_id: int = 0
    reference: PackedReference = field(default_factory=PackedReference)
    nll: str = ""


@dataclass(frozen=True)
class KldResult(Message):
    """Per scored position, packed: kld and nll (f8), same_top (u1)."""

    TYPE: ClassVar[str] = "kld_result"
    request_id: int = 0
    kld: str = ""
    nll: str = ""
    same_top: str = ""


@dataclass(frozen=True)
class CommandFailed(Message):
    """A command the engine could not act on (wrong state, malformed); the engine carries on."""

    TYPE: ClassVar[str] = "command_failed"
    request_id: int = 0
    message: str = ""


HEARTBEAT_S = 1.0


@dataclass(frozen=True)
class Heartbeat(Message):
    """Sent every second by a thread of the engine, whatever its main thread is doing: silence
    means the process is stopped or wedged; `busy_s` says how long the command under way has
    gone without sending anything (a driver call that never returns)."""

    TYPE: ClassVar[str] = "heartbeat"
    busy_s: float = 0.0


# ---------------------------------------------------------------- client-side only

@dataclass(frozen=True)
class EngineCrashed:
    """The engine process ended without being asked to (segfault, abort, kill, OOM killer)."""

    returncode: int | None
    signal_name: str | None
    log_tail: tuple[str, ...]

    def describe(self) -> str:
        if self.signal_name:
            how = f"was killed by {self.signal_name}"
            if self.signal_name == "SIGKILL":
                how += " (often the kernel's out-of-memory killer)"
        else:
            how = f"exited with code {self.returncode}"
        return f"The engine process {how}."


@dataclass(frozen=True)
class EngineStalled:
    """The engine process is alive but has stopped making progress (SIGSTOP, a wedged driver):
    the request waiting on it ends with this, and the app offers to restart the engine."""

    seconds: float
    stopped: bool
    """The process is in the stopped state (SIGSTOP, a debugger), not merely slow."""

    def describe(self) -> str:
        if self.stopped:
            return (f"The engine process is stopped (SIGSTOP or a debugger) and has not answered "
                    f"for {self.seconds:.0f} s.")
        return f"The engine has made no progress for {self.seconds:.0f} s (a wedged GPU driver?)."
