"""The speed calibration (tui.speed.calibrate) with the real engine on tiny probe files, and its
cache read back as data: rates positive, a round trip, another machine's or a hostile file
rebuilt with a message, a busy machine marked and measured again, a stopped run resumed."""

from __future__ import annotations

import asyncio
import json
import math
from dataclasses import replace

import pytest

from tui.models.synthetic import TINY
from tui.monitor.contention import FixedContention
from tui.speed.calibrate import CalibrationStopped, Calibrator, plan_steps
from tui.speed.rates import DeviceRates, MachineRates, RatesError, TypeRate, parse_rates, read_rates, write_rates

SMALL = replace(TINY, name="probe-small", n_embd=512, n_ff=1024, n_head=4, n_head_kv=2, n_layer=3)
BIG = replace(SMALL, name="probe-big", n_layer=4)


def calibrator(tmp_path, key="machine-a", busy=0.0, types=("Q4_K", "IQ2_XXS"), **kw) -> Calibrator:
    cal = Calibrator(tmp_path / "probes", cache=tmp_path / "rates.json", types=types, use_gpu=False,
                     contention=lambda pid: FixedContention(busy), key=key, threads=2, **kw)
    cal.probe_shapes = (SMALL, BIG)
    (tmp_path / "probes").mkdir(exist_ok=True)
    return cal


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    """One real calibration, shared: (its folder, the rates, the steps reported)."""
    tmp = tmp_path_factory.mktemp("calibration")
    reported = []
    rates = asyncio.run(calibrator(tmp).run(lambda i, n, step, result: result and reported.append(step.key)))
    return tmp, rates, reported


@pytest.mark.timeout(600)
def test_each_type_gets_positive_rates_and_the_cache_round_trips(measured):
    tmp, rates, reported = measured
    assert reported == [s.key for s in plan_steps(False, ("Q4_K", "IQ2_XXS"))]
    assert set(rates.cpu.types) == {"Q4_K", "IQ2_XXS"} and rates.gpu is None
    for rate in rates.cpu.types.values():
        assert rate.tg_bytes_per_s > 0 and math.isfinite(rate.tg_bytes_per_s)
        assert rate.pp_params_per_s > 0 and not rate.busy
    assert rates.cpu.threads == 2 and not rates.busy
    again, why = read_rates("machine-a", tmp / "rates.json")
    assert again == rates and why == ""
    assert (tmp / "rates.json").stat().st_mode & 0o777 == 0o600


def test_another_machine_or_build_measures_again(measured):
    tmp, _, _ = measured
    rates, why = read_rates("machine-b", tmp / "rates.json")
    assert rates is None and "another machine or llama.cpp build" in why


@pytest.mark.parametrize("text, words", [
    ("not json", "not JSON"),
    ('{"format": 99}', "not a calibration this version"),
    ('{"format": 1, "machine": "m", "cpu": {"types": {"Q4_K": {"tg_bytes_per_s": NaN}}}}', "tg_bytes_per_s"),
    ('{"format": 1, "machine": "m", "cpu": {"types": {"Q4_K": {"tg_bytes_per_s": -5}}}}', "tg_bytes_per_s"),
    ('{"format": 1, "machine": "m", "cpu": {"types": {"Q4_K": "fast"}}}', "not a table"),
    ('{"format": 1, "machine": "m", "cpu": {"step_s": 1e308}}', "step_s"),
    ('{"format": 1, "machine": "m", "done": "all"}', "done"),
    ('{"format": 1, "machine": ["m"]}', "machine"),
    ("[" * 100000, "not JSON"),
])
def test_a_hostile_cache_file_is_refused_with_the_reason(text, words, tmp_path):
    with pytest.raises(RatesError, match=words):
        parse_rates(text)
    (tmp_path / "rates.json").write_text(text)
    rates, why = read_rates("m", tmp_path / "rates.json")
    assert rates is None and "damaged" in why and "measured again" in why


def test_a_cache_that_is_not_a_regular_file_is_not_read(tmp_path):
    (tmp_path / "rates.json").mkdir()
    rates, why = read_rates("m", tmp_path / "rates.json")
    assert rates is None and "unreadable" in why


@pytest.mark.timeout(900)
def test_a_busy_machine_marks_the_steps_and_the_next_run_redoes_them(tmp_path):
    busy = asyncio.run(calibrator(tmp_path, busy=1.5, types=("Q4_K",)).run())
    assert busy.busy and busy.cpu.types["Q4_K"].busy and busy.cpu.busy
    quiet = calibrator(tmp_path, busy=0.0, types=("Q4_K",))
    assert {s.key for s in quiet.todo(plan_steps(False, ("Q4_K",)))} == {"cpu:Q4_K", "cpu:fixed", "cpu:kv"}
    redone = asyncio.run(quiet.run())
    assert not redone.busy and not redone.cpu.types["Q4_K"].busy


@pytest.mark.timeout(900)
def test_a_stopped_calibration_keeps_its_steps_and_resumes(tmp_path):
    steps = []
    with pytest.raises(CalibrationStopped, match="run it again to resume"):
        asyncio.run(calibrator(tmp_path).run(lambda i, n, s, r: r and steps.append(s.key),
                                             stopped=lambda: len(steps) >= 2))
    kept, _ = read_rates("machine-a", tmp_path / "rates.json")
    assert kept is not None and set(kept.done) == {"cpu:fixed", "cpu:Q4_K"}
    resumed = calibrator(tmp_path)
    assert [s.key for s in resumed.todo(plan_steps(False, ("Q4_K", "IQ2_XXS")))] == [
        "cpu:IQ2_XXS", "cpu:kv", "cpu:check"]


@pytest.mark.timeout(600)
def test_a_probe_llama_cpp_refuses_is_recorded_and_skipped(tmp_path):
    """A K-quant needs rows of 256 weights: a 384-wide probe of Q4_K does not load."""
    cal = calibrator(tmp_path, types=("Q4_K",))
    cal.probe_shapes = (replace(SMALL, n_embd=384, n_ff=768, n_head=3, n_head_kv=1), BIG)
    rates = asyncio.run(cal.run())
    assert "Q4_K" not in rates.cpu.types and "Q4_K" in rates.cpu.failed
    assert "cpu:Q4_K" in rates.done


def test_written_rates_are_read_back_exactly(tmp_path):
    rates = MachineRates(machine="m", cpu=DeviceRates(types={"Q8_0": TypeRate(1e10, 2e10, 0.02)}, step_s=1e-3),
                         h2d_pinned=3e10, done=("cpu:Q8_0",))
    write_rates(rates, tmp_path / "r.json")
    assert read_rates("m", tmp_path / "r.json") == (rates, "")
    assert json.loads((tmp_path / "r.json").read_text())["format"] == 1


@pytest.mark.timeout(600)
def test_a_step_that_never_answers_is_recorded_and_the_next_runs(tmp_path):
    cal = calibrator(tmp_path, types=("Q4_K", "IQ2_XXS"))
    cal.step_timeout = 1e-3  # no probe answers this fast: every step times out, none waits forever
    rates = asyncio.run(cal.run())
    assert set(rates.done) == {s.key for s in plan_steps(False, ("Q4_K", "IQ2_XXS"))}
    assert "no answer in" in rates.cpu.failed["Q4_K"] and "no answer in" in rates.cpu.failed["IQ2_XXS"]


def test_any_json_in_the_cache_ends_in_rates_or_a_reason():
    """Fuzz: a cache file is data. Whatever JSON it holds (values of every type where numbers,
    texts and tables belong), reading it ends in MachineRates or RatesError, never another error,
    and what it accepts holds only finite, in-range numbers."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from tui.speed.rates import MAX_FIXED_S

    leaf = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True),
                     st.text(max_size=20))
    value = st.recursive(leaf, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                        st.dictionaries(st.text(max_size=12), inner, max_size=4)),
                         max_leaves=12)
    rate = st.fixed_dictionaries({}, optional={"tg_bytes_per_s": value, "pp_params_per_s": value,
                                               "spread": value, "busy": value})
    device = st.one_of(value, st.fixed_dictionaries({}, optional={
        "types": st.one_of(value, st.dictionaries(st.sampled_from(["Q4_K", "IQ2_XXS", "x" * 30]), rate, max_size=3)),
        "step_s": value, "layer_s": value, "kv_bytes_per_s": value, "threads": value, "failed": value,
        "busy": value}))
    document = st.fixed_dictionaries({"format": st.one_of(st.just(1), value)}, optional={
        "machine": st.one_of(st.just("m"), value), "cpu": device, "gpu": device, "done": value,
        "h2d_pinned": value, "switch_s": value, "residual": value, "measured_at": value})

    @settings(max_examples=400, deadline=None)
    @given(document)
    def check(doc):
        try:
            rates = parse_rates(json.dumps(doc))
        except RatesError:
            return
        for dev in (rates.cpu, rates.gpu):
            if dev is None:
                continue
            for r in dev.types.values():
                assert math.isfinite(r.tg_bytes_per_s) and r.tg_bytes_per_s >= 1
                assert math.isfinite(r.pp_params_per_s) and 0 <= r.spread <= 100
            assert all(0 <= cost <= MAX_FIXED_S for cost in (dev.step_s, dev.layer_s))  # the reader's bound

    check()
