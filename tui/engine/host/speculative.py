"""Drafters for speculative decoding: a small model with the target's vocabulary, or prompt
lookup (the tokens that followed the latest n-gram the last time it occurred).

A drafter proposes up to `max_n` tokens that continue `context` (every token of the reply so
far, the target's last pick included) together with the distribution each was drawn from; the
target checks them all in one batch (`generate.ChatSession`). The draft model keeps its own KV
cache of the context and re-syncs it at the start of every round by keeping the longest common
prefix, so after a rejection it drops what the target did not keep and the two caches never
drift apart.
"""
# pyright: reportArgumentType=false, reportAttributeAccessIssue=false, reportOptionalMemberAccess=false
# (C bindings through ctypes: handles travel as plain ints and the stubs do not say so)

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import llama_cpp as L
import numpy as np

from tui.engine.host.batches import decode_last
from tui.engine.host.runtime import LoadedModel
from tui.engine.host.sampling import Dist, TokenPicker, confidence

VOCAB_SIZE_SLACK = 128
"""Vocabularies may differ in size by this much (padding tokens at the end, as between Qwen2.5
sizes), as llama.cpp allows; every id both have must be the same token."""
VOCAB_CHECK_FROM = 5
"""llama.cpp skips the first few ids (control tokens some conversions rename) when comparing."""
LOOKUP_NGRAM = (4, 3, 2)
"""Prompt lookup tries the longest n-gram first: a 4-token match predicts better than a 2."""


class DraftRefused(Exception):
    """The draft model cannot serve this target; the message says why, for the user."""


@dataclass
class Draft:
    tokens: list[int] = field(default_factory=list)
    dists: list[Dist] = field(default_factory=list)


def logits_row(ctx: int, index: int, n_vocab: int) -> np.ndarray:
    return np.ctypeslib.as_array(L.llama_get_logits_ith(ctx, index), shape=(n_vocab,))


def _text(vocab: int, token: int) -> bytes:
    raw = L.llama_vocab_get_text(vocab, token)
    return raw or b""


def check_vocab(target: LoadedModel, draft: LoadedModel) -> None:
    """Refuse a draft whose tokens are not the target's: same tokenizer type, sizes within the
    padding slack, the same special tokens and the same text for every id both have."""
    tv, dv = target.vocab, draft.vocab
    name = os.path.basename(draft.settings.model_path)
    if L.llama_vocab_type(tv) != L.llama_vocab_type(dv):
        raise DraftRefused(f"The draft {name}'s vocabulary is not the target's: it uses another kind "
                           "of tokenizer. A draft must come from the same model family")
    nt, nd = L.llama_vocab_n_tokens(tv), L.llama_vocab_n_tokens(dv)
    if abs(nt - nd) > VOCAB_SIZE_SLACK:
        raise DraftRefused(f"The draft {name}'s vocabulary is not the target's: {nd:,} tokens against "
                           f"{nt:,}. A draft must come from the same model family")
    for what, fn in (("beginning-of-text", L.llama_vocab_bos), ("end-of-text", L.llama_vocab_eos)):
        if fn(tv) != fn(dv):
            raise DraftRefused(f"The draft {name}'s vocabulary is not the target's: its {what} token is "
                               f"{fn(dv)}, the target's {fn(tv)}")
    for token in range(VOCAB_CHECK_FROM, min(nt, nd)):
        a, b = _text(tv, token), _text(dv, token)
        if a != b:
            raise DraftRefused(f"The draft {name}'s vocabulary is not the target's: token {token} is "
                               f"{b[:40]!r} in the draft and {a[:40]!r} in the target. A draft must "
                               "come from the same model family")


class ModelDrafter:
    """Proposes tokens with a draft model, stopping early when it is unsure (p_min)."""

    kind = "model"

    def __init__(self, model: LoadedModel, target_vocab_size: int, p_min: float):
        self.lm = model
        self.p_min = p_min
        self.n_vocab = min(int(L.llama_vocab_n_tokens(model.vocab)), target_vocab_size)
        self.cached: list[int] = []

    def _decode(self, tokens: list[int]) -> None:
        rc = decode_last(self.lm.ctx, tokens)
        if rc != 0:
            self.reset()
            raise RuntimeError(f"the draft model's llama_decode failed with code {rc}")
        self.cached.extend(tokens)

    def reset(self) -> None:
        L.llama_memory_clear(L.llama_get_memory(self.lm.ctx), True)
        self.cached = []

    def _sync(self, context: Sequence[int], cancelled: threading.Event) -> bool:
        """Make the draft's cache hold `context` (logits ready for its last token); False when
        cancelled on the way."""
        common = 0
        for a, b in zip(self.cached, context, strict=False):
            if a != b:
                break
            common += 1
        common = min(common, len(context) - 1)
        if common <= 0:
            self.reset()
        elif common < len(self.cached):
            if not L.llama_memory_seq_rm(L.llama_get_memory(self.lm.ctx), 0, common, -1):
                self.reset()
                common = 0
            else:
                self.cached = self.cached[:common]
        pending = list(context[common:])
        n_batch = max(1, int(L.llama_n_batch(self.lm.ctx)))
        for i in range(0, len(pending), n_batch):
            if cancelled.is_set():
                return False
            self._decode(pending[i:i + n_batch])
        return True

    def propose(self, context: Sequence[int], generated: Sequence[int], max_n: int,
                picker: TokenPicker, cancelled: threading.Event) -> Draft:
        draft = Draft()
        room = self.lm.n_ctx() - len(context)
        max_n = min(max_n, room)
        if max_n <= 0 or max(context, default=0) >= self.n_vocab:
            return draft
        if not self._sync(context, cancelled):
            return draft
        history = list(generated)
        for i in range(max_n):
            if cancelled.is_set():
                break
            logits = logits_row(self.lm.ctx, -1, self.n_vocab)
            dist = picker.distribution(logits, history)
            token = dist.draw(picker.rng)
            if confidence(logits, token) < self.p_min:
                break
            draft.tokens.append(token)
            draft.dists.append(dist)
            history.append(token)
            if i + 1 < max_n:
                self._decode([token])
        return draft


class LookupDrafter:
    """Prompt lookup: no model, the conversation itself predicts (code edits, quoting, copying).

    The proposal is one-hot (q = 1 for the looked-up token), so the target accepts each with its
    own probability of that token: the output distribution is still the target's."""

    kind = "lookup"

    def __init__(self) -> None:
        self.cached: list[int] = []
        self.cap = 0
        """How many tokens to propose next: a lookup has no probability to stop on, so the length
        adapts to what the target kept (doubling after a round kept whole, else what was kept
        plus one), since each checked token costs a share of a step on CPU layers."""

    def reset(self) -> None:
        self.cached = []

    def feedback(self, drafted: int, accepted: int) -> None:
        if drafted:
            self.cap = max(1, self.cap * 2 if accepted == drafted else accepted + 1)

    def propose(self, context: Sequence[int], generated: Sequence[int], max_n: int,
                picker: TokenPicker, cancelled: threading.Event) -> Draft:
        draft = Draft()
        tokens = list(context)
        self.cap = min(self.cap or max_n, max_n)
        max_n = self.cap
        for n in LOOKUP_NGRAM:
            if len(tokens) <= n:
                continue
            tail = tokens[-n:]
            # the latest earlier occurrence of the last n tokens, with something after it
            for start in range(len(tokens) - n - 1, -1, -1):
                if tokens[start:start + n] == tail:
                    follow = tokens[start + n:start + n + max_n]
                    draft.tokens = follow
                    draft.dists = [Dist.one_hot(t) for t in follow]
                    return draft
        return draft
