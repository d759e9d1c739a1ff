"""Wire messages decode from their type hints: what was sent is what arrives, tuples included."""

from __future__ import annotations

import pytest

from tui.engine.protocol import (
    BenchCommand,
    BenchResult,
    ChatCommand,
    ChatDone,
    ChatStats,
    Heartbeat,
    Hello,
    KldCommand,
    Loaded,
    LoadFailed,
    ModelFacts,
    PackedReference,
    TopKResult,
    decode,
)

MESSAGES = [
    BenchCommand(request_id=3, depths=(0, 4096, 16384)),
    BenchResult(request_id=3, n_prompt=8, n_gen=4, pp_tokens_per_s=(1.5, 2.5),
                tg_tokens_per_s=(3.0,), depth_tg=((0, 30.5), (4096, 20.25)), depth_runs=((30.0, 31.0), (20.25,))),
    KldCommand(request_id=4, text="t", reference=PackedReference(n_vocab=9, chunk=64, ids="i4:1x1:AAAAAA==")),
    TopKResult(request_id=5, reference=PackedReference(n_vocab=9, tokens="i4:1:AAAAAA=="), nll="f8:0:"),
    ChatCommand(request_id=1, messages=({"role": "user", "content": "hi"},), sampling={"seed": 1}),
    ChatDone(request_id=1, stats=ChatStats(prompt_tokens=3, stop_reason="eos")),
    Hello(pid=1, devices=("CUDA0", "CUDA1")),
    Loaded(facts=ModelFacts(vram_bytes_per_gpu=(1, 2), buffers={"kv": {"CUDA0": 3}})),
    LoadFailed(kind="corrupt", detail="x", log_tail=("a", "b")),
    Heartbeat(busy_s=1.5),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_a_message_arrives_as_it_was_sent(message):
    assert decode(message.to_wire()) == message


def test_decoded_frozen_messages_stay_hashable():
    """BenchCommand.depths and BenchResult.depth_tg came back as lists, so they did not hash."""
    for message in MESSAGES[:2]:
        assert hash(decode(message.to_wire())) == hash(message)
