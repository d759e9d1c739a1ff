"""Generated GGUF models: a tiny random Llama and its llama.cpp quant ladder load and generate."""

from __future__ import annotations

import pytest

from tui.engine.client import EngineClient
from tui.engine.protocol import ChatDone, Loaded, TextPiece
from tui.engine.settings import LoadSettings, SamplingSettings

pytestmark = pytest.mark.slow


async def test_tiny_model_and_its_quant_ladder_load_and_generate(tiny_llama, quant_ladder):
    client = EngineClient()
    try:
        for expected, path in [("F32", tiny_llama), *quant_ladder.items()]:
            result = await client.load(LoadSettings(model_path=str(path), n_ctx=256))
            assert isinstance(result, Loaded), result
            assert result.facts.quant == expected
            events = [e async for e in client.chat([{"role": "user", "content": "hello"}],
                                                   SamplingSettings(temperature=0, max_tokens=8))]
            assert isinstance(events[-1], ChatDone)
            assert events[-1].stats.generated_tokens > 0
            assert any(isinstance(e, TextPiece) for e in events)
    finally:
        await client.stop()


def test_quant_ladder_files_shrink(tiny_llama, quant_ladder):
    sizes = [tiny_llama.stat().st_size] + [quant_ladder[q].stat().st_size for q in ("Q8_0", "Q4_K_M", "Q2_K")]
    assert sizes == sorted(sizes, reverse=True)


@pytest.fixture(scope="module")
def tiny_moe(tmp_path_factory):
    from tui.models.synthetic import TINY_MOE, write_random_llama

    return write_random_llama(tmp_path_factory.mktemp("moe") / "tiny-moe-F32.gguf", TINY_MOE)


def test_moe_header_counts_the_expert_bytes_of_each_block(tiny_moe):
    from tui.models.model_info import load_model_info

    info = load_model_info(tiny_moe)
    # 3 expert tensors of 4 experts x 256 x 256 F32 values per block
    assert info.n_expert == 4 and info.block_expert_bytes == (3 * 4 * 256 * 256 * 4,) * 4


def test_moe_experts_on_the_cpu_move_in_the_estimate(tiny_moe):
    from tui.fit.budget import MemoryBudget
    from tui.fit.estimate import estimate, formula_calibration
    from tui.models.model_info import load_model_info

    info = load_model_info(tiny_moe)
    s = LoadSettings(model_path=str(tiny_moe), n_ctx=512)
    cal = formula_calibration(info, s)
    base = estimate(info, s, cal, MemoryBudget(gpus=(24 * 2**30,), overheads=(0,)))
    moved = estimate(info, s.with_changes(n_cpu_moe=3), cal, MemoryBudget(gpus=(24 * 2**30,), overheads=(0,)))
    experts = 3 * info.block_expert_bytes[0]
    assert base.gpus[0].weights - moved.gpus[0].weights == experts
    assert moved.host.weights - base.host.weights == experts


@pytest.mark.slow
async def test_moe_model_loads_with_experts_split_and_generates(tiny_moe):
    """The engine sets tensor_buft_overrides itself (the high-level Llama class ignores them)."""
    from tui.engine.host.runtime import expert_patterns

    assert expert_patterns(2) == [r"blk\.0\.ffn_(up|down|gate|gate_up)_(ch|)exps",
                                  r"blk\.1\.ffn_(up|down|gate|gate_up)_(ch|)exps"]
    client = EngineClient()
    try:
        loaded = await client.load(LoadSettings(model_path=str(tiny_moe), n_ctx=512, n_cpu_moe=2))
        assert isinstance(loaded, Loaded), loaded
        tokens = 0
        async for event in client.chat([{"role": "user", "content": "hi"}],
                                       SamplingSettings(temperature=0, max_tokens=8)):
            if isinstance(event, ChatDone):
                tokens = event.stats.generated_tokens
        assert tokens > 0
    finally:
        await client.stop()
