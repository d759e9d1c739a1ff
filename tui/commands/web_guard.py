"""textual-serve with a lock on the door: a secret token, same-origin WebSockets, one session.

Plain textual-serve lets anyone who can open a WebSocket to the port drive the app, and any web
page the user visits can open `ws://127.0.0.1:8000`. Here every request but the static files
needs the per-run token (from the URL printed at start, then from a SameSite=Strict cookie, as
Jupyter does); the WebSocket must come from the page's own origin; the Host header must name
this server (no DNS rebinding onto 127.0.0.1); and only `max_sessions` browser tabs may run an
app at once (each starts an engine and a model).
"""

from __future__ import annotations

import hmac
import ipaddress
from urllib.parse import urlsplit

from aiohttp import web
from textual_serve.server import Server

COOKIE = "vramdeck_token"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class GuardedServer(Server):
    def __init__(self, command: str, host: str, port: int, token: str, max_sessions: int = 1,
                 **kwargs) -> None:
        super().__init__(command, host=host, port=port, **kwargs)
        self.token = token
        self.max_sessions = max_sessions
        self.sessions = 0
        self.loopback_only = _is_loopback(host)

    async def on_startup(self, app: web.Application) -> None:
        """Quiet: textual-serve would print its own URL here, without the token, after vramdeck's
        line with it (a newcomer opened the wrong one and got only the static files)."""

    async def _make_app(self) -> web.Application:
        app = await super()._make_app()
        app.middlewares.append(self._guard)
        return app

    def _host_allowed(self, host_header: str) -> bool:
        """On loopback, the Host must be a loopback name with our port: a page whose own domain
        resolves to 127.0.0.1 (DNS rebinding) sends its domain, and is refused."""
        if not self.loopback_only:
            return bool(host_header)
        host, _, port = host_header.rpartition(":")
        return port == str(self.port) and _is_loopback(host)

    def _token_ok(self, request: web.Request) -> bool:
        given = request.query.get("token") or request.cookies.get(COOKIE) or ""
        return hmac.compare_digest(given.encode(), self.token.encode())

    @web.middleware
    async def _guard(self, request: web.Request, handler) -> web.StreamResponse:
        if not self._host_allowed(request.host):
            return web.Response(status=403, text="vramdeck web: unexpected Host header.\n")
        if request.path.startswith("/static/"):
            return await handler(request)  # the terminal's JavaScript and fonts: nothing private
        if not self._token_ok(request):
            return web.Response(status=403, text="vramdeck web: open the URL with the token that "
                                                 "`vramdeck web` printed when it started.\n")
        if request.path == "/ws":
            origin = request.headers.get("Origin", "")
            if urlsplit(origin).netloc != request.host:
                return web.Response(status=403, text="vramdeck web: WebSocket from another "
                                                     "origin refused.\n")
            if self.sessions >= self.max_sessions:
                return web.Response(status=409, text="vramdeck web: the app is open in another "
                                                     "tab; close it first (or start with "
                                                     "--sessions N).\n")
            self.sessions += 1
            try:
                return await handler(request)
            finally:
                self.sessions -= 1
        response = await handler(request)
        if "token" in request.query:
            response.set_cookie(COOKIE, self.token, httponly=True, samesite="Strict")
        return response
