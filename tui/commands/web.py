"""`vramdeck web`: the same app in a browser, through textual-serve (an optional extra).

Bound to 127.0.0.1 unless told otherwise: reach it from your laptop with SSH port forwarding,
`ssh -L 8000:127.0.0.1:8000 gpu-box`, then open the URL it prints. The URL carries a secret
token made for this run (or VRAMDECK_WEB_TOKEN's): without it nothing but the static files is
served, WebSockets from other origins are refused, and one browser tab at a time runs the app.
Another address than loopback needs --public as well. Under web, the app writes files the user
names only inside its exports folder.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import secrets
import shlex
import sys

from tui.files import WEB_MODE_ENV, exports_dir

TOKEN_ENV = "VRAMDECK_WEB_TOKEN"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="the port to listen on (default 8000)")
    p.add_argument("--public", action="store_true",
                   help="allow an address other than loopback (the token is still required)")
    p.add_argument("--sessions", type=int, default=1,
                   help="browser tabs that may run the app at once (each runs an engine; default 1)")
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
    if args.sessions < 1:
        print("vramdeck web: --sessions must be at least 1", file=sys.stderr)
        return 2
    token = os.environ.get(TOKEN_ENV) or secrets.token_urlsafe(24)
    if len(token) < 16:
        print(f"vramdeck web: {TOKEN_ENV} must be at least 16 characters", file=sys.stderr)
        return 2
    try:
        from tui.commands.web_guard import GuardedServer
    except ImportError:
        print("vramdeck web needs textual-serve: pip install 'vramdeck[web]'", file=sys.stderr)
        return 1
    app_args = [a for a in args.app_args if a != "--"]
    command = shlex.join([sys.executable, "-m", "tui", *app_args])
    os.environ[WEB_MODE_ENV] = "1"  # the app it starts writes only inside the exports folder
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(f"vramdeck web: open http://{shown}:{args.port}/?token={token}\n"
          f"  files the app writes go to {exports_dir()}; Ctrl+C stops", flush=True)
    server = GuardedServer(command, host=args.host, port=args.port, token=token,
                           max_sessions=args.sessions, title="vramdeck")
    try:
        server.serve()
    except OSError as exc:
        print(f"vramdeck web: cannot listen on {args.host}:{args.port}: "
              f"{exc.strerror or exc}. Is another server on that port? Try --port.",
              file=sys.stderr)
        return 1
    return 0
