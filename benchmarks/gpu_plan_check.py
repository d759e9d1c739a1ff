"""The plan against the hardware (issue 19, item 1): for the Llama-3.1-70B shape at --vram 24GiB,
ctx 4096, KV q8_0, flash attention on, write sparse files with the plan's own tensor tables, load
each at its planned layers and compare predicted with measured VRAM (NVML, the engine process)
and tg/pp tok/s; then load one layer more, which must exceed the budget.

    python benchmarks/gpu_plan_check.py --out $OUT/plan_check.json [--small]

Speeds come from a calibration file (--rates; benchmarks/speed_model.py and `vramdeck calibrate`
write one), else the speed model's defaults; benchmarks/speed_model.py is the speed check. The
GPU overhead is measured by the first load (as vramdeck does for a user). `--small` runs the
same steps on tiny shapes, on a CPU build, to check the script before a device call.
"""

from __future__ import annotations

import argparse
import asyncio
import json
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
from tui.models.gguf_info import read_header, write_sparse  # noqa: E402
from tui.models.model_info import load_model_info  # noqa: E402
from tui.models.synthetic import LLAMA3_8B, LLAMA31_70B, TINY, LlamaShape, write_sparse_llama  # noqa: E402
from tui.plan.sizes import quant_targets, retyped  # noqa: E402
from tui.plan.table import plan_rows  # noqa: E402
from tui.speed.model import SpeedModel  # noqa: E402
from tui.speed.rates import parse_rates  # noqa: E402

GiB = 1024**3
QUANTS = ("Q2_K", "IQ2_XXS", "IQ2_M", "IQ3_M", "Q3_K_M", "Q4_K_M")


async def load_and_bench(settings: LoadSettings, n_prompt: int, n_gen: int, reps: int) -> dict:
    client = EngineClient()
    try:
        started = time.perf_counter()
        result = await client.load(settings)
        if not isinstance(result, Loaded):
            return {"error": f"{result.kind}: {result.detail}"}
        f = result.facts
        out = {"load_s": round(time.perf_counter() - started, 2), "layers": f.layers_offloaded,
               "vram_bytes": list(f.vram_bytes_per_gpu), "buffers": f.buffers}
        if n_gen or n_prompt:
            bench = await client.bench(n_prompt, n_gen, reps)
            out["pp"] = list(bench.pp_tokens_per_s)
            out["tg"] = list(bench.tg_tokens_per_s)
        return out
    finally:
        await client.stop()


def median(xs: list[float]) -> float:
    xs = sorted(xs)
    return xs[len(xs) // 2] if xs else 0.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--small", action="store_true")
    ap.add_argument("--n-gen", type=int, default=32)
    ap.add_argument("--n-prompt", type=int, default=256)
    ap.add_argument("--rates", help="a calibration file to predict speeds with (default: the defaults)")
    args = ap.parse_args()
    shape: LlamaShape = TINY if args.small else LLAMA31_70B
    probe_shape: LlamaShape = TINY if args.small else LLAMA3_8B
    budget_bytes = (64 * 2**20) if args.small else 24 * GiB
    report: dict = {"shape": shape.name, "budget_bytes": budget_bytes, "rows": []}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        tmpd = Path(tmp)
        # the CUDA overhead of a process, from a fully offloaded probe
        p = write_sparse_llama(tmpd / "probe-Q4_K_M.gguf", probe_shape, "Q4_K_M")
        pr = asyncio.run(load_and_bench(LoadSettings(model_path=str(p), n_gpu_layers=ALL_LAYERS,
                                                     n_ctx=1024, flash_attn="on"), 0, 64, 3))
        overhead = (measured_overhead(tuple(pr["vram_bytes"]), pr["buffers"]) or [None])[0] \
            if pr.get("vram_bytes") else None
        report["probe"] = {"tg": pr.get("tg"), "overhead_bytes": overhead, "error": pr.get("error")}
        print(json.dumps(report["probe"]), flush=True)
        # speeds: the rates of `vramdeck calibrate` (benchmarks/speed_model.py writes them), or the defaults
        speeds = SpeedModel(parse_rates(Path(args.rates).read_text()) if args.rates else None)
        src = write_sparse_llama(tmpd / "src-Q4_K_M.gguf", shape, "Q4_K_M")
        targets = quant_targets(src, QUANTS)
        header = read_header(src)
        with open(src, "rb") as f:
            head = f.read(header.data_offset)
        base = LoadSettings(model_path=str(src), n_ctx=4096, type_k="q8_0", type_v="q8_0",
                            flash_attn="on")
        cal = calibrate(load_model_info(src), base, use_dry_run=True)
        report["calibration"] = cal.source
        budget = MemoryBudget(gpus=(budget_bytes,), overheads=(overhead or 768 * 2**20,),
                              host=int(100 * GiB))
        rows, refused = plan_rows(targets, base, cal, budget, speeds)
        report["refused"] = refused
        for row in rows:
            t = targets[row.quant]
            assert not isinstance(t, str)
            path = tmpd / f"planned-{row.quant}.gguf"
            write_sparse(head, retyped(header, t.tensor_types), path)
            s = row.settings.with_changes(model_path=str(path))
            measured = asyncio.run(load_and_bench(s, args.n_prompt, args.n_gen, 2))
            one_more = None
            if row.n_gpu_layers < row.n_layers:
                more = s.with_changes(n_gpu_layers=row.n_gpu_layers + 1)
                one_more = asyncio.run(load_and_bench(more, 0, 0, 1)).get("vram_bytes")
            predicted_vram = row.gpu_bytes[0] if row.gpu_bytes else None
            vram = measured.get("vram_bytes", [None])[0] if measured.get("vram_bytes") else None
            tg, pp = median(measured.get("tg", [])), median(measured.get("pp", []))
            report["rows"].append({
                "quant": row.quant, "file_bytes": row.file_bytes, "layers": row.n_gpu_layers,
                "n_layers": row.n_layers, "predicted_vram": predicted_vram, "measured_vram": vram,
                "vram_error_bytes": (vram - predicted_vram) if vram and predicted_vram else None,
                "predicted_tg": row.tg_tokens_per_s, "measured_tg": tg,
                "tg_error": (row.tg_tokens_per_s / tg - 1) if tg else None,
                "predicted_pp": row.pp_tokens_per_s, "measured_pp": pp,
                "pp_error": (row.pp_tokens_per_s / pp - 1) if pp else None,
                "one_more_layer_vram": one_more[0] if one_more else None,
                "one_more_exceeds": (one_more[0] > budget_bytes) if one_more else None,
                "error": measured.get("error")})
            print(json.dumps(report["rows"][-1]), flush=True)
            Path(args.out).write_text(json.dumps(report, indent=2))  # what is done survives a timeout
    report["seconds"] = round(time.perf_counter() - t0, 1)
    Path(args.out).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
