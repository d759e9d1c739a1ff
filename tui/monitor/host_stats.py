"""Host CPU and memory through psutil."""

from __future__ import annotations

import psutil

from tui.monitor.sample import HostSample


class HostSource:
    def __init__(self) -> None:
        psutil.cpu_percent(percpu=True)  # prime: the first call has nothing to compare with

    def read(self, engine_pid: int | None = None) -> HostSample:
        per_cpu = tuple(psutil.cpu_percent(percpu=True))
        vm = psutil.virtual_memory()
        try:
            sw = psutil.swap_memory()
            swap_used, swap_total = sw.used, sw.total
        except Exception:
            swap_used = swap_total = None
        rss = None
        if engine_pid:
            try:
                rss = psutil.Process(engine_pid).memory_info().rss
            except psutil.Error:
                rss = None
        return HostSample(
            cpu_percent=sum(per_cpu) / len(per_cpu) if per_cpu else None,
            per_cpu_percent=per_cpu,
            ram_used_bytes=vm.total - vm.available,
            ram_total_bytes=vm.total,
            swap_used_bytes=swap_used,
            swap_total_bytes=swap_total,
            engine_rss_bytes=rss,
        )
