"""The user's own quality figure for each quant that is on disk: its perplexity on the shipped
public-domain text (the auto-tune's), measured here by the engine, one fresh load per file."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tui.engine.client import EngineClient, EngineError
from tui.engine.protocol import Loaded
from tui.engine.settings import LoadSettings
from tui.tune.run import perplexity_text


async def _measure(paths: dict[str, Path], base: LoadSettings) -> dict[str, float | str]:
    out: dict[str, float | str] = {}
    text = perplexity_text()
    for quant, path in paths.items():
        client = EngineClient()
        try:
            loaded = await client.load(base.with_changes(model_path=str(path), n_ctx=max(base.n_ctx, 1024)))
            if not isinstance(loaded, Loaded):
                out[quant] = f"did not load ({loaded.kind})"
                continue
            out[quant] = round((await client.perplexity(text)).perplexity, 4)
        except EngineError as exc:
            out[quant] = f"failed: {exc}"
        finally:
            await client.stop()
    return out


def measured_perplexity(paths: dict[str, Path], base: LoadSettings) -> dict[str, float | str]:
    """Perplexity of each file (or why there is none), the same text and settings for all."""
    return asyncio.run(_measure(paths, base))
