"""llama.cpp's no-alloc dry run predicts what a real load allocates (real engine, CPU build)."""

from __future__ import annotations

import pytest

from tui.engine.client import EngineClient
from tui.engine.protocol import Loaded
from tui.engine.settings import LoadSettings
from tui.fit.calibration import calibrate, dry_runs
from tui.models.model_info import load_model_info

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("kv, ctx", [("f16", 2048), ("q8_0", 4096), ("q4_0", 1024)])
async def test_dry_run_buffers_equal_a_real_load(demo_model, kv, ctx):
    s = LoadSettings(model_path=str(demo_model), n_ctx=ctx, type_k=kv, type_v=kv, flash_attn="on")
    (dry,) = dry_runs([s])
    client = EngineClient()
    try:
        loaded = await client.load(s)
        assert isinstance(loaded, Loaded)
        real = loaded.facts.buffers
    finally:
        await client.stop()
    # both come from llama.cpp's log, which prints MiB with two decimals: equal to that precision
    log_precision = 0.01 * 1024**2
    assert sum(real["kv"].values()) > 0 and sum(real["compute"].values()) > 0
    assert dry.total("kv") == pytest.approx(sum(real["kv"].values()), abs=log_precision)
    assert dry.total("compute") == pytest.approx(sum(real["compute"].values()), abs=log_precision)


def test_calibration_kv_per_layer_from_the_dry_run(demo_model):
    info = load_model_info(demo_model)
    s = LoadSettings(model_path=str(demo_model), n_ctx=4096)
    c = calibrate(info, s)
    assert c.source.startswith("dry-run")
    # SmolLM2-135M: 3 KV heads x 64 dims x (K + V) x 2 bytes x 4096 cells
    assert c.kv_bytes_per_layer == 3 * 64 * 2 * 2 * 4096


def test_a_bad_setting_in_a_dry_run_is_an_error_not_a_crash(tmp_path):
    from tui.fit.calibration import DryRunError

    with pytest.raises(DryRunError):
        dry_runs([LoadSettings(model_path=str(tmp_path / "none.gguf"))])


def test_parallel_dry_runs_each_read_their_own_log(demo_model, monkeypatch):
    """The child runs the settings on one thread each, and llama.cpp's log is one stream for the
    whole process: each thread must parse its own lines. Three contexts of different sizes, run
    together, must each report their own KV, and the same buffers as one after the other."""
    settings = [LoadSettings(model_path=str(demo_model), n_ctx=c) for c in (512, 1024, 2048)]
    together = dry_runs(settings)
    starts = [r.raw["timing"]["start"] for r in together]
    ends = [r.raw["timing"]["end"] for r in together]
    assert max(starts) < min(ends)  # they did overlap
    # SmolLM2-135M: 30 layers x 3 KV heads x 64 dims x (K + V) x 2 bytes per cell
    assert [r.total("kv") for r in together] == [30 * 3 * 64 * 2 * 2 * c for c in (512, 1024, 2048)]
    monkeypatch.setenv("VRAMDECK_DRY_RUN", "serial")
    apart = dry_runs(settings)
    assert max(r.raw["timing"]["start"] for r in apart) >= min(r.raw["timing"]["end"] for r in apart)
    assert [r.buffers for r in together] == [r.buffers for r in apart]
