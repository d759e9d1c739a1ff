"""One line saying what the engine is doing, and any warning that matters now."""

from __future__ import annotations

from textual.content import Content
from textual.reactive import reactive
from textual.widgets import Static

from tui.engine.status import EngineStatus, Phase
from tui.units import shortened

_DOT = {Phase.READY: "bold $success", Phase.LOADING: "bold $warning",
        Phase.FAILED: "bold $error", Phase.CRASHED: "bold $error"}


def prompt_progress_text(done: int, total: int, tokens_per_s: float) -> str:
    left = (total - done) / tokens_per_s if tokens_per_s > 0 else 0.0
    eta = f", about {left:.0f} s left" if tokens_per_s > 0 else ""
    return f"reading the prompt: {done:,} of {total:,} tokens ({done / total:.0%}){eta}"


class StatusBar(Static):
    DEFAULT_CSS = """
    StatusBar { height: auto; max-height: 4; padding: 0 1; background: $panel; }
    """

    status: reactive[EngineStatus] = reactive(EngineStatus, layout=True)
    warning: reactive[str] = reactive("", layout=True)
    context_used: reactive[int] = reactive(0)
    prompt_progress: reactive[tuple[int, int, float] | None] = reactive(None)

    def render(self) -> Content:
        s = self.status
        parts: list[str | tuple[str, str]] = [("● ", _DOT.get(s.phase, "bold"))]
        if s.phase is Phase.READY and s.facts:
            f = s.facts
            figures = [f"  ·  {f.layers_offloaded}/{f.layers_total} layers on GPU",
                       f"  ·  ctx {self.context_used:,}/{f.n_ctx:,}"]
            full = [("  almost full", "bold $warning")] if f.n_ctx and self.context_used > 0.9 * f.n_ctx else []
            # the figures are what changes; on a narrow terminal the name gives way, not them
            room = self.content_size.width - 2 - sum(len(x) for x in figures) - sum(len(t) for t, _ in full)
            parts += [(shortened(f"{f.name} {f.quant}", max(room, 12)), "bold"), *figures, *full]
            if self.prompt_progress:
                parts.append(("\n" + prompt_progress_text(*self.prompt_progress), "$accent"))
        elif s.phase is Phase.LOADING:
            parts.append(f"loading model… {s.progress:.0%}")
        elif s.phase in (Phase.FAILED, Phase.CRASHED):
            parts += [(f"{s.phase.value}: ", "bold $error"), s.message]
        else:
            parts.append(s.message or "no model loaded: F4 opens the Tuner to load one")
        if self.warning:
            parts.append(("\n⚠ " + self.warning, "bold $warning"))
        return Content.assemble(*parts)
