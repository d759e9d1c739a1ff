"""The Plan screen (P in the Tuner, or the palette): every quant of a model before the download:
size, layers that fit this machine, predicted speed, published quality, the verdicts; s sorts,
c compares another model, f fetches the highlighted quant, Enter opens it in the Tuner."""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Footer, Label

from tui.engine.settings import LoadSettings
from tui.fit.budget import MemoryBudget
from tui.plan.hub import HubError, Progress, PullStopped, pull
from tui.plan.measure import measured_quality
from tui.plan.model_plan import ModelPlan, add_measured, make_plan
from tui.plan.sizes import QuantSizeError
from tui.plan.sources import SourceError, local_quants, resolve
from tui.plan.table import QuantRow
from tui.quality.figures import QualityFigures
from tui.safe_text import terminal_safe
from tui.screens.ask import AskTextScreen
from tui.screens.typed import VramdeckModal
from tui.speed.machine import machine_speed_model
from tui.speed.machine_key import sample_identity
from tui.speed.model import SpeedModel
from tui.units import format_bytes

SORTS = (("order", "largest first"), ("tg", "fastest first"), ("size", "smallest first"),
         ("quality", "most bits per weight first"))


def sorted_rows(rows: list[tuple[ModelPlan, QuantRow]], by: str) -> list[tuple[ModelPlan, QuantRow]]:
    if by == "tg":
        return sorted(rows, key=lambda pr: -pr[1].tg_tokens_per_s)
    if by == "size":
        return sorted(rows, key=lambda pr: pr[1].file_bytes)
    if by == "quality":
        return sorted(rows, key=lambda pr: -pr[1].bits_per_weight)
    return list(rows)


def quality_cell(r: QuantRow, measured: QualityFigures | str | None = None) -> str:
    """The published perplexity increase (llama.cpp's, at Llama-3-8B), short; imatrix types
    marked; the KL divergence measured here on the shipped text, for a file on disk (m)."""
    q = r.quality
    text = f"{q.ppl_increase:+.4f}" if q.ppl_increase is not None else "-"
    if isinstance(measured, QualityFigures):
        text += f" · KLD {measured.kld_text()} here"
    return text + (" imatrix" if r.needs_imatrix else "")


class PlanScreen(VramdeckModal[LoadSettings | None]):
    """Dismisses with the settings to open in the Tuner (a fetched or local quant), or None."""

    BINDINGS = [
        Binding("escape,q", "close", "Close", id="plan.close", tooltip="during a fetch: stop it (f resumes)"),
        Binding("s", "sort", "Sort", id="plan.sort"),
        Binding("c", "compare", "Compare", id="plan.compare"),
        Binding("f", "fetch", "Fetch", id="plan.fetch"),
        Binding("m", "measure", "Measure on disk", id="plan.measure"),
        Binding("enter,o", "open", "Open", id="plan.open"),
    ]

    def __init__(self, source: str, base: LoadSettings, budget: MemoryBudget,
                 use_dry_run: bool = True, speed: tuple[SpeedModel, str] | None = None) -> None:
        """`speed`: the model to predict with and its source in words (None: this machine's
        calibration, read when the plan is made)."""
        super().__init__()
        self.sources = [source]
        self.base, self.budget, self.use_dry_run = base, budget, use_dry_run
        self.speed = speed
        self.plans: list[ModelPlan] = []
        self.sort = "order"
        self.shown: list[tuple[ModelPlan, QuantRow]] = []
        self._scratch = tempfile.TemporaryDirectory(prefix="vramdeck-plan-")
        self._stop_fetch = threading.Event()
        self.fetching: Progress | None = None
        """The download under way (its last progress), or None."""

    def compose(self) -> ComposeResult:
        with Vertical(classes="table-box"):
            yield Label("", id="plan-title", markup=False)
            yield DataTable(cursor_type="row", zebra_stripes=True)
            yield Label("", id="plan-verdicts", markup=False)
            yield Label("", id="plan-status", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns("quant", "file", "GPU layers", "max ctx", "tg/s",
                                              "pp/s", "+ppl")
        self.query_one("#plan-title", Label).update(f"Planning {terminal_safe(self.sources[0])}…")
        self.make(self.sources[0])
        self.query_one(DataTable).focus()

    def on_unmount(self) -> None:
        self._scratch.cleanup()

    def _status(self, text: str) -> None:
        self.query_one("#plan-status", Label).update(terminal_safe(text))

    @work(thread=True, exclusive=True, group="plan", exit_on_error=False)
    def make(self, source: str) -> None:
        app = self.app
        app.call_from_thread(self._status, "Reading the model's header and asking llama.cpp for "
                                           "every quant's size…")
        try:
            resolved = resolve(source, Path(self._scratch.name))
            speed = self.speed or machine_speed_model(identity=sample_identity(app.sample))
            plan = make_plan(resolved, self.base, self.budget, speed, None,
                             on_disk=local_quants(resolved, app.model_locations),
                             use_dry_run=self.use_dry_run)
        except (SourceError, HubError, QuantSizeError, OSError) as exc:
            app.call_from_thread(self._status, f"✗ {exc}")
            return
        app.call_from_thread(self._planned, plan)

    def _planned(self, plan: ModelPlan) -> None:
        self.plans.append(plan)
        names = " vs ".join(Path(p.source.label).name for p in self.plans)
        budget = ", ".join(format_bytes(b or 0) for b in self.budget.gpus) or "CPU only"
        self.query_one("#plan-title", Label).update(terminal_safe(
            f"{names} · {budget} · ctx {self.base.n_ctx:,} · KV {self.base.type_k} · fa "
            f"{self.base.flash_attn}"))
        self.refill()
        lines = []
        for p in self.plans:
            for v in p.verdicts:
                what = (f"{v.row.quant} {v.row.n_gpu_layers}/{v.row.n_layers} layers, "
                        f"{v.row.tg_tokens_per_s:.1f} tok/s") if v.row else "none"
                lines.append(f"{p.source.label if len(self.plans) > 1 else ''} {v.label}: {what}".strip())
        self.query_one("#plan-verdicts", Label).update(terminal_safe("\n".join(lines[:4]),
                                                                     multiline=True))
        self._status(f"speeds: {plan.speed_source} · f fetches, Enter opens, c compares, s sorts")

    def refill(self) -> None:
        table = self.query_one(DataTable)
        table.clear()
        rows = [(p, r) for p in self.plans for r in p.rows]
        self.shown = sorted_rows(rows, self.sort)
        many = len(self.plans) > 1
        for p, r in self.shown:
            layers = (f"{r.n_gpu_layers}/{r.n_layers}" if self.budget.gpus else "CPU") if r.gpu_fits else "none"
            marks = (" ●" if r.quant in p.on_disk else "") + (" ↓" if r.quant in p.in_repo else "")
            name = (f"{p.source.info.name[:10]} " if many else "") + r.quant + marks
            style = "" if r.host_fits else "dim"
            table.add_row(Text(terminal_safe(name), style=style), format_bytes(r.file_bytes, 1),
                          layers, f"{r.max_ctx:,}" if r.max_ctx else "-",
                          f"{r.tg_tokens_per_s:.1f}", f"{r.pp_tokens_per_s:.0f}",
                          Text(quality_cell(r, p.quality.get(r.quant))))

    def _highlighted(self) -> tuple[ModelPlan, QuantRow] | None:
        if not self.shown:
            return None
        row = self.query_one(DataTable).cursor_row
        return self.shown[min(max(row, 0), len(self.shown) - 1)]

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()  # Enter on a row: the table takes the key, the screen opens the quant
        self.action_open()

    def action_sort(self) -> None:
        keys = [k for k, _ in SORTS]
        self.sort = keys[(keys.index(self.sort) + 1) % len(keys)]
        self.refill()
        self._status(f"sorted: {dict(SORTS)[self.sort]}")

    def action_compare(self) -> None:
        def chosen(source: str | None) -> None:
            if source:
                self.sources.append(source)
                self.make(source)
        self.app.push_screen(AskTextScreen("Compare with (a GGUF path, an Ollama tag or a Hugging "
                                           "Face repo id):"), chosen)

    def action_open(self) -> None:
        picked = self._highlighted()
        if picked is None:
            return
        plan, row = picked
        path = plan.on_disk.get(row.quant)
        if path is None:
            self.notify(f"{row.quant} is not on this disk: f fetches it first.", severity="warning")
            return
        self.dismiss(replace(row.settings, model_path=str(path)))

    def action_measure(self) -> None:
        """KL divergence of every planned quant on disk against the highest-precision one, on the
        shipped text (a load each, once per file)."""
        if not any(q in p.on_disk for p in self.plans for q in (r.quant for r in p.rows)):
            self.notify("No quant of this plan is on disk: f fetches one.", severity="warning")
            return
        self.measure()

    @work(thread=True, exclusive=True, group="measure", exit_on_error=False)
    def measure(self) -> None:
        app = self.app
        for plan in self.plans:
            planned = {r.quant for r in plan.rows}
            on_disk = {q: path for q, path in plan.on_disk.items() if q in planned}
            app.call_from_thread(self._status, f"Measuring KL divergence of {', '.join(on_disk)} against the "
                                               "highest-precision file on disk…")
            add_measured(plan, *measured_quality(on_disk, self.base))
        app.call_from_thread(self.refill)
        refs = {Path(p.quality_reference).name for p in self.plans if p.quality_reference}
        app.call_from_thread(self._status, f"measured: KL divergence ± one standard error against "
                                           f"{', '.join(sorted(refs)) or 'nothing'}, on the shipped text")

    def action_fetch(self) -> None:
        picked = self._highlighted()
        if picked is None:
            return
        plan, row = picked
        remote = plan.source.remote
        model = next((m for m in remote.models if m.quant == row.quant), None) if remote else None
        if model is None:
            self.notify(f"{plan.source.label} has no {row.quant} file to fetch"
                        + (" (it is on disk: Enter opens it)." if row.quant in plan.on_disk else "."),
                        severity="warning")
            return
        self.fetch(plan, row, model)

    def action_close(self) -> None:
        """Esc: during a fetch, stop it (said, and resumable); otherwise close."""
        if self.fetching is not None:
            self._stop_fetch.set()
            self._status("stopping the download… (the part fetched is kept)")
            return
        self.dismiss(None)

    @work(thread=True, exclusive=True, group="fetch", exit_on_error=False)
    def fetch(self, plan: ModelPlan, row: QuantRow, model) -> None:
        app = self.app
        self._stop_fetch.clear()

        def progress(p: Progress) -> None:
            self.fetching = p
            if self._stop_fetch.is_set():
                raise PullStopped()
            eta = f", {p.eta_s:.0f} s left" if p.eta_s is not None else ""
            app.call_from_thread(self._status, f"↓ {p.filename}: {format_bytes(p.done)} of "
                                               f"{format_bytes(p.total)}, {format_bytes(p.rate)}/s{eta} "
                                               "(Esc stops; f resumes)")
        remote = plan.source.remote
        if remote is None:
            return
        self.fetching = Progress(model.name, 0, model.size, 0.0)
        try:
            path = pull(remote, model, progress)
        except HubError as exc:
            app.call_from_thread(self._status, f"✗ {exc}")
            return
        except PullStopped:
            done = self.fetching
            words = (f"Download of {model.name} stopped at {format_bytes(done.done)} of {format_bytes(done.total)}: "
                     "the part fetched is kept, and f on the same row (or `vramdeck pull`) resumes it")
            app.call_from_thread(self._status, words)
            app.call_from_thread(app.notify, terminal_safe(words), severity="warning", markup=False)
            return
        finally:
            self.fetching = None
        plan.on_disk[row.quant] = path
        app.call_from_thread(self._fetched, row, path)

    def _fetched(self, row: QuantRow, path: Path) -> None:
        self.refill()
        # said, not silent: the Tuner switches to the new file and its model list is rescanned
        self.app.notify(terminal_safe(f"Fetched {path.name} ({format_bytes(path.stat().st_size)}): opened in "
                                      "the Tuner with the planned settings; a applies them"), markup=False)
        self.dismiss(replace(row.settings, model_path=str(path)))


def ask_and_plan(app, base: LoadSettings, budget: MemoryBudget,
                 overheads_for: Callable[[list[str]], tuple[int, ...]],
                 opened: Callable[[LoadSettings | None], None]) -> None:
    """P: ask which model to plan (the draft's by default) and, on a machine without a GPU, for
    what VRAM (as the CLI's --vram), then open the Plan screen; `opened` gets what it dismisses with."""
    def chosen(source: str | None) -> None:
        if not source:
            return

        def plan_for(b: MemoryBudget) -> None:
            app.push_screen(PlanScreen(source, base, b, app.use_dry_run), opened)

        if budget.gpus:
            plan_for(budget)
            return

        def sized(vram: str | None) -> None:
            try:
                plan_for(budget.planned_for(vram, overheads_for) if vram else budget)
            except ValueError as exc:
                app.notify(terminal_safe(f"Not a size: {exc}"), severity="error", markup=False)
        app.push_screen(AskTextScreen(
            "No GPU here. Plan for one with how much memory? (24GiB, or 24GiB,24GiB for two; "
            "empty: this machine's CPU)", "", "24GiB"), sized)

    app.push_screen(AskTextScreen("Plan which model? A GGUF path, an Ollama tag or a Hugging Face repo id:",
                                  base.model_path), chosen)
