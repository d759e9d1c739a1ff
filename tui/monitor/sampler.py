"""The one interface the UI reads hardware through: `Sampler.sample()` -> Sample."""

from __future__ import annotations

import time
from typing import Protocol

from tui.monitor.contention import ContentionLike, ContentionMeter
from tui.monitor.host_stats import HostSource
from tui.monitor.nvml import NvmlSource
from tui.monitor.sample import Sample


class SamplerLike(Protocol):
    def sample(self, engine_pid: int | None = None, model_path: str | None = None) -> Sample: ...

    def contention(self, engine_pid: int | None) -> ContentionLike:
        """A meter of the CPU other processes take while a benchmark of `engine_pid` runs."""
        ...


class Sampler:
    """Reads NVML and psutil. Blocking (NVML calls can take milliseconds): call it off the UI thread."""

    def __init__(self, nvml: NvmlSource | None = None, host: HostSource | None = None):
        self.nvml = nvml or NvmlSource()
        self.host = host or HostSource()

    def contention(self, engine_pid: int | None) -> ContentionMeter:
        return ContentionMeter(engine_pid)

    def sample(self, engine_pid: int | None = None, model_path: str | None = None) -> Sample:
        gpus, status = self.nvml.read(engine_pid)
        return Sample(time=time.monotonic(), gpus=gpus, gpu_status=status,
                      host=self.host.read(engine_pid, model_path),
                      driver_version=self.nvml.driver_version)
