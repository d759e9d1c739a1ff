"""Host CPU and memory through psutil."""

from __future__ import annotations

import os

import psutil

from tui.monitor.sample import HostSample


def mapped_resident_bytes(pid: int, path: str) -> int | None:
    """Resident bytes of `path` in the memory maps of process `pid` (Linux /proc/PID/smaps)."""
    try:
        f = open(f"/proc/{pid}/smaps", encoding="utf-8", errors="replace")
    except OSError:
        return None
    total, inside, found = 0, False, False
    with f:
        for line in f:
            head = line.split(maxsplit=1)[0]
            if "-" in head and head.replace("-", "").isalnum() and ":" not in head:
                inside = line.rstrip().endswith(path)
                found = found or inside
            elif inside and line.startswith("Rss:"):
                total += int(line.split()[1]) * 1024
    return total if found else None


class HostSource:
    def __init__(self) -> None:
        psutil.cpu_percent(percpu=True)  # prime: the first call has nothing to compare with
        self._process: psutil.Process | None = None
        self._own = psutil.Process()
        self._own.cpu_percent(None)

    def read(self, engine_pid: int | None = None, model_path: str | None = None) -> HostSample:
        per_cpu = tuple(psutil.cpu_percent(percpu=True))
        vm = psutil.virtual_memory()
        try:
            sw = psutil.swap_memory()
            swap_used, swap_total = sw.used, sw.total
        except Exception:
            swap_used = swap_total = None
        rss = engine_cores = None
        if engine_pid:
            try:
                if self._process is None or self._process.pid != engine_pid:
                    self._process = psutil.Process(engine_pid)
                    self._process.cpu_percent(None)  # prime: the next read is since now
                else:
                    engine_cores = self._process.cpu_percent(None) / 100
                rss = self._process.memory_info().rss
            except psutil.Error:
                rss = None
        own_cores = self._own.cpu_percent(None) / 100
        busy_cores = sum(per_cpu) / 100
        other = max(0.0, busy_cores - (engine_cores or 0.0) - own_cores) if per_cpu else None
        resident = file_size = None
        if engine_pid and model_path:
            resident = mapped_resident_bytes(engine_pid, os.path.realpath(model_path))
            try:
                file_size = os.path.getsize(model_path)
            except OSError:
                file_size = None
        return HostSample(
            cpu_percent=sum(per_cpu) / len(per_cpu) if per_cpu else None,
            per_cpu_percent=per_cpu,
            ram_used_bytes=vm.total - vm.available,
            ram_total_bytes=vm.total,
            swap_used_bytes=swap_used,
            swap_total_bytes=swap_total,
            engine_rss_bytes=rss,
            model_resident_bytes=resident,
            model_file_bytes=file_size,
            engine_cpu_cores=engine_cores,
            other_cpu_cores=None if other is None else round(other, 2),
        )
