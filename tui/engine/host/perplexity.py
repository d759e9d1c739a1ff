"""Perplexity of the loaded model on a text, the way llama.cpp's `llama-perplexity` counts it:
non-overlapping chunks of the context; in each, the second half of the tokens is scored (each
predicted from everything before it in the chunk)."""
# pyright: reportArgumentType=false, reportAttributeAccessIssue=false, reportOptionalMemberAccess=false
# (C bindings through ctypes: handles travel as plain ints and the stubs do not say so)

from __future__ import annotations

import threading

import llama_cpp as L
import numpy as np

from tui.engine.host.batches import fill_batch
from tui.engine.host.generate import tokenize
from tui.engine.host.runtime import LoadedModel


def perplexity(lm: LoadedModel, text: str, chunk: int, cancelled: threading.Event) -> tuple[float, int]:
    """(perplexity, tokens scored). Raises ValueError when the text is too short for one chunk."""
    ctx, vocab = lm.ctx, lm.vocab
    tokens = tokenize(vocab, text, True)
    chunk = max(32, min(chunk, lm.n_ctx()))
    n_vocab = L.llama_vocab_n_tokens(vocab)
    n_batch = max(1, int(L.llama_n_batch(ctx)))
    if len(tokens) < chunk:
        chunk = len(tokens)
    if chunk < 32:
        raise ValueError(f"the text is {len(tokens)} tokens; perplexity needs at least 32")
    nll, count = 0.0, 0
    batch = L.llama_batch_init(n_batch, 0, 1)
    try:
        for start in range(0, len(tokens) - chunk + 1, chunk):
            if cancelled.is_set():
                break
            piece = tokens[start:start + chunk]
            L.llama_memory_clear(L.llama_get_memory(ctx), True)
            logits = np.empty((len(piece), n_vocab), dtype=np.float32)
            for b in range(0, len(piece), n_batch):
                part = piece[b:b + n_batch]
                fill_batch(batch, part, b)
                rc = L.llama_decode(ctx, batch)
                if rc != 0:
                    raise RuntimeError(f"llama_decode failed with code {rc}")
                out = np.ctypeslib.as_array(L.llama_get_logits(ctx), shape=(len(part) * n_vocab,))
                logits[b:b + len(part)] = out.reshape(len(part), n_vocab)
            first = len(piece) // 2
            rows = logits[first:len(piece) - 1].astype(np.float64)
            targets = np.asarray(piece[first + 1:])
            top = rows.max(axis=1, keepdims=True)
            log_norm = np.log(np.exp(rows - top).sum(axis=1)) + top[:, 0]
            nll += float((log_norm - rows[np.arange(len(targets)), targets]).sum())
            count += len(targets)
    finally:
        L.llama_batch_free(batch)
        L.llama_memory_clear(L.llama_get_memory(ctx), True)
    if count == 0:
        raise ValueError("stopped before any chunk was scored")
    return float(np.exp(nll / count)), count
