"""The discovered models, one option each, with a badge saying whether the current settings fit."""

from __future__ import annotations

from dataclasses import dataclass

from textual.content import Content
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from tui.safe_text import terminal_safe
from tui.units import shortened, shortened_middle

BADGE_STYLE = {"all": "$success", "some": "$warning", "none": "$error", "unknown": "$text-muted",
               "broken": "$error"}


@dataclass(frozen=True)
class ModelEntry:
    path: str
    name: str
    detail: str
    """Quant, size and blocks, or why the file cannot be used."""
    badge: str = ""
    badge_kind: str = "unknown"
    usable: bool = True


class ModelList(OptionList):
    """Enter picks the highlighted model: ModelList.Chosen with its path."""

    @dataclass
    class Chosen(Message):
        path: str

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id:
            self.post_message(self.Chosen(event.option.id))

    DEFAULT_CSS = """
    ModelList { border: round $primary; height: 100%; }
    ModelList:focus { border: round $accent; }
    """

    def on_mount(self) -> None:
        self.border_title = "Models"

    def on_resize(self) -> None:
        """Entries are cut to the width: cut them again once the width is known or changes."""
        if getattr(self, "_shown", None) is not None:
            self.show_entries(*self._shown)

    def show_entries(self, entries: list[ModelEntry], current: str | None) -> None:
        self._shown = (entries, current)
        highlighted = self.highlighted_option.id if self.highlighted_option else current
        self.clear_options()
        # one column spare for the scrollbar that a long list adds
        width = max(12, self.scrollable_content_region.width - 1)
        for e in entries:
            badge = Content.styled(f"{e.badge:<8}", BADGE_STYLE.get(e.badge_kind, ""))
            mark = "▸ " if e.path == current else "  "
            name = shortened_middle(terminal_safe(e.name.removesuffix(".gguf")), width - 2)
            detail = shortened(terminal_safe(e.detail), width - 10)
            prompt = Content.assemble(mark, (name, "bold" if e.path == current else ""), "\n  ",
                                      badge, (detail, "$text-muted" if e.usable else "$error"))
            self.add_option(Option(prompt, id=e.path, disabled=not e.usable))
        ids = [e.path for e in entries]
        if highlighted in ids:
            self.highlighted = ids.index(highlighted)
        self.border_subtitle = f"{len(entries)} found" if entries else "none found"
