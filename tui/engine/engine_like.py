"""What the app needs of an engine: the real client and the scripted test engine both are one."""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncGenerator, Callable, Sequence
from typing import Protocol

from tui.engine.protocol import (
    BenchResult,
    ChatDone,
    ChatFailed,
    DraftBenchResult,
    EngineCrashed,
    EngineStalled,
    Hello,
    KldCommand,
    KldResult,
    Loaded,
    LoadFailed,
    LoadProgress,
    LogLine,
    PerplexityResult,
    PromptProcessed,
    PromptProgress,
    TextPiece,
    TopKResult,
    Unloaded,
)
from tui.engine.settings import LoadSettings, SamplingSettings

ChatEvent = PromptProgress | PromptProcessed | TextPiece | ChatDone | ChatFailed | EngineCrashed
EngineNews = (Hello | LogLine | LoadProgress | Loaded | LoadFailed | Unloaded | EngineCrashed
              | EngineStalled)
"""What subscribers hear of the engine (the app turns it into EngineStatus)."""
Listener = Callable[[EngineNews], object]


class EngineLike(Protocol):
    hello: Hello | None
    loaded: Loaded | None
    log: deque[str]

    @property
    def pid(self) -> int | None: ...

    @property
    def running(self) -> bool: ...

    def subscribe(self, listener: Listener) -> Callable[[], None]: ...

    async def load(self, settings: LoadSettings) -> Loaded | LoadFailed: ...

    def chat(self, messages: Sequence[dict[str, str]],
             sampling: SamplingSettings | None = None) -> AsyncGenerator[ChatEvent, None]: ...

    async def cancel(self) -> None: ...

    async def bench(self, n_prompt: int = 512, n_gen: int = 128, repetitions: int = 3,
                    depths: tuple[int, ...] = ()) -> BenchResult: ...

    async def draft_bench(self, prompt: str, n_gen: int = 128, repetitions: int = 3,
                          forced_acceptance: float = -1.0) -> DraftBenchResult: ...

    async def perplexity(self, text: str, chunk: int = 512) -> PerplexityResult: ...

    async def top_k(self, text: str, chunk: int = 512, k: int = 64, m: int = 64) -> TopKResult: ...

    async def kld(self, command: KldCommand) -> KldResult: ...

    async def stop(self, timeout: float = 5.0) -> None: ...
