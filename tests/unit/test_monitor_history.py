"""The monitor's history buffers and the page-cache share of the model file (real engine)."""

from __future__ import annotations

import pytest

from tui.engine.client import EngineClient
from tui.engine.settings import LoadSettings
from tui.monitor.fake import FakeGpu, FakeNvml, FakeSampler
from tui.monitor.history import History
from tui.monitor.host_stats import HostSource, mapped_resident_bytes


def test_history_keeps_the_last_n_points_per_gpu():
    sampler = FakeSampler(FakeNvml([FakeGpu(util=10), FakeGpu(util=90)]))
    h = History(points=5)
    for i in range(8):
        h.add(sampler.sample(), tokens_per_s=float(i))
    assert list(h.tokens_per_s) == [3.0, 4.0, 5.0, 6.0, 7.0]
    assert list(h.gpu_util[1]) == [90.0] * 5 and len(h.vram_fraction[0]) == 5


@pytest.mark.slow
async def test_page_cache_share_of_the_mapped_model_file(demo_model):
    client = EngineClient()
    try:
        await client.load(LoadSettings(model_path=str(demo_model), use_mmap=True))
        host = HostSource().read(client.pid, str(demo_model))
        assert host.model_file_bytes == demo_model.stat().st_size
        assert 0 < host.model_resident_bytes <= host.model_file_bytes
        assert host.engine_rss_bytes >= host.model_resident_bytes
    finally:
        await client.stop()
    assert mapped_resident_bytes(999_999_999, str(demo_model)) is None
