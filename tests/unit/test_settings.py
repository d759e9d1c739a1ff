import pytest
from hypothesis import given
from hypothesis import strategies as st

from tui.engine.settings import LoadSettings, SamplingSettings, SettingsError
from tui.widgets.settings_steps import FIELDS, step


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


@given(st.lists(st.tuples(st.sampled_from([f.name for f in FIELDS]), st.sampled_from([-1, 1]),
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
