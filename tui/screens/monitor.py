"""Monitor: every GPU, the host, and the loaded model, refreshed by the app's sampler."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from tui.engine.status import EngineStatus
from tui.monitor.sample import Sample
from tui.screens.status_binding import follow_app_status
from tui.widgets.gpu_card import GpuCard
from tui.widgets.host_card import HostCard
from tui.widgets.model_card import ModelCard
from tui.widgets.status_bar import StatusBar


class MonitorScreen(Screen):
    def compose(self) -> ComposeResult:
        with VerticalScroll(id="monitor"):
            yield Static("", id="gpu-status")
            yield VerticalScroll(id="gpus")
            yield HostCard()
            yield ModelCard()
        yield StatusBar()
        yield Footer()

    def on_mount(self) -> None:
        self.watch(self.app, "sample", self._sample_changed)
        self.watch(self.app, "engine_status", self._status_changed)
        follow_app_status(self)

    async def _sample_changed(self, sample: Sample | None) -> None:
        if sample is None:
            return
        status = self.query_one("#gpu-status", Static)
        status.display = bool(sample.gpu_status)
        status.update(f"{sample.gpu_status}: showing host figures only; models run on the CPU."
                      if sample.gpu_status else "")
        box = self.query_one("#gpus", VerticalScroll)
        cards = list(box.query(GpuCard))
        if len(cards) != len(sample.gpus):
            await box.remove_children()
            cards = [GpuCard() for _ in sample.gpus]
            await box.mount_all(cards)
        for card, gpu in zip(cards, sample.gpus):
            card.gpu = gpu
        self.query_one(HostCard).host = sample.host

    def _status_changed(self, status: EngineStatus) -> None:
        self.query_one(ModelCard).facts = status.facts
