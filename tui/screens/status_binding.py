"""Keep a screen's StatusBar in step with the app's engine status, warning and context use."""

from __future__ import annotations

from textual.screen import Screen

from tui.chat.generation import GenerationStatus
from tui.widgets.status_bar import StatusBar


def follow_app_status(screen: Screen) -> None:
    bar = screen.query_one(StatusBar)
    screen.watch(screen.app, "engine_status", lambda value: setattr(bar, "status", value))
    screen.watch(screen.app, "warning", lambda value: setattr(bar, "warning", value))

    def generation_changed(generation: GenerationStatus) -> None:
        bar.context_used = generation.context_used  # reactives: unchanged values draw nothing
        bar.prompt_progress = generation.prompt_progress

    screen.watch(screen.app, "generation", generation_changed)
