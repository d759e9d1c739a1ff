"""The speculative-decoding options every command shares, named as llama-server names them."""

from __future__ import annotations

import argparse
from typing import Any

from tui.engine.settings import ALL_LAYERS, KV_TYPES


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
