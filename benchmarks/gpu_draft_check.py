"""Speculative decoding on one GPU (issue 19, item 4).

    source .gpu/setup.sh && python benchmarks/gpu_draft_check.py --out $OUT/draft_h200.json

The Llama-3.1-70B shape (sparse Q4_K_M, KV q8_0, ctx 4096, flash attention) at a 24 GiB budget:
  1. `vramdeck fit` alone, and with a Llama-3.2-1B-shaped draft (Q8_0) fully on the GPU: the
     target layers the draft leaves;
  2. tg of the target alone at its own fit (greedy replies to the shipped text);
  3. at the fit with the draft: the target alone and with the draft, interleaved in one run, and
     at forced acceptance rates (`bench --draft --forced-acceptance`). Sparse files decode the
     same token every time, so every draft is accepted: the upper bound. `--draft-p-min 0`,
     since a sparse model's logits are flat (its own probability of any token is 1/n_vocab).
`--small` runs the same steps on tiny shapes (a check before a device call).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tui.models.synthetic import LLAMA31_70B, TINY, LlamaShape, write_sparse_llama  # noqa: E402

LLAMA32_1B = LlamaShape("Llama-3.2-1B-shaped", n_layer=16, n_embd=2048, n_ff=8192, n_head=32,
                        n_head_kv=8, n_vocab=128256, n_ctx_train=131072)


def vramdeck(*args: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "tui", *args, "--json"], capture_output=True, text=True,
                         timeout=560)
    try:
        return json.loads(out.stdout)
    except json.JSONDecodeError:
        return {"error": out.stderr[-2000:], "stdout": out.stdout[-2000:]}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--small", action="store_true")
    ap.add_argument("--n-gen", type=int, default=24)
    ap.add_argument("--draft-max", default="16", help="draft lengths to measure, e.g. 4,8,16")
    ap.add_argument("--forced", default="0.6", help="forced acceptance rates, e.g. 0.6,0.8")
    args = ap.parse_args()
    folder = Path("/tmp/vramdeck-draft")
    folder.mkdir(exist_ok=True)
    target_shape, draft_shape = (TINY, TINY) if args.small else (LLAMA31_70B, LLAMA32_1B)
    target = write_sparse_llama(folder / "target-Q4_K_M.gguf", target_shape, "Q4_K_M")
    draft = write_sparse_llama(folder / "draft-Q8_0.gguf", draft_shape, "Q8_0")
    budget = "24GiB" if not args.small else "64MiB"
    common = ["--ctx", "4096", "--kv", "q8_0", "--flash-attn", "on"]
    draft_args = ["--draft", str(draft), "--draft-kv", "q8_0", "--draft-p-min", "0"]
    report: dict = {"budget": budget, "target": target_shape.name, "draft": draft_shape.name, "steps": {}}
    started = time.monotonic()

    fit_alone = vramdeck("fit", str(target), "--vram", budget, *common[:4], "--formula")
    fit_draft = vramdeck("fit", str(target), "--vram", budget, *common[:4], "--formula", *draft_args[:4])
    report["steps"]["fit"] = {"alone_layers": fit_alone.get("n_gpu_layers"),
                              "with_draft_layers": fit_draft.get("n_gpu_layers"),
                              "draft_gpu_bytes": (fit_draft.get("draft") or {}).get("gpu_bytes")}
    print(json.dumps(report["steps"]["fit"]), flush=True)
    n_alone, n_draft = fit_alone.get("n_gpu_layers", 0), fit_draft.get("n_gpu_layers", 0)

    alone = vramdeck("bench", str(target), "-ngl", str(n_alone), *common, "--n-prompt", "0",
                     "--n-gen", str(args.n_gen), "-r", "2", "--draft-lookup", "--draft-max", "1")
    report["steps"]["alone_at_its_fit"] = {"layers": n_alone, "tg_random": alone.get(f"tg{args.n_gen}"),
                                           "tg_text": (alone.get("draft", {}).get("measured") or {}).get("alone"),
                                           "vram": (alone.get("facts") or {}).get("vram_bytes_per_gpu"),
                                           "error": alone.get("error")}
    print(json.dumps(report["steps"]["alone_at_its_fit"]), flush=True)

    for k in args.draft_max.split(","):
        spec = vramdeck("bench", str(target), "-ngl", str(n_draft), *common, "--n-prompt", "0",
                        "--n-gen", str(args.n_gen), "-r", "1", *draft_args, "--draft-max", k,
                        "--forced-acceptance", args.forced)
        step = f"with_draft_at_its_fit_d{k}" if k != "16" else "with_draft_at_its_fit"
        report["steps"][step] = {"layers": n_draft, "draft_max": int(k), "draft": spec.get("draft"),
                                 "vram": (spec.get("facts") or {}).get("vram_bytes_per_gpu"),
                                 "error": spec.get("error")}
        print(json.dumps(report["steps"][step]), flush=True)
    report["seconds"] = round(time.monotonic() - started, 1)
    Path(args.out).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
