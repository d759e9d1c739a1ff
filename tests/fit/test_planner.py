"""The Tuner's planner, headless: one call gives estimate, checks, layer map and speed; dry runs
are cached by the settings they depend on; the host budget follows one rule."""

from __future__ import annotations

from tui.chat.generation import GenerationStatus
from tui.engine.protocol import ChatDone, ChatStats, PromptProcessed, PromptProgress, TextPiece
from tui.engine.settings import LoadSettings
from tui.fit.budget import MemoryBudget
from tui.fit.checks import Machine
from tui.fit.estimate import formula_calibration
from tui.fit.planner import Planner
from tui.models.model_info import load_model_info
from tui.monitor.fake import FakeGpu, FakeNvml, FakeSampler

GiB = 1024**3
MACHINE = Machine(n_gpus=1, gpu_offload=True, physical_cores=8, memlock_limit=None)


def test_a_plan_carries_what_the_tuner_shows(sparse_70b):
    info = load_model_info(sparse_70b)
    calls = []

    def calibrate(i, s):
        calls.append(s)
        return formula_calibration(i, s)
    planner = Planner(calibrate)
    draft = LoadSettings(model_path=str(sparse_70b), n_gpu_layers=40, n_ctx=8192)
    budget = MemoryBudget(gpus=(24 * GiB,), overheads=(768 * 2**20,), host=64 * GiB)
    plan = planner.plan(info, draft, budget, MACHINE)
    assert not plan.precise and plan.predicted_vram == tuple(g.total for g in plan.estimate.gpus)
    assert len(plan.layers.devices) == info.n_layer + 1
    assert plan.layers.devices.count(0) == 40 and plan.layers.predicted_tg > 0
    planner.calibrate(info, draft)
    planner.calibrate(info, draft.with_changes(n_gpu_layers=10))  # same context: cached
    assert len(calls) == 1
    assert planner.plan(info, draft.with_changes(n_gpu_layers=60), budget, MACHINE).precise


def test_the_host_budget_is_available_ram_plus_what_the_engine_holds():
    """The Tuner used total RAM and fit/tune available RAM: one rule now."""
    sampler = FakeSampler(FakeNvml([FakeGpu(used=int(7.1 * GiB), processes=[(4242, int(6.2 * GiB))])]))
    sample = sampler.sample(4242, None)
    h = sample.host
    budget = MemoryBudget.from_sample(sample, lambda names: tuple(0 for _ in names))
    assert budget.host == h.ram_total_bytes - h.ram_used_bytes + (h.engine_rss_bytes or 0)
    assert budget.host < h.ram_total_bytes


def test_the_generation_status_follows_a_reply():
    g = GenerationStatus()
    g = g.apply(PromptProgress(done=512, total=2048, tokens_per_s=900.0), 0.0)
    assert g.prompt_progress == (512, 2048, 900.0)
    g = g.apply(PromptProcessed(prompt_tokens=2048, tokens_per_s=950.0), 1.0)
    assert g.prompt_progress is None and g.prompt_tokens_per_s == 950.0
    g = g.apply(TextPiece(text="a", tokens=1), 1.0)
    g = g.apply(TextPiece(text="bc", tokens=10), 2.0)
    assert g.tokens_per_s == 10.0
    stats = ChatStats(generated_tokens=11, context_used=2059)
    g = g.apply(ChatDone(stats=stats), 2.1).ended()
    assert g.last_stats == stats and g.context_used == 2059 and g.tokens_per_s == 0.0
    assert g.context_reset().context_used == 0 and g.context_reset().last_stats == stats
