"""F1 / ?: every key, pane by pane, as the keymap has them now (overrides included)."""

from __future__ import annotations

from itertools import groupby

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static

from tui.keymap import KeyRow

NICE = {"escape": "Esc", "enter": "Enter", "pageup": "PgUp", "pagedown": "PgDn", "home": "Home",
        "end": "End", "up": "↑", "down": "↓", "left": "←", "right": "→", "plus": "+",
        "minus": "−", "equals_sign": "=", "space": "Space", "delete": "Del",
        "left_square_bracket": "[", "right_square_bracket": "]", "question_mark": "?"}


def nice_key(key: str) -> str:
    if key in NICE:
        return NICE[key]
    if key.startswith("ctrl+"):
        return "Ctrl+" + nice_key(key[5:]).upper()
    if key.startswith("f") and key[1:].isdigit():
        return key.upper()
    return key


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,f1,question_mark", "dismiss(None)", "Close", id="help.close")]

    def __init__(self, rows: list[KeyRow], settings_file: str = "") -> None:
        super().__init__(classes="ask")
        self.rows, self.settings_file = rows, settings_file

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Static(self._content(), id="help-text")

    def _content(self) -> Content:
        parts: list = [("vramdeck keys", "bold $accent"), "   (Esc closes; ↑↓ PgUp PgDn scroll)\n"]
        for scope, rows in groupby(self.rows, key=lambda r: r.scope):
            parts.append((f"\n{scope}\n", "bold $primary"))
            for r in rows:
                keys = " ".join(nice_key(k) for k in r.keys)
                parts += [(f"  {keys:<22}", "bold"), f" {r.description}",
                          (f"  {r.binding_id}\n" if r.binding_id else "\n", "dim")]
        parts.append(("\nKeys can be changed in "
                      f"{self.settings_file or 'settings.toml'} under [keys]: "
                      "binding id = \"keys\" (the ids are the grey names above).", "$text-muted"))
        return Content.assemble(*parts)


def help_dialogs() -> dict[str, type]:
    """The dialogs and widgets whose keys F1 lists after the panes', titled as a user finds them."""
    from tui.screens.conversations import ConversationsScreen
    from tui.screens.plan import PlanScreen
    from tui.screens.profiles import ProfilesScreen
    from tui.screens.result import ResultScreen
    from tui.screens.tried import TriedScreen
    from tui.screens.tune import TuneScreen
    from tui.widgets.chat_message import UserMessage

    return {"A message in Chat (Tab moves to it)": UserMessage,
            "Saved chats (Ctrl+O in Chat)": ConversationsScreen,
            "Profiles (p in the Tuner)": ProfilesScreen,
            "Configurations tried (t in the Tuner)": TriedScreen,
            "Auto-tune (T in the Tuner)": TuneScreen,
            "Plan (P in the Tuner)": PlanScreen,
            "A result (b, D, Q in the Tuner)": ResultScreen}
