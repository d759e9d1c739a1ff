"""`vramdeck tune MODEL...`: the fastest set-up that fits, measured, and what each quant costs in
quality (perplexity on a shipped public-domain text)."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path

from tui.charts import bar
from tui.engine.settings import LoadSettings, compact
from tui.fit.budget import MARGIN_ARG, MemoryBudget
from tui.fit.calibration import calibrate
from tui.models.discovery import default_locations
from tui.models.gguf_info import GgufError
from tui.models.model_info import load_model_info
from tui.profiles.portable import measured_results
from tui.profiles.schema import Profile
from tui.profiles.store import ProfileStore
from tui.quality.reference import pick_reference
from tui.tune.run import Measurement, TuneReport, run_tune
from tui.tune.strategy import TuneStrategy
from tui.units import format_bytes


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("models", nargs="+", help="one GGUF file, or several quants of the same model")
    p.add_argument("--vram", help="budget per GPU, e.g. 24GiB or 24GiB,24GiB (default: free VRAM)")
    p.add_argument("--min-ctx", type=int, default=4096, help="context every candidate must hold")
    p.add_argument("--time-budget", default="5m", help="stop after this long: 90s, 5m, 1h")
    p.add_argument("--objective", choices=("tg", "pp"), default="tg",
                   help="maximise generation (tg) or prompt (pp) tokens per second")
    p.add_argument("--margin", default=MARGIN_ARG, help="VRAM left free on each GPU")
    p.add_argument("--no-quality", action="store_true",
                   help="skip each file's quality (KL divergence against the reference, perplexity)")
    p.add_argument("--reference", metavar="FILE",
                   help="the file quality is measured against (default: the highest-precision file of this "
                        "model among MODELS, the files beside them and the model folders)")
    p.add_argument("--formula", action="store_true", help="prune with the formula, no dry runs")
    p.add_argument("--save", metavar="NAME", help="save the best as a profile with its figures")
    p.add_argument("--json", action="store_true", help="print the answer as JSON, for scripts")
    p.add_argument("--draft", "-md", metavar="FILE", default="",
                   help="also try speculative decoding with this draft model: draft lengths 4, 8 and 16, "
                        "each with the target layers its VRAM leaves; every set-up is then ranked by "
                        "tokens per second of greedy replies to the shipped text")
    p.add_argument("--draft-ngl", "-ngld", type=int, default=-1, help="the draft's GPU layers (-1 = all)")


def parse_duration(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600}
    text = text.strip().lower()
    try:
        return float(text[:-1]) * units[text[-1]] if text[-1] in units else float(text)
    except (ValueError, IndexError):
        raise ValueError(f"'{text}' is not a duration like 90s, 5m or 1h") from None


def bars(report: TuneReport, objective: str) -> list[str]:
    """Speed against quality per file, as a terminal plot: a bar of tok/s, then the mean KLD
    against the reference, the same-top-token rate and the perplexity, each ± one standard error."""
    best = report.best_per_file(objective)
    if not best:
        return []
    speed = {p: (m.tg_tokens_per_s if objective == "tg" else m.pp_tokens_per_s) for p, m in best.items()}
    top = max(speed.values()) or 1
    lines = [f"  {'file':30} {objective + ' tok/s':>29}   {'mean KLD':>17} {'same top':>13}  perplexity"]
    for path, _ in sorted(best.items(), key=lambda kv: -speed[kv[0]]):
        cells = bar(speed[path], top, 20)
        q = report.quality.get(path)
        quality = (f"{q.kld_mean:8.4f} ± {q.kld_mean_se:.4f} {100 * q.same_top:5.1f} ± {100 * q.same_top_se:3.1f} %"
                   f"  {q.ppl:.2f} ± {q.ppl_se:.2f}") if q else f"{'-':>17} {'-':>13}  -"
        lines.append(f"  {Path(path).name[:30]:30} {cells:<20}{speed[path]:>9.1f}   {quality}")
    return lines


def cpu_row(m: Measurement) -> str:
    """A CPU-only set-up in what matters there: no GPU layers, no VRAM."""
    s = m.candidate.settings
    what = (f"{Path(s.model_path).name[:30]:30} threads {s.n_threads or 'auto'}/{s.n_threads_batch or 'auto'} "
            f"ub{s.n_ubatch} KV {s.type_k} fa-{s.flash_attn}{'' if s.use_mmap else ' no-mmap'}"
            f"{' mlock' if s.use_mlock else ''}")
    if not m.ok:
        return f"  {what:70} failed: {m.error[:60]}"
    return (f"  {what:70} tg {m.tg_tokens_per_s:8.1f} {m.spread():16} pp {m.pp_tokens_per_s:9.1f}  "
            f"load {m.load_seconds:.2f} s{busy_mark(m)}")


def busy_mark(m: Measurement) -> str:
    return f"  [busy: other processes {m.other_cores:.1f} cores]" if m.contended else ""


def row(m: Measurement) -> str:
    s = m.candidate.settings
    vram = " + ".join(format_bytes(v) for v in m.vram_bytes_per_gpu) or "-"
    pred = " + ".join(format_bytes(v) for v in m.predicted_vram) or "-"
    threads = f" t{s.n_threads}" if s.n_threads else ""
    what = f"{Path(s.model_path).name[:30]:30} {compact(s, m.candidate.info.n_layer)}{threads}"
    if not m.ok:
        return f"  {what:70} failed: {m.error[:60]}"
    text = ""
    runs = f" ± {m.text_stdev:.1f} ({len(m.text_runs)} runs)" if len(m.text_runs) > 1 else " (1 run)"
    if s.speculative:
        acc = f"{m.acceptance:.0%}" if m.acceptance is not None else "-"
        text = f"  text {m.text_speed:7.1f}{runs} with draft (alone {m.text_tg_tokens_per_s:.1f}, kept {acc})"
    elif m.text_runs:
        text = f"  text {m.text_speed:7.1f}{runs}"
    return (f"  {what:70} tg {m.tg_tokens_per_s:8.1f} {m.spread():16} pp {m.pp_tokens_per_s:9.1f}  "
            f"VRAM {vram} (pred. {pred}){text}{busy_mark(m)}")


def main(args: argparse.Namespace) -> int:
    try:
        infos = [load_model_info(m) for m in args.models]
        if args.draft:
            load_model_info(args.draft)  # a bad draft file is said now, not after the tune
        if args.reference:
            load_model_info(args.reference)
        time_budget = parse_duration(args.time_budget)
        budget = MemoryBudget.from_cli(args.vram, args.margin, cpu_only_ok=True)
    except (GgufError, ValueError) as exc:
        print(f"vramdeck tune: {exc}", file=sys.stderr)
        return 2
    cpu_only = not budget.gpus
    gpu_budgets, margin, host = budget.gpus, budget.margin, budget.host
    source = budget.source
    base = LoadSettings(model_path=infos[0].path, n_ctx=args.min_ctx)
    use_dry_run = not args.formula
    say = (lambda *a: None) if args.json else print
    strategy = TuneStrategy(budget, lambda info, s: calibrate(info, s, use_dry_run), args.draft or "",
                            args.draft_ngl, args.objective)
    candidates, pruned = strategy.candidates(infos, base)
    if not cpu_only:
        if args.vram and candidates and "CPU build" in calibrate(infos[0], candidates[0].settings,
                                                                  use_dry_run).source:
            print("vramdeck tune: this llama.cpp build has no GPU offload, so it plans for a GPU it "
                  "cannot measure: every layer will run on the CPU whatever the plan says "
                  "(tune without --vram tunes what matters on the CPU)", file=sys.stderr)
            too_big = {i.path for i in infos if host is not None and i.tensor_bytes > host}
            if too_big:  # every load would run out of host memory: say so before the first
                for i in infos:
                    if i.path in too_big:
                        print(f"vramdeck tune: {Path(i.path).name} is {format_bytes(i.tensor_bytes)} and "
                              f"this machine has {format_bytes(host or 0)} of RAM free: with every layer on "
                              "the CPU it cannot load; not tried", file=sys.stderr)
                candidates = [c for c in candidates if c.settings.model_path not in too_big]
                if not candidates:
                    return 1
    if cpu_only:
        say(f"{source}: tuning threads, batch threads, n_ubatch, KV type, flash attention, mmap and mlock; "
            f"context >= {args.min_ctx:,}: {len(candidates)} candidates, then threads around the best; "
            f"time budget {time_budget:.0f} s")
    else:
        say(f"budget {', '.join(format_bytes(b) for b in gpu_budgets)} ({source}), margin "
            f"{format_bytes(margin)}, context >= {args.min_ctx:,}: {len(candidates)} candidates to "
            f"measure, {len(pruned)} pruned by the estimate; time budget {time_budget:.0f} s")

    more_threads = strategy.extra

    def progress(what: str, m: Measurement | None, report: TuneReport) -> None:
        if what == "measured" and m is not None:
            best = report.ranked(args.objective)
            speed = (best[0].tg_tokens_per_s if args.objective == "tg" else best[0].pp_tokens_per_s) if best else 0
            lead = f"   best so far: {speed:.1f} tok/s" if best else ""
            say(f"[{report.loads}] {(cpu_row(m) if cpu_only else row(m)).strip()}{lead}")
        elif what != "measured":
            say(f"    {what} …")

    stop = asyncio.Event()
    meter = None
    if not args.no_quality:
        reference = Path(args.reference) if args.reference else pick_reference(args.models, default_locations())
        if reference is not None:
            from tui.quality.measure import QualityMeter

            meter = QualityMeter(reference, base.with_changes(model_path=str(reference), n_gpu_layers=-1))
            say(f"quality: KL divergence and perplexity on the shipped text against {reference.name}"
                + ("" if args.reference else " (the highest-precision file of this model found; "
                   "--reference names another)"))

    async def go() -> TuneReport:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, stop.set)  # Ctrl+C: stop, keep what was measured
        return await run_tune(candidates, time_budget, stop, progress, quality=meter,
                              extra=more_threads, on_text=bool(args.draft))

    report = asyncio.run(go())
    ranked = report.ranked_on_text() if args.draft else report.ranked(args.objective)
    if args.save and ranked:
        best = ranked[0]
        profile = Profile(name=args.save, load=best.candidate.settings, notes="found by vramdeck tune")
        path = best.candidate.settings.model_path
        profile.results = measured_results({"gpus": list(budget.names)}, best.vram_bytes_per_gpu,
                                           best.load_seconds, best.pp_tokens_per_s,
                                           best.tg_tokens_per_s, best.speed_spread(),
                                           report.quality.get(path), Path(report.quality_reference).name)
        path = ProfileStore().save(profile, overwrite=True)
        say(f"saved the best as profile '{args.save}' ({path})")
    if args.json:
        print(json.dumps({
            "objective": args.objective, "loads": report.loads, "out_of_memory": report.out_of_memory,
            "seconds": round(report.seconds, 1), "stopped": report.stopped,
            "pruned": pruned, "untried": [c.settings.to_dict() for c in report.untried],
            "skipped": report.skipped,
            "perplexity": report.perplexity,
            "quality_reference": report.quality_reference, "quality_problem": report.quality_problem,
            "quality": {p: q.to_dict() for p, q in report.quality.items()},
            "cpu_only": cpu_only,
            "contended": len(report.contended),
            "measured": [{"settings": m.candidate.settings.to_dict(), "ok": m.ok, "error": m.error,
                          **({} if cpu_only else {"predicted_vram": list(m.predicted_vram),
                                                  "measured_vram": list(m.vram_bytes_per_gpu)}),
                          "pp_tokens_per_s": m.pp_tokens_per_s, "tg_tokens_per_s": m.tg_tokens_per_s,
                          "text_tg_tokens_per_s": m.text_tg_tokens_per_s,
                          "draft_tg_tokens_per_s": m.draft_tg_tokens_per_s, "acceptance": m.acceptance,
                          "tg_runs": m.tg_runs, "tg_stdev": round(m.tg_stdev, 2),
                          "text_runs": m.text_runs, "text_stdev": round(m.text_stdev, 2),
                          "other_cores": m.other_cores,
                          "load_seconds": m.load_seconds} for m in report.measured],
            "best": ranked[0].candidate.settings.to_dict() if ranked else None,
            "tied_with_best": [m.candidate.settings.to_dict() for m in report.ties],
            "pareto": [m.candidate.settings.model_path for m in report.pareto(args.objective)],
        }, indent=2))
        return 0 if ranked else 1
    print(f"\n{report.loads} loads in {report.seconds:.0f} s, {report.out_of_memory} out of memory"
          + (f"; ended early ({report.stopped}), not tried: {len(report.untried)}" if report.stopped else ""))
    for why in report.skipped:
        print(f"skipped: {why}")
    if not ranked:
        print("Nothing could be measured.")
        return 1
    print("\nRanked by tok/s of greedy replies to the shipped text (with the draft where there is one):"
          if args.draft else f"\nRanked by {args.objective} tok/s:")
    for m in ranked[:10]:
        print(cpu_row(m) if cpu_only else row(m))
    if report.quality_problem:
        print(f"\nQuality not measured: {report.quality_problem}")
    if report.perplexity or len(infos) > 1:
        against = f" against {Path(report.quality_reference).name}" if report.quality else ""
        print(f"\nSpeed against quality (best set-up of each file; KLD{against}, ± one standard error):")
        print("\n".join(bars(report, args.objective)))
        front = report.pareto(args.objective)
        print("Pareto front (nothing is both faster and better): "
              + ", ".join(Path(m.candidate.settings.model_path).name for m in front))
    best = ranked[0]
    if report.contended:
        worst = max(m.other_cores for m in report.contended)
        print(f"\nWARNING: {len(report.contended)} of {len(report.measured)} measurements ran while other "
              f"processes kept up to {worst:.1f} cores busy (marked [busy]): llama.cpp slows down sharply "
              "when its threads compete, so those figures are low and the ranking unsure. Stop the other "
              "load, or tune again with fewer threads.")
    if report.ties:
        print(f"\nWithin noise of the best (measured again, interleaved: the order among these is a "
              f"coin toss on this machine): {len(report.ties)}")
        for m in report.ties:
            print(cpu_row(m) if cpu_only else row(m))
    if cpu_only:
        print(f"\nBest: {cpu_row(best).strip()}")
        return 0
    print(f"\nBest: {Path(best.candidate.settings.model_path).name} "
          f"{compact(best.candidate.settings, best.candidate.info.n_layer)}"
          f"{f' t{best.candidate.settings.n_threads}' if best.candidate.settings.n_threads else ''}")
    return 0
