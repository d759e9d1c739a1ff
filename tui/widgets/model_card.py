"""What is loaded and what it cost: layers, context, KV type, measured memory, load time."""

from __future__ import annotations

from textual.content import Content
from textual.reactive import reactive
from textual.widgets import Static

from tui.chat.speculation import draft_facts_line, reply_speculation
from tui.engine.protocol import ChatStats, ModelFacts
from tui.units import format_bytes, format_params


def describe_facts(f: ModelFacts) -> list[str]:
    vram = ", ".join(f"GPU{i} {format_bytes(b)}" for i, b in enumerate(f.vram_bytes_per_gpu)) or "n/a"
    return [
        f"{f.name}  ({f.architecture}, {format_params(f.n_params)} params, {f.quant}, "
        f"{format_bytes(f.size_bytes)})",
        f"layers on GPU {f.layers_offloaded}/{f.layers_total}  ·  context {f.n_ctx:,} "
        f"(trained {f.n_ctx_train:,})  ·  KV {f.kv_type_k}/{f.kv_type_v}  ·  flash-attn {f.flash_attn}",
        f"measured VRAM {vram}  ·  RSS {format_bytes(f.rss_bytes)}  ·  loaded in {f.load_seconds:.2f} s",
        *([draft] if (draft := draft_facts_line(f)) else []),
    ]


def kv_bytes(f: ModelFacts) -> int:
    return sum(f.buffers.get("kv", {}).values())


class ModelCard(Static):
    DEFAULT_CSS = """
    ModelCard { border: round $accent; padding: 0 1; height: auto; }
    """

    facts: reactive[ModelFacts | None] = reactive(None, layout=True)
    context_used: reactive[int] = reactive(0)
    last_stats: reactive[ChatStats | None] = reactive(None)
    live_tokens_per_s: reactive[float] = reactive(0.0)
    live_prompt_tokens_per_s: reactive[float] = reactive(0.0)
    resident: reactive[tuple[int | None, int | None]] = reactive((None, None))
    """(bytes of the model file resident in RAM, file size)."""

    def on_mount(self) -> None:
        self.border_title = "Model"

    def render(self) -> Content:
        f = self.facts
        if f is None:
            return Content("no model loaded")
        lines = describe_facts(f)
        kv = kv_bytes(f)
        lines.append(f"KV cache {format_bytes(kv) if kv else 'n/a'} ({f.kv_type_k}/{f.kv_type_v})  ·  "
                     f"context used {self.context_used:,} / {f.n_ctx:,}")
        resident, size = self.resident
        if resident is not None and size:
            lines.append(f"model file in RAM (page cache) {format_bytes(resident)} of "
                         f"{format_bytes(size)} ({resident / size:.0%})")
        s = self.last_stats
        speed = (f"last reply: prompt {s.prompt_tokens_per_s:.0f} tok/s, generation "
                 f"{s.generation_tokens_per_s:.1f} tok/s" if s else "last reply: -")
        if s and s.speculative:
            speed += f"  ·  {reply_speculation(s)}"
        if self.live_tokens_per_s or self.live_prompt_tokens_per_s:
            speed += (f"  ·  now: prompt {self.live_prompt_tokens_per_s:.0f} tok/s, generation "
                      f"{self.live_tokens_per_s:.1f} tok/s")
        lines.append(speed)
        return Content("\n".join(lines))
