"""What a calibration belongs to: this machine and its llama.cpp build, read without importing
llama_cpp, numpy or gguf (the plan reads it on every run)."""

from __future__ import annotations

import platform
from pathlib import Path

import psutil

from tui.monitor.sample import Sample


def machine_key(gpu: str = "") -> str:
    """CPU model and cores, RAM, the GPU and its driver, and the llama.cpp build: a change to any
    makes the rates another machine's."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = psutil.virtual_memory().total // 2**30
    return f"{model}|{psutil.cpu_count(logical=False)}c|{ram}GiB|{gpu or 'no GPU'}|{llama_build()}"


def llama_build() -> str:
    """The installed llama-cpp-python: version and its library's size (a CPU and a CUDA build of
    one version differ), read without importing llama_cpp."""
    import importlib.metadata
    import importlib.util

    try:
        version = importlib.metadata.version("llama_cpp_python")
    except importlib.metadata.PackageNotFoundError:
        return "no llama-cpp-python"
    spec = importlib.util.find_spec("llama_cpp")
    size = 0
    for folder in (spec.submodule_search_locations or []) if spec else []:
        for lib in Path(folder).glob("lib/*llama*"):
            size += lib.stat().st_size
    return f"llama-cpp-python {version} ({size} B)"


def gpu_identity() -> str:
    """The first NVIDIA GPU's name and driver ("" with none), read from NVML: for the headless
    commands (the app passes what its sampler saw, sample_identity)."""
    from tui.monitor.nvml import NvmlSource

    source = NvmlSource()
    gpus, _ = source.read(memory_only=True)
    return identity_of(gpus[0].name if gpus else "", source.driver_version)


def sample_identity(sample: Sample | None) -> str:
    """The same, from a sampler reading (None before the first one: no GPU yet)."""
    if sample is None or not sample.gpus:
        return ""
    return identity_of(sample.gpus[0].name, sample.driver_version)


def identity_of(name: str, driver: str | None) -> str:
    return f"{name} (driver {driver or '?'})" if name else ""


def current_key() -> str:
    return machine_key(gpu_identity())
