"""Pick the next token from a model's logits, and speculative sampling's accept/resample rule.

One implementation for every path: a reply without a draft, the draft model proposing tokens and
the target checking them all go through `TokenPicker.distribution`, so the sampler settings
(repeat penalty, top-k, top-p, min-p, temperature) are applied the same way everywhere. The
steps and their order are llama.cpp's (penalties, top-k, top-p, min-p, temperature, then a draw
from the softmax); greedy decoding (temperature 0) keeps the penalised argmax.

`verify` is the rule of Leviathan et al. and Chen et al. (2023): accept a drafted token x with
probability min(1, p(x) / q(x)), else draw from max(0, p - q) normalised. The tokens that come
out follow the target's distribution p whatever the draft's q is, one-hot drafts (greedy or
prompt lookup) included; with a greedy target it reduces to "accept while the draft matches the
target's argmax".
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tui.engine.settings import SamplingSettings


@dataclass(frozen=True)
class Dist:
    """A distribution over token ids: the candidates left after the sampler's filters and their
    probabilities (summing to 1)."""

    ids: np.ndarray
    probs: np.ndarray

    def prob(self, token: int) -> float:
        hit = np.flatnonzero(self.ids == token)
        return float(self.probs[hit[0]]) if hit.size else 0.0

    def draw(self, rng: random.Random) -> int:
        if self.ids.size == 1:
            return int(self.ids[0])
        cumulative = np.cumsum(self.probs)
        i = int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"))
        return int(self.ids[min(i, self.ids.size - 1)])

    @classmethod
    def one_hot(cls, token: int) -> "Dist":
        return cls(np.array([token], dtype=np.int64), np.array([1.0]))


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


class TokenPicker:
    """The sampler settings of one request, as a function from logits to a distribution."""

    def __init__(self, s: SamplingSettings, rng: random.Random):
        self.s = s
        self.rng = rng

    @property
    def greedy(self) -> bool:
        return self.s.temperature <= 0

    def _penalised(self, logits: np.ndarray, history: Sequence[int]) -> np.ndarray:
        s = self.s
        if s.repeat_penalty == 1.0 or not history or s.repeat_last_n == 0:
            return logits
        recent = history if s.repeat_last_n < 0 else history[-s.repeat_last_n:]
        ids = np.unique(np.asarray(recent, dtype=np.int64))
        ids = ids[(ids >= 0) & (ids < logits.size)]
        out = np.array(logits, dtype=np.float32, copy=True)
        values = out[ids]
        out[ids] = np.where(values > 0, values / s.repeat_penalty, values * s.repeat_penalty)
        return out

    def distribution(self, logits: np.ndarray, history: Sequence[int] = ()) -> Dist:
        """The distribution the next token is drawn from, given the tokens generated so far in
        this reply (for the repeat penalty)."""
        s = self.s
        z = self._penalised(logits, history)
        if self.greedy:
            return Dist.one_hot(int(np.argmax(z)))
        if 0 < s.top_k < z.size:
            ids = np.argpartition(-z, s.top_k - 1)[:s.top_k]
        else:
            ids = np.arange(z.size)
        order = np.argsort(-z[ids], kind="stable")
        ids = ids[order].astype(np.int64)
        values = z[ids].astype(np.float64)
        if s.top_p < 1.0:
            cumulative = np.cumsum(_softmax(values))
            keep = int(np.searchsorted(cumulative, s.top_p, side="left")) + 1
            ids, values = ids[:keep], values[:keep]
        if s.min_p > 0 and ids.size > 1:
            keep_mask = values >= values[0] + np.log(s.min_p)
            ids, values = ids[keep_mask], values[keep_mask]
        return Dist(ids, _softmax(values / s.temperature))

    def pick(self, logits: np.ndarray, history: Sequence[int] = ()) -> int:
        return self.distribution(logits, history).draw(self.rng)


def verify(p: Dist, q: Dist, token: int, rng: random.Random) -> tuple[bool, int]:
    """Speculative sampling's rule for one drafted `token` (drawn from q): (True, token) when it
    is accepted, else (False, a token drawn from the residual max(0, p - q))."""
    p_x, q_x = p.prob(token), q.prob(token)
    if q_x <= 0:  # not drawn from q: cannot happen, but never accept on a division by zero
        return False, p.draw(rng)
    if p_x >= q_x or rng.random() < p_x / q_x:
        return True, token
    q_on_p = np.zeros(p.ids.size)
    _, in_p, in_q = np.intersect1d(p.ids, q.ids, assume_unique=True, return_indices=True)
    q_on_p[in_p] = q.probs[in_q]
    residual = np.maximum(p.probs - q_on_p, 0.0)
    if residual.sum() <= 0:
        return False, p.draw(rng)
    return False, Dist(p.ids, residual / residual.sum()).draw(rng)


def confidence(logits: np.ndarray, token: int) -> float:
    """The model's own probability of `token` (softmax of the raw logits): what --draft-p-min is
    compared with, whatever the temperature."""
    z = logits.astype(np.float64, copy=False)
    top = z.max()
    return float(np.exp(z[token] - top) / np.exp(z - top).sum())
