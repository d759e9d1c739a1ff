import pytest
from hypothesis import given
from hypothesis import strategies as st

from tui.engine.settings import LoadSettings, SamplingSettings, SettingsError
from tui.fit.speed import speculative_tg
from tui.widgets.settings_steps import DRAFT_FIELDS, DRAFT_LENGTH_FIELDS, FIELDS, SPECULATIVE_FIELD, step


def test_defaults_are_valid_and_round_trip():
    s = LoadSettings(model_path="/m.gguf", tensor_split=(1.0, 2.0))
    assert s.problems() == {}
    assert LoadSettings.from_dict(s.to_dict()) == s
    sp = SamplingSettings(stop=("</s>",))
    assert SamplingSettings.from_dict(sp.to_dict()) == sp


@pytest.mark.parametrize("changes, field", [
    ({"n_gpu_layers": -2}, "n_gpu_layers"), ({"n_ubatch": 4096, "n_batch": 512}, "n_ubatch"),
    ({"type_k": "q3_0"}, "type_k"), ({"flash_attn": "yes"}, "flash_attn"),
    ({"n_threads": 0}, "n_threads"), ({"tensor_split": (-1.0, 1.0)}, "tensor_split"),
    ({"model_path": ""}, "model_path"), ({"n_ctx": -5}, "n_ctx"),
])
def test_each_bad_value_is_named(changes, field):
    with pytest.raises(SettingsError) as err:
        LoadSettings(model_path="/m.gguf").with_changes(**changes).validated()
    assert field in err.value.problems


ALL_FIELDS = FIELDS + (SPECULATIVE_FIELD,) + DRAFT_FIELDS + DRAFT_LENGTH_FIELDS


@given(st.lists(st.tuples(st.sampled_from([f.name for f in ALL_FIELDS]), st.sampled_from([-1, 1]),
                          st.booleans()), max_size=40))
def test_any_sequence_of_key_presses_gives_valid_settings(presses):
    s = LoadSettings(model_path="/m.gguf")
    for name, direction, big in presses:
        s = step(s, name, direction, n_layer=80, big=big)
        assert s.problems() == {}, (name, direction, s)
        assert s.n_gpu_layers == -1 or 0 <= s.n_gpu_layers <= 80


def test_layer_steps_reach_none_and_all():
    s = LoadSettings(model_path="/m.gguf", n_gpu_layers=1)
    assert step(s, "n_gpu_layers", -1, 80).n_gpu_layers == 0
    assert step(s.with_changes(n_gpu_layers=80), "n_gpu_layers", 1, 80).n_gpu_layers == -1
    assert step(s.with_changes(n_gpu_layers=-1), "n_gpu_layers", -1, 80).n_gpu_layers == 80
    assert step(s.with_changes(n_gpu_layers=40), "n_gpu_layers", 1, 80, big=True).n_gpu_layers == 50


def test_context_moves_by_powers_of_two():
    s = LoadSettings(model_path="/m.gguf", n_ctx=3000)
    assert step(s, "n_ctx", 1, None).n_ctx == 4096
    assert step(s, "n_ctx", -1, None).n_ctx == 2048
    assert step(s.with_changes(n_ctx=4096), "n_ctx", 1, None).n_ctx == 8192


@pytest.mark.parametrize("changes, field", [
    ({"draft_model_path": "/d.gguf", "draft_lookup": True}, "draft_lookup"),
    ({"draft_max": 0}, "draft_max"), ({"draft_max": 65}, "draft_max"),
    ({"draft_min": 17}, "draft_min"), ({"draft_p_min": float("nan")}, "draft_p_min"),
    ({"draft_p_min": 1.5}, "draft_p_min"), ({"draft_type_k": "q3_0"}, "draft_type_k"),
    ({"draft_n_gpu_layers": -2}, "draft_n_gpu_layers"), ({"draft_n_ctx": -1}, "draft_n_ctx"),
])
def test_each_bad_draft_value_is_named(changes, field):
    with pytest.raises(SettingsError) as err:
        LoadSettings(model_path="/m.gguf").with_changes(**changes).validated()
    assert field in err.value.problems


def test_the_draft_loads_with_its_own_file_layers_context_and_kv():
    s = LoadSettings(model_path="/m.gguf", n_ctx=8192, n_gpu_layers=40, type_k="q4_0", flash_attn="on",
                     draft_model_path="/d.gguf", draft_n_gpu_layers=-1, draft_type_k="q8_0")
    d = s.draft_settings()
    assert (d.model_path, d.n_gpu_layers, d.n_ctx, d.type_k, d.flash_attn) == ("/d.gguf", -1, 8192, "q8_0", "on")
    assert not d.speculative and s.speculative == "model" and not s.without_draft().speculative
    assert LoadSettings.from_dict(s.to_dict()) == s


def test_speculative_speed_model():
    # a draft 10x as fast kept 70% of the time, 8 per round: 3.2 tokens per 0.9 s round, 1.8x
    assert speculative_tg(2.0, 20.0, 0.7, 8) == pytest.approx(3.199 / 0.9, rel=0.01)
    assert speculative_tg(2.0, 20.0, 0.0, 8) < 2.0, "a draft that is never right only costs"
    assert speculative_tg(2.0, 0.0, 0.7, 8) == 2.0
    # the H200 host's 70B at 40/81 layers: 3.15 tok/s alone, 1B draft ~250 tok/s, every draft
    # kept, d4: measured 5.27 tok/s (docs/benchmarks.md); the model with the CPU's batch cost
    assert speculative_tg(3.15, 250.0, 1.0, 4, cpu_share=0.95) == pytest.approx(5.27, rel=0.15)
    assert speculative_tg(3.15, 250.0, 0.7, 4, cpu_share=0.95) < 3.15 * 1.0, "measured 2.51 at 70%"
