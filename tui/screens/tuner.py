"""Tuner: choose a model file and its load settings by keyboard, apply (reload), benchmark."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, ProgressBar, Static

from tui.engine.client import EngineError
from tui.engine.settings import ALL_LAYERS, LoadSettings
from tui.engine.settings_steps import FIELDS, step
from tui.engine.status import EngineStatus, Phase
from tui.models.gguf_info import GgufError, read_header
from tui.screens.open_model import OpenModelScreen
from tui.screens.status_binding import follow_app_status
from tui.units import format_bytes
from tui.widgets.settings_table import SettingsTable
from tui.widgets.status_bar import StatusBar


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

    def compose(self) -> ComposeResult:
        yield Static("", id="model-path")
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
        self.query_one("#model-path", Static).update(f"Model: {settings.model_path}")
        if path_changed:
            self.read_layers(settings.model_path)

    @work(thread=True, exclusive=True, group="header")
    def read_layers(self, path: str) -> None:
        try:
            header = read_header(path)
        except GgufError as exc:
            self.app.call_from_thread(self._header_failed, str(exc))
            return
        arch = header.metadata.get("general.architecture", "")
        n_layer = header.metadata.get(f"{arch}.block_count")
        size = format_bytes(header.tensor_bytes)
        self.app.call_from_thread(self._header_read, n_layer if isinstance(n_layer, int) else None,
                                  f"Model: {path}  ({arch}, {n_layer} blocks, {size})")

    def _header_read(self, n_layer: int | None, line: str) -> None:
        self.query_one(SettingsTable).n_layer = n_layer
        self.query_one("#model-path", Static).update(line)

    def _header_failed(self, message: str) -> None:
        self.query_one(SettingsTable).n_layer = None
        self.query_one("#model-path", Static).update(f"Model: {message}")

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
