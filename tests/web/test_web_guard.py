"""`vramdeck web` against a real textual-serve on 127.0.0.1: token, Host, Origin, one session."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
import time

import aiohttp
import pytest

TOKEN = "test-token-0123456789abcdef"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_web() -> tuple[int, subprocess.Popen]:
    """`vramdeck web` on a free port; the app it serves gets a missing model: light, and the
    guard is what is tested."""
    port = _free_port()
    env = {**os.environ, "VRAMDECK_WEB_TOKEN": TOKEN, "PYTHONUNBUFFERED": "1"}
    return port, subprocess.Popen([sys.executable, "-m", "tui", "web", "--port", str(port), "--",
                                   "--model", "/nonexistent/model.gguf"], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_listening(port: int, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)


@pytest.fixture(scope="module")
def server():
    port, proc = _start_web()
    first = proc.stdout.readline()
    _wait_listening(port)
    yield port, first
    proc.terminate()
    proc.wait(10)


async def _get(port, path, headers=None, cookies=None):
    async with aiohttp.ClientSession(cookies=cookies) as s:
        async with s.get(f"http://127.0.0.1:{port}{path}", headers=headers or {},
                         allow_redirects=False) as r:
            return r.status, await r.text(), r.cookies


def test_the_url_it_prints_carries_the_token(server):
    port, first = server
    assert re.search(rf"http://127\.0\.0\.1:{port}/\?token={TOKEN}", first)


async def test_no_token_no_app(server):
    port, _ = server
    status, text, _ = await _get(port, "/")
    assert status == 403 and "token" in text
    status, _, _ = await _get(port, "/?token=wrong-token-0123456789abc")
    assert status == 403


async def test_the_token_opens_the_page_and_sets_a_strict_cookie(server):
    port, _ = server
    status, text, cookies = await _get(port, f"/?token={TOKEN}")
    assert status == 200 and "websocket" in text.lower()
    cookie = cookies["vramdeck_token"]
    assert cookie.value == TOKEN and cookie["httponly"] and cookie["samesite"] == "Strict"
    status, _, _ = await _get(port, "/", cookies={"vramdeck_token": TOKEN})
    assert status == 200


async def test_static_files_need_no_token(server):
    port, _ = server
    status, _, _ = await _get(port, "/static/js/textual.js")
    assert status == 200


async def test_a_foreign_host_header_is_refused(server):
    """DNS rebinding: a page on evil.example resolving to 127.0.0.1 sends its own Host."""
    port, _ = server
    status, _, _ = await _get(port, f"/?token={TOKEN}", headers={"Host": f"evil.example:{port}"})
    assert status == 403


async def _ws(port, origin, token=TOKEN):
    session = aiohttp.ClientSession(cookies={"vramdeck_token": token})
    try:
        ws = await session.ws_connect(f"ws://127.0.0.1:{port}/ws?width=80&height=24",
                                      headers={"Origin": origin})
        return session, ws
    except aiohttp.WSServerHandshakeError as exc:
        await session.close()
        return None, exc.status


async def test_websocket_from_another_origin_is_refused(server):
    port, _ = server
    _, status = await _ws(port, "http://evil.example")
    assert status == 403
    _, status = await _ws(port, f"http://127.0.0.1:{port}", token="wrong-token-0123456789abc")
    assert status == 403


async def test_one_session_at_a_time(server):
    port, _ = server
    session, ws = await _ws(port, f"http://127.0.0.1:{port}")
    assert session is not None, f"the first tab was refused ({ws})"
    try:
        _, status = await _ws(port, f"http://127.0.0.1:{port}")
        assert status == 409
    finally:
        await ws.close()
        await session.close()
    for _ in range(50):  # once the first tab is gone, another may open
        second, ws2 = await _ws(port, f"http://127.0.0.1:{port}")
        if second is not None:
            await ws2.close()
            await second.close()
            return
        await asyncio.sleep(0.1)
    pytest.fail("no tab could open after the first one closed")


def test_a_port_in_use_gets_a_sentence_not_a_traceback(server):
    port, _ = server
    out = subprocess.run([sys.executable, "-m", "tui", "web", "--port", str(port)],
                         capture_output=True, text=True, timeout=60,
                         env={**os.environ, "VRAMDECK_WEB_TOKEN": TOKEN})
    assert out.returncode == 1
    assert "cannot listen on" in out.stderr and "Traceback" not in out.stderr + out.stdout


def test_public_address_without_public_is_refused():
    out = subprocess.run([sys.executable, "-m", "tui", "web", "--host", "0.0.0.0"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "--public" in out.stderr


def test_only_the_url_with_the_token_is_printed():
    """Issue 30: textual-serve printed its own tokenless URL after vramdeck's."""
    port, proc = _start_web()
    try:
        _wait_listening(port)
        time.sleep(0.5)  # past the server's start-up, where textual-serve printed
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
    urls = re.findall(r"https?://\S+", out)
    assert urls and all("token=" in u for u in urls), out
