"""One chat request: template the messages, reuse the cached prefix, sample, stream pieces."""
# pyright: reportArgumentType=false, reportAttributeAccessIssue=false, reportOptionalMemberAccess=false
# pyright: reportCallIssue=false, reportReturnType=false
# (C bindings through ctypes: handles travel as plain ints and the stubs do not say so)

from __future__ import annotations

import codecs
import ctypes
import random
import threading
import time
from collections.abc import Callable, Sequence

import llama_cpp as L
from llama_cpp.llama_chat_format import Jinja2ChatFormatter

from tui.engine.host.runtime import LoadedModel
from tui.engine.protocol import ChatStats
from tui.engine.settings import SamplingSettings
from tui.engine.stop_strings import StopMatcher

CHATML = ("{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + "
          "'<|im_end|>\n' }}{% endfor %}{% if add_generation_prompt %}"
          "{{ '<|im_start|>assistant\n' }}{% endif %}")


class PromptTooLong(Exception):
    def __init__(self, n_prompt: int, n_ctx: int):
        self.n_prompt, self.n_ctx = n_prompt, n_ctx
        super().__init__(f"The conversation is {n_prompt} tokens but the context holds {n_ctx}. "
                         f"Drop the oldest turns or reload with a longer context.")


def token_text(vocab: int, token: int, special: bool) -> bytes:
    buf = ctypes.create_string_buffer(256)
    n = L.llama_token_to_piece(vocab, token, buf, len(buf), 0, special)
    if n < 0:
        buf = ctypes.create_string_buffer(-n)
        n = L.llama_token_to_piece(vocab, token, buf, len(buf), 0, special)
    return buf.raw[:n]


def tokenize(vocab: int, text: str, add_special: bool) -> list[int]:
    data = text.encode("utf-8")
    cap = len(data) + 16
    arr = (L.llama_token * cap)()
    n = L.llama_tokenize(vocab, data, len(data), arr, cap, add_special, True)
    if n < 0:
        cap = -n
        arr = (L.llama_token * cap)()
        n = L.llama_tokenize(vocab, data, len(data), arr, cap, add_special, True)
    return list(arr[:n])


class ChatSession:
    """Generation state for one loaded model: the tokens now in the KV cache, for prefix reuse."""

    def __init__(self, loaded: LoadedModel):
        self.lm = loaded
        self.cached: list[int] = []
        vocab = loaded.vocab
        self.bos_text = token_text(vocab, L.llama_vocab_bos(vocab), True).decode("utf-8", "replace")
        self.eos_text = token_text(vocab, L.llama_vocab_eos(vocab), True).decode("utf-8", "replace")
        template = loaded.chat_template() or CHATML
        self.formatter = Jinja2ChatFormatter(template, eos_token=self.eos_text, bos_token=self.bos_text)

    def prompt_tokens(self, messages: Sequence[dict[str, str]]) -> list[int]:
        prompt = self.formatter(messages=[dict(m) for m in messages]).prompt
        add_bos = bool(L.llama_vocab_get_add_bos(self.lm.vocab))
        if self.bos_text and prompt.startswith(self.bos_text):
            add_bos = False
        return tokenize(self.lm.vocab, prompt, add_bos)

    def _decode(self, tokens: list[int]) -> None:
        arr = (L.llama_token * len(tokens))(*tokens)
        rc = L.llama_decode(self.lm.ctx, L.llama_batch_get_one(arr, len(tokens)))
        if rc != 0:
            self.reset()
            raise RuntimeError(f"llama_decode failed with code {rc}")
        self.cached.extend(tokens)

    def reset(self) -> None:
        L.llama_memory_clear(L.llama_get_memory(self.lm.ctx), True)
        self.cached = []

    def _reuse_prefix(self, tokens: list[int]) -> int:
        """Keep the longest cached prefix of `tokens` in the KV cache; return its length."""
        common = 0
        for a, b in zip(self.cached, tokens, strict=False):
            if a != b:
                break
            common += 1
        common = min(common, len(tokens) - 1)  # always decode at least one token for logits
        if common <= 0:
            self.reset()
            return 0
        L.llama_memory_seq_rm(L.llama_get_memory(self.lm.ctx), 0, common, -1)
        self.cached = self.cached[:common]
        return common

    def _sampler(self, s: SamplingSettings) -> int:
        chain = L.llama_sampler_chain_init(L.llama_sampler_chain_default_params())
        add = lambda smpl: L.llama_sampler_chain_add(chain, smpl)  # noqa: E731
        if s.repeat_penalty != 1.0:
            add(L.llama_sampler_init_penalties(s.repeat_last_n, s.repeat_penalty, 0.0, 0.0))
        if s.temperature <= 0:
            add(L.llama_sampler_init_greedy())
            return chain
        if s.top_k > 0:
            add(L.llama_sampler_init_top_k(s.top_k))
        add(L.llama_sampler_init_top_p(s.top_p, 1))
        if s.min_p > 0:
            add(L.llama_sampler_init_min_p(s.min_p, 1))
        add(L.llama_sampler_init_temp(s.temperature))
        seed = s.seed if s.seed >= 0 else random.getrandbits(32)
        add(L.llama_sampler_init_dist(seed))
        return chain

    def run(self, messages: Sequence[dict[str, str]], sampling: SamplingSettings,
            cancelled: threading.Event, emit: Callable[[str, int], None],
            prompt_done: Callable[[int, float], None] = lambda n, tps: None,
            prompt_progress: Callable[[int, int, float], None] = lambda done, total, tps: None) -> ChatStats:
        started = time.perf_counter()
        ctx, vocab = self.lm.ctx, self.lm.vocab
        n_ctx = self.lm.n_ctx()
        tokens = self.prompt_tokens(messages)
        if len(tokens) >= n_ctx:
            raise PromptTooLong(len(tokens), n_ctx)
        L.llama_perf_context_reset(ctx)
        reused = self._reuse_prefix(tokens)
        n_batch = max(1, int(L.llama_n_batch(ctx)))
        pending = tokens[reused:]
        prompt_start = time.perf_counter()
        for i in range(0, len(pending), n_batch):
            if cancelled.is_set():
                return self._stats(started, None, 0, "cancelled", len(tokens))
            self._decode(pending[i:i + n_batch])
            done = min(len(pending), i + n_batch)
            if done < len(pending):  # a long prompt: say how far it is
                L.llama_synchronize(ctx)
                elapsed = time.perf_counter() - prompt_start
                prompt_progress(done, len(pending), done / elapsed if elapsed > 0 else 0.0)
        L.llama_synchronize(ctx)  # llama.cpp adds a decode's time to its counters here
        perf = L.llama_perf_context(ctx)
        prompt_done(len(pending), perf.n_p_eval / (perf.t_p_eval_ms / 1000) if perf.t_p_eval_ms > 0 else 0.0)

        chain = self._sampler(sampling)
        stops = StopMatcher(sampling.stop)
        utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        first_token_at: float | None = None
        generated = 0
        reason = "length"
        try:
            while generated < sampling.max_tokens:
                if cancelled.is_set():
                    reason = "cancelled"
                    break
                token = L.llama_sampler_sample(chain, ctx, -1)
                if first_token_at is None:
                    first_token_at = time.perf_counter()
                if L.llama_vocab_is_eog(vocab, token):
                    reason = "eos"
                    break
                generated += 1
                text, stopped = stops.feed(utf8.decode(token_text(vocab, token, False)))
                emit(text, 1)  # every token counts, even one whose text is still held back
                if stopped:
                    reason = "stop"
                    break
                if len(self.cached) >= n_ctx:
                    reason = "context"
                    break
                self._decode([token])
        finally:
            L.llama_sampler_free(chain)
        if reason != "stop":
            tail = stops.flush() + utf8.decode(b"", final=True)
            if tail:
                emit(tail, 0)
        return self._stats(started, first_token_at, generated, reason, len(tokens))

    def _stats(self, started: float, first: float | None, generated: int, reason: str,
               n_prompt: int) -> ChatStats:
        perf = L.llama_perf_context(self.lm.ctx)
        pp = perf.n_p_eval / (perf.t_p_eval_ms / 1000) if perf.t_p_eval_ms > 0 else 0.0
        tg = perf.n_eval / (perf.t_eval_ms / 1000) if perf.t_eval_ms > 0 else 0.0
        return ChatStats(
            prompt_tokens=n_prompt,
            generated_tokens=generated,
            time_to_first_token_s=round((first - started) if first else 0.0, 4),
            prompt_tokens_per_s=round(pp, 2),
            generation_tokens_per_s=round(tg, 2),
            stop_reason=reason,
            context_used=len(self.cached),
            n_ctx=self.lm.n_ctx(),
        )
