"""NVML reads, one field at a time, so one failing field never hides the others.

The NVML module is passed in (the real `pynvml` or tests' fake), and this is the only module of
vramdeck that talks to it.
"""
# pyright: reportArgumentType=false, reportAttributeAccessIssue=false, reportOptionalMemberAccess=false
# (NVML through pynvml: handles and structs are untyped, and the fake in tests stands in for it)

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from types import ModuleType
from typing import Any, TypeVar

from tui.monitor.sample import GpuProcess, GpuSample

T = TypeVar("T")


def _try(read: Callable[[], T]) -> T | None:
    try:
        return read()
    except Exception:  # NVMLError and anything a broken driver throws: the field is n/a
        return None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class NvmlSource:
    """Reads every NVIDIA GPU through an NVML module. `read()` never raises."""

    def __init__(self, nvml: ModuleType | Any | None = None,
                 process_name: Callable[[int], str] | None = None):
        if nvml is None:
            try:
                import pynvml as nvml  # type: ignore[no-redef]
            except ImportError:
                nvml = None
        self._nvml = nvml
        self._process_name = process_name or _process_name
        self._ready = False
        self.status = "NVML (nvidia-ml-py) is not installed" if nvml is None else ""
        self.driver_version: str | None = None

    def _init(self) -> bool:
        if self._ready:
            return True
        if self._nvml is None:
            return False
        try:
            self._nvml.nvmlInit()
        except Exception as exc:
            self.status = f"no NVIDIA GPU or driver found ({_text(exc) or type(exc).__name__})"
            return False
        self._ready = True
        self.status = ""
        self.driver_version = _try(lambda: _text(self._nvml.nvmlSystemGetDriverVersion()))
        return True

    def read(self, engine_pid: int | None = None,
             memory_only: bool = False) -> tuple[tuple[GpuSample, ...], str]:
        """All GPUs now, and a status line that is empty when NVML answered. `memory_only` reads
        each GPU's name and memory and nothing else (`fit`: the PCIe counters alone sample for
        tens of milliseconds)."""
        if not self._init():
            return (), self.status
        n = self._nvml
        try:
            count = n.nvmlDeviceGetCount()
        except Exception as exc:
            self._ready = False
            self.status = f"NVML stopped answering ({_text(exc)})"
            return (), self.status
        if count == 0:
            return (), "NVML found no NVIDIA GPU"
        gpus = []
        for i in range(count):
            handle = _try(lambda i=i: n.nvmlDeviceGetHandleByIndex(i))
            if handle is None:
                gpus.append(GpuSample(index=i, name="GPU lost (fell off the bus?)"))
                continue
            gpus.append(self._read_memory(i, handle) if memory_only
                        else self._read_gpu(i, handle, engine_pid))
        return tuple(gpus), ""

    def _read_memory(self, index: int, h: Any) -> GpuSample:
        n = self._nvml
        mem = _try(lambda: n.nvmlDeviceGetMemoryInfo(h))
        return GpuSample(index=index, name=_try(lambda: _text(n.nvmlDeviceGetName(h))) or f"GPU {index}",
                         memory_used_bytes=getattr(mem, "used", None),
                         memory_total_bytes=getattr(mem, "total", None))

    def _read_gpu(self, index: int, h: Any, engine_pid: int | None) -> GpuSample:
        n = self._nvml
        util = _try(lambda: n.nvmlDeviceGetUtilizationRates(h))
        power_mw = _try(lambda: n.nvmlDeviceGetPowerUsage(h))
        limit_mw = _try(lambda: n.nvmlDeviceGetEnforcedPowerLimit(h))
        return replace(
            self._read_memory(index, h),
            util_percent=getattr(util, "gpu", None),
            memory_util_percent=getattr(util, "memory", None),
            temperature_c=_try(lambda: n.nvmlDeviceGetTemperature(h, n.NVML_TEMPERATURE_GPU)),
            power_w=power_mw / 1000 if power_mw is not None else None,
            power_limit_w=limit_mw / 1000 if limit_mw is not None else None,
            sm_clock_mhz=_try(lambda: n.nvmlDeviceGetClockInfo(h, n.NVML_CLOCK_SM)),
            memory_clock_mhz=_try(lambda: n.nvmlDeviceGetClockInfo(h, n.NVML_CLOCK_MEM)),
            pcie_gen=_try(lambda: n.nvmlDeviceGetCurrPcieLinkGeneration(h)),
            pcie_width=_try(lambda: n.nvmlDeviceGetCurrPcieLinkWidth(h)),
            pcie_rx_kib_s=_try(lambda: n.nvmlDeviceGetPcieThroughput(h, n.NVML_PCIE_UTIL_RX_BYTES)),
            pcie_tx_kib_s=_try(lambda: n.nvmlDeviceGetPcieThroughput(h, n.NVML_PCIE_UTIL_TX_BYTES)),
            fan_percent=_try(lambda: n.nvmlDeviceGetFanSpeed(h)),
            processes=self._processes(h, engine_pid),
        )

    def _processes(self, h: Any, engine_pid: int | None) -> tuple[GpuProcess, ...]:
        n = self._nvml
        seen: dict[int, GpuProcess] = {}
        for getter in ("nvmlDeviceGetComputeRunningProcesses", "nvmlDeviceGetGraphicsRunningProcesses"):
            for p in _try(lambda g=getter: getattr(n, g)(h)) or ():
                pid = int(p.pid)
                used = getattr(p, "usedGpuMemory", None)
                if used is not None and used >= 1 << 62:  # NVML_VALUE_NOT_AVAILABLE
                    used = None
                if pid not in seen:
                    seen[pid] = GpuProcess(pid, self._process_name(pid), used, pid == engine_pid)
        return tuple(sorted(seen.values(), key=lambda p: -(p.used_bytes or 0)))


def _process_name(pid: int) -> str:
    try:
        import psutil

        return psutil.Process(pid).name()
    except Exception:
        return "?"


def process_vram_bytes(pid: int, source: NvmlSource | None = None) -> tuple[int, ...]:
    """VRAM one process holds on each GPU (0 where it holds none); empty if NVML cannot tell."""
    gpus, status = (source or NvmlSource()).read(engine_pid=pid)
    if status or not gpus:
        return ()
    out = []
    for g in gpus:
        mine = [p for p in g.processes if p.pid == pid]
        if any(p.used_bytes is None for p in mine):
            return ()
        out.append(sum(p.used_bytes or 0 for p in mine))
    return tuple(out)
