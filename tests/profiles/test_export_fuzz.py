"""Exports of hostile profile values, each read back by the target's own rules: bash for the
llama-server and llama-cli lines, a YAML parser for llama-swap, Python's parser for the Python
snippet, and Ollama's Modelfile rules (modelfile_rules.py). An export either carries every value
exactly, with nothing added, or refuses with an ExportError naming the value."""

from __future__ import annotations

import ast
import shlex
import subprocess

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.profiles.modelfile_rules import parse_modelfile
from tui.engine.settings import LoadSettings, SamplingSettings
from tui.profiles.export import ExportError, export
from tui.profiles.schema import Profile

PIECES = ["a", "b", " ", '"', "'", "\\", "$", "`", "{", "}", "#", ";", "|", "&", "\n", "\t", "\r", ":",
          "\u200b", "\u202e", "\x00", "\x1b", "\u00a0", "\u2028", "\x85", "\ufeff", "é", "日", '"""',
          "${", "${PORT}", "PORT_MACRO", "\nFROM /evil", "\nADAPTER /x", "$(id)", "--", "-m"]
hostile_text = st.lists(st.sampled_from(PIECES), max_size=8).map("".join)


def _profile(name, path, prompt, stops) -> Profile:
    p = Profile(name=name or "p", load=LoadSettings(model_path=path or "/m.gguf"))
    p.system_prompt = prompt
    p.sampling = SamplingSettings(stop=tuple(s for s in stops if s))
    return p


def _bash_argv(command: str) -> list[str]:
    program, _, rest = command.partition(" ")
    out = subprocess.run(["bash", "-c", f"printf '%s\\0' {program} {rest}"], capture_output=True,
                         timeout=30, check=True)
    return out.stdout.decode("utf-8", "surrogateescape").split("\0")[:-1]


def _check(kind: str, p: Profile) -> None:
    try:
        text = export(p, kind)
    except ExportError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    path = p.load.model_path
    if kind in ("llama-server", "llama-cli"):
        argv = _bash_argv(text)
        assert argv[0] == kind and argv == shlex.split(text)
        assert argv[argv.index("-m") + 1] == path
        if kind == "llama-cli" and p.system_prompt:
            assert argv[argv.index("-sys") + 1] == p.system_prompt
    elif kind == "llama-swap":
        doc = yaml.safe_load(text)
        assert list(doc) == ["models"] and list(doc["models"]) == [p.name]
        cmd = doc["models"][p.name]["cmd"]
        assert cmd.startswith("llama-server --port ${PORT} ") and cmd.count("${") == 1
        argv = shlex.split(cmd)
        assert argv[argv.index("-m") + 1] == path
    elif kind == "python":
        tree = ast.parse(text)
        assert len(tree.body) == 2, "one import and one assignment, nothing else"
        call = tree.body[1].value
        assert isinstance(call, ast.Call)
        values = {k.arg: k.value for k in call.keywords}
        assert ast.literal_eval(values["model_path"]) == path
    else:
        commands = parse_modelfile(text)
        names = [n for n, _ in commands]
        assert names.count("model") == 1 and dict(commands)["model"] == path
        assert not {"adapter", "template", "message", "draft", "license", "renderer", "parser",
                    "requires"} & set(names)
        assert [a for n, a in commands if n == "system"] == ([p.system_prompt] if p.system_prompt else [])
        assert tuple(a for n, a in commands if n == "stop") == p.sampling.stop


@pytest.mark.parametrize("kind", ["llama-server", "llama-cli", "llama-swap", "python", "ollama"])
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=hostile_text, path=hostile_text, prompt=hostile_text, stops=st.lists(hostile_text, max_size=2))
def test_an_export_carries_each_value_exactly_or_refuses(kind, name, path, prompt, stops):
    _check(kind, _profile(name, path, prompt, stops))


@pytest.mark.parametrize("prompt", [
    'a"\u200b""\nADAPTER /evil\nFROM /x',  # Ollama drops U+200B: '"""' closes SYSTEM
    'a"\u00a0""\nFROM /x',  # and a non-breaking space too
    'a""\ufeff"\nTEMPLATE x',
])
def test_an_invisible_character_cannot_close_the_modelfile_system_block(prompt):
    """The report's case. The old check ('\"\"\"' in prompt) let these through, and Ollama read
    ADAPTER, TEMPLATE or a second FROM from the system prompt."""
    with pytest.raises(ExportError, match="system prompt"):
        export(_profile("p", "/m.gguf", prompt, []), "ollama")


@pytest.mark.parametrize("path, words", [
    ("/models/x\u202egguf.exe", r"U\+202E"),
    ("/models/${env.HOME}/m.gguf", r"\$\{"),
    ("/models/${IFS}m.gguf", r"\$\{"),
    ("/models/PORT_MACRO.gguf", None),
])
def test_llama_swap_never_changes_a_value(path, words):
    p = _profile("p", path, "", [])
    if words is None:
        cmd = yaml.safe_load(export(p, "llama-swap"))["models"]["p"]["cmd"]
        assert shlex.split(cmd)[shlex.split(cmd).index("-m") + 1] == path
    else:
        with pytest.raises(ExportError, match=words):
            export(p, "llama-swap")


@pytest.mark.parametrize("flash, line", [
    ("auto", "leave OLLAMA_FLASH_ATTENTION unset"), ("on", "OLLAMA_FLASH_ATTENTION=1"),
    ("off", "OLLAMA_FLASH_ATTENTION=0")])
def test_the_ollama_export_says_flash_attention_as_set(flash, line):
    """Issue 30: flash attention auto came out as OLLAMA_FLASH_ATTENTION=1."""
    p = _profile("p", "/m.gguf", "", [])
    p.load = p.load.with_changes(flash_attn=flash)
    text = export(p, "ollama")
    assert line in text
    if flash == "auto":
        assert "OLLAMA_FLASH_ATTENTION=" not in text
