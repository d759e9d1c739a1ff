"""`vramdeck profiles list|show NAME|export NAME --as llama-server|llama-cli|python|llama-swap|ollama`."""

from __future__ import annotations

import argparse
import sys

from tui.profiles.export import KINDS, ExportError, export
from tui.profiles.schema import ProfileError, profile_to_toml
from tui.profiles.store import ProfileStore
from tui.safe_text import terminal_safe


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("list", "show", "export"),
                   help="list the saved profiles, show one, or export one as a command or file")
    p.add_argument("name", nargs="?", help="the profile (for show and export)")
    p.add_argument("--as", dest="kind", default="llama-server", choices=KINDS,
                   help="what export writes: a command line, a Python snippet or a config entry "
                        "(default llama-server)")


def main(args: argparse.Namespace) -> int:
    store = ProfileStore()
    if args.action == "list":
        found = store.list()
        for p in found.profiles:
            r = p.results
            speed = f"  tg {r['tg_tokens_per_s']:.1f} tok/s" if "tg_tokens_per_s" in r else ""
            print(f"{p.name:<30} {terminal_safe(p.load.model_path)}{speed}")
        for e in found.errors:
            print(f"broken: {terminal_safe(e)}", file=sys.stderr)
        if not found.profiles and not found.errors:
            print(f"No profiles yet in {store.folder}.")
        return 0
    if not args.name:
        print(f"vramdeck profiles {args.action}: which profile?", file=sys.stderr)
        return 2
    try:
        profile = store.load(args.name)
    except (ProfileError, ValueError) as exc:
        print(f"vramdeck profiles: {terminal_safe(exc)}", file=sys.stderr)
        return 1
    for w in profile.warnings:
        print(f"warning: {terminal_safe(w)}", file=sys.stderr)
    try:
        text = profile_to_toml(profile) if args.action == "show" else export(profile, args.kind)
    except ExportError as exc:
        print(f"vramdeck profiles export: {exc}", file=sys.stderr)
        return 1
    print(terminal_safe(text, multiline=True) if args.action == "show" else text)
    return 0
