"""Chat streaming: does rendering keep up with the engine, and do keys stay responsive?

    python benchmarks/chat_stream.py [--replies 5] [--out results.json]

1. In-process (Textual headless, the real engine and SmolLM2): for each reply, the speed at which
   the Chat pane consumed and rendered the pieces (tokens after the first over the time from the
   first piece to the last) against the engine's own pace for the same reply (the same count over
   the engine's send times, which each piece carries). Target: ratio >= 0.98. Also shown: the ratio
   to llama.cpp's perf counters, which leave out sampling and detokenizing (about 2.6% here even
   with no UI at all), and how far behind the engine the UI was at the last piece.
2. Through a pseudo-terminal (the real app, as a terminal runs it): while a reply streams, type a
   character every 150 ms and time how long until the app writes it back to the terminal
   (key press to repaint). Target: 95th percentile < 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.pty_app import PtyApp  # noqa: E402
from tui.app import VramdeckApp  # noqa: E402
from tui.engine.client import EngineClient  # noqa: E402
from tui.engine.protocol import ChatDone, TextPiece  # noqa: E402
from tui.engine.settings import LoadSettings, SamplingSettings  # noqa: E402
from tui.engine.status import Phase  # noqa: E402
from tui.models.demo import find_demo_model  # noqa: E402
from tui.monitor.fake import FakeNvml, FakeSampler  # noqa: E402
from tui.widgets.prompt_input import PromptInput  # noqa: E402

PROMPT = "Write a long, detailed story about a dragon who learns to bake bread, with dialogue."


async def rendering_ratio(model: Path, replies: int, max_tokens: int) -> list[dict]:
    app = VramdeckApp(EngineClient(), FakeSampler(FakeNvml(no_driver=True)),
                      settings=LoadSettings(model_path=str(model), n_ctx=4096), model_locations=[])
    app.sampling = SamplingSettings(max_tokens=max_tokens, temperature=0.8)
    rows: list[dict] = []
    real_chat = app.engine.chat

    async def timed_chat(messages, sampling):
        times, sent, tokens, stats = [], [], 0, None
        async for event in real_chat(messages, sampling):
            yield event  # the UI renders this piece before asking for the next
            if isinstance(event, TextPiece):
                times.append(time.monotonic())
                sent.append(event.sent_at)
                tokens += event.tokens
            elif isinstance(event, ChatDone):
                stats = event.stats
        if stats and len(times) > 1 and stats.generated_tokens > 16:
            ui = (tokens - 1) / (times[-1] - times[0])
            engine = (tokens - 1) / (sent[-1] - sent[0])
            rows.append({"tokens": tokens, "ui_tok_s": round(ui, 1),
                         "engine_wall_tok_s": round(engine, 1),
                         "engine_perf_counter_tok_s": round(stats.generation_tokens_per_s, 1),
                         "ratio": round(ui / engine, 4),
                         "ratio_to_perf_counter": round(ui / stats.generation_tokens_per_s, 4),
                         "ui_lag_at_end_ms": round((times[-1] - sent[-1]) * 1000, 1)})

    app.engine.chat = timed_chat
    async with app.run_test(size=(100, 30)) as pilot:
        while app.engine_status.phase is not Phase.READY:
            await pilot.pause(0.05)
        screen = app.screen
        for _ in range(replies):
            screen.query_one(PromptInput).load_text(PROMPT)
            await pilot.press("enter")
            await pilot.pause(0.2)
            while screen.replying:
                await pilot.pause(0.05)
            await pilot.press("ctrl+n")
            await pilot.pause(0.2)
    return rows


def key_latency(model: Path, presses: int, max_tokens: int) -> list[float]:
    """The reply must outlast the presses: max_tokens is set to cover ~presses x 0.15 s."""
    app = PtyApp(["--model", str(model), "--ctx", str(max(4096, max_tokens + 256)),
                  "--max-tokens", str(max_tokens)], cols=100, rows=30)
    try:
        app.wait_for(b"layers on GPU", timeout=120)
        time.sleep(1.0)
        app.write(PROMPT + "\r")
        time.sleep(0.5)  # the reply is streaming now
        latencies = []
        for _ in range(presses):
            before = app.count("¤".encode())
            sent = app.write("¤")
            deadline = sent + 2.0
            while app.count("¤".encode()) <= before and time.perf_counter() < deadline:
                time.sleep(0.0005)
            with app._lock:
                got = next((t for t, c in reversed(app.chunks) if "¤".encode() in c), None)
            if got is not None and got >= sent:
                latencies.append((got - sent) * 1000)
            time.sleep(0.15)
        return latencies
    finally:
        app.close()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--replies", type=int, default=5)
    p.add_argument("--max-tokens", type=int, default=400)
    p.add_argument("--presses", type=int, default=30)
    p.add_argument("--pty-max-tokens", type=int, default=1024,
                   help="reply length in the key-latency run (raise it for fast models)")
    p.add_argument("--model", help="GGUF file (default: the demo model); a tiny random model "
                                    "from tui.models.synthetic streams at 1000+ tok/s")
    p.add_argument("--out")
    args = p.parse_args()
    model = Path(args.model) if args.model else find_demo_model()
    rows = asyncio.run(rendering_ratio(model, args.replies, args.max_tokens))
    latencies = key_latency(model, args.presses, args.pty_max_tokens)
    q = statistics.quantiles(latencies, n=20) if len(latencies) >= 2 else [float("nan")] * 19
    result = {
        "replies": rows,
        "ratio_median": statistics.median(r["ratio"] for r in rows) if rows else None,
        "ratio_min": min((r["ratio"] for r in rows), default=None),
        "key_to_repaint_ms": {"n": len(latencies), "p50": round(statistics.median(latencies), 1),
                              "p95": round(q[18], 1), "max": round(max(latencies), 1)},
    }
    print(json.dumps(result, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
