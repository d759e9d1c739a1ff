"""The `vramdeck` command: the app by default, or a headless subcommand."""

from __future__ import annotations

import argparse
import importlib
import signal
import sys

from tui import __version__
from tui.safe_text import SafeWriter

COMMANDS: dict[str, str] = {
    "bench": "measure pp/tg speed of a model, like llama-bench",
    "inspect": "what a GGUF file holds (header only)",
    "fit": "how many layers fit the GPU, with the breakdown",
    "models": "list the GGUF models found on this machine",
    "monitor": "GPU and host figures (--once --json for scripts)",
    "profiles": "saved set-ups: list, show, export as a command",
    "tune": "find the fastest set-up that fits, and each quant's quality",
    "calibrate": "measure this machine's speed per tensor type (once; every speed prediction uses it)",
    "plan": "every quant of a model: size, layers that fit, speed, quality",
    "quality": "KL divergence of quants against a reference file, like llama-perplexity --kl-divergence",
    "pull": "download a GGUF from Hugging Face into its cache",
    "web": "serve the app to a browser on 127.0.0.1 (textual-serve)",
}
"""Each subcommand, the module tui.commands.<name> that parses and runs it, and its help line."""


def _module(name: str):
    return importlib.import_module(f"tui.commands.{name}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vramdeck", description="Run big GGUF models on small GPUs: chat, monitor, tune.")
    parser.add_argument("--version", action="version", version=f"vramdeck {__version__}")
    _module("run_app").add_arguments(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, text in COMMANDS.items():
        _module(name).add_arguments(sub.add_parser(name, help=text))
    return parser


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `vramdeck fit ... | head` ends quietly
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    if args.command in HEADLESS or (args.command == "monitor" and args.once):
        # model, tensor, file and process names are the files' words: printed, never obeyed
        sys.stdout, sys.stderr = SafeWriter(sys.stdout), SafeWriter(sys.stderr)
    try:
        return _module(args.command or "run_app").main(args)
    except KeyboardInterrupt:  # Ctrl+C at any step of a command: a line, never a traceback
        if args.command is None:
            raise
        print(f"\nvramdeck {args.command}: stopped (Ctrl+C).", file=sys.stderr)
        return 130


HEADLESS = {"bench", "calibrate", "inspect", "fit", "models", "profiles", "tune", "plan", "pull", "quality"}
"""Commands that only print (the app, the Monitor pane and web draw with escape sequences)."""


if __name__ == "__main__":
    sys.exit(main())
