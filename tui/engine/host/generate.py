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
from dataclasses import dataclass

import llama_cpp as L

from tui.engine.host.batches import decode_last, fill_batch
from tui.engine.host.chat_template import BoundedChatTemplate, TemplateStopped
from tui.engine.host.runtime import LoadedModel
from tui.engine.host.sampling import TokenPicker, verify
from tui.engine.host.speculative import Draft, LookupDrafter, ModelDrafter, logits_row
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


@dataclass
class SpeculationCounts:
    """What speculation did during one reply: rounds that checked a draft, tokens drafted and
    accepted, and the time of the rounds without a draft (one target step each)."""

    rounds: int = 0
    drafted: int = 0
    accepted: int = 0
    plain_steps: int = 0
    plain_seconds: float = 0.0


class ChatSession:
    """Generation state for one loaded model: the tokens now in the KV cache, for prefix reuse,
    and the drafter when speculative decoding is on."""

    def __init__(self, loaded: LoadedModel, drafter: ModelDrafter | LookupDrafter | None = None):
        self.lm = loaded
        self.drafter = drafter
        s = loaded.settings
        self.draft_max, self.draft_min = s.draft_max, s.draft_min
        self.cached: list[int] = []
        self.generated: list[int] = []
        """The tokens of the latest reply."""
        self.forced_acceptance: float | None = None
        """For benchmarks only: accept each drafted token with this probability, whatever the
        target says (to measure the speed at a given acceptance rate)."""
        self.n_vocab = int(L.llama_vocab_n_tokens(loaded.vocab))
        vocab = loaded.vocab
        self.bos_text = token_text(vocab, L.llama_vocab_bos(vocab), True).decode("utf-8", "replace")
        self.eos_text = token_text(vocab, L.llama_vocab_eos(vocab), True).decode("utf-8", "replace")
        template = loaded.chat_template() or CHATML
        self.template = BoundedChatTemplate(template, eos_token=self.eos_text, bos_token=self.bos_text)

    def prompt_tokens(self, messages: Sequence[dict[str, str]],
                      cancelled: threading.Event | None = None) -> list[int]:
        prompt = self.template.render(messages, cancelled)
        add_bos = bool(L.llama_vocab_get_add_bos(self.lm.vocab))
        if self.bos_text and prompt.startswith(self.bos_text):
            add_bos = False
        return tokenize(self.lm.vocab, prompt, add_bos)

    def _decode(self, tokens: list[int]) -> None:
        rc = decode_last(self.lm.ctx, tokens)
        if rc != 0:
            self.reset()
            raise RuntimeError(f"llama_decode failed with code {rc}")
        self.cached.extend(tokens)

    def _decode_all_logits(self, tokens: list[int]) -> None:
        """Decode `tokens` after the cache with logits for every one of them (to check a draft)."""
        batch = L.llama_batch_init(len(tokens), 0, 1)
        try:
            fill_batch(batch, tokens, len(self.cached))
            rc = L.llama_decode(self.lm.ctx, batch)
        finally:
            L.llama_batch_free(batch)
        if rc != 0:
            self.reset()
            raise RuntimeError(f"llama_decode failed with code {rc}")
        self.cached.extend(tokens)

    def _keep(self, n: int) -> None:
        """Drop every cached token from position n on (draft tokens the target did not keep)."""
        if n < len(self.cached):
            if not L.llama_memory_seq_rm(L.llama_get_memory(self.lm.ctx), 0, n, -1):
                raise RuntimeError("this model's cache cannot drop tokens, so it cannot check drafts "
                                   "(recurrent models): turn speculative decoding off")
            self.cached = self.cached[:n]

    def reset(self) -> None:
        L.llama_memory_clear(L.llama_get_memory(self.lm.ctx), True)
        self.cached = []
        if self.drafter is not None:
            self.drafter.reset()

    def _reuse_prefix(self, tokens: list[int]) -> int:
        """Keep the longest cached prefix of `tokens` in the KV cache; return its length."""
        common = 0
        for a, b in zip(self.cached, tokens, strict=False):
            if a != b:
                break
            common += 1
        common = min(common, len(tokens) - 1)  # always decode at least one token for logits
        if common <= 0:
            L.llama_memory_clear(L.llama_get_memory(self.lm.ctx), True)
            self.cached = []
            return 0
        L.llama_memory_seq_rm(L.llama_get_memory(self.lm.ctx), 0, common, -1)
        self.cached = self.cached[:common]
        return common

    def _round(self, last: int, generated: list[int], room: int, picker: TokenPicker,
               cancelled: threading.Event, counts: SpeculationCounts) -> list[int]:
        """One step: draft up to `room` tokens after `last`, decode `last` and the draft in one
        batch, and return the tokens that come out (the accepted draft, then one the target drew
        itself). The cache then holds `last` and the draft tokens, kept or not; the caller trims
        it to what it keeps."""
        draft = Draft()
        if self.drafter is not None and room > 0:
            draft = self.drafter.propose(self.cached + [last], generated, min(room, self.draft_max),
                                         picker, cancelled)
            if len(draft.tokens) < max(1, self.draft_min):
                draft = Draft()
        started = time.perf_counter()
        self._decode_all_logits([last, *draft.tokens])
        out: list[int] = []
        rejected = False
        for j, token in enumerate(draft.tokens):
            p = picker.distribution(logits_row(self.lm.ctx, j, self.n_vocab), generated + out)
            if self.forced_acceptance is None:
                accepted, chosen = verify(p, draft.dists[j], token, picker.rng)
            else:
                accepted = picker.rng.random() < self.forced_acceptance
                chosen = token if accepted else p.draw(picker.rng)
            out.append(chosen)
            if not accepted:
                rejected = True
                break
        if not rejected:  # every draft token kept (or none drafted): the target draws one more
            out.append(picker.pick(logits_row(self.lm.ctx, len(draft.tokens), self.n_vocab),
                                   generated + out))
        if draft.tokens:
            feedback = getattr(self.drafter, "feedback", None)
            if feedback is not None:
                feedback(len(draft.tokens), len(out) - 1)
            counts.rounds += 1
            counts.drafted += len(draft.tokens)
            counts.accepted += len(out) - 1  # the last is the target's own draw
        else:
            counts.plain_steps += 1
            counts.plain_seconds += time.perf_counter() - started
        return out

    def run(self, messages: Sequence[dict[str, str]], sampling: SamplingSettings,
            cancelled: threading.Event, emit: Callable[[str, int], None],
            prompt_done: Callable[[int, float], None] = lambda n, tps: None,
            prompt_progress: Callable[[int, int, float], None] = lambda done, total, tps: None,
            ignore_eos: bool = False) -> ChatStats:
        started = time.perf_counter()
        ctx, vocab = self.lm.ctx, self.lm.vocab
        n_ctx = self.lm.n_ctx()
        try:
            tokens = self.prompt_tokens(messages, cancelled)
        except TemplateStopped:
            return self._stats(started, None, 0, "cancelled", 0, SpeculationCounts())
        if len(tokens) >= n_ctx:
            raise PromptTooLong(len(tokens), n_ctx)
        L.llama_perf_context_reset(ctx)
        reused = self._reuse_prefix(tokens)
        n_batch = max(1, int(L.llama_n_batch(ctx)))
        pending = tokens[reused:]
        prompt_start = time.perf_counter()
        for i in range(0, len(pending), n_batch):
            if cancelled.is_set():
                return self._stats(started, None, 0, "cancelled", len(tokens), SpeculationCounts())
            self._decode(pending[i:i + n_batch])
            done = min(len(pending), i + n_batch)
            if done < len(pending):  # a long prompt: say how far it is
                L.llama_synchronize(ctx)
                elapsed = time.perf_counter() - prompt_start
                prompt_progress(done, len(pending), done / elapsed if elapsed > 0 else 0.0)
        L.llama_synchronize(ctx)  # llama.cpp adds a decode's time to its counters here
        perf = L.llama_perf_context(ctx)
        prompt_done(len(pending), perf.n_p_eval / (perf.t_p_eval_ms / 1000) if perf.t_p_eval_ms > 0 else 0.0)

        seed = sampling.seed if sampling.seed >= 0 else random.getrandbits(32)
        picker = TokenPicker(sampling, random.Random(seed))
        stops = StopMatcher(sampling.stop)
        utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        counts = SpeculationCounts()
        generated: list[int] = []
        self.generated = generated
        outcome = [picker.pick(logits_row(ctx, -1, self.n_vocab))]
        first_token_at = time.perf_counter()
        reason = "length"
        start = len(self.cached)  # cache position of outcome[0]; the round's tokens follow it
        while True:
            # `outcome` holds the tokens the last round drew; the cache may hold some of them
            finished = False
            k = 0
            for k, token in enumerate(outcome):  # noqa: B007 (k is used after the loop)
                if L.llama_vocab_is_eog(vocab, token) and not ignore_eos:
                    reason, finished = "eos", True
                    break
                generated.append(token)
                text, stopped = stops.feed(utf8.decode(token_text(vocab, token, False)))
                emit(text, 1)  # every token counts, even one whose text is still held back
                if stopped:
                    reason, finished = "stop", True
                elif len(generated) >= sampling.max_tokens:
                    reason, finished = "length", True
                if finished:
                    break
            # the cache keeps what comes before the token looked at last, as if every token had
            # been decoded one by one: a rejected draft token goes, and so does what came after
            self._keep(start + k)
            last = outcome[k]
            if finished:
                break
            if cancelled.is_set():
                reason = "cancelled"
                break
            if len(self.cached) >= n_ctx:
                reason = "context"
                break
            room = min(n_ctx - len(self.cached) - 1, sampling.max_tokens - len(generated) - 1)
            start = len(self.cached) + 1
            outcome = self._round(last, generated, room, picker, cancelled, counts)
        if reason != "stop":
            tail = stops.flush() + utf8.decode(b"", final=True)
            if tail:
                emit(tail, 0)
        return self._stats(started, first_token_at, len(generated), reason, len(tokens), counts)

    def _stats(self, started: float, first: float | None, generated: int, reason: str,
               n_prompt: int, counts: SpeculationCounts) -> ChatStats:
        perf = L.llama_perf_context(self.lm.ctx)
        pp = perf.n_p_eval / (perf.t_p_eval_ms / 1000) if perf.t_p_eval_ms > 0 else 0.0
        # wall-clock from the first token on: with a draft, llama.cpp's own counters count every
        # drafted token the target checked, kept or not
        after_first = time.perf_counter() - first if first else 0.0
        tg = (generated - 1) / after_first if generated > 1 and after_first > 0 else 0.0
        alone = counts.plain_steps / counts.plain_seconds if counts.plain_steps >= 3 else 0.0
        return ChatStats(
            prompt_tokens=n_prompt,
            generated_tokens=generated,
            time_to_first_token_s=round((first - started) if first else 0.0, 4),
            prompt_tokens_per_s=round(pp, 2),
            generation_tokens_per_s=round(tg, 2),
            stop_reason=reason,
            context_used=len(self.cached),
            n_ctx=self.lm.n_ctx(),
            speculative=self.drafter.kind if self.drafter is not None else "",
            draft_rounds=counts.rounds,
            drafted_tokens=counts.drafted,
            accepted_tokens=counts.accepted,
            target_alone_tokens_per_s=round(alone, 2),
        )
