"""Profiles: TOML round trip, errors that name file/key/line, unknown keys kept, atomic writes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from argparse import Namespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tui.engine.settings import LoadSettings, SamplingSettings
from tui.profiles.export import ExportError, export
from tui.profiles.schema import Profile, ProfileError, parse_profile, profile_to_toml
from tui.profiles.store import ProfileExists, ProfileStore, diff

GOOD = """schema = 1
notes = "fits a 3090"
system_prompt = "Be brief."

[model]
path = "/models/llama-70b.gguf"
size_bytes = 42473981088

[load]
n_gpu_layers = 40
n_ctx = 8192
type_k = "q8_0"
type_v = "q8_0"
flash_attn = "on"

[sampling]
temperature = 0.2
"""


def test_round_trip_keeps_every_setting(tmp_path, demo_model):
    store = ProfileStore(tmp_path)
    p = Profile(name="demo", load=LoadSettings(model_path=str(demo_model), n_gpu_layers=12, n_ctx=1024,
                                               type_k="q4_0", type_v="q4_0", tensor_split=(1.0, 2.0)),
                sampling=SamplingSettings(temperature=0.3, stop=("</s>",)), system_prompt="Hi",
                notes="n", results={"tg_tokens_per_s": 171.4, "gpus": ["RTX 3090"]})
    store.save(p)
    again = ProfileStore(tmp_path).load("demo")  # a fresh store: as after a restart
    assert again.load == p.load and again.sampling == p.sampling
    assert again.system_prompt == "Hi" and again.results["tg_tokens_per_s"] == 171.4
    assert again.model_size_bytes == demo_model.stat().st_size and len(again.model_fingerprint) == 24
    with pytest.raises(ProfileExists):
        store.save(p)
    store.save(p, overwrite=True)


@pytest.mark.parametrize("change, key, line, words", [
    (("n_ctx = 8192", "n_ctx = -3"), "load.n_ctx", 11, "between 0"),
    (('type_k = "q8_0"', 'type_k = "q3_0"'), "load.type_k", 12, "one of"),
    (("n_gpu_layers = 40", 'n_gpu_layers = "many"'), "load.n_gpu_layers", 10, "number"),
    (("temperature = 0.2", "temperature = 9.0"), "sampling.temperature", 17, "between 0 and 5"),
    (('path = "/models/llama-70b.gguf"', ""), "model.path", 5, "missing"),
    (("schema = 1", "schema = 7"), "schema", 1, "newer vramdeck"),
    (("[load]", "[load"), None, 9, "not valid TOML"),
])
def test_errors_name_the_file_the_key_and_the_line(change, key, line, words):
    with pytest.raises(ProfileError) as err:
        parse_profile(GOOD.replace(*change), "/cfg/p.toml", "p")
    e = err.value
    assert e.path == "/cfg/p.toml" and e.key == key and e.line == line, str(e)
    assert words in str(e) and str(e).startswith(f"/cfg/p.toml:{line}")


def test_unknown_keys_are_kept_and_warned_about():
    text = GOOD.replace("schema = 1\n", "schema = 1\nfuture_option = true\n") + "\n[load.extra]\nx = 1\n"
    text = text.replace('flash_attn = "on"', 'flash_attn = "on"\nrope_scale = 2.0')
    p = parse_profile(text, "/cfg/p.toml", "p")
    assert p.unknown["future_option"] is True and p.unknown["load.rope_scale"] == 2.0
    assert p.unknown["load.extra"] == {"x": 1}
    assert any("future_option" in w and ":2:" in w for w in p.warnings)
    assert any("rope_scale" in w and ":16:" in w for w in p.warnings)
    again = parse_profile(profile_to_toml(p), "/cfg/p.toml", "p")
    assert again.unknown == p.unknown, "written back unchanged, never dropped"


def test_one_broken_file_does_not_hide_the_others(tmp_path):
    (tmp_path / "good.toml").write_text(GOOD)
    (tmp_path / "bad.toml").write_text("schema = 1\n[model]\npath = 3\n")
    (tmp_path / "binary.toml").write_bytes(b"\xff\xfe\x00garbage")
    found = ProfileStore(tmp_path).list()
    assert [p.name for p in found.profiles] == ["good"]
    assert len(found.errors) == 2 and all(str(tmp_path) in str(e) for e in found.errors)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_fuzzed_text_never_crashes_the_loader(text):
    try:
        parse_profile(text, "/f.toml", "f")
    except ProfileError as exc:
        assert str(exc).startswith("/f.toml")


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["n_gpu_layers", "n_ctx", "type_k", "flash_attn", "use_mmap",
                                        "n_threads", "tensor_split", "n_batch", "odd"]),
                       st.one_of(st.integers(-5, 10**7), st.text(max_size=5), st.booleans(),
                                 st.floats(allow_nan=True), st.lists(st.integers(-2, 3), max_size=3))))
def test_fuzzed_values_give_a_profile_or_a_clear_error(load):
    import tomli_w

    text = "schema = 1\n[model]\npath = '/m.gguf'\n" + tomli_w.dumps({"load": load})
    try:
        p = parse_profile(text, "/f.toml", "f")
    except ProfileError as exc:
        assert exc.path == "/f.toml"
    else:
        assert p.load.problems() == {}


WRITER = """
import sys, itertools
from pathlib import Path
from tui.profiles.store import write_atomically
path = Path(sys.argv[1])
for i in itertools.count():
    write_atomically(path, ("version %d\\n" % (i % 2)) * 20000)
"""


def test_a_writer_killed_at_any_moment_leaves_the_old_file_or_the_new(tmp_path):
    target = tmp_path / "p.toml"
    target.write_text("version 1\n" * 20000)
    valid = {("version %d\n" % v) * 20000 for v in (0, 1)}
    for _ in range(15):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(target)])
        time.sleep(0.05 + (_ % 5) * 0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert target.read_text() in valid
    leftovers = [p for p in tmp_path.iterdir() if p.name != "p.toml"]
    assert all(p.name.startswith(".p.toml.") for p in leftovers)  # temp files, never the profile


def test_exports_use_the_flags_llama_cpp_knows():
    p = parse_profile(GOOD, "/cfg/p.toml", "p")
    server = export(p, "llama-server")
    for flag in ("-m /models/llama-70b.gguf", "-ngl 40", "-c 8192", "-ctk q8_0", "-ctv q8_0", "-fa on",
                 "-b 2048", "-ub 512", "--temp 0.2"):
        assert flag in server
    assert "-cnv" in export(p, "llama-cli") and "-sys 'Be brief.'" in export(p, "llama-cli")
    code = export(p, "python")
    compile(code, "export.py", "exec")
    assert "n_gpu_layers=40" in code and "type_k=8" in code


def test_diff_lists_what_differs():
    a = parse_profile(GOOD, "/a.toml", "a")
    b = parse_profile(GOOD.replace("n_ctx = 8192", "n_ctx = 4096"), "/b.toml", "b")
    assert diff(a, b) == [("load.n_ctx", 8192, 4096)]


def test_profile_start_up_uses_its_settings(tmp_path, monkeypatch, demo_model):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    store = ProfileStore()
    assert str(tmp_path) in str(store.folder)
    store.save(Profile(name="small", load=LoadSettings(model_path=str(demo_model), n_ctx=1024),
                       sampling=SamplingSettings(temperature=0.1), system_prompt="Be terse."))
    from tui.commands.run_app import make_app

    args = Namespace(profile="small", model=None, n_gpu_layers=-1, ctx=4096, kv="f16",
                     flash_attn="auto", refresh=1.0)
    app = make_app(args)
    assert app.current_settings.n_ctx == 1024 and app.sampling.temperature == 0.1
    assert app.system_prompt == "Be terse."
    bad = subprocess.run([sys.executable, "-m", "tui", "--profile", "nope"], capture_output=True,
                         text=True, env={**os.environ, "XDG_CONFIG_HOME": str(tmp_path)})
    assert bad.returncode == 1 and "no profile named 'nope'" in bad.stderr


def test_llama_swap_and_ollama_exports_use_their_own_keys():
    """Checked against what they accept: llama-swap's config (models: NAME: cmd, ${PORT} macro,
    ttl) and Ollama's Modelfile (FROM, PARAMETER num_ctx / num_gpu / temperature ..., SYSTEM)."""
    p = parse_profile(GOOD, "/cfg/p.toml", "p")
    import yaml  # gguf's dependency

    swap = yaml.safe_load(export(p, "llama-swap"))
    cmd = swap["models"]["p"]["cmd"]
    assert cmd.startswith("llama-server --port ${PORT} -m /models/llama-70b.gguf -ngl 40")
    assert "-ctk q8_0" in cmd and swap["models"]["p"]["ttl"] == 600
    modelfile = export(p, "ollama").splitlines()
    assert 'FROM "/models/llama-70b.gguf"' in modelfile
    for line in ("PARAMETER num_ctx 8192", "PARAMETER num_gpu 40", "PARAMETER temperature 0.2",
                 'SYSTEM """Be brief."""'):
        assert line in modelfile
    allowed = {"FROM", "PARAMETER", "SYSTEM", "#"}
    assert all(line.split(" ", 1)[0] in allowed for line in modelfile if line)
    ollama_params = {"num_ctx", "num_batch", "num_gpu", "num_thread", "temperature", "top_p",
                     "top_k", "min_p", "repeat_penalty", "repeat_last_n", "num_predict", "seed",
                     "stop"}
    assert {line.split()[1] for line in modelfile if line.startswith("PARAMETER")} <= ollama_params


def test_a_profile_from_another_machine_says_so():
    from tui.monitor.fake import FakeGpu, FakeNvml, FakeSampler
    from tui.profiles.portable import machine_mismatch, machine_record

    here = FakeSampler(FakeNvml([FakeGpu(name="NVIDIA H100 80GB HBM3", total=80 * 2**30)])).sample(None, None)
    p = parse_profile(GOOD, "/cfg/p.toml", "p")
    p.results = machine_record(here, "0.3.36")
    assert machine_mismatch(p, here) == ""
    there = FakeSampler(FakeNvml([FakeGpu(), FakeGpu()])).sample(None, None)  # two RTX 3090s
    message = machine_mismatch(p, there)
    assert "NVIDIA H100 80GB HBM3 (80 GiB)" in message and "RTX 3090 (24 GiB) + " in message
    assert "f fits it" in message
    p.results = {}
    assert machine_mismatch(p, there) == ""  # nothing recorded: nothing to compare


def test_moe_experts_on_cpu_export_as_llama_cpp_flag():
    p = parse_profile(GOOD, "/cfg/p.toml", "p")
    p.load = p.load.with_changes(n_cpu_moe=12)
    assert "--n-cpu-moe 12" in export(p, "llama-server")
    assert "--n-cpu-moe 12" in export(p, "llama-swap")
    assert "--n-cpu-moe" not in export(parse_profile(GOOD, "/cfg/p.toml", "p"), "llama-server")


DRAFT = GOOD.replace('flash_attn = "on"', '''flash_attn = "on"
draft_model_path = "/models/llama-3.2-1b Q8_0.gguf"
draft_n_gpu_layers = -1
draft_n_ctx = 4096
draft_type_k = "q8_0"
draft_type_v = "q8_0"
draft_max = 8
draft_min = 2
draft_p_min = 0.6''')


def test_a_draft_model_travels_in_the_profile_and_its_exports(tmp_path):
    p = parse_profile(DRAFT, "/cfg/p.toml", "p")
    assert p.load.speculative == "model" and p.load.draft_max == 8 and p.load.draft_p_min == 0.6
    assert parse_profile(profile_to_toml(p), "/cfg/p.toml", "p").load == p.load
    server = export(p, "llama-server")
    for flag in ("-md '/models/llama-3.2-1b Q8_0.gguf'", "-ngld 999", "-cd 4096", "-ctkd q8_0",
                 "-ctvd q8_0", "--draft-max 8", "--draft-min 2", "--draft-p-min 0.6"):
        assert flag in server, flag
    assert "-md '/models/llama-3.2-1b Q8_0.gguf'" in export(p, "llama-swap").replace('\\"', '"')
    assert "no draft models" in export(p, "ollama")
    compile(export(p, "python"), "export.py", "exec")


def test_prompt_lookup_exports_to_python_and_a_bad_draft_setting_names_its_line():
    p = parse_profile(GOOD.replace('flash_attn = "on"', 'flash_attn = "on"\ndraft_lookup = true\ndraft_max = 10'),
                      "/cfg/p.toml", "p")
    code = export(p, "python")
    compile(code, "export.py", "exec")
    assert "LlamaPromptLookupDecoding(num_pred_tokens=10)" in code
    assert "-md" not in export(p, "llama-server")
    with pytest.raises(ProfileError) as err:
        parse_profile(DRAFT.replace("draft_max = 8", "draft_max = 900"), "/cfg/p.toml", "p")
    assert err.value.key == "load.draft_max" and err.value.line == 20
    hostile = parse_profile(DRAFT.replace('draft_model_path = "/models', 'draft_model_path = "/models/x\\u001b[2J'),
                            "/cfg/p.toml", "p")
    with pytest.raises(ExportError, match=r"the draft model path holds U\+001B"):
        export(hostile, "llama-server")


def test_results_keep_the_spread_and_the_quality_against_the_reference(tmp_path, demo_model):
    import numpy as np

    from tui.profiles.portable import measured_results
    from tui.profiles.tried import Spread
    from tui.quality.figures import figures

    n = 300
    quality = figures(np.full(n, 0.02), np.full(n, 3.1), np.full(n, 3.0), np.ones(n, np.uint8))
    results = measured_results({"gpus": []}, (), 0.4, 120.0, 30.5, Spread(4.0, 0.8, 5), quality, "m-F16.gguf")
    store = ProfileStore(tmp_path)
    store.save(Profile(name="q", load=LoadSettings(model_path=str(demo_model)), results=results))
    r = ProfileStore(tmp_path).load("q").results
    assert r["tg_tokens_per_s"] == 30.5 and r["tg_stdev"] == 0.8 and r["runs"] == 5
    assert r["kld_mean"] == 0.02 and r["same_top"] == 1.0 and r["quality_reference"] == "m-F16.gguf"
    assert r["ppl_ratio"] == pytest.approx(np.exp(0.1), abs=1e-5) and r["quality_tokens"] == n


def test_a_mistyped_quality_result_names_its_key_and_line():
    text = GOOD + '\n[results]\ntg_tokens_per_s = 30.5\nkld_mean = "low"\n'
    with pytest.raises(ProfileError) as err:
        parse_profile(text, "/cfg/p.toml", "p")
    assert err.value.key == "results.kld_mean" and err.value.line == 21 and "must be a number" in str(err.value)
