"""Generation speed through vramdeck's engine process vs a plain in-process llama_cpp.Llama loop.

Same file, same settings, greedy, the same chat prompt; the two are run alternately in one
invocation so that machine noise hits both. Both are timed the same way, on the consuming side:
tokens after the first, over the time from the first text to the last. The engine sends text in
pieces of up to 15 ms, so its token count comes from its ChatDone; the in-process loop yields
one chunk per token.

    python benchmarks/engine_overhead.py                       # SmolLM2 demo model, CPU
    python benchmarks/engine_overhead.py --model 8b.gguf --n-gpu-layers -1 --flash-attn on
    python benchmarks/engine_overhead.py --make-8b /tmp/8b.gguf  # synthetic Llama-3-8B Q4_K_M

Target: ratio (engine / in-process) >= 0.98.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tui.engine.client import EngineClient  # noqa: E402
from tui.engine.host.runtime import physical_cores  # noqa: E402  (benchmark process only)
from tui.engine.protocol import ChatDone, Loaded, TextPiece  # noqa: E402
from tui.engine.settings import LoadSettings, SamplingSettings  # noqa: E402
from tui.models.demo import find_demo_model  # noqa: E402

MESSAGES = [{"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Write a long story about a dragon who learns to cook."}]


def rate(stamps: list[float], tokens: int | None = None) -> tuple[int, float]:
    """(tokens, tokens per second after the first) from the arrival times of the text."""
    tokens = len(stamps) if tokens is None else tokens
    if len(stamps) < 2 or tokens < 2:
        return tokens, 0.0
    return tokens, (tokens - 1) / (stamps[-1] - stamps[0])


async def engine_run(client: EngineClient, max_tokens: int) -> tuple[int, float, float]:
    stamps: list[float] = []
    counted, tokens = 0.0, 0
    async for event in client.chat(MESSAGES, SamplingSettings(temperature=0, max_tokens=max_tokens)):
        if isinstance(event, TextPiece):
            stamps.append(time.perf_counter())
        elif isinstance(event, ChatDone):
            counted, tokens = event.stats.generation_tokens_per_s, event.stats.generated_tokens
    n, tps = rate(stamps, tokens)
    return n, tps, counted


def inprocess_run(llm, max_tokens: int) -> tuple[int, float]:
    stamps: list[float] = []
    for chunk in llm.create_chat_completion(MESSAGES, temperature=0, max_tokens=max_tokens, stream=True):
        if chunk["choices"][0]["delta"].get("content"):
            stamps.append(time.perf_counter())
    return rate(stamps)


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model")
    p.add_argument("--make-8b", metavar="PATH", help="write a sparse Llama-3-8B-shaped Q4_K_M there and use it")
    p.add_argument("--n-gpu-layers", type=int, default=-1)
    p.add_argument("--ctx", type=int, default=2048)
    p.add_argument("--flash-attn", choices=("on", "off"), default="off")
    p.add_argument("--max-tokens", type=int, default=256)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--out", help="also write the result as JSON here")
    args = p.parse_args()

    if args.make_8b:
        from tui.models.synthetic import LLAMA3_8B, write_sparse_llama

        args.model = str(write_sparse_llama(args.make_8b, LLAMA3_8B, "Q4_K_M"))
    model = args.model or str(find_demo_model())
    threads = physical_cores()
    settings = LoadSettings(model_path=model, n_gpu_layers=args.n_gpu_layers, n_ctx=args.ctx,
                            n_batch=2048, n_ubatch=512, flash_attn=args.flash_attn,
                            n_threads=threads, n_threads_batch=threads)

    from llama_cpp import Llama  # the baseline runs in this process

    llm = Llama(model_path=model, n_gpu_layers=args.n_gpu_layers, n_ctx=args.ctx, n_batch=2048,
                n_ubatch=512, flash_attn=args.flash_attn == "on", n_threads=threads,
                n_threads_batch=threads, verbose=False)
    client = EngineClient()
    loaded = await client.load(settings)
    assert isinstance(loaded, Loaded), loaded

    engine_tps, inproc_tps, counted = [], [], []
    inprocess_run(llm, 16)  # warm-ups
    await engine_run(client, 16)
    for i in range(args.rounds):
        n_e, e, c = await engine_run(client, args.max_tokens)
        n_i, b = inprocess_run(llm, args.max_tokens)
        engine_tps.append(e)
        inproc_tps.append(b)
        counted.append(c)
        print(f"round {i + 1}: engine {e:8.2f} tok/s ({n_e} tokens, llama.cpp counters {c:.2f})   "
              f"in-process {b:8.2f} tok/s ({n_i} tokens)", flush=True)
    await client.stop()

    result = {
        "model": os.path.basename(model),
        "machine": platform.node(), "cpu": platform.processor() or platform.machine(),
        "gpu_layers": args.n_gpu_layers, "gpu_offload": bool(client.hello and client.hello.gpu_offload),
        "devices": list(client.hello.devices) if client.hello else [],
        "flash_attn": args.flash_attn, "max_tokens": args.max_tokens, "rounds": args.rounds,
        "engine_tok_s_median": round(statistics.median(engine_tps), 2),
        "inprocess_tok_s_median": round(statistics.median(inproc_tps), 2),
        "engine_counter_tok_s_median": round(statistics.median(counted), 2),
    }
    result["ratio"] = round(result["engine_tok_s_median"] / result["inprocess_tok_s_median"], 4)
    print(json.dumps(result, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
