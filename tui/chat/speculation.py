"""Speculative decoding's figures in words: what was drafted, what was kept, against the target alone."""

from __future__ import annotations

import os

from tui.engine.protocol import ChatStats, ModelFacts
from tui.safe_text import terminal_safe
from tui.units import format_bytes


def reply_speculation(stats: ChatStats) -> str:
    """`draft 78% of 154 kept · 1.6× alone` for a reply that used a draft; "" otherwise."""
    if not stats.speculative:
        return ""
    what = "draft" if stats.speculative == "model" else "lookup"
    if not stats.drafted_tokens:
        return f"{what}: nothing drafted"
    text = f"{what} {stats.accepted_tokens / stats.drafted_tokens:.0%} of {stats.drafted_tokens} kept"
    alone = stats.target_alone_tokens_per_s
    if alone > 0 and stats.generation_tokens_per_s > 0:
        text += f" · {stats.generation_tokens_per_s / alone:.2f}× alone ({alone:.1f} tok/s)"
    return text


def draft_facts_line(f: ModelFacts) -> str:
    """What the engine drafts with, or why the draft asked for is not used; "" without one."""
    if f.draft_problem:
        return terminal_safe(f"draft not used: {f.draft_problem}")
    if f.speculative == "lookup":
        return "speculative decoding: prompt lookup (no draft model)"
    if f.speculative == "model":
        vram = sum(sum(d.values()) for d in f.draft_buffers.values())
        return terminal_safe(
            f"draft {os.path.basename(f.draft_path)} ({f.draft_quant}, {format_bytes(f.draft_size_bytes)})  ·  "
            f"layers on GPU {f.draft_layers_offloaded}/{f.draft_layers_total}  ·  context {f.draft_n_ctx:,}  ·  "
            f"buffers {format_bytes(vram)}")
    return ""
