"""What watching costs: CPU time of the sampler and of the Monitor pane, and the effect on tok/s.

    python benchmarks/monitor_overhead.py [--model m.gguf --n-gpu-layers -1] [--seconds 10]

1. Sampler alone: `Sampler.sample()` at 1 s and 0.25 s intervals; CPU seconds per wall second.
2. The app on the Monitor pane (headless, real sampler) at each interval, against the same app
   with sampling parked (interval of an hour): the difference is the pane's refresh cost.
3. Generation tok/s through the engine with a sampler thread at 0.25 s vs without, alternating.

Targets: < 1% of one core at 1 s; tok/s ratio >= 0.99.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tui.app import VramdeckApp  # noqa: E402
from tui.engine.client import EngineClient  # noqa: E402
from tui.engine.protocol import ChatDone  # noqa: E402
from tui.engine.settings import LoadSettings, SamplingSettings  # noqa: E402
from tui.models.demo import find_demo_model  # noqa: E402
from tui.monitor.sampler import Sampler  # noqa: E402

MESSAGES = [{"role": "user", "content": "Write a long story about a dragon who learns to cook."}]


def sampler_cost(interval: float, seconds: float) -> float:
    sampler = Sampler()
    cpu0, t0 = time.process_time(), time.monotonic()
    while time.monotonic() - t0 < seconds:
        sampler.sample()
        time.sleep(interval)
    return (time.process_time() - cpu0) / (time.monotonic() - t0)


async def app_cost(interval: float, seconds: float) -> float:
    app = VramdeckApp(EngineClient(), Sampler(), sample_interval=interval, mode="monitor")
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause(1.0)
        cpu0, t0 = time.process_time(), time.monotonic()
        await asyncio.sleep(seconds)
        cost = (time.process_time() - cpu0) / (time.monotonic() - t0)
    return cost


class SamplerThread:
    def __init__(self, interval: float, pid: int | None):
        self.interval, self.pid = interval, pid
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        sampler = Sampler()
        while not self.stop.wait(self.interval):
            sampler.sample(self.pid)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


async def generation(client: EngineClient) -> float:
    async for event in client.chat(MESSAGES, SamplingSettings(temperature=0, max_tokens=256)):
        if isinstance(event, ChatDone):
            return event.stats.generation_tokens_per_s
    return 0.0


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model")
    p.add_argument("--n-gpu-layers", type=int, default=-1)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--out")
    args = p.parse_args()
    result: dict = {}
    for interval in (1.0, 0.25):
        result[f"sampler_core_fraction@{interval}s"] = round(sampler_cost(interval, args.seconds), 5)
    idle = await app_cost(3600.0, args.seconds)
    result["app_idle_core_fraction"] = round(idle, 5)
    for interval in (1.0, 0.25):
        busy = await app_cost(interval, args.seconds)
        result[f"app_monitor_core_fraction@{interval}s"] = round(busy, 5)
        result[f"monitor_refresh_cost@{interval}s"] = round(busy - idle, 5)
    print(json.dumps(result, indent=2), flush=True)

    client = EngineClient()
    model = args.model or str(find_demo_model())
    await client.load(LoadSettings(model_path=model, n_gpu_layers=args.n_gpu_layers, n_ctx=2048))
    await generation(client)  # warm-up
    plain, watched = [], []
    for i in range(args.rounds):  # alternate which goes first: a fixed order biased the ratio
        if i % 2:
            plain.append(await generation(client))
        with SamplerThread(0.25, client.pid):
            watched.append(await generation(client))
        if not i % 2:
            plain.append(await generation(client))
    await client.stop()
    result.update(tok_s_without=round(statistics.median(plain), 2),
                  tok_s_with_sampler_0_25s=round(statistics.median(watched), 2))
    result["tok_s_ratio"] = round(result["tok_s_with_sampler_0_25s"] / result["tok_s_without"], 4)
    print(json.dumps(result, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
