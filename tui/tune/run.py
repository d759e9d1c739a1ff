"""Run an auto-tune: load each candidate in a fresh engine, benchmark it briefly, measure each
model file's perplexity once, stop when the time budget is spent or when asked, keep everything
measured so far."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tui.engine.client import EngineClient, EngineError
from tui.engine.engine_like import EngineLike
from tui.engine.errors import failure_text
from tui.engine.load_service import LoadService
from tui.engine.protocol import Loaded
from tui.engine.settings import compact
from tui.tune.space import Candidate
from tui.tune.text import draft_prompt, perplexity_text

BENCH_PROMPT, BENCH_GEN = 128, 32


@dataclass
class Measurement:
    candidate: Candidate
    ok: bool
    error: str = ""
    failure_kind: str = ""
    load_seconds: float = 0.0
    vram_bytes_per_gpu: tuple[int, ...] = ()
    pp_tokens_per_s: float = 0.0
    tg_tokens_per_s: float = 0.0
    text_tg_tokens_per_s: float = 0.0
    """Greedy replies to the shipped text (a draft tune's yardstick): the target alone."""
    draft_tg_tokens_per_s: float = 0.0
    """The same with the draft: accepted tokens per second."""
    acceptance: float | None = None
    tg_runs: list[float] = field(default_factory=list)
    """Every tg measured for this set-up (the leaders are measured again); tg_tokens_per_s is
    their mean."""

    @property
    def tg_stdev(self) -> float:
        return statistics.stdev(self.tg_runs) if len(self.tg_runs) > 1 else 0.0

    def spread(self) -> str:
        """`± 3.1 (3 runs)`, or `(1 run)`: every speed figure says how sure it is."""
        n = len(self.tg_runs) or 1
        return f"± {self.tg_stdev:.1f} ({n} runs)" if n > 1 else "(1 run)"

    @property
    def predicted_vram(self) -> tuple[int, ...]:
        return tuple(g.total for g in self.candidate.estimate.gpus)

    def label(self) -> str:
        s = self.candidate.settings
        threads = f" t{s.n_threads}" if s.n_threads else ""
        return f"{Path(s.model_path).name}  {compact(s, self.candidate.info.n_layer)}{threads}"


@dataclass
class TuneReport:
    measured: list[Measurement] = field(default_factory=list)
    untried: list[Candidate] = field(default_factory=list)
    perplexity: dict[str, float] = field(default_factory=dict)
    """Perplexity per model file."""
    stopped: str = ""
    """Why the tune ended before trying everything ("time budget", "stopped"), or ""."""
    ties: list[Measurement] = field(default_factory=list)
    """Set-ups whose speed is within noise of the best's (after the leaders were measured
    again): the order among them and the best is a coin toss."""
    seconds: float = 0.0

    def ranked(self, objective: str = "tg") -> list[Measurement]:
        key = (lambda m: m.tg_tokens_per_s) if objective == "tg" else (lambda m: m.pp_tokens_per_s)
        return sorted((m for m in self.measured if m.ok), key=key, reverse=True)

    def ranked_on_text(self) -> list[Measurement]:
        """A draft tune's ranking: tokens per second of greedy replies to the shipped text, with
        the draft where the set-up has one (every set-up measured the same way)."""
        def speed(m: Measurement) -> float:
            return m.draft_tg_tokens_per_s if m.candidate.settings.speculative else m.text_tg_tokens_per_s
        return sorted((m for m in self.measured if m.ok and speed(m) > 0), key=speed, reverse=True)

    @property
    def loads(self) -> int:
        return len(self.measured)

    @property
    def out_of_memory(self) -> int:
        return sum(1 for m in self.measured if m.failure_kind in ("oom_device", "oom_host"))

    def best_per_file(self, objective: str = "tg") -> dict[str, Measurement]:
        best: dict[str, Measurement] = {}
        for m in self.ranked(objective):
            best.setdefault(m.candidate.settings.model_path, m)
        return best

    def pareto(self, objective: str = "tg") -> list[Measurement]:
        """Model files not beaten on both speed and perplexity by another."""
        best = self.best_per_file(objective)
        speed = (lambda m: m.tg_tokens_per_s) if objective == "tg" else (lambda m: m.pp_tokens_per_s)
        front = []
        for path, m in best.items():
            ppl = self.perplexity.get(path, float("inf"))
            dominated = any(speed(o) >= speed(m) and self.perplexity.get(p, float("inf")) <= ppl
                            and (speed(o) > speed(m) or self.perplexity.get(p, float("inf")) < ppl)
                            for p, o in best.items() if p != path)
            if not dominated:
                front.append(m)
        return sorted(front, key=speed, reverse=True)


async def run_tune(candidates: list[Candidate], time_budget_s: float, stop: asyncio.Event,
                   on_progress: Callable[[str, Measurement | None, TuneReport], None] = lambda *a: None,
                   quality: bool = False, client_factory: Callable[[], EngineLike] = EngineClient,
                   extra: Callable[[TuneReport], list[Candidate]] | None = None,
                   close_client: bool = True, loads: LoadService | None = None,
                   on_text: bool = False, text_prompt: str = "") -> TuneReport:
    """Measure `candidates` in order. `extra(report)` may add candidates once the list is done
    (thread counts around the best); it is asked once. `close_client=False` leaves the engine
    running (the app's own engine, which then loads the chosen set-up). With `loads` (the app's
    LoadService) every load and benchmark is recorded with the session's other tries."""
    report = TuneReport()
    started = time.monotonic()
    queue = list(candidates)
    asked_extra = False
    client = client_factory()
    try:
        while True:
            if not queue and extra is not None and not asked_extra:
                asked_extra = True
                queue = extra(report)
            if not queue:
                break
            if stop.is_set():
                report.stopped = "stopped"
                break
            if time.monotonic() - started > time_budget_s:
                report.stopped = "time budget"
                break
            c = queue.pop(0)
            on_progress(f"loading {Path(c.settings.model_path).name} {compact(c.settings, c.info.n_layer)}",
                        None, report)
            m = await _measure(client, c, stop, loads, on_text, text_prompt)
            report.measured.append(m)
            if m.ok and quality and c.settings.model_path not in report.perplexity and not stop.is_set():
                on_progress(f"perplexity of {Path(c.settings.model_path).name}", m, report)
                try:
                    report.perplexity[c.settings.model_path] = (
                        await client.perplexity(perplexity_text())).perplexity
                except EngineError as exc:
                    m.error = f"perplexity failed: {exc}"
            on_progress("measured", m, report)
        report.untried = queue
        if not stop.is_set() and not on_text:
            await _repeat_leaders(client, report, started, time_budget_s, stop, loads)
    finally:
        if close_client:
            await client.stop()
        report.seconds = time.monotonic() - started
    return report


LEADERS, REPEATS = 3, 2
"""The leading set-ups are measured this many more times each, interleaved, while time is left."""


def within_noise(a: Measurement, b: Measurement) -> bool:
    """Two tg figures closer than twice the standard error of their difference (or than 3 %
    when neither has a spread yet) cannot be told apart."""
    if not a.tg_runs or not b.tg_runs:
        return False
    se = (a.tg_stdev ** 2 / len(a.tg_runs) + b.tg_stdev ** 2 / len(b.tg_runs)) ** 0.5
    gap = abs(a.tg_tokens_per_s - b.tg_tokens_per_s)
    return gap <= max(2 * se, 0.03 * max(a.tg_tokens_per_s, b.tg_tokens_per_s))


async def _repeat_leaders(client: EngineLike, report: TuneReport, started: float, time_budget_s: float,
                          stop: asyncio.Event, loads: LoadService | None) -> None:
    """One short run per set-up ranks by noise on a busy or small machine: measure the leaders
    again, round-robin (so a drift in the machine's speed falls on all of them), then say
    which are within noise of the best."""
    leaders = report.ranked()[:LEADERS]
    if len(leaders) < 2:
        return
    for _ in range(REPEATS):
        for m in leaders:
            if stop.is_set() or time.monotonic() - started > time_budget_s:
                break
            again = await _measure(client, m.candidate, stop, loads)
            if again.ok and again.tg_tokens_per_s > 0:
                m.tg_runs.append(again.tg_tokens_per_s)
                m.tg_tokens_per_s = statistics.fmean(m.tg_runs)
    ranked = report.ranked()
    report.ties = [m for m in ranked[1:LEADERS] if within_noise(ranked[0], m)]


async def _measure(client: EngineLike, c: Candidate, stop: asyncio.Event,
                   loads: LoadService | None, on_text: bool = False, text_prompt: str = "") -> Measurement:
    predicted = tuple(g.total for g in c.estimate.gpus)
    result = await (loads.load(c.settings, predicted) if loads else client.load(c.settings))
    if not isinstance(result, Loaded):
        return Measurement(c, ok=False, error=failure_text(result), failure_kind=result.kind)
    facts = result.facts
    m = Measurement(c, ok=True, load_seconds=facts.load_seconds,
                    vram_bytes_per_gpu=tuple(facts.vram_bytes_per_gpu))
    if stop.is_set():
        m.ok, m.error = False, "stopped"
        return m
    try:
        bench = await client.bench(BENCH_PROMPT, BENCH_GEN, 1)
    except EngineError as exc:
        m.ok, m.error = False, str(exc)
        return m
    m.pp_tokens_per_s = max(bench.pp_tokens_per_s, default=0.0)
    m.tg_tokens_per_s = max(bench.tg_tokens_per_s, default=0.0)
    m.tg_runs = [m.tg_tokens_per_s] if m.tg_tokens_per_s > 0 else []
    if loads is not None:
        loads.record_bench(c.settings, m.pp_tokens_per_s, m.tg_tokens_per_s)
    if on_text and not stop.is_set():
        try:
            r = await client.draft_bench(text_prompt or draft_prompt(), BENCH_GEN, 1)
        except EngineError as exc:
            m.ok, m.error = False, str(exc)
            return m
        m.text_tg_tokens_per_s = max(r.alone_tokens_per_s, default=0.0)
        m.draft_tg_tokens_per_s = max(r.draft_tokens_per_s, default=0.0)
        m.acceptance = r.accepted_tokens / r.drafted_tokens if r.drafted_tokens else None
    return m
