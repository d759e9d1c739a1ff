"""Monitor: every GPU, the host, and the loaded model, refreshed by the app's sampler."""

from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Footer, Label, Sparkline, Static

from tui.chat.generation import GenerationStatus
from tui.engine.status import EngineStatus
from tui.monitor.contention import thread_fight
from tui.monitor.sample import Sample
from tui.screens.status_binding import follow_app_status
from tui.screens.typed import VramdeckScreen
from tui.widgets.gpu_panel import GpuPanel
from tui.widgets.host_card import HostCard
from tui.widgets.model_card import ModelCard
from tui.widgets.status_bar import StatusBar

WIDE = 140
INTERVALS = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0)


class MonitorScreen(VramdeckScreen):
    BINDINGS = [
        Binding("plus,equals_sign", "refresh_interval(1)", "Slower refresh", id="monitor.slower"),
        Binding("minus", "refresh_interval(-1)", "Faster refresh", id="monitor.faster"),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="monitor"):
            yield Static("", id="gpu-status")
            yield Static("", id="contention")
            with Vertical(id="monitor-body"):
                yield Vertical(id="gpus")
                with Vertical(id="side"):
                    yield HostCard()
                    with Horizontal(classes="history"):
                        yield Label("CPU hist")
                        yield Sparkline([0.0], summary_function=max, id="cpu-history")
                    yield ModelCard()
                    with Horizontal(classes="history"):
                        yield Label("tok/s hist")
                        yield Sparkline([0.0], summary_function=max, id="tps-history")
        yield StatusBar()
        yield Footer()

    def on_mount(self) -> None:
        self._gpu_status: str | None = None
        self._contention = ""
        self.query_one("#contention", Static).display = False
        self.query_one("#monitor").focus()  # arrows and PgUp/PgDn scroll at 80x24
        follow_app_status(self)
        self.watch(self.app, "sample", self._sample_changed)
        self.watch(self.app, "engine_status", self._status_changed)
        card = self.query_one(ModelCard)

        def generation_changed(g: GenerationStatus) -> None:
            card.context_used, card.last_stats = g.context_used, g.last_stats
            card.live_tokens_per_s, card.live_prompt_tokens_per_s = g.tokens_per_s, g.prompt_tokens_per_s

        self.watch(self.app, "generation", generation_changed)

    def on_resize(self, event: events.Resize) -> None:
        self.set_class(event.size.width >= WIDE, "wide")

    def action_refresh_interval(self, step: int) -> None:
        current = self.app.sample_interval
        i = min(range(len(INTERVALS)), key=lambda k: abs(INTERVALS[k] - current))
        self.app.sample_interval = INTERVALS[max(0, min(len(INTERVALS) - 1, i + step))]
        self._show_interval()

    def _show_interval(self) -> None:
        self.notify(f"Refreshing every {self.app.sample_interval:g} s", timeout=2)

    async def _sample_changed(self, sample: Sample | None) -> None:
        if sample is None:
            return
        with self.app.batch_update():  # one repaint per sample, not one per widget
            await self._show_sample(sample)

    async def _show_sample(self, sample: Sample) -> None:
        if sample.gpu_status != self._gpu_status:  # restyling on every sample costs a lot of CPU
            self._gpu_status = sample.gpu_status
            status = self.query_one("#gpu-status", Static)
            status.display = bool(sample.gpu_status)
            status.update(f"{sample.gpu_status}: showing host figures only; models run on the CPU."
                          if sample.gpu_status else "")
        box = self.query_one("#gpus", Vertical)
        box.display = bool(sample.gpus)  # no GPU: the host and model take the whole width
        panels = list(box.query(GpuPanel))
        if len(panels) != len(sample.gpus):
            await box.remove_children()
            panels = [GpuPanel() for _ in sample.gpus]
            await box.mount_all(panels)
        history = self.app.history
        for panel, gpu in zip(panels, sample.gpus, strict=False):
            panel.gpu = gpu
            panel.vram_history = list(history.vram_fraction.get(gpu.index, ()))
            panel.util_history = list(history.gpu_util.get(gpu.index, ()))
        self.query_one(HostCard).host = sample.host
        settings = self.app.current_settings
        fight = thread_fight(sample.host, settings.n_threads if settings else None) if settings else ""
        if fight != self._contention:  # restyle only on a change, as for the GPU status
            self._contention = fight
            contention = self.query_one("#contention", Static)
            contention.update(fight)
            contention.display = bool(fight)
        self.query_one(ModelCard).resident = (sample.host.model_resident_bytes,
                                              sample.host.model_file_bytes)
        self.query_one("#cpu-history", Sparkline).data = list(history.cpu) or [0.0]
        self.query_one("#tps-history", Sparkline).data = list(history.tokens_per_s) or [0.0]

    def _status_changed(self, status: EngineStatus) -> None:
        self.query_one(ModelCard).facts = status.facts
