"""Saved profiles: load, rename, duplicate, delete, diff two, see the llama-server command."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Label, Static

from tui.engine.settings import ALL_LAYERS
from tui.profiles.export import ExportError, export
from tui.profiles.schema import Profile, ProfileError
from tui.profiles.store import ProfileExists, ProfileStore, diff
from tui.safe_text import terminal_safe
from tui.screens.ask import AskTextScreen, ConfirmScreen
from tui.units import shortened


def _speed(p: Profile) -> str:
    tg = p.results.get("tg_tokens_per_s")
    return f"{tg:,.1f}" if isinstance(tg, (int, float)) else "-"


def _measured_on(p: Profile) -> str:
    gpus = p.results.get("gpus") or []
    names = ", ".join(str(g).removeprefix("NVIDIA ").removeprefix("GeForce ") for g in gpus) \
        if isinstance(gpus, list) else str(gpus)
    date = str(p.results.get("date", ""))[:10]
    return " ".join(x for x in (names, date) if x) or "-"


class ProfileDiffScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,enter", "dismiss(None)", "Close", id="profile-diff.close")]

    def __init__(self, a: Profile, b: Profile) -> None:
        super().__init__()
        self.a, self.b = a, b

    def compose(self) -> ComposeResult:
        with Vertical(classes="table-box"):
            yield Label(f"Differences between '{self.a.name}' and '{self.b.name}' (Esc closes)")
            yield DataTable(cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("setting", self.a.name, self.b.name)
        rows = diff(self.a, self.b)
        for key, x, y in rows:
            table.add_row(key, shortened(x, 50), shortened(y, 50))
        if not rows:
            table.add_row("(none)", "the two profiles have the same settings", "")
        table.focus()


class ProfilesScreen(ModalScreen[str | None]):
    """Dismisses with the name of the profile to load, or None."""

    BINDINGS = [
        Binding("escape,q", "dismiss(None)", "Close", id="profiles.close"),
        Binding("l", "load", "Load", id="profiles.load"),
        Binding("r", "rename", "Rename", id="profiles.rename"),
        Binding("d", "duplicate", "Duplicate", id="profiles.duplicate"),
        Binding("x,delete", "delete", "Delete", id="profiles.delete"),
        Binding("space", "mark", "Mark", id="profiles.mark"),
        Binding("c", "compare", "Diff", id="profiles.compare", tooltip="compare with the marked profile"),
    ]

    def __init__(self, store: ProfileStore) -> None:
        super().__init__()
        self.store = store
        self.names: list[str] = []
        self.loaded: dict[str, Profile | ProfileError] = {}
        self.marked: str | None = None

    def compose(self) -> ComposeResult:
        with Vertical(classes="table-box"):
            yield Label("", id="profiles-title")
            yield DataTable(cursor_type="row", zebra_stripes=True)
            yield Static("", id="profile-detail")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns(" ", "profile", "model", "GPU layers", "context", "KV", "tg tok/s",
                          "measured on")
        self.refill()
        table.focus()

    def refill(self, select: str | None = None) -> None:
        listing = self.store.list()
        self.loaded = {p.name: p for p in listing.profiles}
        for err in listing.errors:
            self.loaded[Path(err.path).stem] = err
        self.names = sorted(self.loaded)
        table = self.query_one(DataTable)
        table.clear()
        for name in self.names:
            item = self.loaded[name]
            mark = "*" if name == self.marked else " "
            if isinstance(item, ProfileError):
                table.add_row(mark, name, "✗ cannot be read", "", "", "", "", "", key=name)
                continue
            s = item.load
            kv = s.type_k if s.type_k == s.type_v else f"{s.type_k}/{s.type_v}"
            missing = "" if Path(s.model_path).is_file() else " (missing)"
            table.add_row(mark, name, Path(s.model_path).name + missing,
                          "all" if s.n_gpu_layers == ALL_LAYERS else str(s.n_gpu_layers),
                          f"{s.n_ctx:,}", kv, _speed(item), _measured_on(item), key=name)
        if select in self.names:
            table.move_cursor(row=self.names.index(select))
        self.query_one("#profiles-title", Label).update(
            f"{len(self.names)} profile{'s' if len(self.names) != 1 else ''} in {self.store.folder}"
            if self.names else f"No profiles yet in {self.store.folder}: save one in the Tuner (s).")
        self._show_detail()

    @property
    def current(self) -> str | None:
        table = self.query_one(DataTable)
        return self.names[table.cursor_row] if self.names and table.cursor_row < len(self.names) else None

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_load()

    def _show_detail(self) -> None:
        detail = self.query_one("#profile-detail", Static)
        name = self.current
        item = self.loaded.get(name) if name else None
        if item is None:
            detail.update("")
        elif isinstance(item, ProfileError):
            detail.update(Content.assemble(("Cannot be read:", "bold"), " ", terminal_safe(item),
                                           "\nFix the file by hand; the other profiles are not "
                                           "affected."))
        else:
            try:
                lines = [export(item, "llama-server")]
            except ExportError as exc:
                lines = [f"No command: {exc}"]
            if item.notes:
                lines.append(f"notes: {item.notes}")
            lines += item.warnings
            detail.update(Content(terminal_safe("\n".join(lines), multiline=True)))

    def action_load(self) -> None:
        name = self.current
        if name is None:
            return
        if isinstance(self.loaded[name], ProfileError):
            self.notify(str(self.loaded[name]), severity="error", timeout=15)
            return
        self.dismiss(name)

    def action_mark(self) -> None:
        name = self.current
        if name is not None:
            self.marked = None if self.marked == name else name
            self.refill(select=name)

    def action_compare(self) -> None:
        a, b = self.loaded.get(self.marked or ""), self.loaded.get(self.current or "")
        if not isinstance(a, Profile) or not isinstance(b, Profile) or a is b:
            self.notify("Mark one profile with Space, move to another, then press c.",
                        severity="warning")
            return
        self.app.push_screen(ProfileDiffScreen(a, b))

    def _ask_name(self, question: str, value: str, then) -> None:
        def answered(new: str | None) -> None:
            if not new:
                return
            try:
                then(new)
            except (ProfileExists, ValueError, OSError) as exc:
                self.notify(str(exc), severity="error", timeout=10)
                return
            self.refill(select=new)
        self.app.push_screen(AskTextScreen(question, value), answered)

    def action_rename(self) -> None:
        old = self.current
        if old is not None:
            self._ask_name(f"Rename '{old}' to:", old, lambda new: self.store.rename(old, new))

    def action_duplicate(self) -> None:
        name = self.current
        if name is not None:
            self._ask_name(f"Name of the copy of '{name}':", f"{name} copy",
                           lambda new: self.store.duplicate(name, new))

    def action_delete(self) -> None:
        name = self.current
        if name is None:
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.store.delete(name)
                if self.marked == name:
                    self.marked = None
                self.refill()
        self.app.push_screen(ConfirmScreen(f"Delete the profile '{name}'? Its file is removed."),
                             confirmed)
