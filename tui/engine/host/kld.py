"""KL divergence against a reference model, as `llama-perplexity --kl-divergence` measures it: at
every scored position of the text, KL(reference || loaded model) of the next-token distributions.

llama.cpp stores the reference's whole vocabulary per position (16-bit, 100+ MB for a long
text). vramdeck stores, per position, the reference's 64 most likely tokens, the probability left
over, and 64 tokens drawn from that leftover ("tail") distribution with their log-probabilities:

    KL = sum over the top 64 of p·(log p - log q)  +  P_tail · E_{i ~ p_tail}[log p_i - log q_i]

The first part is exact; the second is estimated without bias by the drawn tokens (importance
sampling with the reference's own tail as the proposal). On the demo model's ladder, the top 64
alone came out 14-15 % under the exact figure (its flat tails hold that much of the divergence);
with the drawn tail the mean is within 0.5 % of it, for about 1 MB of reference. A model against
itself still scores exactly 0: every term is a difference of identical numbers.
"""
# pyright: reportArgumentType=false
# (C bindings through ctypes: handles travel as plain ints and the stubs do not say so)

from __future__ import annotations

import threading

import llama_cpp as L
import numpy as np

from tui.engine.host.generate import tokenize
from tui.engine.host.runtime import LoadedModel
from tui.engine.host.scored import chunk_size, log_softmax, scored_chunks

TINY = 1e-300
ROWS = 64
"""Rows turned into float64 log-probabilities at a time (a 128k vocabulary: 64 MB)."""
SEED = 20261203
"""The tail draws are the same every time the same reference is run."""


class OtherVocabulary(ValueError):
    """The loaded model does not read the text as the reference did."""


def _top(lp: np.ndarray, k: int) -> np.ndarray:
    """The k most likely ids of each row, most likely first (the lower id first on a tie)."""
    part = np.argpartition(-lp, k - 1, axis=1)[:, :k]
    part_lp = np.take_along_axis(lp, part, axis=1)
    order = np.lexsort((part, -part_lp), axis=1)
    return np.take_along_axis(part, order, axis=1)


def _draw_tail(lp: np.ndarray, top_ids: np.ndarray, m: int, rng: np.random.Generator) -> np.ndarray:
    """m ids per row drawn from the row's distribution outside its top ids (the top id where
    nothing is left outside it)."""
    out = np.empty((len(lp), m), dtype=np.int64)
    for r in range(len(lp)):
        p = np.exp(lp[r])
        p[top_ids[r]] = 0.0
        cdf = np.cumsum(p)
        if cdf[-1] <= 0.0:
            out[r] = top_ids[r, 0]
            continue
        out[r] = np.minimum(np.searchsorted(cdf, rng.random(m) * cdf[-1], side="right"), len(p) - 1)
    return out


def top_k(lm: LoadedModel, text: str, chunk: int, k: int, m: int,
          cancelled: threading.Event) -> dict[str, np.ndarray | int]:
    """The loaded model as a reference: tokens, ids and logprobs (top k), rest_logp, tail_ids and
    tail_logprobs (m draws), nll, n_vocab, chunk."""
    tokens = tokenize(lm.vocab, text, True)
    chunk = chunk_size(len(tokens), chunk, lm.n_ctx())
    rng = np.random.default_rng(SEED)
    parts: dict[str, list[np.ndarray]] = {"ids": [], "logprobs": [], "rest_logp": [], "tail_ids": [],
                                          "tail_logprobs": [], "nll": []}
    n_vocab = 0
    for scored in scored_chunks(lm, tokens, chunk, cancelled):
        n_vocab = scored.logits.shape[1]
        kk = min(k, n_vocab)
        for r in range(0, len(scored.targets), ROWS):
            lp = log_softmax(scored.logits[r:r + ROWS])
            targets = scored.targets[r:r + ROWS]
            ids = _top(lp, kk)
            top_lp = np.take_along_axis(lp, ids, axis=1)
            tail = _draw_tail(lp, ids, m, rng)
            parts["ids"].append(ids.astype(np.int32))
            parts["logprobs"].append(top_lp.astype(np.float32))
            parts["rest_logp"].append(np.log(np.maximum(1.0 - np.exp(top_lp).sum(axis=1), TINY)))
            parts["tail_ids"].append(tail.astype(np.int32))
            parts["tail_logprobs"].append(np.take_along_axis(lp, tail, axis=1).astype(np.float32))
            parts["nll"].append(-lp[np.arange(len(targets)), targets])
    if not parts["ids"]:
        raise ValueError("stopped before any chunk was scored")
    return {"tokens": np.asarray(tokens, dtype=np.int32), "n_vocab": n_vocab, "chunk": chunk,
            **{name: np.concatenate(values) for name, values in parts.items()}}


def kl_divergence(lm: LoadedModel, text: str, ref: dict[str, np.ndarray], n_vocab: int, chunk: int,
                  cancelled: threading.Event) -> dict[str, np.ndarray]:
    """Per scored position: kld, nll (of the actual next token) and same_top (1 when the loaded
    model's most likely token is the reference's). `ref` holds the reference's tokens, ids,
    logprobs, rest_logp, tail_ids and tail_logprobs. OtherVocabulary when the loaded model has
    another vocabulary or reads the text into other tokens."""
    own = tokenize(lm.vocab, text, True)
    mine = int(L.llama_vocab_n_tokens(lm.vocab))
    if mine != n_vocab or len(own) != len(ref["tokens"]) or np.any(np.asarray(own) != ref["tokens"]):
        raise OtherVocabulary(
            f"this model reads the text differently from the reference (a vocabulary of {mine:,} tokens "
            f"against {n_vocab:,}{', other tokens' if mine == n_vocab else ''}): KL divergence compares "
            f"quants of the same model")
    if lm.n_ctx() < chunk:
        raise ValueError(f"the context ({lm.n_ctx():,}) is shorter than the reference's chunks ({chunk})")
    chunk = chunk_size(len(own), chunk, lm.n_ctx())
    p_top = np.exp(ref["logprobs"].astype(np.float64))
    p_rest = np.exp(ref["rest_logp"])
    kld, nll, same = [], [], []
    at = 0
    for scored in scored_chunks(lm, own, chunk, cancelled):
        for r in range(0, len(scored.targets), ROWS):
            lp = log_softmax(scored.logits[r:r + ROWS])
            targets = scored.targets[r:r + ROWS]
            rows = slice(at, at + len(targets))
            at += len(targets)
            if at > len(p_rest):
                raise ValueError("the text has more scored positions than the reference")
            q_top = np.take_along_axis(lp, ref["ids"][rows], axis=1).astype(np.float32)
            q_tail = np.take_along_axis(lp, ref["tail_ids"][rows], axis=1).astype(np.float32)
            top = (p_top[rows] * (ref["logprobs"][rows] - q_top)).sum(axis=1)
            tail = p_rest[rows] * (ref["tail_logprobs"][rows] - q_tail).astype(np.float64).mean(axis=1)
            kld.append(top + tail)
            nll.append(-lp[np.arange(len(targets)), targets])
            same.append((lp.argmax(axis=1) == ref["ids"][rows, 0]).astype(np.uint8))
    if not kld or at != len(p_rest):
        raise ValueError("stopped before every chunk was scored")
    return {"kld": np.concatenate(kld), "nll": np.concatenate(nll), "same_top": np.concatenate(same)}
