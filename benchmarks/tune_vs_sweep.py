"""Auto-tune against an exhaustive sweep of the same space, on the GPU.

    python benchmarks/tune_vs_sweep.py --part tune|sweep --out results.jsonl [--vram 4GiB]

A sparse Llama-3-8B-shaped Q4_K_M file (tui/models/synthetic.py) under a simulated 4 GiB budget.
The space: n_gpu_layers, KV type (f16, q8_0, q4_0), flash attention (on, off; quantized V needs
on), n_ubatch (512, 256), at the default thread count. The sweep measures every point of it that
the estimator says fits (n_gpu_layers every 4 from 0, plus the most that fit); the tune measures
only its own candidates. Both use the same short benchmark (pp128, tg64, one repetition after a
warm-up), the same fresh-engine loads, and write one JSON line per load, so a run cut short still
leaves its data. Targets: tuned best tg within 5% of the sweep's best, with at most a quarter of
the loads, and no load out of memory (measured VRAM under the budget on every load).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import tui.tune.run as run  # noqa: E402
from tui.engine.settings import LoadSettings  # noqa: E402
from tui.fit.budget import MemoryBudget
from tui.fit.calibration import calibrate  # noqa: E402
from tui.fit.estimate import estimate  # noqa: E402
from tui.fit.overhead import DEFAULT_GPU_OVERHEAD  # noqa: E402
from tui.models.model_info import load_model_info  # noqa: E402
from tui.models.synthetic import LLAMA3_8B, write_sparse_llama  # noqa: E402
from tui.tune.space import FLASH_CHOICES, KV_CHOICES, UBATCH_CHOICES, Candidate, tune_candidates, valid  # noqa: E402
from tui.units import parse_size  # noqa: E402

MARGIN = 256 * 1024**2


def sweep_candidates(info, base, budgets, overheads, host):
    tuned, _ = tune_candidates([info], base, calibrate,
        MemoryBudget(gpus=budgets, overheads=overheads, margin=MARGIN, host=host))
    max_fit = {(c.settings.type_k, c.settings.flash_attn, c.settings.n_ubatch): c.estimate.n_gpu_layers
               for c in tuned}
    out = []
    for kv in KV_CHOICES:
        for flash in FLASH_CHOICES:
            if not valid(kv, flash):
                continue
            for ub in UBATCH_CHOICES:
                s0 = base.with_changes(type_k=kv, type_v=kv, flash_attn=flash, n_ubatch=ub)
                cal = calibrate(info, s0)
                top = max_fit.get((kv, flash, ub), -1)
                for ngl in sorted(set(range(0, top + 1, 4)) | ({top} if top >= 0 else set())):
                    s = s0.with_changes(n_gpu_layers=ngl)
                    e = estimate(info, s, cal, MemoryBudget(gpus=budgets, overheads=overheads, host=host))
                    if all(g.total + MARGIN <= (g.budget or 0) for g in e.gpus):
                        out.append(Candidate(s, info, e))
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--part", choices=("tune", "sweep"), required=True)
    p.add_argument("--vram", default="4GiB")
    p.add_argument("--out", required=True)
    p.add_argument("--time-budget", type=float, default=3600)
    args = p.parse_args()
    run.BENCH_PROMPT, run.BENCH_GEN = 128, 64
    model = write_sparse_llama(Path(tempfile.gettempdir()) / "tune-8b-Q4_K_M.gguf", LLAMA3_8B, "Q4_K_M")
    info = load_model_info(model)
    budgets, overheads = (parse_size(args.vram),), (DEFAULT_GPU_OVERHEAD,)
    base = LoadSettings(model_path=str(model), n_ctx=4096)
    if args.part == "tune":
        candidates, _ = tune_candidates([info], base, calibrate,
            MemoryBudget(gpus=budgets, overheads=overheads, margin=MARGIN))
    else:
        candidates = sweep_candidates(info, base, budgets, overheads, None)
    out = open(args.out, "a", encoding="utf-8")

    def progress(what, m, report):
        if what == "measured" and m is not None:
            line = {"part": args.part, "planned": len(candidates), "settings": m.candidate.settings.to_dict(),
                    "ok": m.ok, "error": m.error, "failure_kind": m.failure_kind,
                    "predicted_vram": list(m.predicted_vram), "measured_vram": list(m.vram_bytes_per_gpu),
                    "budget": budgets[0], "tg": m.tg_tokens_per_s, "pp": m.pp_tokens_per_s,
                    "load_s": m.load_seconds}
            out.write(json.dumps(line) + "\n")
            out.flush()
            print(f"[{args.part} {report.loads}/{len(candidates)}] ngl {m.candidate.settings.n_gpu_layers} "
                  f"{m.candidate.settings.type_k} fa {m.candidate.settings.flash_attn} "
                  f"ub {m.candidate.settings.n_ubatch}: tg {m.tg_tokens_per_s:.1f} "
                  f"VRAM {[round(v / 2**20) for v in m.vram_bytes_per_gpu]} MiB {m.error}", flush=True)

    asyncio.run(run.run_tune(candidates, args.time_budget, asyncio.Event(), progress))


if __name__ == "__main__":
    main()
