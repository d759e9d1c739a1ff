"""Command palette (Ctrl+P): every key action of every pane, and the saved profiles."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, cast

from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider

if TYPE_CHECKING:
    from tui.app import VramdeckApp

PANES = (("chat", "Chat"), ("monitor", "Monitor"), ("tuner", "Tuner"), ("log", "Log"))


class PaneActions(Provider):
    """Each pane's bindings as commands; running one switches to the pane first."""

    def _commands(self):
        app = self.app
        for binding in app.BINDINGS:
            if not isinstance(binding, Binding):
                continue
            if binding.description and binding.action != "command_palette":
                yield binding.description, partial(app.run_action, binding.action), binding.key
        for mode, title in PANES:
            screen_class = app.MODES.get(mode)
            for binding in getattr(screen_class, "BINDINGS", ()):
                if not isinstance(binding, Binding) or not binding.description or binding.key in ("up", "down"):
                    continue
                yield (f"{title}: {binding.description}",
                       partial(self._run_in_pane, mode, binding.action), binding.key.split(",")[0])

    async def _run_in_pane(self, mode: str, action: str) -> None:
        app = self.app
        if app.current_mode != mode:
            await app.switch_mode(mode)
        await app.screen.run_action(action)

    async def discover(self) -> Hits:
        for text, run, key in self._commands():
            yield DiscoveryHit(text, run, help=_key_help(key))

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for text, run, key in self._commands():
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, matcher.highlight(text), run, help=_key_help(key))


def _key_help(key: str) -> str:
    """`key: F1 or ?`, as a person reads keys (the palette showed `key: f1,question_mark`)."""
    from tui.screens.help import nice_key

    return "key: " + " or ".join(nice_key(k.strip()) for k in key.split(",") if k.strip())


class ProfileCommands(Provider):
    """"Load profile: NAME" for every saved profile."""

    @property
    def vramdeck(self) -> "VramdeckApp":
        return cast("VramdeckApp", self.app)

    async def startup(self) -> None:
        self.names = self.vramdeck.profile_store.names()  # one directory listing

    async def discover(self) -> Hits:
        for name in self.names:
            yield DiscoveryHit(f"Load profile: {name}", partial(self.vramdeck.profiles.open_profile, name))

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name in self.names:
            text = f"Load profile: {name}"
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, matcher.highlight(text), partial(self.vramdeck.profiles.open_profile, name))
