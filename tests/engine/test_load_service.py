"""The one load path, headless: apply, roll back, remember what was tried (scripted engine)."""

from __future__ import annotations

import json

from tests.fakes import ScriptedEngine
from tui.engine.errors import load_notice, load_report
from tui.engine.load_service import LoadService
from tui.engine.settings import LoadSettings
from tui.fit.overhead import OverheadStore

GOOD = LoadSettings(model_path="/m/model.gguf", n_ctx=4096)
TOO_BIG = GOOD.with_changes(n_ctx=131072)


def service(fail=lambda s: False, **kw) -> tuple[LoadService, ScriptedEngine]:
    engine = ScriptedEngine(fail_if=lambda s: fail(s))
    return LoadService(engine, **kw), engine


async def test_a_load_that_works_is_remembered_with_its_prediction():
    loads, _ = service()
    outcome = await loads.apply(GOOD, predicted=(5_000_000_000,))
    assert outcome.ok and loads.last_working == GOOD
    assert loads.tried[-1].predicted_vram == (5_000_000_000,)
    assert loads.predicted_for(GOOD) == (5_000_000_000,)


async def test_a_failed_apply_goes_back_to_the_last_that_worked():
    loads, engine = service(fail=lambda s: s.n_ctx > 8192)
    await loads.apply(GOOD)
    outcome = await loads.apply(TOO_BIG)
    assert not outcome.ok and outcome.back_on_last_working and outcome.rolled_back_to == GOOD
    assert engine.loads == [GOOD, TOO_BIG, GOOD]
    assert "Back on the last that worked" in load_report(outcome, 32)


async def test_when_going_back_fails_too_nothing_claims_the_chat_was_kept():
    """Was: the phase was FAILED but the Tuner said "Back on the last that worked...; chat kept"
    (the rollback's own result was ignored)."""
    broken = {"now": False}
    loads, _ = service(fail=lambda s: broken["now"])
    await loads.apply(GOOD)
    broken["now"] = True  # the GPU went away, say: nothing loads any more
    outcome = await loads.apply(TOO_BIG)
    assert outcome.rolled_back_to == GOOD and outcome.rollback_failure is not None
    assert not outcome.back_on_last_working
    report = load_report(outcome, 32)
    assert "failed too" in report and "No model is loaded" in report
    assert "chat kept" not in report and "Back on" not in report
    assert "did not load again" in load_notice(outcome)


async def test_a_failure_with_nothing_to_go_back_to_says_so():
    loads, engine = service(fail=lambda s: True)
    outcome = await loads.apply(GOOD)
    assert outcome.rolled_back_to is None and engine.loads == [GOOD]
    assert "Back on" not in load_report(outcome, None)


async def test_benchmarks_fill_the_row_of_their_settings():
    loads, _ = service()
    await loads.apply(GOOD)
    loads.record_bench(GOOD, 300.0, 40.0)
    loads.record_bench(GOOD, 310.0, 41.0)
    assert [(r.pp_tokens_per_s, r.tg_tokens_per_s) for r in loads.tried] == [(300.0, 40.0), (310.0, 41.0)]
    assert loads.measured(GOOD).tg_tokens_per_s == 41.0


async def test_the_gpu_overhead_is_learnt_from_a_load(tmp_path):
    store = OverheadStore(tmp_path / "overhead.json")
    loads, engine = service(overhead_store=store, gpu_names=lambda: ("NVIDIA GeForce RTX 3090",))
    await loads.apply(GOOD)
    learnt = json.loads((tmp_path / "overhead.json").read_text())
    assert list(learnt) == ["NVIDIA GeForce RTX 3090"] and learnt["NVIDIA GeForce RTX 3090"] > 0
