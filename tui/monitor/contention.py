"""Whether other processes competed for the CPU while a benchmark ran.

llama.cpp's threads spin against each other when the cores are oversubscribed: on the 2-core VM,
one busy process elsewhere took generation from ~150 to ~6 tok/s. A benchmark notes the CPU time
the whole machine spent busy, less the engine's and this process's own, over its wall time: the
cores other processes kept busy. Above OTHER_CORES_WARN the figures are not the machine's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

import psutil

from tui.monitor.sample import HostSample

OTHER_CORES_WARN = 0.25
"""A quarter of a core, on average, kept busy by other processes."""


def _busy_seconds() -> float:
    t = psutil.cpu_times()
    idle = t.idle + getattr(t, "iowait", 0.0)
    return sum(t) - idle - getattr(t, "guest", 0.0) - getattr(t, "guest_nice", 0.0)


def _process_seconds(pid: int | None) -> float:
    if pid is None:
        return 0.0
    try:
        t = psutil.Process(pid).cpu_times()
        return t.user + t.system + t.children_user + t.children_system
    except psutil.Error:
        return 0.0


@dataclass(frozen=True)
class Contention:
    other_cores: float
    """Cores other processes kept busy, on average, while the benchmark ran."""
    seconds: float

    @property
    def warning(self) -> str:
        if self.other_cores < OTHER_CORES_WARN:
            return ""
        return (f"other processes kept {self.other_cores:.1f} of {psutil.cpu_count() or 1} cores busy "
                f"during the benchmark: llama.cpp slows down sharply when its threads compete, so "
                f"these figures are low. Stop the other load, or run with fewer threads.")


class ContentionLike(Protocol):
    """What measures contention over a span of work: the real meter, or a fixed one for tests."""

    def start(self) -> "ContentionLike": ...

    def stop(self) -> Contention: ...


class FixedContention:
    """The same figure every time (the fake sampler's: snapshots must not read this machine)."""

    def __init__(self, other_cores: float = 0.0):
        self.other_cores = other_cores

    def start(self) -> "FixedContention":
        return self

    def stop(self) -> Contention:
        return Contention(other_cores=self.other_cores, seconds=0.0)


class ContentionMeter:
    """start() before the work, stop() after: the Contention over that span (psutil)."""

    def __init__(self, engine_pid: int | None):
        self.engine_pid = engine_pid

    def start(self) -> "ContentionMeter":
        self._wall = time.monotonic()
        self._busy = _busy_seconds()
        self._ours = _process_seconds(None if self.engine_pid is None else self.engine_pid) \
            + _process_seconds(psutil.Process().pid)
        return self

    def stop(self) -> Contention:
        wall = max(1e-6, time.monotonic() - self._wall)
        ours = _process_seconds(self.engine_pid) + _process_seconds(psutil.Process().pid) - self._ours
        other = max(0.0, _busy_seconds() - self._busy - ours)
        return Contention(other_cores=round(other / wall, 2), seconds=round(wall, 2))


def thread_fight(host: HostSample, engine_threads: int | None) -> str:
    """A sentence for the Monitor when the engine's threads are competing with other processes
    for the cores (llama.cpp's threads then wait on each other), with the thread count that
    would leave them room; "" when they are not, or when the figures are not known."""
    if host.engine_cpu_cores is None or host.other_cpu_cores is None:
        return ""
    cores = len(host.per_cpu_percent) or psutil.cpu_count() or 1
    threads = engine_threads or psutil.cpu_count(logical=False) or cores
    other = host.other_cpu_cores
    if host.engine_cpu_cores < 0.5 or other < OTHER_CORES_WARN or threads + other <= cores:
        return ""
    fewer = max(1, int(cores - other))
    advice = (f"try {fewer} thread{'s' if fewer > 1 else ''} (Tuner, F4: threads)" if fewer < threads
              else "stop the other load")
    return (f"Other processes keep {other:.1f} of {cores} cores busy while llama.cpp runs {threads} "
            f"thread{'s' if threads > 1 else ''}: its threads wait on each other and generation slows "
            f"sharply; {advice}.")
