"""Edit the sampling settings and the system prompt: one field a line, checked before they apply."""

from __future__ import annotations

from dataclasses import replace

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, TextArea

from tui.engine.settings import SamplingSettings, SettingsError

FIELDS = (("temperature", "temperature", float), ("top_p", "top-p", float), ("top_k", "top-k", int),
          ("min_p", "min-p", float), ("repeat_penalty", "repeat penalty", float),
          ("max_tokens", "max tokens", int), ("seed", "seed (-1 random)", int))


def sampling_line(s: SamplingSettings) -> str:
    """The sampling settings in one short line (under the composer)."""
    seed = "random" if s.seed < 0 else str(s.seed)
    return (f"temp {s.temperature:g}  top-p {s.top_p:g}  top-k {s.top_k}  min-p {s.min_p:g}  "
            f"rep {s.repeat_penalty:g}  max {s.max_tokens}  seed {seed}")


class SamplingScreen(ModalScreen[tuple[SamplingSettings, str] | None]):
    """Dismisses with (sampling, system prompt), or None on Esc. Ctrl+S or Enter on a field saves."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel", id="sampling.close"),
                Binding("ctrl+s", "save", "Save", id="sampling.save")]

    def __init__(self, sampling: SamplingSettings, system_prompt: str) -> None:
        super().__init__(classes="ask")
        self.sampling, self.system_prompt = sampling, system_prompt

    def compose(self) -> ComposeResult:
        with Vertical(id="sampling-form"):
            yield Label("Sampling for this chat (Enter or Ctrl+S saves, Esc cancels)")
            for name, label, _ in FIELDS:
                with Horizontal(classes="field"):
                    yield Label(f"{label:<18}")
                    yield Input(str(getattr(self.sampling, name)), id=f"f-{name}", compact=True)
            yield Label("System prompt (Tab moves here; Ctrl+S saves)")
            yield TextArea(self.system_prompt, id="system-prompt", soft_wrap=True)
            yield Label("", id="sampling-errors", classes="hint")

    @on(Input.Submitted)
    def submitted(self) -> None:
        self.action_save()

    def action_save(self) -> None:
        values, problems = {}, {}
        for name, label, kind in FIELDS:
            text = self.query_one(f"#f-{name}", Input).value.strip()
            try:
                values[name] = kind(text)
            except ValueError:
                problems[label] = f"'{text}' is not a {'whole ' if kind is int else ''}number"
        if not problems:
            try:
                sampling = replace(self.sampling, **values).validated()
            except SettingsError as exc:
                problems = exc.problems
        if problems:
            self.query_one("#sampling-errors", Label).update(
                "\n".join(f"{k}: {v}" for k, v in problems.items()))
            return
        self.dismiss((sampling, self.query_one("#system-prompt", TextArea).text.strip()))
