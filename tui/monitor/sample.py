"""One snapshot of the machine: frozen data, with None for anything the hardware cannot report."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class GpuProcess:
    pid: int
    name: str
    used_bytes: int | None
    is_engine: bool = False


@dataclass(frozen=True)
class GpuSample:
    """One NVIDIA GPU. Every figure is None where NVML could not read it."""

    index: int
    name: str
    memory_used_bytes: int | None = None
    memory_total_bytes: int | None = None
    util_percent: int | None = None
    memory_util_percent: int | None = None
    temperature_c: int | None = None
    power_w: float | None = None
    power_limit_w: float | None = None
    sm_clock_mhz: int | None = None
    memory_clock_mhz: int | None = None
    pcie_gen: int | None = None
    pcie_width: int | None = None
    pcie_rx_kib_s: int | None = None
    pcie_tx_kib_s: int | None = None
    fan_percent: int | None = None
    processes: tuple[GpuProcess, ...] = ()

    @property
    def memory_free_bytes(self) -> int | None:
        if self.memory_used_bytes is None or self.memory_total_bytes is None:
            return None
        return self.memory_total_bytes - self.memory_used_bytes

    def engine_bytes(self) -> int | None:
        """VRAM the vramdeck engine holds on this GPU, if NVML lists it."""
        used = [p.used_bytes for p in self.processes if p.is_engine and p.used_bytes is not None]
        return sum(used) if used else None


@dataclass(frozen=True)
class HostSample:
    cpu_percent: float | None = None
    per_cpu_percent: tuple[float, ...] = ()
    ram_used_bytes: int | None = None
    ram_total_bytes: int | None = None
    swap_used_bytes: int | None = None
    swap_total_bytes: int | None = None
    engine_rss_bytes: int | None = None
    model_resident_bytes: int | None = None
    """Bytes of the model file the engine has mapped and resident (page cache): what mmap'd layers
    on the CPU cost in RAM. None where /proc cannot say."""
    model_file_bytes: int | None = None
    engine_cpu_cores: float | None = None
    """Cores the engine process kept busy since the last sample (2.0: two whole cores)."""
    other_cpu_cores: float | None = None
    """Cores every other process (this app's excepted) kept busy since the last sample."""


@dataclass(frozen=True)
class Sample:
    """What the sampler saw at `time` (seconds, monotonic)."""

    time: float
    gpus: tuple[GpuSample, ...] = ()
    gpu_status: str = ""
    """Empty when NVML answered; otherwise why there are no GPU figures ("no NVIDIA driver", ...)."""
    host: HostSample = field(default_factory=HostSample)
    driver_version: str | None = None
