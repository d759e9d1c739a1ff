"""Run an auto-tune: load each candidate in a fresh engine, benchmark it briefly, measure each
model file's quality once (KL divergence against a reference, and perplexity), measure the
leaders again, stop when the time budget is spent or when asked, keep everything measured so far.
Each measurement notes how busy other processes kept the CPU while it ran."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tui.engine.client import EngineClient, EngineError
from tui.engine.engine_like import EngineLike
from tui.engine.errors import failure_text
from tui.engine.load_service import LoadService
from tui.engine.protocol import FailureKind, Loaded
from tui.engine.settings import compact
from tui.monitor.contention import OTHER_CORES_WARN, ContentionLike, ContentionMeter
from tui.profiles.tried import Spread
from tui.quality.errors import QualityError
from tui.quality.figures import QualityFigures
from tui.tune.space import Candidate
from tui.tune.text import draft_prompt, perplexity_text

if TYPE_CHECKING:
    from tui.quality.measure import QualityMeter

BENCH_PROMPT, BENCH_GEN = 128, 32

__all__ = ["Measurement", "TuneReport", "draft_prompt", "perplexity_text", "run_tune", "within_noise"]


def _sd(runs: list[float]) -> float:
    return statistics.stdev(runs) if len(runs) > 1 else 0.0


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
    pp_runs: list[float] = field(default_factory=list)
    text_runs: list[float] = field(default_factory=list)
    """A draft tune's yardstick, every run: with the draft where the set-up has one, else alone."""
    other_cores: float = 0.0
    """The most cores other processes kept busy during any run of this set-up."""

    @property
    def tg_stdev(self) -> float:
        return _sd(self.tg_runs)

    @property
    def text_speed(self) -> float:
        return statistics.fmean(self.text_runs) if self.text_runs else 0.0

    @property
    def text_stdev(self) -> float:
        return _sd(self.text_runs)

    @property
    def contended(self) -> bool:
        return self.other_cores >= OTHER_CORES_WARN

    def spread(self) -> str:
        """`± 3.1 (3 runs)`, or `(1 run)`: every speed figure says how sure it is."""
        n = len(self.tg_runs) or 1
        return f"± {self.tg_stdev:.1f} ({n} runs)" if n > 1 else "(1 run)"

    def speed_spread(self) -> Spread:
        return Spread.of(self.pp_runs, self.tg_runs)

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
    quality: dict[str, QualityFigures] = field(default_factory=dict)
    """KL divergence and the rest against the reference, per model file."""
    quality_reference: str = ""
    quality_problem: str = ""
    """Why there are no quality figures (the reference could not be run), or ""."""
    stopped: str = ""
    """Why the tune ended before trying everything ("time budget", "stopped"), or ""."""
    ties: list[Measurement] = field(default_factory=list)
    """Set-ups whose speed is within noise of the best's (after the leaders were measured
    again): the order among them and the best is a coin toss."""
    seconds: float = 0.0
    skipped: list[str] = field(default_factory=list)
    """Set-ups not loaded, and why (those that would run out of host memory as one did)."""

    def ranked(self, objective: str = "tg") -> list[Measurement]:
        """Fastest first; a measurement taken while other processes kept the CPU busy after every
        quiet one (its figure is low by an unknown amount, and a busy 29.0 from one run once
        outranked the same set-up's quiet 2.6-29.0)."""
        key = (lambda m: m.tg_tokens_per_s) if objective == "tg" else (lambda m: m.pp_tokens_per_s)
        return sorted((m for m in self.measured if m.ok), key=lambda m: (m.contended, -key(m)))

    def ranked_on_text(self) -> list[Measurement]:
        """A draft tune's ranking: tokens per second of greedy replies to the shipped text, with
        the draft where the set-up has one (every set-up measured the same way)."""
        return sorted((m for m in self.measured if m.ok and m.text_speed > 0),
                      key=lambda m: (m.contended, -m.text_speed))

    @property
    def loads(self) -> int:
        return len(self.measured)

    @property
    def out_of_memory(self) -> int:
        return sum(1 for m in self.measured if m.failure_kind in ("oom_device", "oom_host"))

    @property
    def contended(self) -> list[Measurement]:
        """Measurements taken while other processes kept the CPU busy: their figures are low."""
        return [m for m in self.measured if m.ok and m.contended]

    def best_per_file(self, objective: str = "tg") -> dict[str, Measurement]:
        best: dict[str, Measurement] = {}
        for m in self.ranked(objective):
            best.setdefault(m.candidate.settings.model_path, m)
        return best

    def quality_cost(self, path: str) -> float:
        """Lower is better: the mean KLD when every file has one, else the perplexity."""
        if self.quality and all(p in self.quality for p in self.best_per_file()):
            return self.quality[path].kld_mean
        return self.perplexity.get(path, float("inf"))

    def pareto(self, objective: str = "tg") -> list[Measurement]:
        """Model files not beaten on both speed and quality by another."""
        best = self.best_per_file(objective)
        speed = (lambda m: m.tg_tokens_per_s) if objective == "tg" else (lambda m: m.pp_tokens_per_s)
        front = []
        for path, m in best.items():
            cost = self.quality_cost(path)
            dominated = any(speed(o) >= speed(m) and self.quality_cost(p) <= cost
                            and (speed(o) > speed(m) or self.quality_cost(p) < cost)
                            for p, o in best.items() if p != path)
            if not dominated:
                front.append(m)
        return sorted(front, key=speed, reverse=True)


async def run_tune(candidates: list[Candidate], time_budget_s: float, stop: asyncio.Event,
                   on_progress: Callable[[str, Measurement | None, TuneReport], None] = lambda *a: None,
                   quality: QualityMeter | None = None, client_factory: Callable[[], EngineLike] = EngineClient,
                   extra: Callable[[TuneReport], list[Candidate]] | None = None,
                   close_client: bool = True, loads: LoadService | None = None,
                   on_text: bool = False, text_prompt: str = "",
                   contention: Callable[[int | None], ContentionLike] = ContentionMeter) -> TuneReport:
    """Measure `candidates` in order. `extra(report)` may add candidates once the list is done
    (thread counts around the best); it is asked once. `quality` measures each file against its
    reference once (its distributions are made before the first load, when not in the store).
    `close_client=False` leaves the engine running (the app's own engine, which then loads the
    chosen set-up). With `loads` (the app's LoadService) every load and benchmark is recorded
    with the session's other tries. `contention(engine_pid)` measures other processes' CPU use
    during each benchmark (the app passes its sampler's, a fixed one under test)."""
    report = TuneReport()
    queue = list(candidates)
    asked_extra = False
    if quality is not None:  # a one-off run of the reference: not taken from the time budget
        report.quality_reference = str(quality.reference)
        on_progress(f"reference distributions of {quality.reference.name}", None, report)
        try:
            await quality.prepare()
        except QualityError as exc:
            report.quality_problem, quality = str(exc), None
    started = time.monotonic()
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
            m = await _measure(client, c, stop, loads, on_text, text_prompt, contention)
            report.measured.append(m)
            path = c.settings.model_path
            if not m.ok and m.failure_kind == FailureKind.OOM_HOST.value:
                queue = _without_host_heavier(queue, c, report)
            if m.ok and quality is not None and path not in report.quality and not stop.is_set():
                on_progress(f"KL divergence of {Path(path).name} against {quality.reference.name}", m, report)
                try:
                    report.quality[path] = figures = await quality.measure_loaded(client, c.settings)
                    report.perplexity[path] = figures.ppl
                except QualityError as exc:
                    m.error = f"quality not measured: {exc}"
            on_progress("measured", m, report)
        report.untried = queue
        if not stop.is_set():
            await _repeat_leaders(client, report, started, time_budget_s, stop, loads, on_text, text_prompt,
                                  contention)
    finally:
        if close_client:
            await client.stop()
        report.seconds = time.monotonic() - started
    return report


def _without_host_heavier(queue: list[Candidate], failed: Candidate, report: TuneReport) -> list[Candidate]:
    """After a load ran out of host memory, drop the candidates of the same file that need as much
    RAM or more (as many layers on the CPU or more): each would fail the same way, a minute a load
    for a 70B (8 such loads took 4 min 44 s). Say so in the report."""
    def host_layers(c: Candidate) -> int:
        n = c.info.n_layer
        return n - min(n, c.settings.n_gpu_layers if c.settings.n_gpu_layers >= 0 else n)

    same = [c for c in queue if c.settings.model_path == failed.settings.model_path
            and host_layers(c) >= host_layers(failed)]
    if same:
        name = Path(failed.settings.model_path).name
        report.skipped.append(f"{name}: {len(same)} set-up(s) with as many layers on the CPU skipped: "
                              "the first ran out of host memory (free RAM, or plan for a GPU with more layers)")
    return [c for c in queue if c not in same]


LEADERS, REPEATS = 3, 2
"""The leading set-ups are measured this many more times each, interleaved, while time is left,
until the leaders all have been."""


def within_noise(a: Measurement, b: Measurement, on_text: bool = False) -> bool:
    """Two speeds closer than twice the standard error of their difference (or than 3 % when
    neither has a spread yet) cannot be told apart."""
    ra, rb = (a.text_runs, b.text_runs) if on_text else (a.tg_runs, b.tg_runs)
    if not ra or not rb:
        return False
    se = (_sd(ra) ** 2 / len(ra) + _sd(rb) ** 2 / len(rb)) ** 0.5
    ma, mb = statistics.fmean(ra), statistics.fmean(rb)
    return abs(ma - mb) <= max(2 * se, 0.03 * max(ma, mb))


async def _repeat_leaders(client: EngineLike, report: TuneReport, started: float, time_budget_s: float,
                          stop: asyncio.Event, loads: LoadService | None, on_text: bool = False,
                          text_prompt: str = "",
                          contention: Callable[[int | None], ContentionLike] = ContentionMeter) -> None:
    """One short run per set-up ranks by noise on a busy or small machine: measure the leaders
    again, round-robin (so a drift in the machine's speed falls on all of them), then say
    which are within noise of the best."""
    def ranked() -> list[Measurement]:
        return report.ranked_on_text() if on_text else report.ranked()

    def runs(m: Measurement) -> int:
        return len(m.text_runs if on_text else m.tg_runs)

    if len(ranked()) < 2:
        return
    while not stop.is_set() and time.monotonic() - started <= time_budget_s:
        # the leaders as they stand now: a set-up that overtakes one after its repeats is
        # measured as often before it can be called the best (no winner's curse)
        short = [m for m in ranked()[:LEADERS] if runs(m) < 1 + REPEATS]
        if not short:
            break
        for m in short:
            if stop.is_set() or time.monotonic() - started > time_budget_s:
                break
            again = await _measure(client, m.candidate, stop, loads, on_text, text_prompt, contention)
            if not again.ok:
                m.ok, m.error = False, f"failed when measured again: {again.error}"
                continue
            m.other_cores = max(m.other_cores, again.other_cores)
            if again.tg_tokens_per_s > 0:
                m.tg_runs.append(again.tg_tokens_per_s)
                m.pp_runs.append(again.pp_tokens_per_s)
                m.tg_tokens_per_s = statistics.fmean(m.tg_runs)
                m.pp_tokens_per_s = statistics.fmean(m.pp_runs)
            if on_text:
                m.text_runs += again.text_runs or [0.0]
    order = ranked()
    report.ties = [m for m in order[1:LEADERS] if within_noise(order[0], m, on_text)]


async def _measure(client: EngineLike, c: Candidate, stop: asyncio.Event,
                   loads: LoadService | None, on_text: bool = False, text_prompt: str = "",
                   contention: Callable[[int | None], ContentionLike] = ContentionMeter) -> Measurement:
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
    meter = contention(client.pid).start()
    try:
        bench = await client.bench(BENCH_PROMPT, BENCH_GEN, 1)
    except EngineError as exc:
        m.ok, m.error = False, str(exc)
        return m
    m.pp_tokens_per_s = max(bench.pp_tokens_per_s, default=0.0)
    m.tg_tokens_per_s = max(bench.tg_tokens_per_s, default=0.0)
    m.tg_runs = [m.tg_tokens_per_s] if m.tg_tokens_per_s > 0 else []
    m.pp_runs = [m.pp_tokens_per_s] if m.tg_tokens_per_s > 0 else []
    if on_text and not stop.is_set():
        try:
            r = await client.draft_bench(text_prompt or draft_prompt(), BENCH_GEN, 1)
        except EngineError as exc:
            m.ok, m.error = False, str(exc)
            return m
        m.text_tg_tokens_per_s = max(r.alone_tokens_per_s, default=0.0)
        m.draft_tg_tokens_per_s = max(r.draft_tokens_per_s, default=0.0)
        m.acceptance = r.accepted_tokens / r.drafted_tokens if r.drafted_tokens else None
        speed = m.draft_tg_tokens_per_s if c.settings.speculative else m.text_tg_tokens_per_s
        m.text_runs = [speed] if speed > 0 else []
    m.other_cores = meter.stop().other_cores
    if loads is not None and m.tg_tokens_per_s > 0:
        loads.record_bench(c.settings, m.pp_tokens_per_s, m.tg_tokens_per_s, contended=m.contended)
    return m
