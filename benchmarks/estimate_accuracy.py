"""Predicted vs measured VRAM: vramdeck's estimate against NVML, per process, for real loads.

The product's own flow: one real load measures this machine's per-GPU overhead, then for each
setting the estimate (tensor table + llama.cpp dry runs + that overhead) is made before the load
and compared with what NVML reports for the engine process. Rule of thumb shown beside it.

    python benchmarks/estimate_accuracy.py --model 70b.gguf --ngl 0,20,40,60,80,81 \
        --kv f16,q8_0,q4_0 --ctx 4096,32768 --out rows.jsonl
    python benchmarks/estimate_accuracy.py --model 70b.gguf --fit-vram 24GiB --out fit.json

Pass: |predicted - measured| <= max(3% of measured, 256 MiB) in every row.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tui.engine.client import EngineClient  # noqa: E402
from tui.engine.protocol import Loaded  # noqa: E402
from tui.engine.settings import LoadSettings  # noqa: E402
from tui.fit.budget import MemoryBudget
from tui.fit.calibration import calibrate  # noqa: E402
from tui.fit.estimate import estimate, formula_calibration, rule_of_thumb  # noqa: E402
from tui.fit.overhead import measured_overhead  # noqa: E402
from tui.fit.search import fit_layers  # noqa: E402
from tui.models.gguf_info import read_header  # noqa: E402
from tui.models.model_info import model_info  # noqa: E402
from tui.units import parse_size  # noqa: E402

MIB = 1024**2


async def measure(client: EngineClient, s: LoadSettings) -> tuple[int | None, dict]:
    result = await client.load(s)
    if not isinstance(result, Loaded) or not result.facts.vram_bytes_per_gpu:
        return None, {"failed": getattr(result, "message", "no NVML reading")}
    await asyncio.sleep(0.2)
    return result.facts.vram_bytes_per_gpu[0], {"layers_offloaded": result.facts.layers_offloaded,
                                                 "buffers": result.facts.buffers}


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--ngl", default="0,-1")
    p.add_argument("--kv", default="f16")
    p.add_argument("--ctx", default="4096")
    p.add_argument("--flash-attn", default="on")
    p.add_argument("--fit-vram", help="instead: fit to this budget, load the fit and one layer more")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    info = model_info(read_header(args.model))
    client = EngineClient()
    base = LoadSettings(model_path=args.model, n_ctx=4096, flash_attn=args.flash_attn)

    # 1. the first real load on this machine measures its overhead (as the app does)
    used, extra = await measure(client, base.with_changes(n_gpu_layers=0))
    if used is None:
        raise SystemExit(f"no per-process VRAM reading (needs an NVIDIA GPU and NVML): {extra}")
    overhead = measured_overhead((used,), extra["buffers"])[0]
    print(f"measured per-GPU overhead: {overhead / MIB:.0f} MiB", flush=True)
    out = open(args.out, "w")

    if args.fit_vram:
        budget = parse_size(args.fit_vram)
        t = time.perf_counter()
        cal = calibrate(info, base)
        fit = fit_layers(info, base, cal, MemoryBudget(gpus=(budget,), overheads=(overhead,), margin=0))
        fit_s = time.perf_counter() - t
        n = fit.estimate.n_gpu_layers
        rows = {}
        for label, ngl in (("fit", n), ("fit+1", n + 1)):
            measured, extra = await measure(client, base.with_changes(n_gpu_layers=ngl))
            predicted = estimate(info, base.with_changes(n_gpu_layers=ngl), cal,
                                 MemoryBudget(gpus=(budget,), overheads=(overhead,))).gpus[0].total
            rows[label] = {"n_gpu_layers": ngl, "predicted": predicted, "measured": measured,
                           "under_budget": measured is not None and measured <= budget}
            print(f"{label}: ngl={ngl} predicted {predicted / MIB:.0f} MiB measured "
                  f"{(measured or 0) / MIB:.0f} MiB budget {budget / MIB:.0f} MiB", flush=True)
        json.dump({"budget": budget, "overhead": overhead, "fit_seconds": round(fit_s, 3),
                   "calibration_source": cal.source, **rows}, out, indent=2)
        await client.stop()
        return

    worst = 0.0
    for ctx in (int(x) for x in args.ctx.split(",")):
        for kv in args.kv.split(","):
            s0 = base.with_changes(n_ctx=ctx, type_k=kv, type_v=kv)
            t = time.perf_counter()
            cal = calibrate(info, s0)
            cal_s = time.perf_counter() - t
            for ngl in (int(x) for x in args.ngl.split(",")):
                s = s0.with_changes(n_gpu_layers=ngl)
                predicted = estimate(info, s, cal, MemoryBudget(gpus=(None,), overheads=(overhead,))).gpus[0].total
                measured, extra = await measure(client, s)
                if measured is None:
                    print(f"ngl={ngl} kv={kv} ctx={ctx}: load failed {extra}", flush=True)
                    continue
                err = predicted - measured
                tol = max(0.03 * measured, 256 * MIB)
                thumb = rule_of_thumb(info, ngl)
                formula = estimate(info, s, formula_calibration(info, s), (None,), (overhead,)).gpus[0].total
                worst = max(worst, abs(err) / tol)
                row = {"ngl": ngl, "kv": kv, "ctx": ctx, "predicted": predicted, "measured": measured,
                       "error": err, "tolerance": tol, "ok": abs(err) <= tol, "rule_of_thumb": thumb,
                       "formula": formula,
                       "calibration_source": cal.source, "calibration_s": round(cal_s, 3),
                       "layers_offloaded": extra["layers_offloaded"]}
                out.write(json.dumps(row) + "\n")
                out.flush()
                print(f"ngl={ngl:>3} kv={kv:<5} ctx={ctx:>6} predicted {predicted / MIB:8.0f} MiB "
                      f"measured {measured / MIB:8.0f} MiB error {err / MIB:+6.0f} MiB "
                      f"{'ok' if row['ok'] else 'FAIL'}   rule of thumb {thumb / MIB:8.0f} MiB "
                      f"({(thumb - measured) / MIB:+.0f})", flush=True)
    print(f"worst error / tolerance: {worst:.3f}")
    await client.stop()


if __name__ == "__main__":
    asyncio.run(main())
