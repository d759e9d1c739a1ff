"""`vramdeck plan SOURCE [SOURCE2]`: every quant of a model, sized exactly, fitted to the budget,
timed on this machine and priced in quality, before a byte of weights is downloaded."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

from tui.engine.settings import KV_TYPES, LoadSettings
from tui.fit.budget import MARGIN_ARG, MemoryBudget
from tui.models.discovery import default_locations
from tui.plan.hub import HubError, set_timeouts
from tui.plan.measure import measured_quality
from tui.plan.model_plan import ModelPlan, add_measured, make_plan
from tui.plan.quants import PLAN_TYPES
from tui.plan.sizes import QuantSizeError
from tui.plan.sources import SourceError, local_quants, resolve
from tui.plan.table import QuantRow
from tui.quality.figures import QualityFigures
from tui.speed.machine import machine_speed_model
from tui.units import format_bytes, format_params


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("sources", nargs="+", metavar="SOURCE",
                   help="a GGUF file, an Ollama tag, or a Hugging Face repo id (two to compare)")
    p.add_argument("--vram", help="budget per GPU, e.g. 24GiB or 24GiB,24GiB (default: free VRAM now)")
    p.add_argument("--ctx", type=int, default=4096, help="context length in tokens (default 4096)")
    p.add_argument("--kv", default="f16", choices=KV_TYPES, help="KV cache type, K and V (default f16)")
    p.add_argument("--flash-attn", choices=("auto", "on", "off"), default="auto",
                   help="flash attention (default auto, as llama.cpp)")
    p.add_argument("--min-tps", type=float, help="the best quality predicted to reach this tok/s")
    p.add_argument("--types", help=f"quant types to plan (default all: {','.join(PLAN_TYPES)})")
    p.add_argument("--gpu", metavar="NAME|GB/s",
                   help="with --vram for a GPU this machine lacks: the GPU to predict speed for, by name "
                        "(RTX 3090) or bandwidth (936); its figures say 'assumed'")
    p.add_argument("--margin", default=MARGIN_ARG, help=f"VRAM to leave free on each GPU (default {MARGIN_ARG})")
    p.add_argument("--formula", action="store_true", help="KV/compute from the formula, no dry run")
    p.add_argument("--models-dir", action="append", default=None,
                   help="where to look for other quants of the model on disk (default ~/models)")
    p.add_argument("--measure", action="store_true",
                   help="also measure each quant on disk against the highest-precision one (KL divergence, "
                        "same top token, perplexity; a load each, kept for next time)")
    p.add_argument("--reference", metavar="FILE", help="with --measure: the file to compare against")
    p.add_argument("--timeout", type=float, metavar="SECONDS",
                   help="longest wait for the Hugging Face hub to answer (default 60; also VRAMDECK_HUB_TIMEOUT)")
    p.add_argument("--json", action="store_true", help="print the answer as JSON, for scripts")


def _row_json(r: QuantRow) -> dict:
    d = asdict(r)
    d["settings"] = r.settings.to_dict()
    d["all_on_gpu"] = r.all_on_gpu
    d["quality"] = {"published_ppl_increase": r.quality.ppl_increase, "at": r.quality.model,
                    "source": r.quality.source}
    return d


def plan_json(p: ModelPlan) -> dict:
    return {"source": p.source.label, "gguf": str(p.source.gguf), "note": p.source.note,
            "header_bytes_read": p.source.header_bytes_read, "model": p.source.info.to_dict(),
            "settings": p.base.to_dict(), "calibration": p.calibration_source,
            "speeds": {"source": p.speed_source, "calibrated": p.speed.calibrated}, "seconds": round(p.seconds, 3),
            "rows": [_row_json(r) for r in p.rows], "refused": p.refused,
            "on_disk": {k: str(v) for k, v in p.on_disk.items()}, "in_repo": p.in_repo,
            "measured_perplexity": p.measured,
            "quality_reference": p.quality_reference,
            "measured_quality": {q: (f.to_dict() if isinstance(f, QualityFigures) else {"error": f})
                                 for q, f in p.quality.items()},
            "verdicts": [{"label": v.label, "quant": v.row.quant if v.row else None, "why": v.why}
                         for v in p.verdicts]}


def table_lines(plans: list[ModelPlan], budget: MemoryBudget) -> list[str]:
    """The plan table (several models: one table, a model column), 100 columns at most."""
    many = len(plans) > 1
    head = f"{'model':14} " if many else ""
    lines = [f"{head}{'quant':8} {'file':>9} {'GPU layers':>10} {'max ctx':>8} {'host RAM':>9} "
             f"{'tg tok/s':>8} {'pp tok/s':>8}  quality / notes"]
    for p in plans:
        for r in p.rows:
            model = f"{p.source.info.name[:14] or Path(p.source.label).name[:14]:14} " if many else ""
            layers = f"{r.n_gpu_layers}/{r.n_layers}" if budget.gpus else "CPU"
            if not r.gpu_fits:
                layers = "none fit"
            notes = [r.quality.describe()]
            if r.needs_imatrix:
                notes.append("needs imatrix")
            if not r.host_fits:
                notes.append("RAM too small")
            if r.quant in p.on_disk:
                q = p.quality.get(r.quant)
                notes.append(f"on disk, KLD {q.kld_text()} here" if isinstance(q, QualityFigures)
                             else "on disk")
            if r.quant in p.in_repo:
                notes.append("in repo")
            if r.bound == "CPU compute":
                notes.append("CPU compute-bound")
            if r.speed.basis != "measured":
                notes.append(f"speed {r.speed.basis}")
            lines.append(f"{model}{r.quant:8} {format_bytes(r.file_bytes, 1):>9} {layers:>10} "
                         f"{f'{r.max_ctx:,}' if r.max_ctx else '-':>8} "
                         f"{format_bytes(r.host_bytes, 1):>9} {r.tg_tokens_per_s:8.1f} "
                         f"{r.pp_tokens_per_s:8.0f}  {'; '.join(notes)}")
    return lines


def main(args: argparse.Namespace) -> int:
    try:
        quants = tuple(t.strip().upper() for t in args.types.split(",")) if args.types else PLAN_TYPES
        unknown = [q for q in quants if q not in PLAN_TYPES]
        if unknown:
            raise ValueError(f"unknown quant type {unknown[0]} ({', '.join(PLAN_TYPES)})")
        if args.timeout is not None:
            if not args.timeout > 0:
                raise ValueError("--timeout must be a number of seconds above 0")
            set_timeouts(args.timeout)
        budget = MemoryBudget.from_cli(args.vram, args.margin, cpu_only_ok=True)
        base = LoadSettings(model_path="", n_ctx=args.ctx, type_k=args.kv, type_v=args.kv,
                            flash_attn=args.flash_attn)
    except ValueError as exc:
        print(f"vramdeck plan: {exc}", file=sys.stderr)
        return 2
    try:
        speed = machine_speed_model(args.gpu if budget.gpus else None)
    except ValueError as exc:
        print(f"vramdeck plan: {exc}", file=sys.stderr)
        return 2
    if budget.gpus and not args.gpu and speed[0].gpu is None:
        speed = (speed[0], speed[1] + "; GPU: default rates (no GPU measured here: --gpu NAME|GB/s "
                                      "says which one you plan for)")
    plans = []
    with tempfile.TemporaryDirectory(prefix="vramdeck-plan-") as scratch:
        for source in args.sources:
            try:
                resolved = resolve(source, Path(scratch))
                plan = make_plan(resolved, base, budget, speed, args.min_tps, quants,
                                 local_quants(resolved, default_locations(args.models_dir)),
                                 use_dry_run=not args.formula)
                if args.measure:
                    on_disk = {q: p for q, p in plan.on_disk.items() if q in {r.quant for r in plan.rows}}
                    add_measured(plan, *measured_quality(on_disk, base,
                                                         Path(args.reference) if args.reference else None))
                plans.append(plan)
            except (SourceError, HubError, QuantSizeError) as exc:
                print(f"vramdeck plan: {exc}", file=sys.stderr)
                return 1
    if args.json:
        print(json.dumps({"budget": asdict(budget), "plans": [plan_json(p) for p in plans]}, indent=2))
        return 0
    gpus = ", ".join(format_bytes(b or 0) for b in budget.gpus) or "no GPU"
    for p in plans:
        i = p.source.info
        print(f"{p.source.label}: {i.name or i.architecture}, {i.architecture}, {i.n_layer} blocks, "
              f"{format_params(i.n_params)} params" + (f" ({p.source.note})" if p.source.note else ""))
    print(f"budget {gpus} ({budget.source}), host RAM {format_bytes(budget.host or 0)}, "
          f"ctx {args.ctx:,}, KV {args.kv}, flash attention {args.flash_attn}; KV/compute from "
          f"{plans[0].calibration_source}")
    print("\n".join(table_lines(plans, budget)))
    for p in plans:
        for v in p.verdicts:
            what = (f"{v.row.quant} ({format_bytes(v.row.file_bytes, 1)}, "
                    f"{v.row.n_gpu_layers}/{v.row.n_layers} layers on the GPU, "
                    f"{v.row.tg_tokens_per_s:.1f} tok/s)") if v.row else "none"
            model = f"{p.source.label}: " if len(plans) > 1 else ""
            print(f"{model}{v.label}: {what}: {v.why}")
        for quant, why in p.refused.items():
            print(f"{quant}: llama.cpp would not make it: {why}")
    for p in plans:
        if p.quality_reference:
            print(f"measured here: KL divergence ± one standard error against {Path(p.quality_reference).name} "
                  f"on the shipped text (`vramdeck quality` shows every figure)")
    band = max((r.speed.band for p in plans for r in p.rows), default=0.0)
    print(f"speeds: {plans[0].speed_source}; within ±{band:.0%} (the calibration's own misses)"
          + ("" if plans[0].speed.calibrated else "; `vramdeck calibrate` measures this machine"))
    print("Quality: published figures are llama.cpp's at Llama-3-8B; `vramdeck pull` fetches one.")
    return 0
