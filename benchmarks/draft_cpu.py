"""Speculative decoding on the CPU (issue 17): the demo model alone and with each drafter, in one
run per drafter (interleaved, `vramdeck bench --draft`), as ratios with their spread.

    python benchmarks/draft_cpu.py --out docs/results/draft_cpu.json

Drafters: the demo model's own Q2_K and Q8_0 requantizations (llama.cpp's quantizer, same
vocabulary), and prompt lookup. On a CPU a same-size draft costs as much as the target, so the
model drafts are expected to lose; prompt lookup costs nothing to draft and is expected to win
on the shipped "repeat this text" prompt.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tui.models.demo import find_demo_model  # noqa: E402


def quantize(source: Path, out: Path, ftype: int) -> Path:
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.allow_requantize = True
    assert llama_cpp.llama_model_quantize(str(source).encode(), str(out).encode(), params) == 0
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("-r", type=int, default=5)
    ap.add_argument("--n-gen", type=int, default=128)
    args = ap.parse_args()
    demo = find_demo_model()
    assert demo is not None
    folder = Path(tempfile.mkdtemp(prefix="vramdeck-draft-cpu-"))
    drafters = {"Q2_K draft": ["--draft", str(quantize(demo, folder / "q2k.gguf", 10))],
                "Q8_0 draft": ["--draft", str(quantize(demo, folder / "q8.gguf", 7))],
                "prompt lookup": ["--draft-lookup"]}
    report = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
              "target": demo.name, "n_gen": args.n_gen, "repetitions": args.r, "rows": {}}
    for name, extra in drafters.items():
        out = subprocess.run([sys.executable, "-m", "tui", "bench", str(demo), "--n-prompt", "0",
                              "--n-gen", str(args.n_gen), "-r", str(args.r), *extra, "--json"],
                             capture_output=True, text=True, timeout=1200)
        data = json.loads(out.stdout)
        row = data["draft"]["measured"]
        row["contention"] = data["contention"]
        report["rows"][name] = row
        print(f"{name:14} alone {row['alone']['mean']:7.1f} ± {row['alone']['stdev']:5.1f}  with "
              f"{row['with_draft']['mean']:7.1f} ± {row['with_draft']['stdev']:5.1f}  "
              f"{row['speedup']:.2f}x  kept {row['accepted']}/{row['drafted']}", flush=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
