"""vramdeck's fit against the alternatives, same budget, same file, one run (issue 19, items 2-3).

    VRAMDECK_LLAMA_TOOLS=1 source .gpu/setup.sh && python benchmarks/gpu_fit_compare.py --out $OUT/fit_compare.json

For the Llama-3.1-70B shape (sparse Q4_K_M) at a 24 GiB budget, ctx 4096: the layers vramdeck's
`fit` gives, llama.cpp's own `llama-fit-params` (its default 1 GiB margin, and vramdeck's 256 MiB;
the budget is emulated on a larger card by asking it to leave free-minus-budget-plus-margin
free), and the file-size rule of thumb (budget x n_layer / file size); each loaded and measured:
VRAM (NVML, the engine process), tg tok/s. Then vramdeck's `bench` against `llama-bench` built
from the same sources: the 8B shape fully offloaded, and the 70B at vramdeck's fit.
`--small` runs the steps it can on tiny shapes without the tools (a check before a device call).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.gpu_plan_check import load_and_bench, median  # noqa: E402
from tui.engine.client import engine_env  # noqa: E402
from tui.engine.settings import ALL_LAYERS, LoadSettings  # noqa: E402
from tui.models.model_info import load_model_info  # noqa: E402
from tui.models.synthetic import LLAMA3_8B, LLAMA31_70B, TINY, write_sparse_llama  # noqa: E402

GiB, MiB = 1024**3, 1024**2


def free_mib() -> int | None:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=memory.free", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=30)
        return int(out.stdout.split()[0])
    except (OSError, ValueError, IndexError):
        return None


def vramdeck_fit(path: Path, budget: int, ctx: int) -> int:
    out = subprocess.run([sys.executable, "-m", "tui", "fit", str(path), "--vram", f"{budget // MiB}MiB",
                          "--ctx", str(ctx), "--json"], capture_output=True, text=True, env=engine_env())
    return int(json.loads(out.stdout)["n_gpu_layers"])


def llama_fit(tools: str, path: Path, ctx: int, margin_mib: int) -> tuple[int | None, str]:
    out = subprocess.run([f"{tools}/llama-fit-params", "-m", str(path), "-c", str(ctx), "-fitt",
                          str(margin_mib)], capture_output=True, text=True, timeout=300)
    m = re.search(r"-ngl (-?\d+)", out.stdout)
    return (int(m.group(1)) if m else None), (out.stdout.strip() or out.stderr.strip()[-300:])


def llama_bench(tools: str, path: Path, ngl: int, n_prompt: int, n_gen: int, reps: int) -> dict:
    out = subprocess.run([f"{tools}/llama-bench", "-m", str(path), "-ngl", str(ngl), "-p", str(n_prompt),
                          "-n", str(n_gen), "-r", str(reps), "-fa", "1", "-o", "json"],
                         capture_output=True, text=True, timeout=400)
    try:
        rows = json.loads(out.stdout)
    except ValueError:
        return {"error": out.stderr[-500:]}
    got = {}
    for r in rows:
        key = "pp" if r.get("n_prompt") else "tg"
        got[key] = r.get("avg_ts")
        got[f"{key}_stdev"] = r.get("stddev_ts")
    return got


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--small", action="store_true")
    args = ap.parse_args()
    tools = os.environ.get("LLAMA_TOOLS")
    big, probe = (TINY, TINY) if args.small else (LLAMA31_70B, LLAMA3_8B)
    budget = 64 * MiB if args.small else 24 * GiB
    ctx = 4096
    report: dict = {"budget_bytes": budget, "ctx": ctx, "fits": {}, "bench": {}}

    def save() -> None:
        Path(args.out).write_text(json.dumps(report, indent=2))

    with tempfile.TemporaryDirectory() as tmp:
        f70 = write_sparse_llama(Path(tmp) / "70b-Q4_K_M.gguf", big, "Q4_K_M")
        f8 = write_sparse_llama(Path(tmp) / "8b-Q4_K_M.gguf", probe, "Q4_K_M")
        info = load_model_info(f70)
        layers = {"vramdeck": vramdeck_fit(f70, budget, ctx),
                  "rule of thumb": min(info.n_layer, int(budget * info.n_layer / info.file_size))}
        free = free_mib()
        if tools and free:
            for name, margin in (("llama-fit-params 1 GiB", 1024), ("llama-fit-params 256 MiB", 256)):
                ngl, said = llama_fit(tools, f70, ctx, free - budget // MiB + margin)
                report["fits"][name] = {"said": said}
                if ngl is not None:
                    layers[name] = ngl
        save()
        for name, ngl in layers.items():
            s = LoadSettings(model_path=str(f70), n_gpu_layers=ngl, n_ctx=ctx, flash_attn="on")
            m = asyncio.run(load_and_bench(s, 0, 32, 2))
            vram = m.get("vram_bytes", [None])[0] if m.get("vram_bytes") else None
            report["fits"].setdefault(name, {}).update({
                "n_gpu_layers": ngl, "measured_vram": vram,
                "within_budget": (vram <= budget) if vram else None,
                "tg": median(m.get("tg", [])), "error": m.get("error")})
            print(name, json.dumps(report["fits"][name]), flush=True)
            save()
        ours = report["fits"]["vramdeck"]["tg"]
        for row in report["fits"].values():
            if row.get("tg"):
                row["vramdeck_speed_ratio"] = ours / row["tg"]
        cases = [("8B full offload", f8, ALL_LAYERS, 512, 128, 3),
                 ("70B at vramdeck's fit", f70, layers["vramdeck"], 256, 32, 2)]
        for name, path, ngl, n_prompt, n_gen, reps in cases:
            s = LoadSettings(model_path=str(path), n_gpu_layers=ngl, n_ctx=ctx, flash_attn="on")
            m = asyncio.run(load_and_bench(s, n_prompt, n_gen, reps))
            row = {"vramdeck_pp": median(m.get("pp", [])), "vramdeck_tg": median(m.get("tg", [])),
                   "vramdeck_runs": {"pp": m.get("pp"), "tg": m.get("tg")}}
            if tools:
                lb = llama_bench(tools, path, 999 if ngl == ALL_LAYERS else ngl, n_prompt, n_gen, reps)
                row["llama_bench"] = lb
                if lb.get("tg"):
                    row["tg_ratio"] = row["vramdeck_tg"] / lb["tg"]
                if lb.get("pp"):
                    row["pp_ratio"] = row["vramdeck_pp"] / lb["pp"]
            report["bench"][name] = row
            print(name, json.dumps(row), flush=True)
            save()


if __name__ == "__main__":
    main()
