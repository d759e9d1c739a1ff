"""A deterministic stand-in for the `pynvml` module, for tests and snapshots.

It answers the NVML calls NvmlSource makes, from a list of FakeGpu. A field named in `failing`
raises like NVML does for an unsupported field; `vanish_after` makes a GPU fall off the bus after
that many reads; `no_driver` makes nvmlInit fail as it does on a machine without the driver.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from types import SimpleNamespace

from tui.monitor.contention import FixedContention
from tui.monitor.host_stats import HostSource
from tui.monitor.nvml import NvmlSource
from tui.monitor.sample import HostSample, Sample

GiB = 1024**3


class FakeNVMLError(Exception):
    pass


@dataclass
class FakeGpu:
    name: str = "NVIDIA GeForce RTX 3090"
    total: int = 24 * GiB
    used: int = 1 * GiB
    util: int = 37
    mem_util: int = 21
    temp: int = 61
    power_mw: int = 215_000
    limit_mw: int = 350_000
    sm_clock: int = 1695
    mem_clock: int = 9751
    pcie_gen: int = 4
    pcie_width: int = 16
    rx_kib: int = 1200
    tx_kib: int = 300
    fan: int = 45
    processes: list[tuple[int, int]] = field(default_factory=list)
    """(pid, used bytes) of each compute process."""
    failing: set[str] = field(default_factory=set)
    vanish_after: int | None = None


class FakeNvml:
    NVML_TEMPERATURE_GPU = 0
    NVML_CLOCK_SM = 1
    NVML_CLOCK_MEM = 2
    NVML_PCIE_UTIL_TX_BYTES = 0
    NVML_PCIE_UTIL_RX_BYTES = 1

    def __init__(self, gpus: list[FakeGpu] | None = None, no_driver: bool = False,
                 driver: str = "580.95.05", names: dict[int, str] | None = None):
        self.gpus = gpus if gpus is not None else [FakeGpu()]
        self.no_driver = no_driver
        self.driver = driver
        self.names = names or {}
        self.reads = 0

    def process_name(self, pid: int) -> str:
        return self.names.get(pid, "python3")

    def _gpu(self, handle: int, what: str) -> FakeGpu:
        gpu = self.gpus[handle]
        if gpu.vanish_after is not None and self.reads > gpu.vanish_after:
            raise FakeNVMLError("GPU is lost")
        if what in gpu.failing:
            raise FakeNVMLError("Not Supported")
        return gpu

    def nvmlInit(self) -> None:
        if self.no_driver:
            raise FakeNVMLError("NVML Shared Library Not Found")

    def nvmlSystemGetDriverVersion(self) -> str:
        return self.driver

    def nvmlDeviceGetCount(self) -> int:
        self.reads += 1
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, i: int) -> int:
        self._gpu(i, "handle")
        return i

    def nvmlDeviceGetName(self, h: int) -> str:
        return self._gpu(h, "name").name

    def nvmlDeviceGetMemoryInfo(self, h: int):
        g = self._gpu(h, "memory")
        return SimpleNamespace(total=g.total, used=g.used, free=g.total - g.used)

    def nvmlDeviceGetUtilizationRates(self, h: int):
        g = self._gpu(h, "util")
        return SimpleNamespace(gpu=g.util, memory=g.mem_util)

    def nvmlDeviceGetTemperature(self, h: int, _sensor: int) -> int:
        return self._gpu(h, "temp").temp

    def nvmlDeviceGetPowerUsage(self, h: int) -> int:
        return self._gpu(h, "power").power_mw

    def nvmlDeviceGetEnforcedPowerLimit(self, h: int) -> int:
        return self._gpu(h, "power_limit").limit_mw

    def nvmlDeviceGetClockInfo(self, h: int, clock: int) -> int:
        g = self._gpu(h, "clocks")
        return g.sm_clock if clock == self.NVML_CLOCK_SM else g.mem_clock

    def nvmlDeviceGetCurrPcieLinkGeneration(self, h: int) -> int:
        return self._gpu(h, "pcie").pcie_gen

    def nvmlDeviceGetCurrPcieLinkWidth(self, h: int) -> int:
        return self._gpu(h, "pcie").pcie_width

    def nvmlDeviceGetPcieThroughput(self, h: int, counter: int) -> int:
        g = self._gpu(h, "pcie_throughput")
        return g.rx_kib if counter == self.NVML_PCIE_UTIL_RX_BYTES else g.tx_kib

    def nvmlDeviceGetFanSpeed(self, h: int) -> int:
        return self._gpu(h, "fan").fan

    def nvmlDeviceGetComputeRunningProcesses(self, h: int):
        g = self._gpu(h, "processes")
        return [SimpleNamespace(pid=pid, usedGpuMemory=used) for pid, used in g.processes]

    def nvmlDeviceGetGraphicsRunningProcesses(self, h: int):
        self._gpu(h, "processes")
        return []


class FakeSampler:
    """Real NvmlSource over a FakeNvml, and fixed host figures: the same Sample every time."""

    def __init__(self, nvml: FakeNvml | None = None, host: HostSample | None = None,
                 real_host: bool = False):
        nvml = nvml or FakeNvml()
        self.nvml = NvmlSource(nvml, process_name=nvml.process_name)
        self.host = host or HostSample(cpu_percent=12.5, per_cpu_percent=(20.0, 5.0, 15.0, 10.0),
                                       ram_used_bytes=18 * GiB, ram_total_bytes=64 * GiB,
                                       swap_used_bytes=0, swap_total_bytes=8 * GiB,
                                       engine_rss_bytes=2 * GiB,
                                       model_resident_bytes=int(3.1 * GiB),
                                       model_file_bytes=int(4.6 * GiB))
        self._real_host = HostSource() if real_host else None

    other_cores: float = 0.0
    """What contention() reports: the cores other processes keep busy, the same every time."""

    def contention(self, engine_pid: int | None) -> FixedContention:
        return FixedContention(self.other_cores)

    def sample(self, engine_pid: int | None = None, model_path: str | None = None) -> Sample:
        gpus, status = self.nvml.read(engine_pid)
        host = self._real_host.read(engine_pid, model_path) if self._real_host else self.host
        return Sample(time=time.monotonic(), gpus=gpus, gpu_status=status, host=host,
                      driver_version=self.nvml.driver_version)
