"""The speed model against the hardware (issue 27): calibrate this machine (`tui.speed`), then
load sparse files with real tensor tables and compare predicted with measured tg, pp512 and tg
at depth, row by row.

    python benchmarks/speed_model.py --out $OUT/speed_model.json            # GPU box
    python benchmarks/speed_model.py --out docs/results/speed_model_cpu.json --cpu   # 2-core VM
    python benchmarks/speed_model.py --out /tmp/x.json --small             # a quick check

Rows (GPU): the Llama-3-8B shape fully offloaded in each --types quant, then the Llama-3.1-70B
shape fitted to --vram (24 GiB: most quants partial, the smallest whole) at ctx 4096, KV q8_0,
flash attention on. Rows (--cpu): every layer on the CPU, the demo model (each of its ladder's
types that llama.cpp makes from it) and the 8B shape in --types. `--rates FILE` skips the
calibration and uses that file (a run on the same machine kind). Written after every row, so a
timeout keeps what was done; `--deadline S` stops starting rows after S seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tui.engine.client import EngineClient  # noqa: E402
from tui.engine.protocol import Loaded  # noqa: E402
from tui.engine.settings import ALL_LAYERS, LoadSettings  # noqa: E402
from tui.fit.budget import MemoryBudget  # noqa: E402
from tui.fit.calibration import calibrate  # noqa: E402
from tui.fit.overhead import measured_overhead  # noqa: E402
from tui.fit.search import fit_layers  # noqa: E402
from tui.models.gguf_info import read_header, write_sparse  # noqa: E402
from tui.models.model_info import load_model_info  # noqa: E402
from tui.models.synthetic import LLAMA3_8B, LLAMA31_70B, TINY, write_sparse_llama  # noqa: E402
from tui.monitor.contention import ContentionMeter  # noqa: E402
from tui.plan.sizes import quant_targets, retyped  # noqa: E402
from tui.speed.calibrate import CALIBRATED_TYPES, Calibrator  # noqa: E402
from tui.speed.model import SpeedModel  # noqa: E402
from tui.speed.rates import parse_rates  # noqa: E402

GiB = 1024**3
GPU_TYPES = "Q8_0,Q6_K,Q5_K_M,Q4_K_M,IQ4_XS,Q3_K_M,IQ3_M,IQ3_XXS,Q2_K,IQ2_XXS"
CPU_TYPES = "Q8_0,Q4_K_M,IQ3_XXS,IQ2_XXS"
DEMO_TYPES = "F16,Q8_0,Q6_K,Q5_K_M,Q4_K_M,IQ4_XS,Q3_K_M,IQ3_XXS,Q2_K,IQ2_XXS"


def median(xs) -> float:
    return statistics.median(xs) if xs else 0.0


def spread(xs) -> float:
    m = median(xs)
    return round((max(xs) - min(xs)) / m, 3) if xs and m else 0.0


async def measure(s: LoadSettings, n_prompt: int, n_gen: int, reps: int, depth: int = 0) -> dict:
    client = EngineClient()
    try:
        loaded = await client.load(s)
        if not isinstance(loaded, Loaded):
            return {"error": f"{loaded.kind}: {loaded.detail}"[:300]}
        out = {"vram_bytes": list(loaded.facts.vram_bytes_per_gpu), "buffers": loaded.facts.buffers,
               "layers": loaded.facts.layers_offloaded}
        meter = ContentionMeter(client.pid).start()
        bench = await client.bench(n_prompt, n_gen, reps)
        out["tg_runs"], out["pp_runs"] = list(bench.tg_tokens_per_s), list(bench.pp_tokens_per_s)
        if depth:
            deep = await client.bench(0, n_gen, reps, (depth,))
            out["depth_runs"] = list(deep.depth_runs[0]) if deep.depth_runs else []
        out["other_cores"] = meter.stop().other_cores
        return out
    finally:
        await client.stop()


def quant_files(src: Path, types: list[str], folder: Path, prefix: str):
    """(quant, sparse file with that quant's exact tensor table, its ModelInfo) for each type
    llama.cpp makes of `src`; each file is removed once the caller moves on."""
    targets = quant_targets(src, tuple(types))
    header = read_header(src)
    with open(src, "rb") as f:
        head = f.read(header.data_offset)  # the header only: the 70B source is 40 GB of hole
    for quant in types:
        t = targets.get(quant)
        if not t or isinstance(t, str):
            continue
        path = folder / f"{prefix}-{quant}.gguf"
        write_sparse(head, retyped(header, t.tensor_types), path)
        try:
            yield quant, path, load_model_info(path)
        finally:
            path.unlink(missing_ok=True)


def row(label: str, info, s: LoadSettings, n_gpus: int, model: SpeedModel, got: dict, depth: int) -> dict:
    p0 = model.predict(info, s, n_gpus, 0)
    out = {"row": label, "quant": info.quant, "n_gpu_layers": s.n_gpu_layers, "n_ctx": s.n_ctx,
           "kv": s.type_k, "n_layers": info.n_layer + 1, "error": got.get("error"),
           "predicted_tg": round(p0.tg, 3), "predicted_pp": round(p0.pp, 2), "bound": p0.bound,
           "pp_bound": p0.pp_bound, "basis": p0.basis, "band": p0.band,
           "other_cores": got.get("other_cores")}
    tg, pp = median(got.get("tg_runs", [])), median(got.get("pp_runs", []))
    out.update(measured_tg=tg, tg_spread=spread(got.get("tg_runs", [])), measured_pp=pp,
               tg_error=round(p0.tg / tg - 1, 3) if tg else None,
               pp_error=round(p0.pp / pp - 1, 3) if pp else None)
    if depth:
        pd = model.predict(info, s, n_gpus, depth)
        td = median(got.get("depth_runs", []))
        out.update(depth=depth, predicted_tg_depth=round(pd.tg, 3), measured_tg_depth=td,
                   tg_depth_error=round(pd.tg / td - 1, 3) if td else None)
    print(json.dumps({k: v for k, v in out.items() if k != "buffers"}), flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--cpu", action="store_true", help="every layer on the CPU (the 2-core VM's table)")
    ap.add_argument("--small", action="store_true", help="tiny shapes, to check the script")
    ap.add_argument("--rates", help="use this calibration file instead of calibrating")
    ap.add_argument("--types", help="quants of the row models")
    ap.add_argument("--gpu-rates", help="calibrate only the CPU, and take the GPU's rates, the copies and the "
                                        "hand-over cost from this file (a GPU run whose device time is short)")
    ap.add_argument("--calibrate-types", default=",".join(CALIBRATED_TYPES))
    ap.add_argument("--vram", type=float, default=24.0, help="GiB for the 70B rows")
    ap.add_argument("--deadline", type=float, default=1e9, help="start no row after this many seconds")
    ap.add_argument("--skip-8b", action="store_true")
    ap.add_argument("--skip-70b", action="store_true")
    ap.add_argument("--skip-demo", action="store_true")
    args = ap.parse_args()
    t0 = time.perf_counter()
    out_path = Path(args.out)
    report: dict = {"rows": [], "args": vars(args)}

    def save() -> None:
        report["seconds"] = round(time.perf_counter() - t0, 1)
        out_path.write_text(json.dumps(report, indent=1))

    with tempfile.TemporaryDirectory(prefix="speed-bench-") as tmp:
        tmpd = Path(tmp)
        if args.rates:
            rates = parse_rates(Path(args.rates).read_text())
            report["calibration"] = {"from": args.rates}
        else:
            cal_types = tuple(t for t in args.calibrate_types.split(",") if t)
            cal = Calibrator(tmpd, cache=out_path.with_name(out_path.stem + "_rates.json"), fresh=True,
                             types=cal_types, use_gpu=not args.cpu and not args.gpu_rates)
            steps = []

            def on_step(i, n, step, result):
                if result:
                    steps.append({"step": step.key, "result": result, "at_s": round(time.perf_counter() - t0, 1)})
                    print(f"[{i}/{n}] {step.label}: {result}", flush=True)

            started = time.perf_counter()
            rates = asyncio.run(cal.run(on_step))
            report["calibration"] = {"seconds": round(time.perf_counter() - started, 1), "steps": steps,
                                     "machine": rates.machine, "busy": rates.busy}
        if args.gpu_rates:
            from dataclasses import replace

            g = parse_rates(Path(args.gpu_rates).read_text())
            rates = replace(rates, gpu=g.gpu, gpu_name=g.gpu_name, h2d_pinned=g.h2d_pinned,
                            h2d_pageable=g.h2d_pageable, switch_s=g.switch_s)
            report["calibration"]["gpu_rates_from"] = args.gpu_rates
        report["rates"] = json.loads(rates.to_json())
        model = SpeedModel(rates)
        save()
        n_gpus = 0 if args.cpu else 1
        types = (args.types or (CPU_TYPES if args.cpu else GPU_TYPES)).split(",")
        shape8, shape70 = (TINY, TINY) if args.small else (LLAMA3_8B, LLAMA31_70B)
        # the demo model's ladder, every layer on the CPU (its tensor tables, sparse files)
        if args.cpu and not args.small and not args.skip_demo:
            from tui.models.demo import find_demo_model

            for quant, path, info in quant_files(find_demo_model(), DEMO_TYPES.split(","), tmpd, "demo"):
                s = LoadSettings(model_path=str(path), n_gpu_layers=0, n_ctx=4096, flash_attn="on")
                got = asyncio.run(measure(s, 128, 64, 5, 1024))
                report["rows"].append(row(f"demo CPU {quant}", info, s, 0, model, got, 1024))
                save()
        # 8B rows: whole model on the GPU, or on the CPU
        if not args.skip_8b:
            src = write_sparse_llama(tmpd / "src8-Q4_K_M.gguf", shape8, "Q4_K_M")
            for quant, path, info in quant_files(src, types, tmpd, "8b"):
                if time.perf_counter() - t0 > args.deadline:
                    report["stopped"] = "deadline"
                    break
                s = LoadSettings(model_path=str(path), n_gpu_layers=0 if args.cpu else ALL_LAYERS,
                                 n_ctx=4096 if args.cpu else 16640, flash_attn="on", type_k="q8_0", type_v="q8_0")
                depth = 256 if args.cpu else 16384  # an 8B prompt on 2 cores fills ~15 tokens a second
                got = asyncio.run(measure(s, 32 if args.cpu else 512, 16 if args.cpu else 64,
                                          2 if args.cpu else 3, depth))
                report["rows"].append(row(f"8B {'CPU' if args.cpu else 'GPU'} {quant}", info, s, n_gpus,
                                          model, got, depth))
                if not args.cpu and "overhead" not in report and got.get("vram_bytes"):
                    report["overhead"] = measured_overhead(tuple(got["vram_bytes"]), got["buffers"])[0]
                save()
        if not args.cpu and not args.skip_70b:
            src = write_sparse_llama(tmpd / "src70-Q4_K_M.gguf", shape70, "Q4_K_M")
            base = LoadSettings(model_path=str(src), n_ctx=4096, flash_attn="on", type_k="q8_0", type_v="q8_0")
            calib = calibrate(load_model_info(src), base)
            budget = MemoryBudget(gpus=(int(args.vram * GiB),), overheads=(report.get("overhead") or 600 * 2**20,),
                                  host=100 * GiB)
            for quant, path, info in quant_files(src, types, tmpd, "70b"):
                if time.perf_counter() - t0 > args.deadline:
                    report["stopped"] = "deadline"
                    break
                s = fit_layers(info, base.with_changes(model_path=str(path)), calib, budget).settings
                got = asyncio.run(measure(s, 512, 16, 2))
                report["rows"].append(row(f"70B {args.vram:g}GiB {quant}", info, s, n_gpus, model, got, 0))
                save()
    save()


if __name__ == "__main__":
    main()
