"""Feeding tokens to llama.cpp: the two ways the engine decodes."""
# pyright: reportArgumentType=false, reportAttributeAccessIssue=false
# (C bindings through ctypes: handles travel as plain ints and the stubs do not say so)

from __future__ import annotations

from collections.abc import Sequence

import llama_cpp as L


def decode_last(ctx: int, tokens: Sequence[int]) -> int:
    """Decode `tokens` after what the cache holds, with logits for the last one only (a prompt,
    a single step); llama.cpp's return code."""
    arr = (L.llama_token * len(tokens))(*tokens)
    return L.llama_decode(ctx, L.llama_batch_get_one(arr, len(tokens)))


def fill_batch(batch, tokens: Sequence[int], first_pos: int, logits_from: int = 0) -> None:
    """`batch` (from llama_batch_init) holds `tokens` at positions first_pos.., one sequence,
    with logits for every position from `logits_from` on."""
    for i, token in enumerate(tokens):
        batch.token[i] = token
        batch.pos[i] = first_pos + i
        batch.n_seq_id[i] = 1
        batch.seq_id[i][0] = 0
        batch.logits[i] = 1 if first_pos + i >= logits_from else 0
    batch.n_tokens = len(tokens)
