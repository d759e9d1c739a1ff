"""The positions llama.cpp's `llama-perplexity` scores, and the model's logits there.

The text is cut into non-overlapping chunks of the context size; each chunk starts afresh (empty
cache, BOS in place of its first token when the model adds one), and only the second half of
its tokens is scored, each predicted from everything before it in the chunk. Logits are asked
for only at those positions.
"""
# pyright: reportArgumentType=false, reportAttributeAccessIssue=false, reportOptionalMemberAccess=false
# (C bindings through ctypes: handles travel as plain ints and the stubs do not say so)

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

import llama_cpp as L
import numpy as np

from tui.engine.host.batches import fill_batch
from tui.engine.host.runtime import LoadedModel

MIN_CHUNK = 32


@dataclass(frozen=True)
class ScoredChunk:
    logits: np.ndarray
    """float32 [scored, n_vocab]: the model's logits at each scored position."""
    targets: np.ndarray
    """int64 [scored]: the token that actually comes next at each."""


def chunk_size(tokens: int, wanted: int, n_ctx: int) -> int:
    """The chunk the text is cut into: `wanted`, within the context and the text.
    ValueError when the text is too short for one chunk."""
    chunk = min(max(MIN_CHUNK, wanted), n_ctx, tokens)
    if chunk < MIN_CHUNK:
        raise ValueError(f"the text is {tokens} tokens; scoring needs at least {MIN_CHUNK}")
    return chunk


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """float64 log-probabilities of each row of logits."""
    rows = logits.astype(np.float64)
    rows -= rows.max(axis=1, keepdims=True)
    rows -= np.log(np.exp(rows).sum(axis=1, keepdims=True))
    return rows


def scored_chunks(lm: LoadedModel, tokens: list[int], chunk: int,
                  cancelled: threading.Event) -> Iterator[ScoredChunk]:
    """One ScoredChunk per chunk of `tokens`, in order; stops early when `cancelled` is set."""
    ctx, vocab = lm.ctx, lm.vocab
    n_vocab = L.llama_vocab_n_tokens(vocab)
    n_batch = max(1, int(L.llama_n_batch(ctx)))
    bos = L.llama_vocab_bos(vocab) if L.llama_vocab_get_add_bos(vocab) else None
    first = chunk // 2
    batch = L.llama_batch_init(n_batch, 0, 1)
    try:
        for start in range(0, len(tokens) - chunk + 1, chunk):
            if cancelled.is_set():
                return
            piece = list(tokens[start:start + chunk])
            if bos is not None:
                piece[0] = int(bos)
            L.llama_memory_clear(L.llama_get_memory(ctx), True)
            rows: list[np.ndarray] = []
            for b in range(0, chunk, n_batch):
                part = piece[b:b + n_batch]
                fill_batch(batch, part, b, logits_from=first)
                rc = L.llama_decode(ctx, batch)
                if rc != 0:
                    raise RuntimeError(f"llama_decode failed with code {rc}")
                wanted = sum(1 for i in range(b, b + len(part)) if i >= first)
                if wanted:
                    out = np.ctypeslib.as_array(L.llama_get_logits(ctx), shape=(wanted * n_vocab,))
                    rows.append(out.reshape(wanted, n_vocab).copy())
            logits = np.concatenate(rows)[:chunk - 1 - first]  # the last position predicts past the chunk
            yield ScoredChunk(logits, np.asarray(tokens[start + first + 1:start + chunk], dtype=np.int64))
    finally:
        L.llama_batch_free(batch)
        L.llama_memory_clear(L.llama_get_memory(ctx), True)
