"""Every key binding of the app and its panes, with user overrides applied, and their conflicts."""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding

PANE_TITLES = {"chat": "Chat", "monitor": "Monitor", "tuner": "Tuner", "log": "Log"}


@dataclass(frozen=True)
class KeyRow:
    scope: str
    """"Everywhere", a pane's title, or a dialog's."""
    binding_id: str
    keys: tuple[str, ...]
    description: str


def _rows(scope: str, bindings, keymap: dict[str, str]) -> list[KeyRow]:
    rows = []
    for b in bindings:
        if not isinstance(b, Binding) or not b.description:
            continue
        keys = keymap.get(b.id, b.key) if b.id else b.key
        rows.append(KeyRow(scope, b.id or "", tuple(k.strip() for k in keys.split(",")), b.description))
    return rows


def key_table(app_class, keymap: dict[str, str], dialogs: dict[str, type] | None = None) -> list[KeyRow]:
    """Rows for the help screen: the app's keys, then each pane's, then each dialog's."""
    rows = _rows("Everywhere", app_class.BINDINGS, keymap)
    for mode, title in PANE_TITLES.items():
        screen = app_class.MODES.get(mode)
        if screen is not None:
            rows += _rows(title, screen.BINDINGS, keymap)
    for title, cls in (dialogs or {}).items():
        rows += _rows(title, cls.BINDINGS, keymap)
    return rows


def keymap_problems(app_class, keymap: dict[str, str]) -> list[str]:
    """Unknown binding ids, and keys that two bindings would share in one pane."""
    problems = []
    known: set[str] = {b.id for b in app_class.BINDINGS if b.id}
    for screen in app_class.MODES.values():
        known |= {b.id for b in screen.BINDINGS if b.id}
    for binding_id in keymap:
        if binding_id not in known:
            problems.append(f"keys: no binding has the id '{binding_id}' (F1 lists them)")
    app_rows = _rows("Everywhere", app_class.BINDINGS, keymap)
    for mode, title in PANE_TITLES.items():
        screen = app_class.MODES.get(mode)
        if screen is None:
            continue
        owner: dict[str, str] = {}
        for row in app_rows + _rows(title, screen.BINDINGS, keymap):
            for key in row.keys:
                if key in owner and owner[key] != row.binding_id:
                    problems.append(f"keys: '{key}' is bound to both '{owner[key]}' and "
                                    f"'{row.binding_id}' in the {title} pane")
                owner.setdefault(key, row.binding_id)
    return problems
