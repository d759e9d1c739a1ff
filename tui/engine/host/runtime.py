"""Load a model and its context with llama.cpp's C API, and free them again.

The low-level API rather than `llama_cpp.Llama`: it gives the load progress callback, flash
attention on/off/auto, the load mode (mmap/mlock) and llama.cpp's own performance counters.
"""
# pyright: reportArgumentType=false, reportAttributeAccessIssue=false, reportOptionalMemberAccess=false
# (C bindings through ctypes: handles travel as plain ints and the stubs do not say so)

from __future__ import annotations

import ctypes
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

import llama_cpp as L
import psutil

from tui.engine.settings import ALL_LAYERS, GGML_TYPE_IDS, LoadSettings
from tui.models.gguf_info import GgufHeader, file_type_name

FLASH_ATTN = {"auto": L.LLAMA_FLASH_ATTN_TYPE_AUTO, "on": L.LLAMA_FLASH_ATTN_TYPE_ENABLED,
              "off": L.LLAMA_FLASH_ATTN_TYPE_DISABLED}
SPLIT = {"none": L.LLAMA_SPLIT_MODE_NONE, "layer": L.LLAMA_SPLIT_MODE_LAYER,
         "row": L.LLAMA_SPLIT_MODE_ROW}
_OFFLOADED = re.compile(r"offloaded (-?\d+)/(\d+) layers to GPU")


class LoadError(Exception):
    """llama.cpp returned no model or no context; the log says why."""


def physical_cores() -> int:
    return psutil.cpu_count(logical=False) or os.cpu_count() or 1


def _load_mode(s: LoadSettings) -> int:
    if s.use_mmap and s.use_mlock:
        return L.LLAMA_LOAD_MODE_MMAP_MLOCK
    if s.use_mmap:
        return L.LLAMA_LOAD_MODE_MMAP
    if s.use_mlock:
        return L.LLAMA_LOAD_MODE_MLOCK
    return L.LLAMA_LOAD_MODE_NONE


class _BuftOverride(ctypes.Structure):
    """llama.cpp's struct llama_model_tensor_buft_override {const char *pattern; buft}."""
    _fields_ = [("pattern", ctypes.c_char_p), ("buft", ctypes.c_void_p)]


def _cpu_buffer_type() -> int:
    lib = ctypes.CDLL(os.path.join(os.path.dirname(L.__file__), "lib", "libggml-base.so"))
    fn = lib.ggml_backend_cpu_buffer_type
    fn.restype = ctypes.c_void_p
    return fn()


def expert_patterns(n_cpu_moe: int) -> list[str]:
    """The tensor-name patterns llama.cpp's --n-cpu-moe N keeps on the CPU."""
    return [rf"blk\.{i}\.ffn_(up|down|gate|gate_up)_(ch|)exps" for i in range(n_cpu_moe)]


def model_params(s: LoadSettings) -> tuple[L.llama_model_params, object]:
    """llama.cpp model parameters for `s`, and the arrays the caller must keep alive with them.

    The high-level Llama class ignores tensor overrides; here they are set on the C struct."""
    mp = L.llama_model_default_params()
    mp.n_gpu_layers = -1 if s.n_gpu_layers == ALL_LAYERS else s.n_gpu_layers
    mp.split_mode = SPLIT[s.split_mode]
    mp.main_gpu = s.main_gpu
    mp.load_mode = _load_mode(s)
    split_array = None
    if s.tensor_split:
        split_array = (ctypes.c_float * L.llama_max_devices())()
        for i, share in enumerate(s.tensor_split[:L.llama_max_devices()]):
            split_array[i] = share
        mp.tensor_split = ctypes.cast(split_array, ctypes.POINTER(ctypes.c_float))
    overrides = None
    if s.n_cpu_moe > 0:
        patterns = [p.encode() for p in expert_patterns(s.n_cpu_moe)]
        cpu = _cpu_buffer_type()
        overrides = (_BuftOverride * (len(patterns) + 1))()
        for i, pattern in enumerate(patterns):
            overrides[i].pattern = pattern
            overrides[i].buft = cpu
        overrides[len(patterns)].pattern = None  # the NULL end of the list
        mp.tensor_buft_overrides = ctypes.cast(overrides, ctypes.c_void_p)
    return mp, (split_array, overrides, patterns if overrides is not None else None)


def context_params(s: LoadSettings) -> L.llama_context_params:
    """llama.cpp context parameters for `s` (the same for a real load and a dry run)."""
    cp = L.llama_context_default_params()
    cp.n_ctx = s.n_ctx
    cp.n_batch = s.n_batch
    cp.n_ubatch = s.n_ubatch
    cp.n_seq_max = 1
    cp.n_threads = s.n_threads or physical_cores()
    cp.n_threads_batch = s.n_threads_batch or s.n_threads or physical_cores()
    cp.type_k = GGML_TYPE_IDS[s.type_k]
    cp.type_v = GGML_TYPE_IDS[s.type_v]
    cp.flash_attn_type = FLASH_ATTN[s.flash_attn]
    cp.offload_kqv = s.offload_kqv
    cp.no_perf = False
    return cp


def _meta(model: int, key: str) -> str | None:
    buf = ctypes.create_string_buffer(4096)
    n = L.llama_model_meta_val_str(model, key.encode(), buf, ctypes.sizeof(buf))
    return buf.value.decode("utf-8", errors="replace") if n >= 0 else None


@dataclass
class LoadedModel:
    """A model and one context on it. Call free() before loading another in the same process."""

    settings: LoadSettings
    header: GgufHeader
    model: int
    ctx: int
    vocab: int
    load_seconds: float
    layers_offloaded: int
    layers_total: int
    _keepalive: tuple

    @classmethod
    def load(cls, settings: LoadSettings, header: GgufHeader,
             on_progress: Callable[[float], None], recent_log: Callable[[], list[str]]) -> "LoadedModel":
        s = settings
        mp, split_array = model_params(s)

        def progress(fraction: float, _user: ctypes.c_void_p) -> bool:
            on_progress(float(fraction))
            return True

        progress_cb = L.llama_progress_callback(progress)
        mp.progress_callback = progress_cb

        started = time.perf_counter()
        model = L.llama_model_load_from_file(s.model_path.encode(), mp)
        if not model:
            raise LoadError("llama_model_load_from_file returned no model")
        ctx = L.llama_init_from_model(model, context_params(s))
        if not ctx:
            L.llama_model_free(model)
            raise LoadError("llama_init_from_model returned no context")
        elapsed = time.perf_counter() - started
        n_layer = L.llama_model_n_layer(model)
        offloaded, total = 0, n_layer + 1
        for line in reversed(recent_log()):
            m = _OFFLOADED.search(line)
            if m:
                total = int(m.group(2))
                offloaded = total if int(m.group(1)) < 0 else int(m.group(1))
                break
        return cls(settings=s, header=header, model=model, ctx=ctx,
                   vocab=L.llama_model_get_vocab(model), load_seconds=elapsed,
                   layers_offloaded=offloaded, layers_total=total,
                   _keepalive=(progress_cb, split_array))

    # ------------------------------------------------------------------ facts

    def chat_template(self) -> str | None:
        raw = L.llama_model_chat_template(self.model, None)
        return raw.decode("utf-8", errors="replace") if raw else None

    def describe(self) -> dict:
        m = self.model
        return dict(
            path=self.settings.model_path,
            name=_meta(m, "general.name") or os.path.basename(self.settings.model_path),
            architecture=_meta(m, "general.architecture") or "?",
            n_layer=L.llama_model_n_layer(m),
            n_params=int(L.llama_model_n_params(m)),
            size_bytes=int(L.llama_model_size(m)),
            quant=file_type_name(self.header.metadata.get("general.file_type")),
            n_ctx=int(L.llama_n_ctx(self.ctx)),
            n_ctx_train=int(L.llama_model_n_ctx_train(m)),
            has_chat_template=self.chat_template() is not None,
            layers_offloaded=self.layers_offloaded,
            layers_total=self.layers_total,
            load_seconds=round(self.load_seconds, 3),
            kv_type_k=self.settings.type_k,
            kv_type_v=self.settings.type_v,
            flash_attn=self.settings.flash_attn,
        )

    def n_ctx(self) -> int:
        return int(L.llama_n_ctx(self.ctx))

    def free(self) -> None:
        if self.ctx:
            L.llama_free(self.ctx)
            self.ctx = 0
        if self.model:
            L.llama_model_free(self.model)
            self.model = 0
