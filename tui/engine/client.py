"""The UI's handle on the engine process: asyncio, and free of llama_cpp.

Every load starts a fresh engine process (the old one is ended first, so its VRAM is returned to
the driver in full); `unload()` ends it. If the process dies on its own, every pending call ends
with an EngineCrashed and subscribers hear of it at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import os
import signal
import sys
import time
from collections import deque
from collections.abc import AsyncGenerator, Callable, Sequence
from typing import Any

import psutil

import tui
from tui.engine.engine_like import ChatEvent, EngineNews, Listener
from tui.engine.errors import classify_load_log
from tui.engine.protocol import (
    HEARTBEAT_S,
    BenchCommand,
    BenchResult,
    CancelCommand,
    ChatCommand,
    ChatFailed,
    CommandFailed,
    DraftBenchCommand,
    DraftBenchResult,
    EngineCrashed,
    EngineStalled,
    FailureKind,
    Heartbeat,
    Hello,
    KldCommand,
    KldResult,
    LoadCommand,
    Loaded,
    LoadFailed,
    LoadProgress,
    LogLine,
    Message,
    PerplexityCommand,
    PerplexityResult,
    PromptProcessed,
    PromptProgress,
    ShutdownCommand,
    TextPiece,
    TopKCommand,
    TopKResult,
    Unloaded,
    decode,
)
from tui.engine.settings import LoadSettings, SamplingSettings

_STREAM_LIMIT = 16 * 1024 * 1024
LOG_LINES_KEPT = 5000
SILENCE_S = float(os.environ.get("VRAMDECK_ENGINE_SILENCE_S", "15"))
"""No message at all (not even the heartbeat) for this long while a request waits: stalled."""
NO_PROGRESS_S = float(os.environ.get("VRAMDECK_ENGINE_NO_PROGRESS_S", "600"))
"""The engine's own count of seconds its command has sent nothing: past this, stalled. Long,
since one ubatch of a 70B prompt on a CPU can take minutes."""


def engine_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for an engine-side child process: vramdeck importable, quiet aborts."""
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(tui.__file__)))
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("GGML_NO_BACKTRACE", "1")  # an abort should leave its assert line, not a gdb dump
    env.update(extra or {})
    return env


class EngineError(Exception):
    """A call the engine refused or could not finish (no model, engine gone, ...)."""


class EngineClient:
    def __init__(self, python: str = sys.executable, env: dict[str, str] | None = None):
        self.python = python
        self.extra_env = env or {}
        self.process: asyncio.subprocess.Process | None = None
        self.hello: Hello | None = None
        self.loaded: Loaded | None = None
        self.log: deque[str] = deque(maxlen=LOG_LINES_KEPT)
        self._listeners: list[Listener] = []
        self._ids = itertools.count(1)
        self._requests: dict[int, asyncio.Queue] = {}
        self._futures: dict[Any, asyncio.Future] = {}
        self._tasks: list[asyncio.Task] = []
        self._stopping = False
        self._active_chat: int | None = None
        self._load_lock = asyncio.Lock()
        self._last_heard = 0.0
        self._busy_s = 0.0

    # ------------------------------------------------------------------ events

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _notify(self, event: EngineNews) -> None:
        for listener in list(self._listeners):
            listener(event)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process and self.process.returncode is None else None

    @property
    def running(self) -> bool:
        return self.pid is not None

    # ------------------------------------------------------------------ process

    async def start(self) -> Hello:
        """Start an engine process with no model and wait for its hello."""
        await self.stop()
        env = engine_env(self.extra_env)
        self._stopping = False
        self.hello = None
        self.loaded = None
        self.process = await asyncio.create_subprocess_exec(
            self.python, "-m", "tui.engine.host",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=env, limit=_STREAM_LIMIT,
            start_new_session=True,  # a Ctrl+C in the terminal is the UI's to handle, not the engine's
        )
        loop = asyncio.get_running_loop()
        hello_future = loop.create_future()
        self._futures["hello"] = hello_future
        proc = self.process
        readers = [asyncio.create_task(self._read_protocol(proc)),
                   asyncio.create_task(self._read_stderr(proc))]
        self._tasks = readers + [asyncio.create_task(self._watch(proc, readers))]
        result = await hello_future
        if isinstance(result, EngineCrashed):
            raise EngineError(f"The engine did not start. {result.describe()} "
                              + " | ".join(result.log_tail[-3:]))
        return result

    async def stop(self, timeout: float = 5.0) -> None:
        """End the engine process (politely, then by force) and wait until it is gone."""
        proc = self.process
        if proc is None:
            return
        self._stopping = True
        if proc.returncode is None:
            with contextlib.suppress(Exception):
                await self._send(ShutdownCommand())
                if proc.stdin is not None:
                    proc.stdin.close()
            try:
                await asyncio.wait_for(proc.wait(), timeout)
            except asyncio.TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        for task in self._tasks:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(task, 2.0)
        self._tasks = []
        self.process = None
        if self.loaded is not None:
            self.loaded = None
            self._notify(Unloaded())

    async def _send(self, message: Message) -> None:
        proc = self.process
        if proc is None or proc.returncode is not None or proc.stdin is None:
            raise EngineError("The engine is not running.")
        proc.stdin.write(message.to_wire())
        await proc.stdin.drain()

    async def _read_protocol(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        while line := await proc.stdout.readline():
            self._last_heard = time.monotonic()
            try:
                message = decode(line)
            except ValueError:
                self._add_log(f"[engine] unreadable message: {line[:200]!r}", "error")
                continue
            self._route(message)

    async def _read_stderr(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stderr is not None
        while line := await proc.stderr.readline():
            text = line.decode("utf-8", errors="replace").rstrip("\n")
            if text.strip():
                self._add_log(text, "stderr")

    async def _watch(self, proc: asyncio.subprocess.Process, readers: list[asyncio.Task]) -> None:
        returncode = await proc.wait()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.gather(*readers, return_exceptions=True), 0.5)
        if self._stopping or self.process is not proc:
            return
        name = None
        if returncode < 0:
            with contextlib.suppress(ValueError):
                name = signal.Signals(-returncode).name
        crash = EngineCrashed(returncode=returncode, signal_name=name,
                              log_tail=tuple(list(self.log)[-12:]))
        self.loaded = None
        self._active_chat = None
        for future in list(self._futures.values()):
            if not future.done():
                future.set_result(crash)
        self._futures.clear()
        for queue in self._requests.values():
            queue.put_nowait(crash)
        self._notify(crash)

    def _add_log(self, text: str, level: str = "info") -> None:
        """Keep a log line and tell subscribers: every line in `log` was announced exactly once."""
        self.log.append(text)
        self._notify(LogLine(level=level, text=text))

    def _route(self, message: Message) -> None:
        if isinstance(message, Heartbeat):
            self._busy_s = message.busy_s
        elif isinstance(message, LogLine):
            self._add_log(message.text, message.level)
        elif isinstance(message, Hello):
            self.hello = message
            self._resolve("hello", message)
            self._notify(message)
        elif isinstance(message, LoadProgress):
            self._notify(message)
        elif isinstance(message, (Loaded, LoadFailed)):
            if isinstance(message, Loaded):
                self.loaded = message
            self._resolve("load", message)
            self._notify(message)
        elif isinstance(message, Unloaded):
            self.loaded = None
            self._notify(message)
        elif isinstance(message, CommandFailed) and message.request_id not in self._requests:
            self._unanswerable(message)
        elif hasattr(message, "request_id"):
            # every answer to a request goes to whoever waits on it, whatever its type: an answer
            # type this router did not list would otherwise leave its caller waiting forever
            queue = self._requests.get(message.request_id)  # type: ignore[attr-defined]
            if queue is not None:
                queue.put_nowait(message)

    def _unanswerable(self, failed: CommandFailed) -> None:
        """The engine failed a command it could not name (it could not even decode it): end
        whatever waits on it, so no call waits forever for an answer that will not come."""
        self._add_log(f"[engine] {failed.message}", "error")
        load = self._futures.get("load")
        if load is not None and not load.done():
            self._resolve("load", LoadFailed(kind=FailureKind.OTHER.value, detail=failed.message))
        for request_id, queue in self._requests.items():
            queue.put_nowait(CommandFailed(request_id=request_id, message=failed.message))

    def stalled(self) -> EngineStalled | None:
        """Whether the engine has stopped making progress (asked while a request waits)."""
        proc = self.process
        if proc is None or proc.returncode is not None:
            return None
        silent = time.monotonic() - self._last_heard
        stopped = False
        if silent > 3 * HEARTBEAT_S:
            with contextlib.suppress(psutil.Error):
                stopped = psutil.Process(proc.pid).status() in (psutil.STATUS_STOPPED,
                                                                psutil.STATUS_TRACING_STOP)
        if stopped or silent > SILENCE_S:
            return EngineStalled(seconds=silent, stopped=stopped)
        if self._busy_s > NO_PROGRESS_S:
            return EngineStalled(seconds=self._busy_s, stopped=False)
        return None

    async def _wait(self, waitable: Callable[[], Any]) -> Any:
        """Await `waitable()` (a queue's get, a future), checking every second that the engine
        still makes progress: an EngineStalled ends the wait otherwise (and subscribers hear)."""
        self._last_heard = max(self._last_heard, time.monotonic())
        self._busy_s = 0.0
        task = asyncio.ensure_future(waitable())
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=HEARTBEAT_S)
                if done:
                    return task.result()
                stall = self.stalled()
                if stall is not None:
                    self._notify(stall)
                    return stall
        finally:
            if not task.done():
                task.cancel()

    async def _next(self, queue: asyncio.Queue) -> Any:
        """The next answer of a request: at once when one is waiting (a streamed reply's usual
        case, so the token path makes no task), else through `_wait`'s stall checks."""
        if not queue.empty():
            return queue.get_nowait()
        return await self._wait(queue.get)

    def _resolve(self, key: Any, value: Any) -> None:
        future = self._futures.pop(key, None)
        if future is not None and not future.done():
            future.set_result(value)

    # ------------------------------------------------------------------ calls

    async def load(self, settings: LoadSettings) -> Loaded | LoadFailed:
        """End any engine, start a fresh one and load `settings` in it. Progress goes to subscribers."""
        async with self._load_lock:
            problems = settings.problems()
            if problems:
                detail = "; ".join(f"{k}: {v}" for k, v in problems.items())
                failed = LoadFailed(kind=FailureKind.BAD_SETTINGS.value, detail=detail)
                self._notify(failed)
                return failed
            try:
                await self.start()
            except EngineError as exc:
                failed = LoadFailed(kind=FailureKind.CRASHED.value, detail=str(exc),
                                    log_tail=tuple(list(self.log)[-12:]))
                self._notify(failed)
                return failed
            future = asyncio.get_running_loop().create_future()
            self._futures["load"] = future
            await self._send(LoadCommand(settings=settings.to_dict()))
            result = await self._wait(lambda: asyncio.shield(future))
            if isinstance(result, EngineStalled):
                self._futures.pop("load", None)
                failed = LoadFailed(kind=FailureKind.STALLED.value, detail=result.describe(),
                                    log_tail=tuple(list(self.log)[-12:]))
                self._notify(failed)
                return failed
            if isinstance(result, EngineCrashed):
                kind, detail = classify_load_log(result.log_tail)
                if kind is FailureKind.OTHER:
                    kind, detail = FailureKind.CRASHED, result.describe()
                failed = LoadFailed(kind=kind.value, detail=detail,
                                    log_tail=result.log_tail)
                self._notify(failed)
                return failed
            return result

    async def chat(self, messages: Sequence[dict[str, str]],
                   sampling: SamplingSettings | None = None) -> AsyncGenerator[ChatEvent, None]:
        """Stream a reply: PromptProcessed, TextPiece events, then ChatDone, ChatFailed or EngineCrashed.

        Use `async with contextlib.aclosing(client.chat(...))` when you may stop reading early:
        closing the stream cancels the request. A stream abandoned without closing is cancelled
        when the next request starts, so it never holds the engine.
        """
        sampling = sampling or SamplingSettings()
        if self.loaded is None or not self.running:
            yield ChatFailed(message="No model is loaded.")
            return
        if self._active_chat is not None:
            await self._send(CancelCommand(request_id=self._active_chat))
        request_id = next(self._ids)
        queue: asyncio.Queue = asyncio.Queue()
        self._requests[request_id] = queue
        self._active_chat = request_id
        finished = False
        try:
            await self._send(ChatCommand(request_id=request_id,
                                         messages=tuple(dict(m) for m in messages),
                                         sampling=sampling.to_dict()))
            while True:
                event = await self._next(queue)
                if isinstance(event, EngineStalled):
                    event = ChatFailed(request_id=request_id, message=event.describe(),
                                       reason="stalled")
                elif isinstance(event, CommandFailed):
                    event = ChatFailed(request_id=request_id, message=event.message)
                finished = not isinstance(event, (TextPiece, PromptProcessed, PromptProgress))
                yield event
                if finished:
                    return
        finally:
            self._requests.pop(request_id, None)
            if self._active_chat == request_id:
                self._active_chat = None
            if not finished and self.running:
                with contextlib.suppress(Exception):
                    await self._send(CancelCommand(request_id=request_id))

    async def cancel(self) -> None:
        """Stop the reply being generated; its stream ends within one token."""
        if self._active_chat is not None and self.running:
            await self._send(CancelCommand(request_id=self._active_chat))

    async def bench(self, n_prompt: int = 512, n_gen: int = 128, repetitions: int = 3,
                    depths: tuple[int, ...] = ()) -> BenchResult:
        """pp/tg on the loaded model, or tg at each of `depths` tokens of filled context.
        Raises EngineError if there is no model or the engine dies."""
        return await self._ask(lambda rid: BenchCommand(request_id=rid, n_prompt=n_prompt,
                                                        n_gen=n_gen, repetitions=repetitions,
                                                        depths=tuple(depths)))

    async def draft_bench(self, prompt: str, n_gen: int = 128, repetitions: int = 3,
                          forced_acceptance: float = -1.0) -> DraftBenchResult:
        """Generation speed with the loaded draft and without it, in one run."""
        return await self._ask(lambda rid: DraftBenchCommand(
            request_id=rid, prompt=prompt, n_gen=n_gen, repetitions=repetitions,
            forced_acceptance=forced_acceptance))

    async def perplexity(self, text: str, chunk: int = 512) -> PerplexityResult:
        """Perplexity of the loaded model on `text` (llama-perplexity's way of counting)."""
        return await self._ask(lambda rid: PerplexityCommand(request_id=rid, text=text, chunk=chunk))

    async def top_k(self, text: str, chunk: int = 512, k: int = 64, m: int = 64) -> TopKResult:
        """The loaded model as a KL-divergence reference over `text` (see host/kld.py)."""
        return await self._ask(lambda rid: TopKCommand(request_id=rid, text=text, chunk=chunk, k=k, m=m))

    async def kld(self, command: KldCommand) -> KldResult:
        """The loaded model against a reference (`command` without its request id)."""
        return await self._ask(lambda rid: dataclasses.replace(command, request_id=rid))

    async def _ask(self, make: Callable[[int], Message]):
        """Send one request and wait for its one answer (Esc / cancel() stops it early)."""
        if self.loaded is None or not self.running:
            raise EngineError("No model is loaded.")
        request_id = next(self._ids)
        queue: asyncio.Queue = asyncio.Queue()
        self._requests[request_id] = queue
        self._active_chat = request_id
        try:
            await self._send(make(request_id))
            result = await self._next(queue)
        finally:
            self._requests.pop(request_id, None)
            self._active_chat = None
        if isinstance(result, (EngineCrashed, EngineStalled)):
            raise EngineError(result.describe())
        if isinstance(result, CommandFailed):
            raise EngineError(result.message)
        return result
