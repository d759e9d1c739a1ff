"""The `vramdeck` command: the app by default, or a headless subcommand."""

from __future__ import annotations

import argparse
import sys

from tui import __version__

SUBCOMMANDS = ("bench",)


def build_parser() -> argparse.ArgumentParser:
    from tui.commands import bench, run_app

    parser = argparse.ArgumentParser(
        prog="vramdeck", description="Run big GGUF models on small GPUs: chat, monitor, tune.")
    parser.add_argument("--version", action="version", version=f"vramdeck {__version__}")
    run_app.add_arguments(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    bench.add_arguments(sub.add_parser("bench", help="measure pp/tg speed of a model, like llama-bench"))
    return parser


def main(argv: list[str] | None = None) -> int:
    from tui.commands import bench, run_app

    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    if args.command == "bench":
        return bench.main(args)
    return run_app.main(args)


if __name__ == "__main__":
    sys.exit(main())
