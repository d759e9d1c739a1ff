"""`vramdeck pull REPO[:QUANT|FILE]`: download a model (all its split parts) into the Hugging Face
cache, where vramdeck finds it, with progress; resumable; verified against the hub's SHA-256."""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from tui.plan.hub import HubError, Progress, RemoteModel, list_repo, pull, set_timeouts
from tui.safe_text import terminal_safe
from tui.units import format_bytes


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", metavar="REPO[:QUANT|FILE]",
                   help="e.g. bartowski/Meta-Llama-3.1-8B-Instruct-GGUF:Q4_K_M")
    p.add_argument("--timeout", type=float, metavar="SECONDS",
                   help="longest wait for the hub to answer or send more bytes (default 60; "
                        "also VRAMDECK_HUB_TIMEOUT)")


def choose(models: tuple[RemoteModel, ...], wanted: str) -> RemoteModel | None:
    wanted_l = wanted.lower()
    for m in models:
        if m.name.lower() == wanted_l or any(p.path.lower() == wanted_l for p in m.parts):
            return m
    by_quant = [m for m in models if m.quant.lower() == wanted_l]
    return by_quant[0] if len(by_quant) == 1 else None


class ProgressLine:
    """Bytes, rate and time left on stderr: rewritten in place on a terminal, within its width
    (a longer line wraps, and each update then starts a new one); a plain line every few seconds
    otherwise."""

    def __init__(self, stream=None, columns: int | None = None) -> None:
        self.stream = stream or sys.__stderr__ or sys.stderr
        self.tty = self.stream.isatty()
        self.columns = columns
        self.last = 0.0

    def __call__(self, p: Progress) -> None:
        now = time.monotonic()
        if now - self.last < (0.2 if self.tty else 5.0) and p.done < p.total:
            return
        self.last = now
        eta = f"{p.eta_s:.0f} s left" if p.eta_s is not None else "starting"
        figures = (f": {format_bytes(p.done)} of {format_bytes(p.total)} "
                   f"({p.done / max(1, p.total):.0%}), {format_bytes(p.rate)}/s, {eta}")
        name = terminal_safe(Path(p.filename).name)
        if self.tty:  # one column short of the width: a full last column wraps on some terminals
            width = (self.columns or shutil.get_terminal_size((80, 24)).columns) - 1
            room = width - len(figures)
            if len(name) > room:
                name = "…" + name[len(name) - max(room - 1, 0):] if room > 1 else ""
            line = (name + figures)[:width]
        else:
            line = name + figures
        self.stream.write(("\r" + line + "\x1b[K") if self.tty else line + "\n")
        self.stream.flush()


def main(args: argparse.Namespace) -> int:
    repo_id, _, wanted = args.target.partition(":")
    if args.timeout is not None:
        if not args.timeout > 0:
            print("vramdeck pull: --timeout must be a number of seconds above 0", file=sys.stderr)
            return 2
        set_timeouts(args.timeout)
    try:
        repo = list_repo(repo_id)
        if not repo.models:
            print(f"vramdeck pull: {repo_id} has no GGUF file (`vramdeck plan {repo_id}` plans "
                  "from its config.json)", file=sys.stderr)
            return 1
        model = choose(repo.models, wanted) if wanted else (repo.models[0] if len(repo.models) == 1 else None)
        if model is None:
            listing = "\n".join(f"  {repo_id}:{m.quant:8} {format_bytes(m.size):>10}  {m.name}"
                                for m in repo.models)
            print(f"vramdeck pull: {'which one? ' if not wanted else f'no single model {wanted!r}; '}"
                  f"{repo_id} has:\n{listing}", file=sys.stderr)
            return 2
        progress = ProgressLine()
        try:
            path = pull(repo, model, progress)
        except KeyboardInterrupt:
            print("\nvramdeck pull: stopped; the partial download is kept: run the same command "
                  "to resume.", file=sys.stderr)
            return 130
        if progress.tty:
            progress.stream.write("\n")
    except HubError as exc:
        print(f"\nvramdeck pull: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nvramdeck pull: stopped before the download began; nothing was written.", file=sys.stderr)
        return 130
    print(f"{path}")
    print(f"open it: vramdeck --model {path}", file=sys.stderr)
    return 0
