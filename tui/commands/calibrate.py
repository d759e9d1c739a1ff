"""`vramdeck calibrate`: measure this machine's speed per tensor type, once, for every prediction.

The plan, the Tuner's layer map and tune all predict from these rates. Each step is kept as it
finishes: Ctrl+C stops, and the next run resumes (and redoes what was measured while other
processes kept the cores busy)."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from tui.speed.rates import MachineRates, cache_path, read_rates
from tui.speed.types import ALL_TYPES, CALIBRATED_TYPES


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fresh", action="store_true", help="measure everything again (default: resume, "
                                                        "and redo what was measured while the machine was busy)")
    p.add_argument("--types", help=f"tensor types to measure (default {','.join(CALIBRATED_TYPES)}; "
                                   "'all' for every one the plan uses)")
    p.add_argument("--cpu-only", action="store_true", help="leave the GPU out")
    p.add_argument("--threads", type=int, help="CPU threads (default: the physical cores, as llama.cpp)")
    p.add_argument("--show", action="store_true", help="print the saved rates and measure nothing")
    p.add_argument("--json", action="store_true", help="print the rates as JSON, for scripts")


def rate_lines(rates: MachineRates) -> list[str]:
    lines = [f"measured {rates.measured_at} on {rates.machine}"]
    for side, dev in (("CPU", rates.cpu), ("GPU", rates.gpu)):
        if dev is None:
            continue
        extra = f", {dev.threads} threads" if side == "CPU" and dev.threads else ""
        lines.append(f"{side}: {dev.step_s * 1e3:.2f} ms a token + {dev.layer_s * 1e3:.3f} ms a block{extra}; "
                     f"KV read at depth {dev.kv_bytes_per_s / 1e9:.1f} GB/s" + ("  (busy)" if dev.busy else ""))
        for t, r in dev.types.items():
            pp = f"{r.pp_params_per_s / 1e9:10.0f} G weights x tokens/s" if r.pp_params_per_s else ""
            lines.append(f"  {t:8} tg {r.tg_bytes_per_s / 1e9:8.1f} GB/s  ±{r.spread:.0%}  {pp}"
                         + ("  measured while busy" if r.busy else ""))
        for t, why in dev.failed.items():
            lines.append(f"  {t:8} not measured: {why}")
    if rates.h2d_pinned or rates.h2d_pageable:
        lines.append(f"host to GPU: pinned {rates.h2d_pinned / 1e9:.1f} GB/s, pageable (mmap) "
                     f"{rates.h2d_pageable / 1e9:.1f} GB/s; a CPU/GPU hand-over {rates.switch_s * 1e3:.2f} ms")
    lines.append(f"the model's largest miss on the check probes: {rates.residual:.0%}")
    return lines


def main(args: argparse.Namespace) -> int:
    if args.types:
        types = ALL_TYPES if args.types.strip().lower() == "all" else tuple(
            t.strip().upper() for t in args.types.split(",") if t.strip())
        unknown = [t for t in types if t not in ALL_TYPES]
        if unknown or not types:
            print(f"vramdeck calibrate: unknown tensor type {unknown[0] if unknown else '(none)'} "
                  f"(one of {','.join(ALL_TYPES)}, or all)", file=sys.stderr)
            return 2
    else:
        types = CALIBRATED_TYPES
    if args.threads is not None and args.threads < 1:
        print("vramdeck calibrate: --threads must be 1 or more", file=sys.stderr)
        return 2
    from tui.speed.calibrate import CalibrationStopped, Calibrator, probe_folder  # numpy, gguf: only here

    with probe_folder() as tmp:
        cal = Calibrator(Path(tmp), fresh=args.fresh, types=types, use_gpu=not args.cpu_only,
                         threads=args.threads)
        if args.show:
            rates, why = read_rates(cal.key)
            if rates is None:
                print(f"vramdeck calibrate: {why}", file=sys.stderr)
                return 1
            print(rates.to_json() if args.json else "\n".join(rate_lines(rates)))
            return 0
        if cal.message:
            print(cal.message, file=sys.stderr)
        started = time.monotonic()

        def on_step(done: int, total: int, step, result: str) -> None:
            if args.json:
                return
            if result:
                print(f"[{done}/{total}] {step.label}: {result}", flush=True)
            else:
                print(f"[{done}/{total}] {step.label}…", end="\r", flush=True, file=sys.stderr)

        try:
            rates = asyncio.run(cal.run(on_step))
        except CalibrationStopped as exc:
            print(f"vramdeck calibrate: {exc}", file=sys.stderr)
            return 130
        except KeyboardInterrupt:
            print(f"\nvramdeck calibrate: stopped; what was measured is kept in {cache_path()}, and the "
                  "next run resumes", file=sys.stderr)
            return 130
    if cal.message:
        print(cal.message, file=sys.stderr)
    if args.json:
        print(rates.to_json())
        return 0
    print("\n".join(rate_lines(rates)))
    if rates.gpu is None and not args.cpu_only:
        why = ("this llama.cpp build cannot offload to the GPU (a CPU build)" if cal.gpu_name
               else "no NVIDIA GPU found")
        print(f"GPU: not measured: {why}; plans for a GPU use `plan --gpu NAME|GB/s`")
    print(f"done in {time.monotonic() - started:.0f} s; saved in {cache_path()}")
    if rates.busy:
        print("other processes kept cores busy during some steps: those figures are marked and measured "
              "again by the next `vramdeck calibrate` (run it when the machine is quiet)")
    return 0
