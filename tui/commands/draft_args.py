"""The speculative-decoding options every command shares, named as llama-server names them."""

from __future__ import annotations

import argparse
import os
from typing import Any

from tui.engine.settings import ALL_LAYERS, KV_TYPES, LoadSettings
from tui.fit.budget import MemoryBudget
from tui.models.gguf_info import GgufError
from tui.models.vocab import draft_vocab_problem
from tui.units import format_bytes


def add_draft_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("speculative decoding")
    g.add_argument("--draft", "-md", metavar="FILE", default="",
                   help="a small model with the same vocabulary that drafts tokens for the target")
    g.add_argument("--draft-lookup", action="store_true",
                   help="draft from the conversation itself (prompt lookup), no model")
    g.add_argument("--draft-ngl", "-ngld", type=int, default=ALL_LAYERS,
                   help="the draft's GPU layers (-1 = all, default)")
    g.add_argument("--draft-ctx", "-cd", type=int, default=0, help="the draft's context (0 = the target's)")
    g.add_argument("--draft-kv", choices=KV_TYPES, default="f16", help="the draft's KV cache type")
    g.add_argument("--draft-max", type=int, default=16, help="most tokens drafted per round (16)")
    g.add_argument("--draft-min", type=int, default=0, help="a shorter draft is not checked (0)")
    g.add_argument("--draft-p-min", type=float, default=0.75,
                   help="stop drafting below this draft probability (0.75)")


def draft_changes(args: argparse.Namespace) -> dict[str, Any]:
    """LoadSettings fields for the draft options given (none when no draft is asked for)."""
    if not args.draft and not args.draft_lookup:
        return {}
    return {"draft_model_path": args.draft, "draft_lookup": args.draft_lookup,
            "draft_n_gpu_layers": args.draft_ngl, "draft_n_ctx": args.draft_ctx,
            "draft_type_k": args.draft_kv, "draft_type_v": args.draft_kv,
            "draft_max": args.draft_max, "draft_min": args.draft_min, "draft_p_min": args.draft_p_min}


def draft_problem(settings: LoadSettings, budget: MemoryBudget) -> str | None:
    """Why the draft model of `settings` should not be loaded at all, checked before any load:
    its file missing or unreadable, a vocabulary that is not the target's (from the headers), or
    weights larger than this machine's free RAM and VRAM together (a 42 GiB draft reached 15.9 GB
    of memory before its out-of-memory error)."""
    path = settings.draft_model_path
    if not path:
        return None
    try:
        problem = draft_vocab_problem(settings.model_path, path)
        size = os.path.getsize(path)
    except (GgufError, OSError) as exc:
        return f"the draft model: {exc}"
    if problem:
        return problem
    room = (budget.host or 0) + sum(g or 0 for g in budget.gpus)
    if budget.host is not None and size > room:
        return (f"the draft model {os.path.basename(path)} is {format_bytes(size)}, more than this machine's "
                f"free RAM and VRAM together ({format_bytes(room)}): a draft is a small model of the same "
                "family (Llama-3.2-1B for Llama-3.1-70B)")
    return None
