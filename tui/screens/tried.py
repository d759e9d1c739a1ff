"""The session's table of configurations tried: sort it, re-apply a row, or save it as a profile."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Label

from tui.engine.settings import compact
from tui.profiles.tried import SORTS, Spread, TriedConfig, sort_rows, speed_text
from tui.units import format_bytes


def _vram(values: tuple[int, ...]) -> str:
    return " + ".join(format_bytes(v) for v in values) if values else "-"


def _speeds(r: TriedConfig) -> tuple[str, str]:
    """pp and tg as mean ±sd and runs (`123.4 ±2.1 (3)`, or `123.4 n=1`), tg marked busy when
    other processes kept the CPU busy while it ran."""
    spread = r.spread or Spread()
    if r.tg_tokens_per_s is None:
        return "-", "-"
    busy = " busy" if r.contended else ""
    return (speed_text(r.pp_tokens_per_s or 0, spread.pp_stdev, spread.runs),
            speed_text(r.tg_tokens_per_s, spread.tg_stdev, spread.runs) + busy)


class TriedScreen(ModalScreen[tuple[str, TriedConfig] | None]):
    """Dismisses with ("apply", row), ("save", row), or None."""

    BINDINGS = [
        Binding("escape,q", "dismiss(None)", "Close", id="tried.close"),
        Binding("s", "sort", "Sort", id="tried.sort"),
        Binding("a", "pick('apply')", "Re-apply", id="tried.pick-apply"),
        Binding("w", "pick('save')", "Save as profile", id="tried.pick-save"),
    ]

    def __init__(self, rows: list[TriedConfig], sort: str = "order") -> None:
        super().__init__()
        self.rows = rows
        self.sort = sort
        self.shown: list[TriedConfig] = []

    def compose(self) -> ComposeResult:
        with Vertical(classes="table-box"):
            yield Label("", id="tried-title")
            yield DataTable(cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        # what a row is judged by first: a narrow terminal cuts the last columns (← → scroll to them)
        table.add_columns("#", "model", "ngl ctx KV fa ub", "tg tok/s", "pp tok/s", "measured", "predicted",
                          "load s")
        self.refill()
        table.focus()

    def refill(self) -> None:
        table = self.query_one(DataTable)
        table.clear()
        self.shown = sort_rows(self.rows, self.sort)
        for r in self.shown:
            pp, tg = _speeds(r)
            table.add_row(str(self.rows.index(r) + 1), r.model_name[:28], compact(r.settings, r.n_layer),
                          tg, pp, _vram(r.measured_vram), _vram(r.predicted_vram), f"{r.load_seconds:.2f}")
        label = dict(SORTS)[self.sort]
        empty = "  No configuration tried yet: apply (a) and benchmark (b) in the Tuner." if not self.rows else ""
        self.query_one("#tried-title", Label).update(
            f"Tried this session, by {label} (s sorts; ← → more columns); tok/s: mean ±sd (runs){empty}")

    def action_sort(self) -> None:
        keys = [k for k, _ in SORTS]
        self.sort = keys[(keys.index(self.sort) + 1) % len(keys)]
        self.refill()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_pick("apply")  # Enter on a row

    def action_pick(self, action: str) -> None:
        if not self.shown:
            return
        row = self.query_one(DataTable).cursor_row
        self.dismiss((action, self.shown[row]))
