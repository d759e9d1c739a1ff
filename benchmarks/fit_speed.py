"""How long `vramdeck fit` takes on a 70B-shaped file, whole process, and where the time goes.

    python benchmarks/fit_speed.py [--out results.json] [--runs 5] [--baseline DIR]

Writes a sparse Llama-3.1-70B-shaped Q4_K_M file (3 MB on disk) to a temp dir, then times, each as
a fresh process:
  - the whole `vramdeck fit --vram 24GiB` (the very first run after the machine starts is the cold
    one); with --baseline, also the `fit` of an earlier vramdeck checked out in DIR
    (`git archive 28c1b2b tui | tar -x -C DIR`), alternating with this one, as a ratio;
  - `fit --formula` (no dry run: the parent's own share);
  - `import llama_cpp`; its C bindings alone (`llama_c`); backend init; CUDA's contexts alone,
    through the driver;
  - the dry-run child in each VRAMDECK_DRY_RUN mode (cold: one dry run after another, CUDA started
    by llama.cpp; serial: CUDA contexts made while llama_cpp imports; parallel, the default: that,
    and the dry runs on one thread each), with its own timeline (import done, each dry run's
    start, model loaded, end), and whether every mode reports the same buffers (they must).
Target: fit < 2 s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tui.engine.client import engine_env  # noqa: E402
from tui.engine.settings import ALL_LAYERS, LoadSettings  # noqa: E402
from tui.models.synthetic import LLAMA31_70B, write_sparse_llama  # noqa: E402

MODES = ("cold", "serial", "parallel")


def timed(cmd: list[str], mode: str = "parallel", root: str | None = None) -> tuple[float, str]:
    env = engine_env({"VRAMDECK_DRY_RUN": mode})
    if root:  # an earlier vramdeck: its tui package first on the path (and `-m` looks in the cwd)
        env["PYTHONPATH"] = root + ":" + env["PYTHONPATH"]
    start = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env, cwd=root)
    return time.perf_counter() - start, out.stdout


def summary(runs: list[float]) -> dict:
    return {"median_s": round(statistics.median(runs), 3), "min_s": round(min(runs), 3),
            "max_s": round(max(runs), 3)}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--baseline", help="a directory holding an earlier vramdeck's tui/ package")
    args = p.parse_args()
    model = write_sparse_llama(Path(tempfile.mkdtemp()) / "70b-Q4_K_M.gguf", LLAMA31_70B, "Q4_K_M")
    py = sys.executable
    fit = [py, "-m", "tui", "fit", str(model), "--vram", "24GiB", "--ctx", "8192", "--json"]
    first_fit, _ = timed(fit)  # the cold one, if this is the machine's first CUDA use
    results: dict = {"first fit (cold machine), parallel": round(first_fit, 3)}

    roots = {"this": None, **({"baseline": str(Path(args.baseline).resolve())} if args.baseline else {})}
    fits: dict[str, list[float]] = {name: [] for name in roots}
    answers = {}
    for _ in range(args.runs):  # alternate, so drift in the machine hits both alike
        for name, root in roots.items():
            seconds, out = timed(fit, root=root)
            fits[name].append(seconds)
            answers[name] = json.loads(out)["n_gpu_layers"]
    for name, runs in fits.items():
        results[f"vramdeck fit --vram 24GiB, {name}"] = summary(runs)
    if args.baseline:
        results["fit ratio this/baseline (median)"] = round(
            statistics.median(fits["this"]) / statistics.median(fits["baseline"]), 3)
        results["fit --formula, baseline"] = summary(
            [timed(fit + ["--formula"], root=roots["baseline"])[0] for _ in range(args.runs)])
    results["fit answers (n_gpu_layers)"] = answers

    settings = [LoadSettings(model_path=str(model), n_ctx=8192, n_gpu_layers=n).to_dict()
                for n in (0, 41, ALL_LAYERS)]
    plain = {
        "fit --formula (the parent's share)": fit + ["--formula"],
        "import llama_cpp": [py, "-c", "import llama_cpp"],
        "C bindings alone (llama_c)": [py, "-c", "from tui.engine.host.llama_c import import_bindings; "
                                                 "import_bindings()"],
        "import + backend init": [py, "-c", "import llama_cpp as L; L.llama_backend_init(); "
                                            "print(L.llama_supports_gpu_offload())"],
        "CUDA contexts alone (driver)": [py, "-c", "from tui.engine.host import cuda_warmup as w; "
                                                   "t = w.start(); t and t.join()"],
    }
    for name, cmd in plain.items():
        results[name] = summary([timed(cmd)[0] for _ in range(args.runs)])

    buffers = {}
    for mode in MODES:
        for label, req in (("3 settings", settings), ("1 setting", settings[2:])):
            runs, timelines = [], []
            for _ in range(args.runs):
                seconds, out = timed([py, "-m", "tui.engine.host.dry_run", json.dumps(req)], mode)
                runs.append(seconds)
                data = json.loads(out.strip().splitlines()[-1])
                timelines.append([d["timing"] for d in data])
                buffers.setdefault(label, {})[mode] = [d["buffers"] for d in data]
            results[f"dry-run child, {label}, {mode}"] = {**summary(runs), "last timeline": timelines[-1]}
    results["buffers identical in every mode"] = all(
        len({json.dumps(v, sort_keys=True) for v in per_mode.values()}) == 1 for per_mode in buffers.values())
    print(json.dumps(results, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
