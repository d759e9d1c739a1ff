"""pp/tg like llama-bench: a prompt of random tokens in n_batch chunks, then single-token steps."""
# pyright: reportArgumentType=false, reportAttributeAccessIssue=false, reportOptionalMemberAccess=false
# (C bindings through ctypes: handles travel as plain ints and the stubs do not say so)

from __future__ import annotations

import random
import threading
import time

import llama_cpp as L

from tui.engine.host.batches import decode_last
from tui.engine.host.runtime import LoadedModel


def _decode(ctx: int, tokens: list[int]) -> None:
    rc = decode_last(ctx, tokens)
    if rc != 0:
        raise RuntimeError(f"llama_decode failed with code {rc}")


def _clear(ctx: int) -> None:
    L.llama_memory_clear(L.llama_get_memory(ctx), True)


def _prompt_pass(lm: LoadedModel, tokens: list[int]) -> float:
    ctx = lm.ctx
    _clear(ctx)
    n_batch = max(1, int(L.llama_n_batch(ctx)))
    start = time.perf_counter()
    for i in range(0, len(tokens), n_batch):
        _decode(ctx, tokens[i:i + n_batch])
    L.llama_synchronize(ctx)
    return time.perf_counter() - start


def _gen_pass(lm: LoadedModel, n_gen: int, rng: random.Random, n_vocab: int,
              cancelled: threading.Event, depth: int = 0) -> float:
    """Seconds for n_gen single-token steps after `depth` tokens already in the KV cache."""
    ctx = lm.ctx
    _clear(ctx)
    _decode(ctx, [L.llama_vocab_bos(lm.vocab)])
    n_batch = max(1, int(L.llama_n_batch(ctx)))
    for i in range(0, depth, n_batch):  # fill the context first (not timed)
        if cancelled.is_set():
            break
        _decode(ctx, [rng.randrange(n_vocab) for _ in range(min(n_batch, depth - i))])
    L.llama_synchronize(ctx)
    start = time.perf_counter()
    for _ in range(n_gen):
        if cancelled.is_set():
            break
        _decode(ctx, [rng.randrange(n_vocab)])
    L.llama_synchronize(ctx)
    return time.perf_counter() - start


def run_bench(lm: LoadedModel, n_prompt: int, n_gen: int, repetitions: int,
              cancelled: threading.Event) -> tuple[int, int, list[float], list[float]]:
    """tokens/s of each repetition for pp (n_prompt) and tg (n_gen), after one warm-up of each;
    n_prompt and n_gen as run (cut to what the context holds)."""
    n_ctx = lm.n_ctx()
    n_prompt = min(n_prompt, n_ctx - 1)
    n_gen = min(n_gen, n_ctx - 2)
    n_vocab = L.llama_vocab_n_tokens(lm.vocab)
    rng = random.Random(1234)
    prompt = [rng.randrange(n_vocab) for _ in range(n_prompt)]
    pp: list[float] = []
    tg: list[float] = []
    try:
        if n_prompt > 0:
            _prompt_pass(lm, prompt)  # warm-up
            for _ in range(repetitions):
                if cancelled.is_set():
                    break
                pp.append(n_prompt / _prompt_pass(lm, prompt))
        if n_gen > 0:
            _gen_pass(lm, min(n_gen, 16), rng, n_vocab, cancelled)  # warm-up
            for _ in range(repetitions):
                if cancelled.is_set():
                    break
                pp_t = _gen_pass(lm, n_gen, rng, n_vocab, cancelled)
                tg.append(n_gen / pp_t)
    finally:
        _clear(lm.ctx)
    return n_prompt, n_gen, pp, tg


def run_depth_bench(lm: LoadedModel, depths: list[int], n_gen: int, repetitions: int,
                    cancelled: threading.Event) -> list[tuple[int, list[float]]]:
    """tg tok/s of each repetition with each depth of context already filled (like llama-bench
    -d), the depths taken in turn each round so that a drift in the machine's speed falls on
    all of them; depths that do not fit the context are left out."""
    n_ctx = lm.n_ctx()
    n_vocab = L.llama_vocab_n_tokens(lm.vocab)
    rng = random.Random(99)
    runs: dict[int, list[float]] = {d: [] for d in depths if d + n_gen + 2 <= n_ctx}
    try:
        _gen_pass(lm, min(n_gen, 8), rng, n_vocab, cancelled)  # warm-up
        for _ in range(max(1, repetitions)):
            for depth in runs:
                if cancelled.is_set():
                    break
                runs[depth].append(n_gen / _gen_pass(lm, n_gen, rng, n_vocab, cancelled, depth))
    finally:
        _clear(lm.ctx)
    return [(d, r) for d, r in runs.items() if r]
