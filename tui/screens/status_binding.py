"""Keep a screen's StatusBar in step with the app's engine status, warning and context use."""

from __future__ import annotations

from textual.screen import Screen

from tui.widgets.status_bar import StatusBar


def follow_app_status(screen: Screen) -> None:
    bar = screen.query_one(StatusBar)
    screen.watch(screen.app, "engine_status", lambda value: setattr(bar, "status", value))
    screen.watch(screen.app, "warning", lambda value: setattr(bar, "warning", value))
    screen.watch(screen.app, "context_used", lambda value: setattr(bar, "context_used", value))
    screen.watch(screen.app, "prompt_progress", lambda value: setattr(bar, "prompt_progress", value))
