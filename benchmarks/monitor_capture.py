"""A text capture of the Monitor pane with a model loaded, for docs/benchmarks.md.

    python benchmarks/monitor_capture.py --model m.gguf --n-gpu-layers -1 --out capture.txt

Runs the real app headless (real engine, real NVML), streams one reply so the speed figures are
filled, then saves the Monitor pane as text (and SVG beside it).
"""

from __future__ import annotations

import argparse
import asyncio
import html
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tui.app import VramdeckApp  # noqa: E402
from tui.engine.client import EngineClient  # noqa: E402
from tui.engine.settings import LoadSettings, SamplingSettings  # noqa: E402
from tui.engine.status import Phase  # noqa: E402
from tui.monitor.sampler import Sampler  # noqa: E402


def svg_text(svg: str) -> str:
    """The characters of a Textual SVG screenshot, row by row."""
    rows: dict[float, list[tuple[float, str]]] = {}
    text = r'<text class="terminal-[^"]*-r[^>]*x="([0-9.]+)"[^>]*y="([0-9.]+)"[^>]*>(.*?)</text>'
    for m in re.finditer(text, svg, re.S):
        x, y, text = float(m.group(1)), float(m.group(2)), html.unescape(re.sub("<[^>]+>", "", m.group(3)))
        rows.setdefault(y, []).append((x, text.replace("\xa0", " ")))
    lines = []
    for y in sorted(rows):
        line = ""
        for x, text in sorted(rows[y]):
            col = round(x / 12.2)
            line = line.ljust(col) + text
        lines.append(line.rstrip())
    return "\n".join(lines)


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--n-gpu-layers", type=int, default=-1)
    p.add_argument("--size", default="100x34")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    w, h = (int(x) for x in args.size.split("x"))
    app = VramdeckApp(EngineClient(), Sampler(), sample_interval=0.5,
                      settings=LoadSettings(model_path=args.model, n_gpu_layers=args.n_gpu_layers,
                                            n_ctx=8192, flash_attn="on"))
    app.sampling = SamplingSettings(temperature=0, max_tokens=400)
    async with app.run_test(size=(w, h)) as pilot:
        while app.engine_status.phase is not Phase.READY:
            await pilot.pause(0.2)
        await pilot.press(*"Write a long story about a dragon.", "enter")
        await pilot.pause(0.3)
        await pilot.press("f3")
        for _ in range(100):
            await pilot.pause(0.1)
            if app.generation.last_stats is not None:
                break
        await pilot.pause(1.2)
        svg = app.export_screenshot()
    Path(args.out).with_suffix(".svg").write_text(svg)
    Path(args.out).write_text(svg_text(svg) + "\n")
    print(Path(args.out).read_text())


if __name__ == "__main__":
    asyncio.run(main())
