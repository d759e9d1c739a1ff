"""A local stand-in for the part of the Hugging Face Hub's HTTP API that huggingface_hub uses:
repo info with file sizes and LFS SHA-256 (`/api/models/...`), and `resolve` with HEAD and Range.
It serves files from disk on 127.0.0.1, counts the bytes it sends, and can be slowed down (to kill
a download halfway) or made to lie about a checksum.

It can also be hostile, one scenario per way a hub can hurt a client: a raw listing whose values
are paths, non-strings or out of range (`raw_listings`); and per file (`behaviour`) an answer that
never comes ("stall_headers"), a body that stops ("stall_body") or trickles ("trickle"), or one
far longer than asked or listed ("flood"). Every stall ends when the server closes."""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

COMMIT = "0123456789abcdef0123456789abcdef01234567"
TOKEN = "hf_test_token_0123456789"


@dataclass
class Repo:
    files: dict[str, Path]
    """Path in the repo -> file on disk."""
    gated: bool = False
    sha256: dict[str, str] = field(default_factory=dict)
    """Listed SHA-256 per path (computed from the file where not given)."""


class HubState:
    def __init__(self) -> None:
        self.repos: dict[str, Repo] = {}
        self.sent: dict[str, int] = {}
        self.ranges: list[tuple[str, str]] = []
        self.full_gets: list[str] = []
        self.delay_per_chunk = 0.0
        self.lock = threading.Lock()
        self.raw_listings: dict[str, object] = {}
        """repo id -> what is served as its listing (bytes as they are, else as JSON)."""
        self.api_calls = 0
        self.behaviour: dict[str, str] = {}
        """file path -> stall_headers | stall_body | trickle | flood | garbage."""
        self.flood_bytes = 4 << 20
        self.closed = threading.Event()

    def listed_sha(self, repo: Repo, path: str) -> str:
        if path not in repo.sha256:
            if path.endswith(".json"):
                return ""
            h = hashlib.sha256()
            with open(repo.files[path], "rb") as f:
                while data := f.read(8 << 20):
                    h.update(data)
            repo.sha256[path] = h.hexdigest()
        return repo.sha256[path]


def handler(state: HubState):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def _error(self, status: int, code: str, message: str) -> None:
            body = json.dumps({"error": message}).encode()
            self.send_response(status)
            self.send_header("X-Error-Code", code)
            self.send_header("X-Error-Message", message)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _repo(self, repo_id: str) -> Repo | None:
            repo = state.repos.get(repo_id)
            if repo is None:
                self._error(404, "RepoNotFound", "Repository not found")
                return None
            if repo.gated and self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self._error(401, "GatedRepo", "Access to this model is restricted")
                return None
            return repo

        def do_GET(self) -> None:
            self._serve(body=True)

        def do_HEAD(self) -> None:
            self._serve(body=False)

        def _serve(self, body: bool) -> None:
            path = self.path.split("?")[0]
            m = re.match(r"^/api/models/([^/]+/[^/]+)(?:/revision/[^/]+)?$", path)
            if m:
                with state.lock:
                    state.api_calls += 1
            if m and m.group(1) in state.raw_listings:
                raw = state.raw_listings[m.group(1)]
                data = raw if isinstance(raw, bytes) else json.dumps(raw).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if body:
                    self.wfile.write(data)
                return
            if m and state.behaviour.get("/api") == "stall_headers":
                state.closed.wait(60)
                return
            if m:
                repo = self._repo(m.group(1))
                if repo is None:
                    return
                siblings = []
                for p, f in repo.files.items():
                    size = f.stat().st_size
                    entry = {"rfilename": p, "size": size, "blobId": hashlib.sha1(p.encode()).hexdigest()}
                    sha = state.listed_sha(repo, p)
                    if sha:
                        entry["lfs"] = {"sha256": sha, "size": size, "pointerSize": 134}
                    siblings.append(entry)
                data = json.dumps({"id": m.group(1), "modelId": m.group(1), "sha": COMMIT,
                                   "private": False, "gated": repo.gated and "manual",
                                   "siblings": siblings}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if body:
                    self.wfile.write(data)
                return
            m = re.match(r"^/([^/]+/[^/]+)/resolve/([^/]+)/(.+)$", path)
            if not m:
                self._error(404, "EntryNotFound", "no such route")
                return
            repo = self._repo(m.group(1))
            if repo is None:
                return
            file = repo.files.get(m.group(3))
            if file is None:
                self._error(404, "EntryNotFound", "Entry not found")
                return
            size = file.stat().st_size
            start, end, status = 0, size - 1, 200
            rng = self.headers.get("Range")
            if rng:
                mm = re.match(r"bytes=(\d+)-(\d*)", rng)
                start = int(mm.group(1))
                end = min(size - 1, int(mm.group(2))) if mm.group(2) else size - 1
                status = 206
                with state.lock:
                    state.ranges.append((m.group(3), rng))
            elif body:
                with state.lock:
                    state.full_gets.append(m.group(3))
            hostile = state.behaviour.get(m.group(3))
            if hostile == "stall_headers" and body:
                state.closed.wait(60)
                return
            if hostile == "flood" and body:
                self._flood(status)
                return
            if hostile == "garbage" and body:  # a range of the right length, of noise
                noise = bytes((i * 73 + 41) % 256 for i in range(max(0, end - start + 1)))
                self.send_response(206)
                self.send_header("Content-Length", str(len(noise)))
                self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
                self.end_headers()
                self.wfile.write(noise)
                return
            sha = state.listed_sha(repo, m.group(3))
            self.send_response(status)
            self.send_header("X-Repo-Commit", COMMIT)
            self.send_header("ETag", f'"{sha or hashlib.sha1(m.group(3).encode()).hexdigest()}"')
            if sha:
                self.send_header("X-Linked-Etag", f'"{sha}"')
                self.send_header("X-Linked-Size", str(size))
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(max(0, end - start + 1)))
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
            self.end_headers()
            if not body:
                return
            if hostile in ("stall_body", "trickle"):
                self._dribble(file, start, end, hostile)
                return
            with open(file, "rb") as f:
                f.seek(start)
                left = end - start + 1
                while left > 0:
                    data = f.read(min(64 * 1024, left))
                    if not data:
                        break
                    try:
                        self.wfile.write(data)
                    except (BrokenPipeError, ConnectionResetError):
                        return
                    left -= len(data)
                    with state.lock:
                        state.sent[m.group(3)] = state.sent.get(m.group(3), 0) + len(data)
                    if state.delay_per_chunk:
                        time.sleep(state.delay_per_chunk)
        def _flood(self, status: int) -> None:
            """More bytes than any range asked for or any listing said, under a matching length."""
            self.send_response(status)
            self.send_header("Content-Length", str(state.flood_bytes))
            if status == 206:
                self.send_header("Content-Range", f"bytes 0-{state.flood_bytes - 1}/{state.flood_bytes}")
            self.end_headers()
            block, left = b"\0" * 65536, state.flood_bytes
            try:
                while left > 0 and not state.closed.is_set():
                    self.wfile.write(block[:left])
                    left -= min(left, len(block))
                    with state.lock:
                        state.sent["flood"] = state.sent.get("flood", 0) + min(left, len(block))
            except OSError:
                return

        def _dribble(self, file: Path, start: int, end: int, how: str) -> None:
            """stall_body: 64 KiB, then nothing; trickle: one byte every 0.2 s."""
            data = file.read_bytes()[start:end + 1]
            try:
                if how == "stall_body":
                    self.wfile.write(data[:65536])
                    self.wfile.flush()
                    state.closed.wait(60)
                    return
                for i in range(len(data)):
                    if state.closed.wait(0.2):
                        return
                    self.wfile.write(data[i:i + 1])
                    self.wfile.flush()
            except OSError:
                return

    return Handler


class HubServer:
    def __init__(self) -> None:
        self.state = HubState()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler(self.state))
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.state.closed.set()
        self.httpd.shutdown()
        self.httpd.server_close()
