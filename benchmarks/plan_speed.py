"""How long `vramdeck plan` takes for every quant type of a 70B-shaped model, whole process, and
its parts; and the plan tables and predicted-vs-real sizes that docs/benchmarks.md shows.

    python benchmarks/plan_speed.py [--runs 5] [--out docs/results/plan_cpu.json]

Each timing is a fresh process (the machine speeds probe is cached before the first run, as it is
after a user's first plan), alternating: the whole `plan --vram 24GiB` (23 types, KV and compute
by dry run) and its two parts alone (the quant-size children; the dry-run calibration child).
Target: under 2 s end to end. Then the 70B plan tables at ctx 4096 and 8192, KV f16 and q8_0,
and the demo model's ladder: predicted size against the real file llama.cpp writes.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tui.engine.client import engine_env  # noqa: E402
from tui.models.synthetic import LLAMA31_70B, write_sparse_llama  # noqa: E402

LADDER = ("Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "IQ4_NL", "Q3_K_M", "Q2_K")


def timed(code_or_args: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, *code_or_args], capture_output=True, text=True,
                          env=engine_env())
    if done.returncode not in (0, 1):
        raise SystemExit(done.stderr[-2000:])
    return time.perf_counter() - started


def stats(xs: list[float]) -> dict:
    return {"median_s": round(statistics.median(xs), 3), "min_s": round(min(xs), 3),
            "max_s": round(max(xs), 3), "stdev_s": round(statistics.stdev(xs), 3) if len(xs) > 1 else 0,
            "runs": [round(x, 3) for x in xs]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--out")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src = write_sparse_llama(Path(tmp) / "Llama-3.1-70B-Q4_K_M.gguf", LLAMA31_70B, "Q4_K_M")
        whole = ["-m", "tui", "plan", str(src), "--vram", "24GiB", "--json"]
        sizes = ["-c", f"from tui.plan.sizes import quant_targets; quant_targets({str(src)!r})"]
        calib = ["-c", "from tui.fit.calibration import calibrate; from tui.engine.settings import "
                       f"LoadSettings; from tui.models.model_info import load_model_info; "
                       f"i = load_model_info({str(src)!r}); calibrate(i, LoadSettings(model_path="
                       f"{str(src)!r}))"]
        timed(whole)  # caches the machine speeds probe, warms the page cache
        runs: dict[str, list[float]] = {"plan": [], "sizes": [], "calibration": []}
        for _ in range(args.runs):
            runs["plan"].append(timed(whole))
            runs["sizes"].append(timed(sizes))
            runs["calibration"].append(timed(calib))
        tables = {}
        for ctx in (4096, 8192):
            for kv in ("f16", "q8_0"):
                out = subprocess.run([sys.executable, "-m", "tui", "plan", str(src), "--vram", "24GiB",
                                      "--ctx", str(ctx), "--kv", kv, "--flash-attn", "on", "--json"],
                                     capture_output=True, text=True, env=engine_env())
                plan = json.loads(out.stdout)["plans"][0]
                tables[f"ctx{ctx}-{kv}"] = [{k: r[k] for k in ("quant", "file_bytes", "n_gpu_layers",
                                                                "n_layers", "max_ctx", "host_bytes",
                                                                "tg_tokens_per_s", "needs_imatrix")}
                                            for r in plan["rows"]]
        ladder = demo_ladder(Path(tmp))
    report = {"machine": f"{platform.node()} {platform.processor()}",
              "timings": {k: stats(v) for k, v in runs.items()}, "tables": tables, "ladder": ladder}
    print(json.dumps(report["timings"], indent=2))
    for row in ladder:
        print(f"{row['quant']:8} predicted {row['predicted']:>12,}  real {row['real']:>12,}  "
              f"diff {row['predicted'] - row['real']}")
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2))


def demo_ladder(tmp: Path) -> list[dict]:
    import llama_cpp

    from tui.models.demo import find_demo_model
    from tui.plan.quants import file_type_id
    from tui.plan.sizes import quant_targets

    demo = find_demo_model()
    if demo is None:
        return []
    targets = quant_targets(demo, LADDER)
    rows = []
    for quant in LADDER:
        out = tmp / f"demo-{quant}.gguf"
        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype = file_type_id(quant)
        params.allow_requantize = True
        llama_cpp.llama_model_quantize(str(demo).encode(), str(out).encode(), params)
        t = targets[quant]
        rows.append({"quant": quant, "predicted": t.file_bytes if not isinstance(t, str) else None,
                     "real": out.stat().st_size})
    return rows


if __name__ == "__main__":
    main()
