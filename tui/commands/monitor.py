"""`vramdeck monitor --once [--json]`: one sample of every GPU and the host, for scripts and tests.
Without --once it opens the app on the Monitor pane (no model is loaded)."""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict

from tui.monitor.sampler import Sampler
from tui.units import format_bytes, na


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--once", action="store_true", help="print one sample and exit")
    p.add_argument("--json", action="store_true", help="with --once: as JSON")
    p.add_argument("--interval", type=float, default=1.0, help="refresh interval, seconds")


def describe(sample) -> list[str]:
    lines = []
    if sample.gpu_status:
        lines.append(f"GPU: n/a ({sample.gpu_status})")
    for g in sample.gpus:
        lines.append(f"GPU{g.index} {g.name}: VRAM {format_bytes(g.memory_used_bytes)} / "
                     f"{format_bytes(g.memory_total_bytes)}, util {na(g.util_percent, '{}%')}, "
                     f"{na(g.temperature_c, '{}°C')}, {na(g.power_w, '{:.0f} W')}")
        for p in g.processes:
            lines.append(f"  pid {p.pid} {p.name}: {format_bytes(p.used_bytes)}")
    h = sample.host
    lines.append(f"host: CPU {h.cpu_percent or 0:.0f}% of {len(h.per_cpu_percent)} cores, RAM "
                 f"{format_bytes(h.ram_used_bytes)} / {format_bytes(h.ram_total_bytes)}, swap "
                 f"{format_bytes(h.swap_used_bytes)} / {format_bytes(h.swap_total_bytes)}")
    return lines


def main(args: argparse.Namespace) -> int:
    if not args.once:
        from tui.app import VramdeckApp
        from tui.engine.client import EngineClient

        VramdeckApp(EngineClient(), Sampler(), sample_interval=max(0.1, args.interval),
                    mode="monitor").run()
        return 0
    sampler = Sampler()
    time.sleep(0.1)  # CPU percentages need an interval since the sampler primed them
    sample = sampler.sample()
    if args.json:
        print(json.dumps(asdict(sample), indent=2))
    else:
        print("\n".join(describe(sample)))
    return 0
