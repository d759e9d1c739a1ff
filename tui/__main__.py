"""The `vramdeck` command: the app by default, or a headless subcommand."""

from __future__ import annotations

import argparse
import signal
import sys

from tui import __version__
from tui.safe_text import SafeWriter


def build_parser() -> argparse.ArgumentParser:
    from tui.commands import (
        bench,
        calibrate,
        fit,
        inspect,
        models,
        monitor,
        plan,
        profiles,
        pull,
        quality,
        run_app,
        tune,
        web,
    )

    parser = argparse.ArgumentParser(
        prog="vramdeck", description="Run big GGUF models on small GPUs: chat, monitor, tune.")
    parser.add_argument("--version", action="version", version=f"vramdeck {__version__}")
    run_app.add_arguments(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    bench.add_arguments(sub.add_parser("bench", help="measure pp/tg speed of a model, like llama-bench"))
    inspect.add_arguments(sub.add_parser("inspect", help="what a GGUF file holds (header only)"))
    fit.add_arguments(sub.add_parser("fit", help="how many layers fit the GPU, with the breakdown"))
    models.add_arguments(sub.add_parser("models", help="list the GGUF models found on this machine"))
    monitor.add_arguments(sub.add_parser("monitor", help="GPU and host figures (--once --json for scripts)"))
    profiles.add_arguments(sub.add_parser("profiles", help="saved set-ups: list, show, export as a command"))
    tune.add_arguments(sub.add_parser("tune", help="find the fastest set-up that fits, and each quant's quality"))
    calibrate.add_arguments(sub.add_parser("calibrate", help="measure this machine's speed per tensor type "
                                                             "(once; every speed prediction uses it)"))
    plan.add_arguments(sub.add_parser("plan", help="every quant of a model: size, layers that fit, speed, quality"))
    quality.add_arguments(sub.add_parser("quality", help="KL divergence of quants against a reference file, "
                                                         "like llama-perplexity --kl-divergence"))
    pull.add_arguments(sub.add_parser("pull", help="download a GGUF from Hugging Face into its cache"))
    web.add_arguments(sub.add_parser("web", help="serve the app to a browser on 127.0.0.1 (textual-serve)"))
    return parser


def main(argv: list[str] | None = None) -> int:
    from tui.commands import (
        bench,
        calibrate,
        fit,
        inspect,
        models,
        monitor,
        plan,
        profiles,
        pull,
        quality,
        run_app,
        tune,
        web,
    )

    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `vramdeck fit ... | head` ends quietly
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    commands = {"bench": bench.main, "inspect": inspect.main, "fit": fit.main, "models": models.main,
                "monitor": monitor.main, "profiles": profiles.main, "tune": tune.main, "web": web.main,
                "plan": plan.main, "pull": pull.main, "calibrate": calibrate.main, "quality": quality.main}
    if args.command in HEADLESS or (args.command == "monitor" and args.once):
        # model, tensor, file and process names are the files' words: printed, never obeyed
        sys.stdout, sys.stderr = SafeWriter(sys.stdout), SafeWriter(sys.stderr)
    try:
        return commands.get(args.command, run_app.main)(args)
    except KeyboardInterrupt:  # Ctrl+C at any step of a command: a line, never a traceback
        if args.command is None:
            raise
        print(f"\nvramdeck {args.command}: stopped (Ctrl+C).", file=sys.stderr)
        return 130


HEADLESS = {"bench", "calibrate", "inspect", "fit", "models", "profiles", "tune", "plan", "pull", "quality"}
"""Commands that only print (the app, the Monitor pane and web draw with escape sequences)."""


if __name__ == "__main__":
    sys.exit(main())
