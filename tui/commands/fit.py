"""`vramdeck fit MODEL`: how many layers (and what context) fit the GPU budget, with the breakdown."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

from tui.commands.draft_args import add_draft_arguments, draft_changes
from tui.engine.settings import KV_TYPES, LoadSettings
from tui.fit.budget import MARGIN_ARG, MemoryBudget
from tui.fit.calibration import calibrate, start_calibration
from tui.fit.estimate import DraftMemory, MemoryEstimate, draft_memory, rule_of_thumb
from tui.fit.search import fit_context, fit_layers
from tui.models.gguf_info import GgufError
from tui.models.model_info import load_model_info
from tui.models.vocab import draft_vocab_problem
from tui.units import format_bytes, format_params


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="GGUF file")
    p.add_argument("--vram", help="budget per GPU, e.g. 24GiB or 24GiB,24GiB (default: free VRAM "
                                  "that NVML reports)")
    p.add_argument("--ctx", type=int, default=4096, help="context length in tokens (default 4096)")
    p.add_argument("--max-ctx", action="store_true", help="also find the longest context that fits")
    p.add_argument("--kv", default="f16", choices=KV_TYPES, help="KV cache type, K and V (default f16)")
    # the same default as plan, bench, tune and the app (llama.cpp's own): fit said 45 layers where
    # plan said 44 for the same file, fit assuming flash attention on
    p.add_argument("--flash-attn", choices=("auto", "on", "off"), default="auto",
                   help="flash attention (default auto, as llama.cpp)")
    p.add_argument("--n-ubatch", type=int, default=512, help="physical batch size (default 512)")
    p.add_argument("--margin", default=MARGIN_ARG, help=f"VRAM to leave free on each GPU (default {MARGIN_ARG})")
    p.add_argument("--formula", action="store_true", help="skip llama.cpp's dry run (faster, rougher)")
    p.add_argument("--json", action="store_true", help="print the answer as JSON, for scripts")
    add_draft_arguments(p)


def table(e: MemoryEstimate) -> list[str]:
    drafted = any(d.draft for d in (*e.gpus, e.host))
    extra = f" {'draft':>10}" if drafted else ""
    rows = [f"  {'':6} {'weights':>10} {'KV':>10} {'compute':>10} {'overhead':>10}{extra} {'total':>10} {'budget':>10}"]
    for d in (*e.gpus, e.host):
        draft = f" {format_bytes(d.draft):>10}" if drafted else ""
        rows.append(f"  {d.name:6} {format_bytes(d.weights):>10} {format_bytes(d.kv):>10} "
                    f"{format_bytes(d.compute):>10} {format_bytes(d.overhead):>10}{draft} "
                    f"{format_bytes(d.total):>10} {format_bytes(d.budget) if d.budget else '-':>10}")
    return rows


def main(args: argparse.Namespace) -> int:
    try:
        info = load_model_info(args.model)
    except GgufError as exc:
        print(f"vramdeck fit: {exc}", file=sys.stderr)
        return 1
    try:
        settings = LoadSettings(model_path=args.model, n_ctx=args.ctx, type_k=args.kv,
                                type_v=args.kv, flash_attn=args.flash_attn, n_ubatch=args.n_ubatch,
                                n_batch=max(2048, args.n_ubatch), **draft_changes(args)).validated()
    except ValueError as exc:
        print(f"vramdeck fit: {exc}", file=sys.stderr)
        return 2
    draft_info = None
    if settings.draft_model_path:
        try:
            draft_info = load_model_info(settings.draft_model_path)
            vocab = draft_vocab_problem(settings.model_path, settings.draft_model_path)
        except GgufError as exc:
            print(f"vramdeck fit: the draft model: {exc}", file=sys.stderr)
            return 1
        if vocab:  # bench refuses it after loading; say so before planning around it
            print(f"vramdeck fit: {vocab}", file=sys.stderr)
            return 1
    # llama.cpp's dry runs start now, in their own process; NVML and the host are read meanwhile.
    pending = start_calibration(info, settings, use_dry_run=not args.formula)
    pending_draft = (start_calibration(draft_info, settings.draft_settings(), use_dry_run=not args.formula)
                     if draft_info else None)
    try:
        budget = MemoryBudget.from_cli(args.vram, args.margin)
    except ValueError as exc:
        print(f"vramdeck fit: {exc}", file=sys.stderr)
        return 2
    gpu_budgets, margin, host_budget = budget.gpus, budget.margin, budget.host
    budget_source = budget.source
    calibration = pending()
    draft: DraftMemory | None = None
    alone = None
    if draft_info is not None and pending_draft is not None:
        draft = draft_memory(draft_info, settings.draft_settings(), pending_draft(), len(gpu_budgets))
        alone = fit_layers(info, settings, calibration, budget)
    result = fit_layers(info, settings, calibration, budget, draft)
    if args.max_ctx and result.gpu_fits:
        target = result.estimate.n_gpu_layers  # keep these layers; grow the context around them
        settings = fit_context(info, result.settings, calibration, budget, draft)
        for _ in range(8):  # check with llama.cpp at that context; step down if it disagrees
            calibration = calibrate(info, settings, use_dry_run=not args.formula)
            result = fit_layers(info, settings, calibration, budget, draft)
            if result.estimate.n_gpu_layers >= target or settings.n_ctx <= 256:
                break
            settings = settings.with_changes(n_ctx=max(256, (settings.n_ctx * 15 // 16) // 256 * 256))
    e = result.estimate
    if args.json:
        print(json.dumps({
            "model": info.path, "n_gpu_layers": e.n_gpu_layers, "n_layer": info.n_layer,
            "n_ctx": result.settings.n_ctx, "settings": result.settings.to_dict(),
            "gpu_fits": result.gpu_fits, "host_fits": result.host_fits, "margin": margin,
            "budget_source": budget_source, "calibration": asdict(calibration),
            "estimate": asdict(e), "next_layer": asdict(result.next_estimate) if result.next_estimate else None,
            "rule_of_thumb_bytes": rule_of_thumb(info, e.n_gpu_layers),
            "draft": ({"model": settings.draft_model_path, "gpu_bytes": list(draft.gpus), "host_bytes": draft.host,
                       "n_gpu_layers_without_draft": alone.estimate.n_gpu_layers if alone else None}
                      if draft is not None else None),
        }, indent=2))
        return 0 if result.gpu_fits and result.host_fits else 1
    print(f"{info.name or info.path}: {format_params(info.n_params)} params, {info.quant}, "
          f"{format_bytes(info.tensor_bytes)}, {info.n_layer} blocks")
    s = result.settings
    print(f"budget: {', '.join(format_bytes(b) for b in gpu_budgets)} ({budget_source}), "
          f"margin {format_bytes(margin)}; KV/compute from {calibration.source}")
    print(f"settings: context {s.n_ctx:,}, KV {s.type_k}/{s.type_v}, flash attention {s.flash_attn}, "
          f"n_ubatch {s.n_ubatch}, n_batch {s.n_batch}")
    if not result.gpu_fits:
        print("Not even 0 layers fit the GPU budget (the compute buffer and CUDA context alone are "
              "larger). Run on the CPU (n_gpu_layers 0), or free VRAM.")
    else:
        blocks = max(0, e.n_gpu_layers - 1)
        print(f"n_gpu_layers = {e.n_gpu_layers}  (output layer + {blocks} of {info.n_layer} blocks on "
              f"the GPU{'s' if len(e.gpus) > 1 else ''}), context {result.settings.n_ctx:,}")
    if draft is not None and alone is not None:
        print(f"draft {draft.name}: {', '.join(format_bytes(b) for b in draft.gpus) or '-'} on the "
              f"GPU{'s' if len(draft.gpus) > 1 else ''}, {format_bytes(draft.host)} on the host; it leaves "
              f"{e.n_gpu_layers} target layers on the GPU, {alone.estimate.n_gpu_layers} without it")
    print("\n".join(table(e)))
    if result.next_estimate is not None and result.gpu_fits:
        over = [f"{g.name} by {format_bytes(g.total + margin - g.budget)}"
                for g in result.next_estimate.gpus if g.budget and g.total + margin > g.budget]
        print(f"one more layer would not fit: over {', '.join(over)}")
    if not result.host_fits:
        print(f"host RAM: needs {format_bytes(e.host.total)} but {format_bytes(host_budget)} is "
              f"available: even this does not fit in RAM. Use a smaller quant or a shorter context.")
    print(f"rule of thumb (file x layers/n_layer + 512 MiB): "
          f"{format_bytes(rule_of_thumb(info, e.n_gpu_layers))} for the same layers")
    return 0 if result.gpu_fits and result.host_fits else 1
