"""What is loaded and what it cost: layers, context, KV type, measured memory, load time."""

from __future__ import annotations

from textual.content import Content
from textual.reactive import reactive
from textual.widgets import Static

from tui.engine.protocol import ModelFacts
from tui.units import format_bytes


def describe_facts(f: ModelFacts) -> list[str]:
    vram = ", ".join(f"GPU{i} {format_bytes(b)}" for i, b in enumerate(f.vram_bytes_per_gpu)) or "n/a"
    return [
        f"{f.name}  ({f.architecture}, {f.n_params / 1e9:.2f} B params, {f.quant}, "
        f"{format_bytes(f.size_bytes)})",
        f"layers on GPU {f.layers_offloaded}/{f.layers_total}  ·  context {f.n_ctx:,} "
        f"(trained {f.n_ctx_train:,})  ·  KV {f.kv_type_k}/{f.kv_type_v}  ·  flash-attn {f.flash_attn}",
        f"measured VRAM {vram}  ·  RSS {format_bytes(f.rss_bytes)}  ·  loaded in {f.load_seconds:.2f} s",
    ]


class ModelCard(Static):
    DEFAULT_CSS = """
    ModelCard { border: round $accent; padding: 0 1; height: auto; }
    """

    facts: reactive[ModelFacts | None] = reactive(None)
    note: reactive[str] = reactive("")

    def on_mount(self) -> None:
        self.border_title = "Model"

    def render(self) -> Content:
        lines = describe_facts(self.facts) if self.facts else ["no model loaded"]
        if self.note:
            lines.append(self.note)
        return Content("\n".join(lines))
