"""Where llama.cpp puts a MoE model's experts with n_cpu_moe, against the estimate (GPU only).

    python benchmarks/moe_placement.py [--out results.json]

A tiny random mixture-of-experts Llama (4 blocks x 4 experts, tui/models/synthetic.py) is loaded
with every layer offloaded and n_cpu_moe = 0, 2 and 4; the model buffers llama.cpp reports per
device are set beside the estimate's weights per device.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tui.engine.client import EngineClient  # noqa: E402
from tui.engine.protocol import Loaded  # noqa: E402
from tui.engine.settings import LoadSettings  # noqa: E402
from tui.fit.estimate import estimate, formula_calibration  # noqa: E402
from tui.models.model_info import load_model_info  # noqa: E402
from tui.models.synthetic import TINY_MOE, write_random_llama  # noqa: E402


async def main_async(out: str | None) -> None:
    model = write_random_llama(Path(tempfile.mkdtemp()) / "tiny-moe.gguf", TINY_MOE)
    info = load_model_info(model)
    rows = []
    for n in (0, 2, 4):
        s = LoadSettings(model_path=str(model), n_ctx=512, n_cpu_moe=n)
        client = EngineClient()
        try:
            loaded = await client.load(s)
            assert isinstance(loaded, Loaded), loaded
            buffers = loaded.facts.buffers.get("model", {})
        finally:
            await client.stop()
        e = estimate(info, s, formula_calibration(info, s), (80 * 2**30,), (0,))
        gpu = sum(v for d, v in buffers.items() if d.startswith("CUDA"))
        host = sum(v for d, v in buffers.items() if not d.startswith("CUDA"))
        rows.append({"n_cpu_moe": n, "llama_cpp_model_buffers": buffers,
                     "measured_gpu_weights": gpu, "measured_host_weights": host,
                     "estimate_gpu_weights": e.gpus[0].weights,
                     "estimate_host_weights": e.host.weights})
        print(f"n_cpu_moe {n}: GPU {gpu / 2**20:.2f} MiB (estimate {e.gpus[0].weights / 2**20:.2f}), "
              f"host {host / 2**20:.2f} MiB (estimate {e.host.weights / 2**20:.2f})  {buffers}")
    if out:
        Path(out).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--out")
    asyncio.run(main_async(p.parse_args().out))
