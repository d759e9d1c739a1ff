"""The Monitor's word on llama.cpp's threads fighting other processes for the cores, and the host
figures it comes from (psutil, real processes)."""

from __future__ import annotations

import subprocess
import sys
import time

import psutil

from tui.monitor.contention import thread_fight
from tui.monitor.host_stats import HostSource
from tui.monitor.sample import HostSample

TWO_CORES = (100.0, 100.0)


def test_threads_fighting_other_load_get_a_warning_and_fewer_threads():
    h = HostSample(per_cpu_percent=TWO_CORES, engine_cpu_cores=1.0, other_cpu_cores=1.0)
    text = thread_fight(h, 2)
    assert "Other processes keep 1.0 of 2 cores busy while llama.cpp runs 2 threads" in text
    assert "try 1 thread (Tuner" in text


def test_no_warning_when_there_is_room_idle_or_unknown():
    assert thread_fight(HostSample(per_cpu_percent=TWO_CORES, engine_cpu_cores=1.0, other_cpu_cores=1.0), 1) == ""
    assert thread_fight(HostSample(per_cpu_percent=TWO_CORES, engine_cpu_cores=2.0, other_cpu_cores=0.1), 2) == ""
    assert thread_fight(HostSample(per_cpu_percent=TWO_CORES, engine_cpu_cores=0.1, other_cpu_cores=1.5), 2) == "", \
        "an idle engine fights nobody"
    assert thread_fight(HostSample(per_cpu_percent=TWO_CORES), 2) == ""


def test_when_one_thread_is_already_too_many_it_says_to_stop_the_other_load():
    h = HostSample(per_cpu_percent=TWO_CORES, engine_cpu_cores=1.0, other_cpu_cores=1.9)
    assert "stop the other load" in thread_fight(h, 1)


def test_the_host_source_tells_the_engines_cores_from_the_others():
    """A busy child stands for the engine, another for the other load: each is counted on its side."""
    engine = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    other = subprocess.Popen([sys.executable, "-c", "while True: pass"])

    def busy(p: psutil.Process) -> float:
        t = p.cpu_times()
        return t.user + t.system

    try:
        pe, po = psutil.Process(engine.pid), psutil.Process(other.pid)
        source = HostSource()
        source.read(engine.pid)  # primes the engine's counter
        t0, e0, o0 = time.monotonic(), busy(pe), busy(po)
        time.sleep(1.5)
        h = source.read(engine.pid)
        t1, e1, o1 = time.monotonic(), busy(pe), busy(po)
    finally:
        for p in (engine, other):
            p.kill()
            p.wait()
    assert h.engine_cpu_cores is not None and h.other_cpu_cores is not None
    # against each child's own CPU time over the same window: right on a busy machine too, where
    # the two children get less than a core each (a fixed 0.6 failed there)
    engine_cores, other_cores = (e1 - e0) / (t1 - t0), (o1 - o0) / (t1 - t0)
    assert engine_cores > 0.05 and other_cores > 0.05, "both children ran"
    assert abs(h.engine_cpu_cores - engine_cores) < 0.25, (h, engine_cores)
    assert h.other_cpu_cores >= other_cores - 0.25, (h, other_cores)
