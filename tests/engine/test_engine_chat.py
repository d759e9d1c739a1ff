"""The real engine process with the real SmolLM2 model: chat, stream, figures, cancel, bench."""

from __future__ import annotations

import contextlib
import time
from collections import Counter

import pytest

from tui.engine.client import EngineClient, EngineError
from tui.engine.protocol import ChatDone, ChatFailed, Loaded, PromptProcessed, TextPiece
from tui.engine.settings import LoadSettings, SamplingSettings

pytestmark = pytest.mark.slow
SYSTEM = {"role": "system", "content": "You are a helpful assistant."}
GREEDY = SamplingSettings(temperature=0, max_tokens=48)


@pytest.fixture
async def engine(demo_model):
    client = EngineClient()
    result = await client.load(LoadSettings(model_path=str(demo_model), n_ctx=2048))
    assert isinstance(result, Loaded), result
    yield client
    await client.stop()


async def collect(client, messages, sampling=GREEDY):
    pieces, end = [], None
    async for event in client.chat(messages, sampling):
        if isinstance(event, TextPiece):
            pieces.append(event.text)
        elif not isinstance(event, PromptProcessed):
            end = event
    return pieces, end


async def test_greedy_answer_mentions_paris_with_figures(engine):
    pieces, done = await collect(engine, [SYSTEM, {"role": "user",
                                                   "content": "What is the capital of France?"}])
    assert isinstance(done, ChatDone), done
    assert "Paris" in "".join(pieces)
    s = done.stats
    assert s.prompt_tokens > 0 and s.generated_tokens > 0
    assert s.time_to_first_token_s > 0
    assert s.prompt_tokens_per_s > 0 and s.generation_tokens_per_s > 0
    assert s.stop_reason == "eos"
    assert 0 < s.context_used <= s.n_ctx == 2048


async def test_a_long_reply_streams_in_pieces_as_it_is_generated(engine):
    stamps, texts = [], []
    started = time.monotonic()
    async for event in engine.chat([SYSTEM, {"role": "user", "content": "Write a long story."}],
                                   SamplingSettings(temperature=0, max_tokens=96)):
        stamps.append(time.monotonic())
        texts.append(getattr(event, "text", None))
    total = stamps[-1] - started
    assert len(stamps) > 5, "the reply should arrive as a stream of pieces, not in one block"
    assert stamps[0] - started < total / 2, "the first piece comes long before the end"
    assert texts[0] is None and texts[-1] is None and all(texts[1:-1])


async def test_prompt_processing_is_announced_before_the_first_piece(engine):
    events = [e async for e in engine.chat([SYSTEM, {"role": "user", "content": "Say hi."}], GREEDY)]
    first = events[0]
    assert isinstance(first, PromptProcessed)
    assert first.prompt_tokens > 10 and first.tokens_per_s > 0
    assert isinstance(events[1], TextPiece)
    assert sum(e.tokens for e in events if isinstance(e, TextPiece)) == events[-1].stats.generated_tokens


async def test_loaded_facts_describe_the_demo_model(engine, demo_model):
    facts = engine.loaded.facts
    assert facts.architecture == "llama"
    assert facts.n_layer == 30
    assert facts.quant == "Q4_1"
    assert facts.has_chat_template
    assert facts.n_ctx == 2048 and facts.n_ctx_train == 8192
    assert 130e6 < facts.n_params < 140e6
    assert facts.rss_bytes > facts.size_bytes / 2
    assert facts.load_seconds > 0
    assert engine.hello is not None and engine.hello.pid == engine.pid


async def test_same_seed_same_reply_and_stop_strings_cut(engine):
    messages = [SYSTEM, {"role": "user", "content": "Write a short poem about the sea."}]
    sampling = SamplingSettings(temperature=0.9, seed=42, max_tokens=24)
    a, _ = await collect(engine, messages, sampling)
    b, _ = await collect(engine, messages, sampling)
    assert "".join(a) == "".join(b)
    full = "".join(a)
    stop = full.split()[3]  # a word from the middle of that reply
    cut, done = await collect(engine, messages, SamplingSettings(temperature=0.9, seed=42,
                                                                  max_tokens=24, stop=(stop,)))
    assert done.stats.stop_reason == "stop"
    assert "".join(cut) == full[:full.index(stop)]


async def test_max_tokens_and_multi_turn_reuse(engine):
    messages = [SYSTEM, {"role": "user", "content": "Count from one to fifty in words."}]
    pieces, done = await collect(engine, messages, SamplingSettings(temperature=0, max_tokens=5))
    assert done.stats.stop_reason == "length" and done.stats.generated_tokens == 5
    messages += [{"role": "assistant", "content": "".join(pieces)},
                 {"role": "user", "content": "Thanks. And what is 2+2?"}]
    _, done2 = await collect(engine, messages)
    assert isinstance(done2, ChatDone)
    assert done2.stats.prompt_tokens > done.stats.prompt_tokens


async def test_cancel_ends_the_stream_within_a_token_and_engine_stays_usable(engine):
    messages = [SYSTEM, {"role": "user", "content": "Tell me a very long story about a dragon."}]
    got, end = [], None
    cancelled_at = None
    async for event in engine.chat(messages, SamplingSettings(temperature=0.8, seed=1, max_tokens=2000)):
        if isinstance(event, TextPiece):
            got.append(event)
            if len(got) == 5:
                await engine.cancel()
                cancelled_at = len(got)
        else:
            end = event
    assert isinstance(end, ChatDone)
    assert end.stats.stop_reason == "cancelled"
    assert len(got) <= cancelled_at + 2, "cancel must stop generation within about one token"
    pieces, done = await collect(engine, [SYSTEM, {"role": "user", "content": "Say hi."}])
    assert isinstance(done, ChatDone) and pieces


def _count_tokens_sent(engine) -> Counter:
    """Tokens the engine streamed per request id, whether anyone still reads them: a count of
    what ran, where a clock would only say how fast this machine is."""
    sent: Counter = Counter()
    route = engine._route

    def counting(message):
        if isinstance(message, TextPiece):
            sent[message.request_id] += message.tokens
        route(message)
    engine._route = counting
    return sent


async def test_closing_the_stream_early_cancels_it(engine):
    sent = _count_tokens_sent(engine)
    async with contextlib.aclosing(engine.chat([SYSTEM, {"role": "user", "content": "Write 500 words."}],
                                               SamplingSettings(max_tokens=2000))) as stream:
        async for _ in stream:
            first = engine._active_chat
            break
    _, done = await collect(engine, [SYSTEM, {"role": "user", "content": "Say hi."}])
    assert isinstance(done, ChatDone)
    assert sent[first] < 100, "the abandoned 2000-token reply must not run on"


async def test_an_abandoned_stream_is_cancelled_by_the_next_request(engine):
    sent = _count_tokens_sent(engine)
    abandoned = engine.chat([SYSTEM, {"role": "user", "content": "Write 500 words."}],
                            SamplingSettings(max_tokens=2000))
    await abandoned.__anext__()  # started, then dropped without closing
    first = engine._active_chat
    _, done = await collect(engine, [SYSTEM, {"role": "user", "content": "Say hi."}])
    assert isinstance(done, ChatDone)
    assert sent[first] < 100
    await abandoned.aclose()


async def test_prompt_longer_than_context_fails_clearly(demo_model):
    client = EngineClient()
    try:
        await client.load(LoadSettings(model_path=str(demo_model), n_ctx=256))
        n_ctx = client.loaded.facts.n_ctx
        _, end = await collect(client, [{"role": "user", "content": "word " * (2 * n_ctx)}])
        assert isinstance(end, ChatFailed)
        assert "context" in end.message and str(n_ctx) in end.message
    finally:
        await client.stop()


async def test_chat_without_a_model_says_so():
    client = EngineClient()
    _, end = await collect(client, [{"role": "user", "content": "hi"}])
    assert isinstance(end, ChatFailed) and "No model" in end.message
    with pytest.raises(EngineError):
        await client.bench()


async def test_bench_reports_pp_and_tg_per_repetition(engine):
    result = await engine.bench(n_prompt=64, n_gen=16, repetitions=2)
    assert len(result.pp_tokens_per_s) == 2 and len(result.tg_tokens_per_s) == 2
    assert all(x > 0 for x in result.pp_tokens_per_s + result.tg_tokens_per_s)
    _, done = await collect(engine, [SYSTEM, {"role": "user", "content": "Say hi."}])
    assert isinstance(done, ChatDone), "chat works after a bench cleared the cache"


async def test_engine_log_is_captured(engine):
    text = "\n".join(engine.log)
    assert "llama_model_loader" in text or "print_info" in text
    assert "n_ctx" in text


async def test_a_long_prompt_reports_its_progress(demo_model):
    """With n_batch 64, a ~700-token prompt is read in chunks; each chunk says how far it got."""
    from tui.engine.protocol import PromptProgress
    from tui.widgets.status_bar import prompt_progress_text

    client = EngineClient()
    try:
        await client.load(LoadSettings(model_path=str(demo_model), n_ctx=2048, n_batch=64,
                                       n_ubatch=64))
        text = " ".join(f"item {i} is on shelf {i % 7};" for i in range(120))
        progress, processed = [], None
        async for event in client.chat([SYSTEM, {"role": "user", "content": text}],
                                       SamplingSettings(temperature=0, max_tokens=4)):
            if isinstance(event, PromptProgress):
                progress.append(event)
            elif isinstance(event, PromptProcessed):
                processed = event
    finally:
        await client.stop()
    assert len(progress) >= 8
    assert [p.done for p in progress] == sorted(p.done for p in progress)
    assert all(p.total == processed.prompt_tokens and p.done % 64 == 0 for p in progress)
    assert all(p.tokens_per_s > 0 for p in progress)
    line = prompt_progress_text(progress[0].done, progress[0].total, 100.0)
    assert line.startswith(f"reading the prompt: 64 of {progress[0].total:,} tokens (")
    assert "s left" in line


async def test_generation_speed_against_context_depth(demo_model):
    """tg at 0 and 1,024 tokens of filled context, each measured twice (the mean, the spread); a
    depth beyond the context is left out."""
    client = EngineClient()
    try:
        await client.load(LoadSettings(model_path=str(demo_model), n_ctx=2048))
        result = await client.bench(0, 16, 2, (0, 1024, 4096))
    finally:
        await client.stop()
    figures = result.depth_figures()
    assert [d for d, *_ in figures] == [0, 1024]
    assert all(tg > 0 and sd >= 0 and n == 2 for _, tg, sd, n in figures)
    assert all(len(runs) == 2 and abs(sum(runs) / 2 - tg) < 0.02 for runs, (_, tg) in
               zip(result.depth_runs, result.depth_tg, strict=True))
