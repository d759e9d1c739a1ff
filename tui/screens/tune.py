"""The Tuner's auto-tune (T): measure the candidates the estimator allows for the chosen model,
with progress, the current candidate and the best so far; Esc stops and keeps what was measured."""

from __future__ import annotations

import asyncio

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Footer, Label, ProgressBar

from tui.engine.settings import LoadSettings, compact
from tui.fit.budget import MemoryBudget
from tui.fit.calibration import calibrate
from tui.models.gguf_info import GgufError
from tui.models.model_info import ModelInfo
from tui.profiles.portable import measured_results
from tui.profiles.schema import Profile
from tui.profiles.tried import speed_text
from tui.safe_text import terminal_safe
from tui.screens.typed import VramdeckModal
from tui.tune.run import Measurement, TuneReport, run_tune
from tui.tune.strategy import TuneStrategy
from tui.units import format_bytes


class TuneScreen(VramdeckModal[LoadSettings | None]):
    """Dismisses with the settings to apply (the best, or the highlighted row), or None."""

    BINDINGS = [
        Binding("escape", "stop_or_close", "Stop / close", id="tune.stop-or-close"),
        Binding("a", "apply", "Apply highlighted", id="tune.apply"),
        Binding("w", "save", "Save highlighted", id="tune.save"),
    ]

    def __init__(self, info: ModelInfo, base: LoadSettings, budget: MemoryBudget,
                 time_budget_s: float = 300.0, use_dry_run: bool = True, text_prompt: str = "") -> None:
        super().__init__()
        self.info, self.base = info, base
        self.draft_path = base.draft_model_path
        """With a draft model in the settings: also try it (draft lengths, the layers it leaves),
        and rank every set-up by tok/s of greedy replies to `text_prompt` (the user's own last
        prompts) or, without them, the shipped text."""
        self.text_prompt = text_prompt
        self.budget = budget
        self.strategy = TuneStrategy(budget, lambda info, s: calibrate(info, s, use_dry_run), self.draft_path,
                                     base.draft_n_gpu_layers)
        """The same strategy as `vramdeck tune`: the CPU's own set-ups when there is no GPU."""
        self.time_budget_s, self.use_dry_run = time_budget_s, use_dry_run
        self.stop = asyncio.Event()
        self.report: TuneReport | None = None
        self.rows: list[Measurement] = []
        self.done = False

    def compose(self) -> ComposeResult:
        with Vertical(classes="table-box"):
            yield Label("", id="tune-title")
            yield ProgressBar(total=1, show_eta=False, id="tune-progress")
            yield Label("", id="tune-current")
            yield Label("", id="tune-best")
            yield DataTable(cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        first = ("text tok/s ±sd (runs)", "kept") if self.draft_path else ("tg tok/s ±sd (runs)",)
        self.query_one(DataTable).add_columns(*first, "pp tok/s", "ngl ctx KV fa ub", "threads",
                                              "VRAM measured", "predicted")
        self.query_one("#tune-title", Label).update(
            f"Auto-tune {self.info.path.rsplit('/', 1)[-1]}: " + (
                f"threads, batch, KV, flash attention, mmap and mlock on the CPU (no GPU), context "
                f"{self.base.n_ctx:,}. Esc stops." if self.strategy.cpu_only else
                f"fastest generation that fits {', '.join(format_bytes(b) for b in self.budget.gpus if b)} "
                f"({format_bytes(self.budget.margin)} spare), context {self.base.n_ctx:,}. Esc stops."))
        self.tune()

    @work(exclusive=True, group="tune", exit_on_error=False)
    async def tune(self) -> None:
        current = self.query_one("#tune-current", Label)
        current.update("Asking the estimator which set-ups fit…")
        candidates, pruned = await asyncio.to_thread(self.strategy.candidates, [self.info], self.base.without_draft())
        bar = self.query_one("#tune-progress", ProgressBar)
        bar.update(total=max(1, len(candidates)), progress=0)
        if not candidates:
            current.update("Nothing fits, even with no layers on the GPU: " + "; ".join(pruned[:2]))
            self.done = True
            return

        def more_threads(report: TuneReport) -> list:
            try:
                extra = self.strategy.extra(report)
            except GgufError as exc:
                self.notify(terminal_safe(f"The draft model: {exc}"), severity="error")  # on the event loop
                extra = []
            bar.update(total=len(candidates) + len(extra))
            return extra

        def progress(what: str, m: Measurement | None, report: TuneReport) -> None:
            if what == "measured" and m is not None:
                bar.advance(1)
                self._show(report)
            else:
                current.update(what + "…")

        self.report = await run_tune(candidates, self.time_budget_s, self.stop, progress,
                                     client_factory=lambda: self.app.engine, extra=more_threads,
                                     close_client=False, loads=self.app.loads,
                                     on_text=bool(self.draft_path), text_prompt=self.text_prompt,
                                     contention=self.app.sampler.contention)
        self.done = True
        self._show(self.report)
        ended = f" (ended early: {self.report.stopped})" if self.report.stopped else ""
        current.update(f"Done: {self.report.loads} loads in {self.report.seconds:.0f} s, "
                       f"{self.report.out_of_memory} out of memory{ended}. a applies the "
                       f"highlighted set-up (the best is first), w saves it, Esc closes.")

    def _show(self, report: TuneReport) -> None:
        self.rows = report.ranked_on_text() if self.draft_path else report.ranked()
        table = self.query_one(DataTable)
        table.clear()
        for m in self.rows:
            s = m.candidate.settings
            if self.draft_path:
                kept = f"{m.acceptance:.0%}" if s.speculative and m.acceptance is not None else "-"
                first: tuple[str, ...] = (speed_text(m.text_speed, m.text_stdev, len(m.text_runs))
                                          + (" busy" if m.contended else ""), kept)
            else:
                first = (speed_text(m.tg_tokens_per_s, m.tg_stdev, len(m.tg_runs))
                         + (" busy" if m.contended else ""),)
            table.add_row(*first, f"{m.pp_tokens_per_s:.1f}",
                          compact(s, self.info.n_layer), str(s.n_threads or "auto"),
                          " + ".join(format_bytes(v) for v in m.vram_bytes_per_gpu) or "-",
                          " + ".join(format_bytes(v) for v in m.predicted_vram) or "-")
        if self.rows:
            b = self.rows[0]
            speed = b.text_speed if self.draft_path else b.tg_tokens_per_s
            on = " on your last prompts" if self.text_prompt else " on the shipped text" if self.draft_path else ""
            ties = f"; {len(report.ties)} within noise of it" if report.ties else ""
            if report.contended:
                ties += (f"; ⚠ {len(report.contended)} measured while other processes kept the CPU busy "
                         "(marked busy): those figures are low")
            self.query_one("#tune-best", Label).update(
                f"Best so far: {speed:.1f} tok/s{on} with {compact(b.candidate.settings, self.info.n_layer)}{ties}")

    def _highlighted(self) -> LoadSettings | None:
        if not self.rows:
            return None
        row = self.query_one(DataTable).cursor_row
        return self.rows[min(max(row, 0), len(self.rows) - 1)].candidate.settings

    async def action_stop_or_close(self) -> None:
        if not self.done:
            self.stop.set()
            await self.app.engine.cancel()
            self.query_one("#tune-current", Label).update("Stopping after this measurement…")
            return
        self.dismiss(None)

    def action_apply(self) -> None:
        if not self.done:
            self.notify("The tune is still running: Esc stops it first.", severity="warning")
            return
        settings = self._highlighted()
        if settings is not None:
            self.dismiss(settings)

    def action_save(self) -> None:
        """Save the highlighted set-up as a profile, with what the tune measured for it."""
        if not self.done or not self.rows:
            return
        m = self.rows[min(max(self.query_one(DataTable).cursor_row, 0), len(self.rows) - 1)]
        app = self.app

        def make(name: str) -> Profile:
            profile = app.profiles.profile_from(name, m.candidate.settings)
            profile.notes = "found by the Tuner's auto-tune"
            quality, reference = app.loads.quality.get(m.candidate.settings.model_path, (None, ""))
            profile.results = measured_results(app.profiles.machine(), m.vram_bytes_per_gpu, m.load_seconds,
                                               m.pp_tokens_per_s, m.tg_tokens_per_s, m.speed_spread(),
                                               quality, reference)
            return profile

        app.profiles.save_profile_asking("auto-tuned", make)
