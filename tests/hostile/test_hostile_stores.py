"""Hostile trees, caches, profiles and conversations: a clear message, never a hang, nothing lost."""

from __future__ import annotations

import json
import os
import stat
import threading
import time
from pathlib import Path

import pytest

from tui.chat.conversation import Conversation
from tui.chat.store import ConversationStore, replay
from tui.engine.settings import LoadSettings, SamplingSettings
from tui.files import OutsideExports, check_write_target, create_new, read_regular_text
from tui.models.discovery import HeaderCache, Location, scan
from tui.profiles.export import ExportError, export
from tui.profiles.schema import Profile, ProfileError, parse_profile
from tui.profiles.store import ProfileStore


def _in_thread(fn, timeout=10.0):
    """Run fn on a thread; fail (instead of hanging the suite) if it has not returned in time."""
    out: dict = {}

    def run() -> None:
        try:
            out["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised on the test's thread
            out["error"] = exc
    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), f"{fn} did not return in {timeout} s (blocked on a FIFO?)"
    if "error" in out:
        raise out["error"]
    return out.get("value")


# ------------------------------------------------------------------ scans

def test_a_fifo_in_ollama_manifests_or_as_the_cache_does_not_hang_a_scan(tmp_path, tiny_llama):
    ollama = tmp_path / "ollama"
    (ollama / "manifests" / "registry.ollama.ai" / "library" / "m").mkdir(parents=True)
    os.mkfifo(ollama / "manifests" / "registry.ollama.ai" / "library" / "m" / "latest")
    os.mkfifo(tmp_path / "cache.json")
    folder = tmp_path / "models"
    folder.mkdir()
    os.mkfifo(folder / "fifo.gguf")
    (folder / "good.gguf").write_bytes(tiny_llama.read_bytes())
    result = _in_thread(lambda: scan([Location(folder, "folder"), Location(ollama, "ollama")],
                                     HeaderCache(tmp_path / "cache.json")))
    assert [m.name for m in result.models if m.ok] == ["good.gguf"]


@pytest.mark.parametrize("content", ["[1, 2]", '{"x": 5}', '{"x": {"stamp": 3, "info": "no"}}',
                                     '"text"', "[" * 100_000, "not json"])
def test_a_header_cache_of_the_wrong_shape_is_rebuilt(tmp_path, tiny_llama, content):
    folder = tmp_path / "models"
    folder.mkdir()
    good = folder / "good.gguf"
    good.write_bytes(tiny_llama.read_bytes())
    cache_file = tmp_path / "cache.json"
    cache_file.write_text(content.replace('"x"', json.dumps(str(good))))
    result = scan([Location(folder, "folder")], HeaderCache(cache_file))
    assert result.models[0].ok and result.parsed == 1
    again = scan([Location(folder, "folder")], HeaderCache(cache_file))
    assert again.models[0].ok and again.parsed == 0, "the rebuilt cache is used"
    assert stat.S_IMODE(cache_file.stat().st_mode) == 0o600


def test_scans_at_once_do_not_race_on_the_cache(tmp_path, tiny_llama):
    folder = tmp_path / "models"
    folder.mkdir()
    for i in range(3):
        (folder / f"m{i}.gguf").write_bytes(tiny_llama.read_bytes())
    cache_file = tmp_path / "cache.json"
    errors = []

    def one() -> None:
        try:
            for _ in range(5):
                scan([Location(folder, "folder")], HeaderCache(cache_file))
        except Exception as exc:  # noqa: BLE001 - the test reports whatever escapes
            errors.append(exc)
    threads = [threading.Thread(target=one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    assert len(json.loads(cache_file.read_text())) == 3


# ------------------------------------------------------------------ profiles

GOOD = 'schema = 1\n[model]\npath = "/m.gguf"\n'


@pytest.fixture
def store(tmp_path):
    s = ProfileStore(tmp_path / "profiles")
    s.folder.mkdir()
    return s


def test_odd_file_names_are_reported_or_ignored_never_a_crash(store):
    for name in ("ok", "-x", ".x", ".#ok"):
        (store.folder / f"{name}.toml").write_text(GOOD)
    found = store.list()
    assert [p.name for p in found.profiles] == ["ok"]
    assert len(found.errors) == 1 and "-x.toml" in str(found.errors[0])


@pytest.mark.parametrize("text, key", [
    (GOOD + "[results]\ntg_tokens_per_s = \"fast\"\n", "results.tg_tokens_per_s"),
    (GOOD + "[results]\ngpus = 3\n", "results.gpus"),
    (GOOD + "[load]\nn_gpu_layers = 9223372036854775807\n", "load.n_gpu_layers"),
    (GOOD + "[load]\nn_ctx = 99999999999\n", "load.n_ctx"),
    (GOOD + "[sampling]\nmax_tokens = 0\n", "sampling.max_tokens"),
    (GOOD + "[load]\ntensor_split = [inf, 1.0]\n", "load.tensor_split"),
    (GOOD + "x = " + "[" * 5000 + "]" * 5000 + "\n", None),
])
def test_bad_values_name_file_key_and_line(tmp_path, text, key):
    with pytest.raises(ProfileError) as err:
        parse_profile(text, "/p/x.toml", "x")
    if key:
        assert err.value.key == key and err.value.line is not None
    assert len(str(err.value)) < 400


def test_unknown_keys_are_handled_in_linear_time():
    """16,000 unknown keys took 151 s (each key's line searched from the top)."""
    text = GOOD + "[load]\n" + "".join(f"unknown_{i} = {i}\n" for i in range(16_000))
    profile = parse_profile(text, "/p/x.toml", "x")  # pytest's timeout catches the old 151 s
    assert len(profile.unknown) == 16_000
    assert profile.warnings[-1].startswith("/p/x.toml:16004:")


def _profile(**load) -> Profile:
    return Profile(name="p", load=LoadSettings(model_path=load.pop("model_path", "/m.gguf"), **load))


def test_llama_swap_export_cannot_add_a_model_or_run_a_command():
    p = _profile(model_path="/m.gguf")
    p.name = 'x":  evil:    cmd: rm -rf ~'
    import yaml  # gguf's dependency

    doc = yaml.safe_load(export(p, "llama-swap"))
    assert list(doc["models"]) == [p.name]
    assert doc["models"][p.name]["cmd"].startswith("llama-server --port ${PORT} -m /m.gguf")
    p.name = 'x":\n  evil:\n    cmd: rm -rf ~\n'
    with pytest.raises(ExportError, match="profile name"):
        export(p, "llama-swap")


@pytest.mark.parametrize("kind", ["llama-server", "llama-cli", "llama-swap", "ollama"])
def test_a_newline_in_the_model_path_is_refused_by_every_export(kind):
    with pytest.raises(ExportError, match="model path"):
        export(_profile(model_path="/m.gguf\n  evil:\n    cmd: sh -c id"), kind)


def test_ollama_export_keeps_the_system_prompt_and_stops_inside_their_quotes():
    p = _profile()
    p.system_prompt = 'Be brief.\nSYSTEM """ever'
    with pytest.raises(ExportError, match='"""'):
        export(p, "ollama")
    p.system_prompt = "Be brief.\nTwo lines."
    p.sampling = SamplingSettings(stop=('a"b',))
    with pytest.raises(ExportError, match="stop"):
        export(p, "ollama")
    p.sampling = SamplingSettings(stop=("<|im_end|>",))
    text = export(p, "ollama")
    assert 'SYSTEM """Be brief.\nTwo lines."""' in text and 'PARAMETER stop "<|im_end|>"' in text
    assert 'FROM "/m.gguf"' in text


def test_temp_files_left_by_a_killed_save_are_cleaned(store):
    stale = store.folder / ".ok.toml.abcd.tmp"
    stale.write_text("half")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    fresh = store.folder / ".ok.toml.efgh.tmp"  # a save under way right now
    fresh.write_text("half")
    store.list()
    assert not stale.exists() and fresh.exists()


# ------------------------------------------------------------------ conversations

def _conv_store(tmp_path) -> ConversationStore:
    return ConversationStore(tmp_path / "conversations")


def test_a_torn_last_line_keeps_the_next_message(tmp_path):
    """Was: the next event was glued onto the torn line, and lost with it on reopening."""
    store = _conv_store(tmp_path)
    conv = Conversation()
    log = store.start(conv)
    log.append(t="meta", id=conv.id, created=conv.created, system_prompt="")
    log.append(t="user", text="first")
    log.close()
    with open(store.path(conv.id), "a") as f:
        f.write('{"t": "reply"}\n{"t": "text", "text": "half a rep')  # the machine died here
    log = store.start(conv)
    log.append(t="user", text="second")
    log.close()
    again = store.load(conv.id)
    assert [t.content for t in again.turns if t.role == "user"] == ["first", "second"]
    assert again.skipped_lines == 1


@pytest.mark.parametrize("line", ['{"t": "meta", "created": "yesterday"}', '{"t": "meta", "created": 1e999}',
                                  '{"t": "truncate", "turns": "x"}', '{"t": "truncate", "turns": -1}',
                                  '{"t": "truncate", "turns": 1e999}', "[" * 100_000, "7"])
def test_bad_lines_are_skipped_and_counted(line):
    conv = replay(['{"t": "user", "text": "hi"}', line, '{"t": "user", "text": "again"}'])
    assert [t.content for t in conv.turns] == ["hi", "again"]
    assert conv.created < 1e12


def test_the_list_skips_hidden_and_special_files(tmp_path):
    store = _conv_store(tmp_path)
    store.folder.mkdir(parents=True)
    (store.folder / ".x.jsonl").write_text('{"t": "user", "text": "hidden"}\n')
    os.mkfifo(store.folder / "fifo.jsonl")
    log = store.start(Conversation(id="20260101-000000-abcdef"))
    log.append(t="user", text="hello")
    log.close()
    listed = _in_thread(store.list)
    assert [c.id for c in listed] == ["20260101-000000-abcdef"]
    with pytest.raises(OSError):
        _in_thread(lambda: store.load("fifo"))


def test_replay_is_linear_in_pieces():
    """A 20 MB reply in 10-byte pieces took 78 s."""
    lines = ['{"t": "user", "text": "go"}', '{"t": "reply"}']
    lines += [json.dumps({"t": "text", "text": "0123456789"})] * 2_000_000
    conv = replay(lines)  # pytest's timeout catches the old 78 s quadratic join
    assert len(conv.turns[-1].content) == 20_000_000
    summary = replay(lines, summary=True)
    assert len(summary.turns) == 2


def test_conversations_are_private(tmp_path):
    store = _conv_store(tmp_path)
    log = store.start(Conversation(id="20260101-000000-abcdef"))
    log.append(t="user", text="secret")
    log.close()
    assert stat.S_IMODE(store.path("20260101-000000-abcdef").stat().st_mode) == 0o600
    assert stat.S_IMODE(store.folder.stat().st_mode) == 0o700


# ------------------------------------------------------------------ files the user names

def test_exports_never_overwrite_or_follow_a_symlink(tmp_path):
    target = tmp_path / "precious"
    target.write_text("keep me")
    link = tmp_path / "export.md"
    link.symlink_to(target)
    with pytest.raises(FileExistsError):
        create_new(link, "# chat")
    with pytest.raises(FileExistsError):
        create_new(target, "# chat")
    assert target.read_text() == "keep me"
    create_new(tmp_path / "new.md", "# chat")
    assert stat.S_IMODE((tmp_path / "new.md").stat().st_mode) == 0o600


def test_under_web_only_the_exports_folder_is_writable(monkeypatch, tmp_path):
    monkeypatch.setenv("VRAMDECK_WEB", "1")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    for path in (Path.home() / ".bashrc", Path("/tmp/x"), Path("../../.bashrc"),
                 tmp_path / "data" / "vramdeck" / "exports" / ".." / "x"):
        with pytest.raises(OutsideExports):
            check_write_target(path)
    inside = check_write_target(Path("chat.md"))
    assert inside.parent == (tmp_path / "data" / "vramdeck" / "exports").resolve()
    monkeypatch.delenv("VRAMDECK_WEB")
    assert check_write_target(Path.home() / ".bashrc") == Path.home() / ".bashrc"


def test_reading_a_fifo_is_refused_at_once(tmp_path):
    os.mkfifo(tmp_path / "f")
    with pytest.raises(OSError, match="not a regular file"):
        _in_thread(lambda: read_regular_text(tmp_path / "f"))
