"""Load a model through the engine under many settings; record what each load really cost.

For every combination of --ngl / --kv / --ctx it writes one JSON line: the settings, the layers
llama.cpp offloaded, the engine process's VRAM per GPU as NVML measured it, and the buffer sizes
llama.cpp logged (model, KV, compute, per device). These are the measured side of the estimator's
accuracy table (docs/benchmarks.md).

    python benchmarks/measure_loads.py --model m.gguf --ngl 0,20,40,80,-1 --kv f16,q8_0 \
        --ctx 4096,32768 --out loads.jsonl
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tui.engine.client import EngineClient  # noqa: E402
from tui.engine.host.dry_run import kv_per_device, parse_buffers  # noqa: E402
from tui.engine.protocol import Loaded  # noqa: E402
from tui.engine.settings import LoadSettings  # noqa: E402

MIB = 1024**2


async def dry_run(settings: LoadSettings) -> dict:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tui.engine.host.dry_run", json.dumps([settings.to_dict()]),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    t = time.perf_counter()
    out, _ = await proc.communicate()
    try:
        result = json.loads(out.decode().strip().splitlines()[-1])[0]
    except (ValueError, IndexError):
        result = {"ok": False, "error": "no output"}
    result["wall_s"] = round(time.perf_counter() - t, 3)
    return result


async def measure(settings: LoadSettings, client: EngineClient) -> dict:
    start = len(client.log)
    t = time.perf_counter()
    result = await client.load(settings)
    row = {"settings": settings.to_dict(), "wall_s": round(time.perf_counter() - t, 2)}
    await client.stop()  # the dry run should see the GPU as a user would: free
    row["dry_run"] = await dry_run(settings)
    log = list(client.log)[start:] if len(client.log) > start else list(client.log)
    kv = kv_per_device(log)
    if isinstance(result, Loaded):
        f = result.facts
        await asyncio.sleep(0.3)
        row.update(ok=True, layers_offloaded=f.layers_offloaded, layers_total=f.layers_total,
                   vram_bytes_per_gpu=list(f.vram_bytes_per_gpu), rss_bytes=f.rss_bytes,
                   n_ctx=f.n_ctx, buffers={**parse_buffers(log), **({"kv_from_size_line": kv} if kv else {})})
    else:
        row.update(ok=False, kind=result.kind, message=result.message, buffers=parse_buffers(log))
    return row


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--ngl", default="-1", help="comma-separated n_gpu_layers values")
    p.add_argument("--kv", default="f16")
    p.add_argument("--ctx", default="4096")
    p.add_argument("--flash-attn", default="on")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    client = EngineClient()
    with open(args.out, "a") as out:
        for ctx in (int(x) for x in args.ctx.split(",")):
            for kv in args.kv.split(","):
                for ngl in (int(x) for x in args.ngl.split(",")):
                    s = LoadSettings(model_path=args.model, n_gpu_layers=ngl, n_ctx=ctx,
                                     type_k=kv, type_v=kv, flash_attn=args.flash_attn)
                    row = await measure(s, client)
                    row["model"] = Path(args.model).name
                    out.write(json.dumps(row) + "\n")
                    out.flush()
                    vram = [round(b / MIB) for b in row.get("vram_bytes_per_gpu", [])]
                    print(f"ngl={ngl:>3} kv={kv:<5} ctx={ctx:>6} ok={row['ok']} "
                          f"offloaded={row.get('layers_offloaded')} vram_MiB={vram} "
                          "buffers=" + str({k: {d: round(b / MIB) for d, b in v.items()}
                                            for k, v in row["buffers"].items()}),
                          flush=True)
    await client.stop()


if __name__ == "__main__":
    asyncio.run(main())
