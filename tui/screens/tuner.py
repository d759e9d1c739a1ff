"""Tuner: choose a model file and its load settings by keyboard, apply (reload), benchmark."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, ProgressBar, Static

from tui.engine.client import EngineError
from tui.engine.settings import ALL_LAYERS, LoadSettings
from tui.engine.settings_steps import FIELDS, step
from tui.engine.status import EngineStatus, Phase
from tui.fit.calibration import calibrate
from tui.fit.estimate import Calibration, estimate, formula_calibration
from tui.fit.overhead import DEFAULT_GPU_OVERHEAD
from tui.models.gguf_info import GgufError
from tui.models.model_info import ModelInfo, load_model_info
from tui.screens.open_model import OpenModelScreen
from tui.screens.status_binding import follow_app_status
from tui.units import format_bytes
from tui.widgets.memory_bars import MemoryBars
from tui.widgets.settings_table import SettingsTable
from tui.widgets.status_bar import StatusBar


def context_key(s: LoadSettings) -> tuple:
    """The settings a calibration depends on (everything but the layer placement)."""
    return (s.model_path, s.n_ctx, s.n_batch, s.n_ubatch, s.type_k, s.type_v, s.flash_attn,
            s.offload_kqv)


class TunerScreen(Screen):
    BINDINGS = [
        Binding("up", "select(-1)", "Prev", show=False, id="tuner.prev"),
        Binding("down", "select(1)", "Next", show=False, id="tuner.next"),
        Binding("right,plus,equals_sign", "change(1)", "+", id="tuner.inc"),
        Binding("left,minus", "change(-1)", "−", id="tuner.dec"),
        Binding("pageup", "change(1, True)", "Layers +8", show=False, id="tuner.inc-big"),
        Binding("pagedown", "change(-1, True)", "Layers −8", show=False, id="tuner.dec-big"),
        Binding("home", "layers(0)", "No layers on GPU", show=False, id="tuner.layers-none"),
        Binding("end", "layers(-1)", "All layers on GPU", show=False, id="tuner.layers-all"),
        Binding("a,enter", "apply", "Apply", id="tuner.apply"),
        Binding("b", "bench", "Bench", id="tuner.bench"),
        Binding("o", "open_model", "Open", id="tuner.open"),
        Binding("u", "undo", "Last working", id="tuner.undo"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.draft: LoadSettings | None = None
        self.info: ModelInfo | None = None
        self.calibration: Calibration | None = None
        self.calibrated_for: tuple | None = None

    def compose(self) -> ComposeResult:
        body = VerticalScroll(id="tuner")
        body.can_focus = False  # the arrow keys belong to the settings, not to scrolling
        with body:
            yield Static("", id="model-path")
            yield MemoryBars()
            yield SettingsTable()
            yield ProgressBar(total=1.0, show_eta=False, id="load-progress")
            yield Static("", id="result")
        yield StatusBar()
        yield Footer()

    def on_mount(self) -> None:
        self.watch(self.app, "engine_status", self._status_changed)
        follow_app_status(self)
        self.query_one("#load-progress").display = False
        current = self.app.current_settings
        if current is not None:
            self.set_draft(current)

    # ------------------------------------------------------------------ state

    def set_draft(self, settings: LoadSettings) -> None:
        path_changed = self.draft is None or self.draft.model_path != settings.model_path
        self.draft = settings
        self.query_one(SettingsTable).settings = settings
        if path_changed:
            self.info = None
            self.calibration = self.calibrated_for = None
            self.query_one("#model-path", Static).update(f"Model: {settings.model_path}")
            self.read_model(settings.model_path)
        elif self.calibration is not None and self.calibrated_for == context_key(settings):
            self.show_estimate(precise=True)  # only layers changed: arithmetic, no new dry run
        else:
            self.show_estimate(precise=False)
            self.refine_estimate(settings)

    @work(thread=True, exclusive=True, group="header")
    def read_model(self, path: str) -> None:
        try:
            info = load_model_info(path)
        except GgufError as exc:
            self.app.call_from_thread(self._header_failed, str(exc))
            return
        self.app.call_from_thread(self._header_read, info)

    def _header_read(self, info: ModelInfo) -> None:
        self.info = info
        self.query_one(SettingsTable).n_layer = info.n_layer
        self.query_one("#model-path", Static).update(
            f"Model: {info.path}  ({info.architecture}, {info.n_layer} blocks, "
            f"{format_bytes(info.tensor_bytes)})")
        self.show_estimate(precise=False)
        if self.draft is not None:
            self.refine_estimate(self.draft)

    def _header_failed(self, message: str) -> None:
        self.info = None
        self.query_one(SettingsTable).n_layer = None
        self.query_one(MemoryBars).estimate = None
        self.query_one("#model-path", Static).update(f"Model: {message}")

    # ------------------------------------------------------------------ estimate

    def _budgets(self) -> tuple[tuple[int | None, ...], tuple[int, ...], int | None]:
        """VRAM this engine may use on each GPU (total minus what other processes hold)."""
        sample = self.app.sample
        if sample is None or not sample.gpus:
            return (), (), sample.host.ram_total_bytes if sample else None
        budgets = []
        for g in sample.gpus:
            others = (g.memory_used_bytes or 0) - (g.engine_bytes() or 0)
            budgets.append((g.memory_total_bytes - others) if g.memory_total_bytes else None)
        names = [g.name for g in sample.gpus]
        store = self.app.overhead_store
        overheads = store.for_gpus(names) if store else tuple(DEFAULT_GPU_OVERHEAD for _ in names)
        return tuple(budgets), overheads, sample.host.ram_total_bytes

    def show_estimate(self, precise: bool) -> None:
        if self.info is None or self.draft is None:
            return
        if precise and self.calibration is not None:
            calibration = self.calibration
        else:
            calibration = formula_calibration(self.info, self.draft)
        budgets, overheads, host = self._budgets()
        self.query_one(MemoryBars).estimate = estimate(self.info, self.draft, calibration, budgets,
                                                       overheads, host_budget=host)

    @work(thread=True, exclusive=True, group="calibrate")
    def refine_estimate(self, settings: LoadSettings) -> None:
        info = self.info
        if info is None:
            return
        self.app.call_from_thread(setattr, self.query_one(MemoryBars), "refining", True)
        calibration = calibrate(info, settings, use_dry_run=self.app.use_dry_run)
        self.app.call_from_thread(self._refined, settings, calibration)

    def _refined(self, settings: LoadSettings, calibration: Calibration) -> None:
        self.query_one(MemoryBars).refining = False
        if self.draft is None or self.draft.model_path != settings.model_path:
            return
        self.calibration = calibration
        self.calibrated_for = context_key(settings)
        if context_key(self.draft) == self.calibrated_for:
            self.show_estimate(precise=True)

    def _status_changed(self, status: EngineStatus) -> None:
        bar = self.query_one("#load-progress", ProgressBar)
        bar.display = status.phase is Phase.LOADING
        bar.update(progress=status.progress)
        result = self.query_one("#result", Static)
        if status.phase is Phase.READY and status.facts:
            f = status.facts
            vram = ", ".join(f"GPU{i} {format_bytes(b)}" for i, b in enumerate(f.vram_bytes_per_gpu))
            result.update(f"Loaded in {f.load_seconds:.2f} s: {f.layers_offloaded}/{f.layers_total} "
                          f"layers on GPU, measured VRAM {vram or 'n/a'}, RSS {format_bytes(f.rss_bytes)}")
        elif status.phase in (Phase.FAILED, Phase.CRASHED):
            result.update(status.message)

    # ------------------------------------------------------------------ actions

    def action_select(self, delta: int) -> None:
        table = self.query_one(SettingsTable)
        table.selected = (table.selected + delta) % len(FIELDS)

    def action_change(self, direction: int, big: bool = False) -> None:
        if self.draft is None:
            return
        table = self.query_one(SettingsTable)
        name = FIELDS[table.selected].name
        self.set_draft(step(self.draft, name, direction, table.n_layer, big=big))

    def action_layers(self, value: int) -> None:
        if self.draft is not None:
            self.set_draft(self.draft.with_changes(n_gpu_layers=ALL_LAYERS if value < 0 else value))

    def action_apply(self) -> None:
        if self.draft is None:
            self.notify("Open a model first (o).", severity="warning")
            return
        self.app.load_model(self.draft)

    def action_undo(self) -> None:
        if self.app.last_working is None:
            self.notify("Nothing has loaded yet in this session.", severity="warning")
            return
        self.set_draft(self.app.last_working)

    def action_open_model(self) -> None:
        def chosen(path: str | None) -> None:
            if path:
                base = self.draft or LoadSettings(model_path=path)
                self.set_draft(base.with_changes(model_path=path))

        self.app.push_screen(OpenModelScreen(self.draft.model_path if self.draft else ""), chosen)

    @work(exclusive=True, group="bench", exit_on_error=False)
    async def action_bench(self) -> None:
        result = self.query_one("#result", Static)
        result.update("Benchmarking: pp512 and tg128, 3 repetitions after a warm-up…")
        try:
            bench = await self.app.engine.bench(512, 128, 3)
        except EngineError as exc:
            result.update(f"Benchmark failed: {exc}")
            return
        pp = sorted(bench.pp_tokens_per_s)
        tg = sorted(bench.tg_tokens_per_s)
        result.update(f"pp{bench.n_prompt}: {pp[len(pp) // 2]:.1f} tok/s   "
                      f"tg{bench.n_gen}: {tg[len(tg) // 2]:.1f} tok/s   (median of {len(tg)})")
