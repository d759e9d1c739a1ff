"""The engine's state as the UI shows it, and how each engine event changes it (a pure reducer)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum

from tui.engine.errors import advice, failure_text
from tui.engine.protocol import (
    EngineCrashed,
    FailureKind,
    Hello,
    Loaded,
    LoadFailed,
    LoadProgress,
    ModelFacts,
    Unloaded,
)

REINSTALL_CUDA = ('CMAKE_ARGS="-DGGML_CUDA=on" pip install --force-reinstall --no-cache-dir '
                  'llama-cpp-python')


class Phase(str, Enum):
    NO_MODEL = "no model"
    LOADING = "loading"
    READY = "ready"
    FAILED = "load failed"
    CRASHED = "engine crashed"


@dataclass(frozen=True)
class EngineStatus:
    phase: Phase = Phase.NO_MODEL
    progress: float = 0.0
    facts: ModelFacts | None = None
    message: str = ""
    """Why it failed or crashed, in words; empty otherwise."""
    gpu_offload: bool | None = None
    """Whether this llama.cpp build can offload to a GPU; None until the engine has said."""
    llama_cpp_version: str = ""

    def loading(self) -> "EngineStatus":
        return replace(self, phase=Phase.LOADING, progress=0.0, message="", facts=None)

    def apply(self, event: object) -> "EngineStatus":
        if isinstance(event, Hello):
            return replace(self, gpu_offload=event.gpu_offload,
                           llama_cpp_version=event.llama_cpp_version)
        if isinstance(event, LoadProgress):
            return replace(self, phase=Phase.LOADING, progress=event.fraction)
        if isinstance(event, Loaded):
            return replace(self, phase=Phase.READY, progress=1.0, facts=event.facts, message="")
        if isinstance(event, LoadFailed):
            return replace(self, phase=Phase.FAILED, facts=None, message=failure_text(event))
        if isinstance(event, EngineCrashed):
            detail = f"{event.describe()} {advice(FailureKind.CRASHED)}"
            return replace(self, phase=Phase.CRASHED, facts=None, message=detail)
        if isinstance(event, Unloaded):
            if self.phase is Phase.READY:
                return replace(self, phase=Phase.NO_MODEL, facts=None)
        return self


def cpu_only_warning(gpu_offload: bool | None, nvidia_gpus: int) -> str:
    """The warning to show when NVML sees a GPU but this llama.cpp build cannot use it."""
    if gpu_offload is False and nvidia_gpus > 0:
        return ("This llama.cpp build is CPU-only, but an NVIDIA GPU is present: every layer runs "
                f"on the CPU. Reinstall with CUDA:  {REINSTALL_CUDA}")
    return ""
