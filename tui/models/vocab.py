"""Whether a draft model's vocabulary can be the target's, from the two GGUF headers alone.

The engine's check (tui/engine/host/speculative.py, check_vocab) compares every token's text
after both models load. `fit` and the size checks answer before anything loads, so this compares
what the headers hold: the tokenizer kind and pre-tokenizer, the number of tokens (within the
same padding slack) and the beginning- and end-of-text ids. A draft that passes here may still be
refused by the engine for one differing token; one refused here is refused there too.
"""

from __future__ import annotations

from pathlib import Path

from tui.models.gguf_info import ArrayInfo, GgufHeader, read_header

VOCAB_SIZE_SLACK = 128
"""Vocabularies padded to a multiple differ by up to this many unused ids (as the engine allows)."""


def _n_tokens(md: dict) -> int | None:
    tokens = md.get("tokenizer.ggml.tokens")
    if isinstance(tokens, ArrayInfo):
        return tokens.length
    return len(tokens) if isinstance(tokens, list) else None


def vocab_problem(target: GgufHeader, draft: GgufHeader) -> str | None:
    """Why `draft` cannot draft for `target` (a sentence), or None when the headers agree."""
    t, d = target.metadata, draft.metadata
    name = Path(draft.path).name
    for key, what in (("tokenizer.ggml.model", "kind of tokenizer"), ("tokenizer.ggml.pre", "pre-tokenizer")):
        if key in t and key in d and t[key] != d[key]:
            return (f"The draft {name}'s vocabulary is not the target's: its {what} is {str(d[key])[:40]!r}, "
                    f"the target's {str(t[key])[:40]!r}. A draft must come from the same model family")
    nt, nd = _n_tokens(t), _n_tokens(d)
    if nt is not None and nd is not None and abs(nt - nd) > VOCAB_SIZE_SLACK:
        return (f"The draft {name}'s vocabulary is not the target's: {nd:,} tokens against {nt:,}. "
                "A draft must come from the same model family")
    for key, what in (("tokenizer.ggml.bos_token_id", "beginning-of-text"),
                      ("tokenizer.ggml.eos_token_id", "end-of-text")):
        if key in t and key in d and t[key] != d[key]:
            return (f"The draft {name}'s vocabulary is not the target's: its {what} token is {d[key]}, "
                    f"the target's {t[key]}")
    return None


def draft_vocab_problem(target_path: str | Path, draft_path: str | Path) -> str | None:
    """vocab_problem() of two files (GgufError when either header cannot be read)."""
    return vocab_problem(read_header(target_path), read_header(draft_path))
