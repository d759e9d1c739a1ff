"""`vramdeck models`: every GGUF model found on this machine, or why a file cannot be used."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from platformdirs import user_cache_dir

from tui.models.demo import find_demo_model
from tui.models.discovery import HeaderCache, default_locations, scan
from tui.units import format_bytes


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--models-dir", action="append", default=None,
                   help="a folder to search (repeatable; default ~/models)")
    p.add_argument("--json", action="store_true", help="print the answer as JSON, for scripts")


def main(args: argparse.Namespace) -> int:
    cache = HeaderCache(Path(user_cache_dir("vramdeck")) / "gguf_headers.json")
    demo = find_demo_model()  # what the app runs with no model given: listed like any other
    result = scan(default_locations(args.models_dir), cache, known=[(demo, "demo")] if demo else ())
    if args.json:
        print(json.dumps({
            "models": [{"name": m.name, "path": m.path, "source": m.source, "parts": list(m.parts),
                        "size_bytes": m.size_bytes, "error": m.error,
                        "info": m.info.to_dict() if m.info else None} for m in result.models],
            "skipped": result.skipped}, indent=2))
        return 0
    if not result.models:
        searched = ", ".join(str(loc.path) for loc in default_locations(args.models_dir))
        print(f"No GGUF models found. Searched: {searched}")
    for m in result.models:
        i = m.info
        if m.ok and i is not None:
            print(f"{m.name[:40]:<40} {i.quant:<7} {format_bytes(m.size_bytes):>9} {i.n_layer:>4} layers  "
                  f"{m.source}")
        else:
            print(f"{m.name[:40]:<40} {'-':<7} {format_bytes(m.size_bytes):>9}  unusable: {m.error}")
        print(f"    {m.path}")  # whole: what inspect, fit and --model take
    for s in result.skipped:
        print(f"skipped {s}")
    return 0
