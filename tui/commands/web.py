"""`vramdeck web`: the same app in a browser, through textual-serve (an optional extra).

Bound to 127.0.0.1 unless told otherwise: reach it from your laptop with SSH port forwarding,
`ssh -L 8000:127.0.0.1:8000 gpu-box`, then open http://127.0.0.1:8000. Anyone who can reach the
port drives the app (and the model), so another address needs --public as well.
"""

from __future__ import annotations

import argparse
import ipaddress
import shlex
import sys


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--public", action="store_true",
                   help="allow an address other than loopback (anyone who reaches it drives the app)")
    p.add_argument("app_args", nargs=argparse.REMAINDER,
                   help="arguments for the app after --, e.g. -- --model m.gguf")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def main(args: argparse.Namespace) -> int:
    if not is_loopback(args.host) and not args.public:
        print(f"vramdeck web: {args.host} is not a loopback address; anyone who can reach it "
              "would drive the app and the model. Use SSH port forwarding to 127.0.0.1, or add "
              "--public if you mean it.", file=sys.stderr)
        return 2
    try:
        from textual_serve.server import Server
    except ImportError:
        print("vramdeck web needs textual-serve: pip install 'vramdeck[web]'", file=sys.stderr)
        return 1
    app_args = [a for a in args.app_args if a != "--"]
    command = shlex.join([sys.executable, "-m", "tui", *app_args])
    print(f"vramdeck web: serving on http://{args.host}:{args.port} (Ctrl+C stops)")
    Server(command, host=args.host, port=args.port, title="vramdeck").serve()
    return 0
