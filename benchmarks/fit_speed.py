"""How long `vramdeck fit` takes on a 70B-shaped file, whole process, and where the time goes.

    python benchmarks/fit_speed.py [--out results.json]

Writes a sparse Llama-3.1-70B-shaped Q4_K_M file (3 MB on disk) to a temp dir, then times, each
as a fresh process: `import llama_cpp`; `import llama_cpp` + backend init (CUDA start-up on a GPU
build); the dry-run child with 3 and with 2 settings; and the whole `vramdeck fit --vram 24GiB`
(the first run after the machine starts is the cold one). Target: fit < 2 s.
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


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, env=engine_env())
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out")
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args()
    model = write_sparse_llama(Path(tempfile.mkdtemp()) / "70b-Q4_K_M.gguf", LLAMA31_70B, "Q4_K_M")
    py = sys.executable
    fit = [py, "-m", "tui", "fit", str(model), "--vram", "24GiB", "--ctx", "8192", "--json"]
    first_fit = timed(fit)  # the cold one, if this is the machine's first CUDA use
    settings = [LoadSettings(model_path=str(model), n_ctx=8192, n_gpu_layers=n).to_dict()
                for n in (0, 41, ALL_LAYERS)]
    cases = {
        "import llama_cpp": [py, "-c", "import llama_cpp"],
        "import + backend init": [py, "-c", "import llama_cpp as L; L.llama_backend_init(); "
                                            "print(L.llama_supports_gpu_offload())"],
        "dry-run child, 3 settings": [py, "-m", "tui.engine.host.dry_run", json.dumps(settings)],
        "dry-run child, 2 settings": [py, "-m", "tui.engine.host.dry_run", json.dumps(settings[1:])],
        "vramdeck fit --vram 24GiB": fit,
    }
    results = {"first fit (cold)": round(first_fit, 3)}
    for name, cmd in cases.items():
        runs = [timed(cmd) for _ in range(args.runs)]
        results[name] = {"median_s": round(statistics.median(runs), 3),
                         "min_s": round(min(runs), 3), "max_s": round(max(runs), 3)}
    out = subprocess.run(fit, capture_output=True, text=True, env=engine_env())
    results["fit_answer"] = json.loads(out.stdout)["n_gpu_layers"]
    print(json.dumps(results, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
