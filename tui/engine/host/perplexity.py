"""Perplexity of the loaded model on a text, counted as llama.cpp's `llama-perplexity` counts it
(see scored.py for which positions are scored)."""

from __future__ import annotations

import threading

import numpy as np

from tui.engine.host.generate import tokenize
from tui.engine.host.runtime import LoadedModel
from tui.engine.host.scored import chunk_size, log_softmax, scored_chunks


def perplexity(lm: LoadedModel, text: str, chunk: int, cancelled: threading.Event) -> tuple[float, int]:
    """(perplexity, tokens scored). Raises ValueError when the text is too short for one chunk."""
    tokens = tokenize(lm.vocab, text, True)
    chunk = chunk_size(len(tokens), chunk, lm.n_ctx())
    nll, count = 0.0, 0
    for scored in scored_chunks(lm, tokens, chunk, cancelled):
        lp = log_softmax(scored.logits)
        nll -= float(lp[np.arange(len(scored.targets)), scored.targets].sum())
        count += len(scored.targets)
    if count == 0:
        raise ValueError("stopped before any chunk was scored")
    return float(np.exp(nll / count)), count
