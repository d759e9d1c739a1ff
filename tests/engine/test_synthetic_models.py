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
        await client.close()


def test_quant_ladder_files_shrink(tiny_llama, quant_ladder):
    sizes = [tiny_llama.stat().st_size] + [quant_ladder[q].stat().st_size for q in ("Q8_0", "Q4_K_M", "Q2_K")]
    assert sizes == sorted(sizes, reverse=True)
