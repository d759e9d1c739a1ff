"""`vramdeck bench MODEL`: prompt processing and generation speed, like llama-bench, via the engine."""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys

from tui.charts import depth_lines
from tui.engine.client import EngineClient
from tui.engine.errors import failure_text
from tui.engine.protocol import Loaded
from tui.engine.settings import MAX_CTX, LoadSettings
from tui.engine.status import cpu_only_warning
from tui.fit.overhead import remember_from_load
from tui.monitor.contention import ContentionMeter
from tui.monitor.nvml import NvmlSource
from tui.units import format_bytes


def summary(runs: tuple[float, ...]) -> dict:
    return {"median": round(statistics.median(runs), 2) if runs else 0.0,
            "stdev": round(statistics.stdev(runs), 2) if len(runs) > 1 else 0.0,
            "runs": list(runs)}


async def run_bench(settings: LoadSettings, n_prompt: int, n_gen: int, repetitions: int,
                    depths: tuple[int, ...] = ()) -> dict:
    client = EngineClient()
    try:
        result = await client.load(settings)
        if not isinstance(result, Loaded):
            return {"error": failure_text(result), "kind": result.kind, "detail": result.detail,
                    "log_tail": list(result.log_tail)}
        meter = ContentionMeter(client.pid).start()
        bench = await client.bench(n_prompt, n_gen, repetitions)
        contention = meter.stop()
        depth_tg = (await client.bench(n_prompt, n_gen, 1, depths)).depth_tg if depths else ()
        gpus, _ = NvmlSource().read()
        remember_from_load(result.facts.vram_bytes_per_gpu, result.facts.buffers, [g.name for g in gpus])
        return {
            "model": result.facts.path,
            "facts": {k: v for k, v in result.facts.__dict__.items()},
            "settings": settings.to_dict(),
            "llama_cpp_version": client.hello.llama_cpp_version if client.hello else "",
            "gpu_offload": client.hello.gpu_offload if client.hello else False,
            "warning": cpu_only_warning(client.hello.gpu_offload if client.hello else None, len(gpus)),
            # labelled with what ran: the engine cuts a test to what the context holds
            "n_prompt": bench.n_prompt, "n_gen": bench.n_gen,
            f"pp{bench.n_prompt}": summary(bench.pp_tokens_per_s),
            f"tg{bench.n_gen}": summary(bench.tg_tokens_per_s),
            "tg_by_depth": [{"depth": d, "tg_tokens_per_s": tg} for d, tg in depth_tg],
            "contention": {"other_cores": contention.other_cores, "warning": contention.warning},
        }
    finally:
        await client.stop()


def print_table(report: dict) -> None:
    n_prompt, n_gen = report["n_prompt"], report["n_gen"]
    f = report["facts"]
    s = report["settings"]
    ngl = "all" if s["n_gpu_layers"] < 0 else s["n_gpu_layers"]
    print(f"model: {f['name']} ({f['quant']}, {format_bytes(f['size_bytes'])}, "
          f"{f['n_params'] / 1e9:.2f} B params)")
    print(f"settings: ngl={ngl} ({f['layers_offloaded']}/{f['layers_total']} offloaded)  "
          f"ctx={f['n_ctx']}  kv={s['type_k']}/{s['type_v']}  fa={s['flash_attn']}  "
          f"llama-cpp-python {report['llama_cpp_version']}")
    print(f"{'test':>8} | {'t/s':>12} | {'± stdev':>8}")
    for test in (f"pp{n_prompt}", f"tg{n_gen}"):
        r = report[test]
        print(f"{test:>8} | {r['median']:12.2f} | {r['stdev']:8.2f}")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="GGUF file")
    p.add_argument("--n-gpu-layers", "-ngl", type=int, default=-1, help="-1 = all (default)")
    p.add_argument("--ctx", type=int, default=4096)
    p.add_argument("--kv", default="f16", help="KV cache type for K and V (f16, q8_0, q4_0, ...)")
    p.add_argument("--flash-attn", choices=("auto", "on", "off"), default="auto")
    p.add_argument("--n-prompt", type=int, default=512)
    p.add_argument("--n-gen", type=int, default=128)
    p.add_argument("--repetitions", "-r", type=int, default=5)
    p.add_argument("--depths", help="also generation speed with this much context filled, e.g. "
                                    "0,4096,16384 (the context grows to hold the largest)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def main(args: argparse.Namespace) -> int:
    try:
        depths = tuple(int(x) for x in args.depths.split(",")) if args.depths else ()
    except ValueError:
        print(f"vramdeck bench: --depths takes token counts like 0,4096,16384, not {args.depths!r}",
              file=sys.stderr)
        return 2
    for name, value, low in (("--n-prompt", args.n_prompt, 0), ("--n-gen", args.n_gen, 0),
                             ("--repetitions", args.repetitions, 1)):
        if not low <= value <= MAX_CTX:
            print(f"vramdeck bench: {name} must be between {low} and {MAX_CTX:,}, not {value}",
                  file=sys.stderr)
            return 2
    if any(d < 0 or d > MAX_CTX for d in depths):
        print(f"vramdeck bench: --depths must be between 0 and {MAX_CTX:,} tokens", file=sys.stderr)
        return 2
    ctx = max([args.ctx] + [d + args.n_gen + 16 for d in depths])
    settings = LoadSettings(model_path=args.model, n_gpu_layers=args.n_gpu_layers, n_ctx=ctx,
                            type_k=args.kv, type_v=args.kv, flash_attn=args.flash_attn)
    problems = settings.problems()
    if problems:
        for k, v in problems.items():
            print(f"vramdeck bench: {k}: {v}", file=sys.stderr)
        return 2
    report = asyncio.run(run_bench(settings, args.n_prompt, args.n_gen, args.repetitions, depths))
    if "error" in report:
        if args.json:
            print(json.dumps(report, indent=2))
        print(f"vramdeck bench: {report['error']}", file=sys.stderr)
        return 1
    if report["warning"]:
        print(f"WARNING: {report['warning']}", file=sys.stderr)
    if report["contention"]["warning"]:
        print(f"WARNING: {report['contention']['warning']}", file=sys.stderr)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report)
        if (report["n_prompt"], report["n_gen"]) != (args.n_prompt, args.n_gen):
            print(f"(the {report['facts']['n_ctx']:,}-token context holds pp{report['n_prompt']} "
                  f"and tg{report['n_gen']}; --ctx gives it room for more)")
        if report["tg_by_depth"]:
            print(f"tg{args.n_gen} against context depth:")
            print("\n".join(depth_lines([(r["depth"], r["tg_tokens_per_s"]) for r in report["tg_by_depth"]])))
    return 0
