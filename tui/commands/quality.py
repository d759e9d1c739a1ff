"""`vramdeck quality FILE...`: how far each quant's next-token distributions are from a
reference file of the same model, over the shipped text (llama-perplexity --kl-divergence's
figures: mean and 99th-percentile KL divergence, same top token, perplexity and its ratio),
each with its uncertainty. The reference is run once; a file measured before is answered from
the store without loading anything."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from tui.engine.settings import LoadSettings
from tui.models.discovery import default_locations
from tui.quality.errors import QualityError
from tui.quality.figures import QualityFigures
from tui.quality.reference import pick_reference


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="+", metavar="FILE", help="GGUF files of the same model (its quants)")
    p.add_argument("--reference", metavar="FILE",
                   help="the file to compare against (default: the highest-precision file of this model "
                        "among FILE and the model folders)")
    p.add_argument("--models-dir", action="append", default=None,
                   help="where to look for the model's other files (default ~/models and the usual caches)")
    p.add_argument("--n-gpu-layers", "-ngl", type=int, default=-1,
                   help="GPU layers for each load (-1 = all; out of memory: again on the CPU)")
    p.add_argument("--json", action="store_true", help="print the answer as JSON, for scripts")


def figure_cells(f: QualityFigures) -> str:
    return (f"{f.kld_mean:8.4f} ± {f.kld_mean_se:.4f}  {f.kld_p99:7.3f} ({f.kld_p99_low:.3f}–{f.kld_p99_high:.3f})  "
            f"{100 * f.same_top:5.1f} ± {100 * f.same_top_se:3.1f} %  {f.ppl:8.3f} ± {f.ppl_se:6.3f}  "
            f"{f.ppl_ratio:6.4f} ± {f.ppl_ratio_se:.4f}")


HEADER = (f"{'file':32} {'mean KLD':>17}  {'KLD p99 (95% interval)':>23}  {'same top':>13}  "
          f"{'PPL':>17}  {'PPL / ref':>15}")


async def _measure(meter, files: list[str]) -> dict[str, QualityFigures | str]:
    out: dict[str, QualityFigures | str] = {}
    for path in files:
        try:
            out[path] = await meter.measure_file(path)
        except QualityError as exc:
            out[path] = str(exc)
    return out


def main(args: argparse.Namespace) -> int:
    missing = [f for f in args.files + ([args.reference] if args.reference else []) if not Path(f).is_file()]
    if missing:
        why = "not a regular file" if Path(missing[0]).exists() else "no such file"
        print(f"vramdeck quality: {missing[0]}: {why}", file=sys.stderr)
        return 2
    reference = Path(args.reference) if args.reference else pick_reference(
        args.files, default_locations(args.models_dir))
    if reference is None:
        print("vramdeck quality: none of the files is a GGUF model vramdeck can read", file=sys.stderr)
        return 2
    from tui.quality.measure import CHUNK, QualityMeter

    meter = QualityMeter(reference, LoadSettings(model_path=str(reference), n_gpu_layers=args.n_gpu_layers))
    try:
        results = asyncio.run(_measure(meter, list(args.files)))
    except QualityError as exc:
        print(f"vramdeck quality: {exc}", file=sys.stderr)
        return 1
    how = "named with --reference" if args.reference else "the highest-precision file of this model found"
    if args.json:
        print(json.dumps({"reference": str(reference), "reference_chosen": how, "chunk": CHUNK,
                          "reference_runs": meter.log.reference_runs, "reused": meter.log.reused,
                          "warnings": meter.log.warnings,
                          "files": {p: (r.to_dict() if isinstance(r, QualityFigures) else {"error": r})
                                    for p, r in results.items()}}, indent=2))
        return 0 if any(isinstance(r, QualityFigures) for r in results.values()) else 1
    tokens = next((r.tokens for r in results.values() if isinstance(r, QualityFigures)), 0)
    print(f"reference: {reference.name} ({how})")
    print(f"text: the shipped text, {tokens:,} next tokens scored in chunks of {CHUNK}; "
          "figures ± one standard error")
    print(HEADER)
    for path, r in results.items():
        name = Path(path).name[:32]
        print(f"{name:32} {figure_cells(r)}" if isinstance(r, QualityFigures) else f"{name:32} failed: {r}")
    ran = "run once" if meter.log.reference_runs else "from the store (not run again)"
    print(f"the reference's distributions: {ran}; files from the store: {len(meter.log.reused)}")
    for warning in meter.log.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if all(Path(p).resolve() == reference.resolve() for p in results):
        print("Only the reference itself was measured: its KLD is 0 by definition. Name other quants of the "
              "model, or --reference a higher-precision file.")
    return 0 if any(isinstance(r, QualityFigures) for r in results.values()) else 1
