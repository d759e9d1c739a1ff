"""`vramdeck bench MODEL`: prompt processing and generation speed, like llama-bench, via the engine."""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys

from tui.charts import depth_lines
from tui.commands.draft_args import add_draft_arguments, draft_changes, draft_problem
from tui.engine.client import EngineClient
from tui.engine.errors import failure_text
from tui.engine.protocol import Loaded
from tui.engine.settings import MAX_CTX, LoadSettings
from tui.engine.status import cpu_only_warning
from tui.fit.budget import MemoryBudget
from tui.fit.overhead import remember_from_load
from tui.models.gguf_info import GgufError, check_model_file
from tui.monitor.contention import ContentionMeter
from tui.monitor.nvml import NvmlSource
from tui.tune.run import draft_prompt
from tui.units import format_bytes


def summary(runs: tuple[float, ...]) -> dict:
    return {"mean": round(statistics.fmean(runs), 2) if runs else 0.0,
            "median": round(statistics.median(runs), 2) if runs else 0.0,
            "stdev": round(statistics.stdev(runs), 2) if len(runs) > 1 else 0.0,
            "n": len(runs), "runs": list(runs)}


async def draft_figures(client: EngineClient, n_gen: int, repetitions: int,
                        forced: tuple[float, ...] = ()) -> dict:
    """tg with the loaded drafter and without it, in one run; then at each forced acceptance."""
    out: dict = {}
    for rate in (-1.0, *forced):
        r = await client.draft_bench(draft_prompt(), n_gen, repetitions, rate)
        alone, drafted = summary(r.alone_tokens_per_s), summary(r.draft_tokens_per_s)
        key = "measured" if rate < 0 else f"forced_{rate:g}"
        out[key] = {"alone": alone, "with_draft": drafted,
                    "speedup": round(drafted["mean"] / alone["mean"], 3) if alone["mean"] else 0.0,
                    "drafted": r.drafted_tokens, "accepted": r.accepted_tokens,
                    "acceptance": round(r.accepted_tokens / r.drafted_tokens, 3) if r.drafted_tokens else None,
                    "kind": r.speculative, "n_gen": r.n_gen}
    return out


async def run_bench(settings: LoadSettings, n_prompt: int, n_gen: int, repetitions: int,
                    depths: tuple[int, ...] = (), forced: tuple[float, ...] = ()) -> dict:
    client = EngineClient()
    try:
        result = await client.load(settings)
        if not isinstance(result, Loaded):
            return {"error": failure_text(result), "kind": result.kind, "detail": result.detail,
                    "log_tail": list(result.log_tail)}
        if result.facts.draft_problem:
            return {"error": result.facts.draft_problem, "kind": "draft", "detail": result.facts.draft_problem,
                    "log_tail": []}
        meter = ContentionMeter(client.pid).start()
        bench = await client.bench(n_prompt, n_gen, repetitions)
        draft = await draft_figures(client, n_gen, repetitions, forced) if settings.speculative else {}
        depth = (await client.bench(n_prompt, n_gen, repetitions, depths)).depth_figures() if depths else []
        contention = meter.stop()
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
            "tg_by_depth": [{"depth": d, "tg_tokens_per_s": round(tg, 2), "stdev": round(sd, 2), "n": n}
                            for d, tg, sd, n in depth],
            "draft": draft,
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
    print(f"{'test':>8} | {'t/s mean':>12} | {'± stdev':>8} | runs")
    for test in (f"pp{n_prompt}", f"tg{n_gen}"):
        r = report[test]
        print(f"{test:>8} | {r['mean']:12.2f} | {r['stdev']:8.2f} | {r['n']}")
    for key, d in report.get("draft", {}).items():
        what = "draft model" if d["kind"] == "model" else "prompt lookup"
        how = "accepted as the target decides" if key == "measured" else f"forced acceptance {key[7:]}"
        print(f"speculative decoding ({what}, {how}), greedy replies of {d['n_gen']} tokens, "
              f"{d['alone']['n']} runs each, interleaved:")
        acc = f"{d['acceptance']:.0%}" if d["acceptance"] is not None else "-"
        print(f"  alone {d['alone']['mean']:.2f} ± {d['alone']['stdev']:.2f} t/s   with the draft "
              f"{d['with_draft']['mean']:.2f} ± {d['with_draft']['stdev']:.2f} t/s   "
              f"{d['speedup']:.2f}x   accepted {d['accepted']:,} of {d['drafted']:,} drafted ({acc})")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="GGUF file")
    p.add_argument("--n-gpu-layers", "-ngl", type=int, default=-1, help="-1 = all (default)")
    p.add_argument("--ctx", type=int, default=4096, help="context length in tokens (default 4096)")
    p.add_argument("--kv", default="f16", help="KV cache type for K and V (f16, q8_0, q4_0, ...)")
    p.add_argument("--flash-attn", choices=("auto", "on", "off"), default="auto",
                   help="flash attention (default auto, as llama.cpp)")
    p.add_argument("--n-prompt", type=int, default=512, help="prompt tokens processed per run, pp (default 512)")
    p.add_argument("--n-gen", type=int, default=128, help="tokens generated per run, tg (default 128)")
    p.add_argument("--repetitions", "-r", type=int, default=5,
                   help="runs of each test after a warm-up; mean ± sd is reported (default 5)")
    p.add_argument("--threads", "-t", type=int, default=None,
                   help="generation threads (default: the physical cores); fewer when other load shares the CPU")
    p.add_argument("--depths", help="also generation speed with this much context filled, e.g. "
                                    "0,4096,16384 (the context grows to hold the largest)")
    p.add_argument("--forced-acceptance", metavar="RATES", default="",
                   help="with a draft: also the speed when each drafted token is accepted with these "
                        "probabilities, e.g. 0.5,0.8 (nonsense text, realistic speed)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_draft_arguments(p)


def main(args: argparse.Namespace) -> int:
    try:
        check_model_file(args.model)  # before an engine starts for it
    except GgufError as exc:
        print(f"vramdeck bench: {exc}", file=sys.stderr)
        return 1
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
    try:
        forced = tuple(float(x) for x in args.forced_acceptance.split(",")) if args.forced_acceptance else ()
    except ValueError:
        forced = (-1.0,)
    if any(not 0 <= x <= 1 for x in forced):
        print(f"vramdeck bench: --forced-acceptance takes rates from 0 to 1 like 0.5,0.8, not "
              f"{args.forced_acceptance!r}", file=sys.stderr)
        return 2
    ctx = max([args.ctx] + [d + args.n_gen + 16 for d in depths])
    settings = LoadSettings(model_path=args.model, n_gpu_layers=args.n_gpu_layers, n_ctx=ctx,
                            type_k=args.kv, type_v=args.kv, flash_attn=args.flash_attn,
                            n_threads=args.threads, **draft_changes(args))
    if forced and not settings.speculative:
        print("vramdeck bench: --forced-acceptance needs --draft FILE or --draft-lookup", file=sys.stderr)
        return 2
    problems = settings.problems()
    if problems:
        for k, v in problems.items():
            print(f"vramdeck bench: {k}: {v}", file=sys.stderr)
        return 2
    if settings.draft_model_path:
        refused = draft_problem(settings, MemoryBudget.from_cli(None, cpu_only_ok=True))
        if refused:
            print(f"vramdeck bench: {refused}", file=sys.stderr)
            return 1
    report = asyncio.run(run_bench(settings, args.n_prompt, args.n_gen, args.repetitions, depths, forced))
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
            print("\n".join(depth_lines([(r["depth"], r["tg_tokens_per_s"], r["stdev"], r["n"])
                                          for r in report["tg_by_depth"]])))
    return 0
