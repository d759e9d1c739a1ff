"""What vramdeck writes to the terminal: start-up to first frame, bytes per second idle and while
a reply streams, measured through a pseudo-terminal (what an SSH session carries).

    python benchmarks/terminal_traffic.py [--seconds 10] [--out results.json]

Cases, each in a fresh app on the demo model (100x30, TERM=xterm-256color unless said):
start-up to first frame (the footer drawn) and to model loaded; idle on Chat, Monitor (1 s
refresh) and Tuner; streaming a reply on Chat. Targets: first frame < 1 s; idle writes almost
nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.pty_app import PtyApp  # noqa: E402
from tui.models.demo import find_demo_model  # noqa: E402

PROMPT = "Write a long, detailed story about a dragon who learns to bake bread, with dialogue."


def start(model: Path, term: str = "xterm-256color") -> tuple[PtyApp, float, float]:
    app = PtyApp(["--model", str(model), "--ctx", "4096"], cols=100, rows=30, term=term)
    first = app.wait_for(b"palette", timeout=30) - app.started
    loaded = app.wait_for(b"layers on GPU", timeout=120) - app.started
    time.sleep(2.0)  # let the first samples and the load settle
    return app, first, loaded


def rate(app: PtyApp, seconds: float) -> float:
    t0 = time.perf_counter()
    time.sleep(seconds)
    return app.bytes_between(t0, time.perf_counter()) / seconds


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--out")
    args = p.parse_args()
    model = find_demo_model()
    results: dict = {}
    for term in ("xterm-256color", "screen-256color", "linux"):
        app, first, loaded = start(model, term)
        results[f"start-up {term}"] = {"first_frame_s": round(first, 3), "model_loaded_s": round(loaded, 3)}
        if term == "xterm-256color":
            results["idle chat, bytes/s"] = round(rate(app, args.seconds), 1)
            app.write(b"\x1bOR")  # F3: Monitor
            time.sleep(1.5)
            results["idle monitor (1 s refresh), bytes/s"] = round(rate(app, args.seconds), 1)
            app.write(b"\x1bOS")  # F4: Tuner
            time.sleep(1.5)
            results["idle tuner, bytes/s"] = round(rate(app, args.seconds), 1)
            app.write(b"\x1bOQ")  # F2: Chat
            time.sleep(1.0)
            app.write(PROMPT + "\r")
            time.sleep(0.5)
            results["streaming a reply on chat, bytes/s"] = round(rate(app, min(args.seconds, 4.0)), 1)
        app.close()
    print(json.dumps(results, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
