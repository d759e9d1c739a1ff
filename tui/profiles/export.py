"""A profile as the command that runs the same set-up outside vramdeck."""

from __future__ import annotations

import json
import shlex
import unicodedata

from tui.engine.settings import ALL_LAYERS, GGML_TYPE_IDS
from tui.profiles.schema import Profile

FLASH = {"on": "on", "off": "off", "auto": "auto"}
UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
"""Control, format (invisible: U+200B, U+202E...), surrogate, private-use, unassigned, line and
paragraph separators: each can end a line or a quote, vanish in a parser (Ollama drops what Go's
strconv.IsPrint rejects) or hide what a command does from the person who reads it."""


class ExportError(ValueError):
    """A profile value that the target format cannot carry safely (it would change the command
    or the file's structure); the message names the value."""


def _char_name(c: str) -> str:
    return f"U+{ord(c):04X}" + (f" ({unicodedata.name(c)})" if unicodedata.name(c, "") else "")


def unsafe_char(value: str, allowed: str = "") -> str | None:
    """The first character of `value` that no export carries safely (see UNSAFE_CATEGORIES)."""
    return next((c for c in value if c not in allowed and unicodedata.category(c) in UNSAFE_CATEGORIES), None)


def _refuse(value: str, what: str, extra: str = "", allowed: str = "") -> None:
    bad = unsafe_char(value, allowed)
    if bad is not None:
        raise ExportError(f"{what} holds {_char_name(bad)}, a control or invisible character that no "
                          f"export carries safely{extra}; change it and export again")


def _values(p: Profile) -> list[tuple[str, str, str, str]]:
    """Every text value an export can carry: (value, what it is, advice, characters allowed)."""
    out = [(p.name, "the profile name", " (rename the profile)", ""),
           (p.load.model_path, "the model path", " (rename the file)", ""),
           (p.load.draft_model_path, "the draft model path", " (rename the file)", ""),
           (p.system_prompt, "the system prompt", "", "\n\t")]
    return out + [(stop, f"the stop string {stop!r}", "", "") for stop in p.sampling.stop]


def _check_exportable(p: Profile) -> None:
    """Profiles get shared: an export must never carry code, so values that could end a line or
    a quote in the target format, or change as it is read, are refused rather than passed on."""
    for value, what, extra, allowed in _values(p):
        _refuse(value, what, extra, allowed)


def llama_args(p: Profile) -> list[str]:
    s = p.load
    args = ["-m", s.model_path, "-ngl", "999" if s.n_gpu_layers == ALL_LAYERS else str(s.n_gpu_layers),
            "-c", str(s.n_ctx), "-b", str(s.n_batch), "-ub", str(s.n_ubatch),
            "-ctk", s.type_k, "-ctv", s.type_v, "-fa", FLASH[s.flash_attn]]
    if s.n_threads:
        args += ["-t", str(s.n_threads)]
    if s.n_threads_batch:
        args += ["-tb", str(s.n_threads_batch)]
    if s.tensor_split:
        args += ["-ts", ",".join(f"{x:g}" for x in s.tensor_split)]
    if s.split_mode != "layer":
        args += ["-sm", s.split_mode]
    if s.main_gpu:
        args += ["-mg", str(s.main_gpu)]
    if s.n_cpu_moe:
        args += ["--n-cpu-moe", str(s.n_cpu_moe)]
    if not s.offload_kqv:
        args.append("-nkvo")
    if s.use_mlock:
        args.append("--mlock")
    if not s.use_mmap:
        args.append("--no-mmap")
    return args + draft_args(p)


def draft_args(p: Profile) -> list[str]:
    """llama-server's speculative-decoding options for the profile's draft model. Prompt lookup
    has no llama-server option: it is left out (the Python export carries it)."""
    s = p.load
    if not s.draft_model_path:
        return []
    return ["-md", s.draft_model_path,
            "-ngld", "999" if s.draft_n_gpu_layers == ALL_LAYERS else str(s.draft_n_gpu_layers),
            "-cd", str(s.draft_n_ctx or s.n_ctx), "-ctkd", s.draft_type_k, "-ctvd", s.draft_type_v,
            "--draft-max", str(s.draft_max), "--draft-min", str(s.draft_min),
            "--draft-p-min", f"{s.draft_p_min:g}"]


def export(p: Profile, kind: str) -> str:
    """The profile as `kind`; ExportError when a value cannot be carried safely."""
    _check_exportable(p)
    if kind == "llama-server":
        return shlex.join(["llama-server", *llama_args(p), "--temp", f"{p.sampling.temperature:g}",
                           "--top-p", f"{p.sampling.top_p:g}", "--top-k", str(p.sampling.top_k),
                           "--min-p", f"{p.sampling.min_p:g}"])
    if kind == "llama-cli":
        args = ["llama-cli", *llama_args(p), "-cnv", "--temp", f"{p.sampling.temperature:g}"]
        if p.system_prompt:
            args += ["-sys", p.system_prompt]
        return shlex.join(args)
    if kind == "python":
        s = p.load
        ngl = -1 if s.n_gpu_layers == ALL_LAYERS else s.n_gpu_layers
        return (f"from llama_cpp import Llama\n\nllm = Llama(\n    model_path={s.model_path!r},\n"
                f"    n_gpu_layers={ngl},\n    n_ctx={s.n_ctx},\n    n_batch={s.n_batch},\n"
                f"    n_ubatch={s.n_ubatch},\n    flash_attn={s.flash_attn == 'on'},\n"
                f"    type_k={GGML_TYPE_IDS[s.type_k]},  # {s.type_k}\n"
                f"    type_v={GGML_TYPE_IDS[s.type_v]},  # {s.type_v}\n"
                f"    offload_kqv={s.offload_kqv},\n    use_mmap={s.use_mmap},\n"
                f"    use_mlock={s.use_mlock},\n{_python_draft(s)})\n")
    if kind == "llama-swap":
        return llama_swap(p)
    if kind == "ollama":
        return ollama_modelfile(p)
    raise ValueError(f"unknown export kind {kind!r} ({', '.join(KINDS)})")


def _python_draft(s) -> str:
    if s.draft_lookup:
        return (f"    draft_model=__import__('llama_cpp.llama_speculative').llama_speculative"
                f".LlamaPromptLookupDecoding(num_pred_tokens={s.draft_max}),\n")
    if s.draft_model_path:
        return ("    # speculative decoding with a draft model: llama-cpp-python's Llama has none;\n"
                "    # the llama-server export carries it (-md ...)\n")
    return ""


KINDS = ("llama-server", "llama-cli", "python", "llama-swap", "ollama")


def llama_swap(p: Profile) -> str:
    """An entry for llama-swap's config.yaml: it starts llama-server on ${PORT} when asked for
    this model by name. llama-swap expands `${...}` (its macros, ${env.NAME}) anywhere in cmd and
    has no escape for it, so a value holding `${` is refused."""
    for value, what, extra, _ in _values(p):
        if "${" in value:
            raise ExportError(f"{what} holds '${{', which llama-swap would expand as a macro{extra}; "
                              "change it and export again")
    rest = shlex.join([*llama_args(p), "--temp", f"{p.sampling.temperature:g}",
                       "--top-p", f"{p.sampling.top_p:g}", "--top-k", str(p.sampling.top_k),
                       "--min-p", f"{p.sampling.min_p:g}"])
    cmd = "llama-server --port ${PORT} " + rest
    # JSON strings are YAML double-quoted scalars: every quote, backslash and line break escaped
    return f"models:\n  {json.dumps(p.name)}:\n    cmd: {json.dumps(cmd)}\n    ttl: 600\n"


def _go_printable(c: str) -> bool:
    """Go's strconv.IsPrint: letters, marks, numbers, punctuation and symbols (and ASCII space)."""
    return unicodedata.category(c)[0] in "LMNPS"


def ollama_modelfile(p: Profile) -> str:
    """An Ollama Modelfile (`ollama create NAME -f Modelfile`). Ollama sets the KV-cache type and
    flash attention for the whole server, so those are comments with the variables to set.
    Its values are quoted the Modelfile way; what that cannot quote is refused (ExportError)."""
    s, x = p.load, p.sampling
    for value, what, extra, allowed in _values(p):
        # Ollama's parser keeps only what Go's strconv.IsPrint accepts (and spaces, tabs and line
        # breaks between tokens): an invisible character would vanish, and `"` U+00A0 `""` become `"""`
        bad = next((c for c in value if c not in allowed and c != " " and not _go_printable(c)), None)
        if bad is not None:
            raise ExportError(f"{what} holds {_char_name(bad)}, which Ollama's Modelfile parser drops, "
                              f"changing the text around it{extra}; change it and export again")
    if '"' in s.model_path:
        raise ExportError('the model path holds a double quote ("), which a Modelfile cannot '
                          "quote; rename the file")
    if '"""' in p.system_prompt or p.system_prompt.endswith('"'):
        raise ExportError('the system prompt holds """ (or ends with "), which would end the '
                          "Modelfile's SYSTEM block; change it and export again")
    for stop in x.stop:
        if '"' in stop or "\\" in stop:
            raise ExportError(f"the stop string {stop!r} holds a quote or a backslash, which a "
                              "Modelfile stop parameter cannot carry")
    lines = [f"# vramdeck profile {p.name!r}",
             f"# KV cache {s.type_k}/{s.type_v}, flash attention {s.flash_attn}: Ollama takes these "
             f"from its server's environment:",
             f"#   OLLAMA_KV_CACHE_TYPE={s.type_k}" + {
                 "on": " OLLAMA_FLASH_ATTENTION=1", "off": " OLLAMA_FLASH_ATTENTION=0",
                 "auto": " (flash attention auto: leave OLLAMA_FLASH_ATTENTION unset, Ollama decides)"}[s.flash_attn],
             f'FROM "{s.model_path}"',
             f"PARAMETER num_ctx {s.n_ctx}",
             f"PARAMETER num_batch {s.n_batch}"]
    if s.n_gpu_layers != ALL_LAYERS:
        lines.append(f"PARAMETER num_gpu {s.n_gpu_layers}")
    else:
        lines.append("PARAMETER num_gpu 999")
    if s.n_threads:
        lines.append(f"PARAMETER num_thread {s.n_threads}")
    lines += [f"PARAMETER temperature {x.temperature:g}", f"PARAMETER top_p {x.top_p:g}",
              f"PARAMETER top_k {x.top_k}", f"PARAMETER min_p {x.min_p:g}",
              f"PARAMETER repeat_penalty {x.repeat_penalty:g}",
              f"PARAMETER repeat_last_n {x.repeat_last_n}", f"PARAMETER num_predict {x.max_tokens}"]
    if x.seed >= 0:
        lines.append(f"PARAMETER seed {x.seed}")
    lines += [f'PARAMETER stop "{stop}"' for stop in x.stop]
    if p.system_prompt:
        lines.append(f'SYSTEM """{p.system_prompt}"""')
    if s.speculative:
        lines.insert(3, "#   (speculative decoding: Ollama has no draft models; the llama-server export has it)")
    if s.use_mlock or not s.use_mmap:  # not Modelfile parameters in current Ollama
        lines.insert(3, f"#   (mlock {'on' if s.use_mlock else 'off'}, mmap {'on' if s.use_mmap else 'off'}: "
                        "not settable per model in Ollama)")
    return "\n".join(lines) + "\n"
