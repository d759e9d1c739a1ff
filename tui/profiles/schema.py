"""A profile: a set-up that worked, as TOML. Data only: nothing in it is ever executed.

    schema = 1
    notes = "fits a 3090 with 8k context"
    system_prompt = "You are a helpful assistant."
    [model]    path, size_bytes, fingerprint
    [load]     the LoadSettings fields
    [sampling] the SamplingSettings fields
    [results]  what was measured: gpus, date, pp/tg tok/s, vram_bytes

Errors name the file, the key and its line. Keys vramdeck does not know are kept (and written
back) and reported as warnings, never dropped.
"""

from __future__ import annotations

import functools
import re
import tomllib
from dataclasses import dataclass, field, fields
from typing import Any

import tomli_w

from tui.engine.settings import LoadSettings, SamplingSettings, SettingsError

SCHEMA_VERSION = 1
_TOP = {"schema", "notes", "system_prompt", "model", "load", "sampling", "results"}
_MODEL = {"path", "size_bytes", "fingerprint"}
_RESULTS = {"gpus": "tuple[str, ...]", "gpu_memory_bytes": "tuple[int, ...]", "driver": "str",
            "date": "str", "llama_cpp_version": "str", "pp_tokens_per_s": "float",
            "tg_tokens_per_s": "float", "vram_bytes_per_gpu": "tuple[int, ...]",
            "load_seconds": "float", "pp_stdev": "float", "tg_stdev": "float", "runs": "int",
            "kld_mean": "float", "kld_mean_se": "float", "kld_p99": "float", "same_top": "float",
            "same_top_se": "float", "ppl": "float", "ppl_ratio": "float", "ppl_ratio_se": "float",
            "quality_tokens": "int", "quality_reference": "str"}
"""[results] keys and their types; other keys there are kept as they are."""


class ProfileError(ValueError):
    """A profile that cannot be used: says which file, which key and which line."""

    def __init__(self, path: str, message: str, key: str | None = None, line: int | None = None):
        self.path, self.key, self.line = path, key, line
        where = path + (f":{line}" if line else "") + (f" [{key}]" if key else "")
        super().__init__(f"{where}: {message}")


@dataclass
class Profile:
    name: str
    load: LoadSettings
    sampling: SamplingSettings = field(default_factory=SamplingSettings)
    system_prompt: str = ""
    notes: str = ""
    model_size_bytes: int | None = None
    model_fingerprint: str = ""
    results: dict[str, Any] = field(default_factory=dict)
    unknown: dict[str, Any] = field(default_factory=dict)
    """Keys this version does not know, by dotted name; written back unchanged."""
    warnings: list[str] = field(default_factory=list)


def key_line(text: str, dotted: str) -> int | None:
    """The line of `table.key` (or a top-level key, or a table header) in TOML text."""
    return _key_lines(text).get(dotted)


@functools.lru_cache(maxsize=8)
def _key_lines(text: str) -> dict[str, int]:
    """Every `table.key` and table header of a TOML text with its first line: built once per
    text, so naming the line of each of 16,000 unknown keys stays linear."""
    lines: dict[str, int] = {}
    current = ""
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        header = _HEADER.match(line)
        if header:
            current = header.group(1)
            lines.setdefault(current, number)
            continue
        key = _KEY.match(line)
        if key:
            name = key.group(1) or key.group(2)
            lines.setdefault(f"{current}.{name}" if current else name, number)
    return lines


_HEADER = re.compile(r"^\[\s*([^\]]+?)\s*\]")
_KEY = re.compile(r'^(?:"([^"]*)"|([A-Za-z0-9_-]+))\s*=')


def _table(data: dict, name: str, path: str, text: str) -> dict:
    value = data.get(name, {})
    if not isinstance(value, dict):
        raise ProfileError(path, f"'{name}' must be a table ([{name}])", name, key_line(text, name))
    return value


def _type_problem(annotation: str, value: Any) -> str | None:
    """Why `value` (from TOML) does not fit a field annotated `annotation`, or None if it does."""
    def number(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    kind = annotation.replace(" | None", "").strip()
    if kind == "bool":
        return None if isinstance(value, bool) else "must be true or false"
    if kind == "int":
        return None if isinstance(value, int) and not isinstance(value, bool) else "must be a whole number"
    if kind == "float":
        return None if number(value) else "must be a number"
    if kind == "str":
        return None if isinstance(value, str) else "must be a string"
    if kind == "tuple[float, ...]":
        return None if isinstance(value, list) and all(map(number, value)) else "must be a list of numbers"
    if kind == "tuple[int, ...]":
        ok = isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool)
                                             for v in value)
        return None if ok else "must be a list of whole numbers"
    if kind == "tuple[str, ...]":
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        return None if ok else "must be a list of strings"
    return None


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _settings(cls, table: dict, section: str, path: str, text: str, unknown: dict, warnings: list):
    """Build LoadSettings/SamplingSettings from a table: types checked against the dataclass's own
    annotations, values by its problems(), unknown keys kept."""
    annotations = {f.name: str(f.type) for f in fields(cls)}
    kwargs = {}
    for key, value in table.items():
        if key not in annotations:
            unknown[f"{section}.{key}"] = value
            warnings.append(f"{path}:{key_line(text, f'{section}.{key}') or '?'}: unknown key "
                            f"'{section}.{key}' kept as it is")
            continue
        problem = _type_problem(annotations[key], value)
        if problem:
            raise ProfileError(path, f"{problem}, not {_shown(value)}", f"{section}.{key}",
                               key_line(text, f"{section}.{key}"))
        kwargs[key] = value
    try:
        return cls.from_dict(kwargs).validated()
    except SettingsError as exc:
        key, message = next(iter(exc.problems.items()))
        raise ProfileError(path, message, f"{section}.{key}", key_line(text, f"{section}.{key}")) from None
    except (TypeError, ValueError) as exc:  # a combination the checks above did not foresee
        raise ProfileError(path, f"bad [{section}] table: {exc}", section, key_line(text, section)) from None


def parse_profile(text: str, path: str, name: str) -> Profile:
    """Parse and validate profile TOML. Raises ProfileError; never anything else."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise ProfileError(path, f"not valid TOML: {exc}", line=int(m.group(1)) if m else None) from None
    except RecursionError:
        raise ProfileError(path, "nested too deeply to be a profile") from None
    except (UnicodeError, ValueError) as exc:
        raise ProfileError(path, f"cannot be read: {exc}") from None
    schema = data.get("schema")
    if schema is None:
        raise ProfileError(path, "no 'schema' key: is this a vramdeck profile?", "schema")
    if not isinstance(schema, int) or isinstance(schema, bool) or schema < 1:
        raise ProfileError(path, f"'schema' must be a whole number, not {schema!r}", "schema",
                           key_line(text, "schema"))
    if schema > SCHEMA_VERSION:
        raise ProfileError(path, f"written by a newer vramdeck (schema {schema}; this one reads "
                                 f"{SCHEMA_VERSION}): upgrade vramdeck", "schema", key_line(text, "schema"))
    unknown: dict[str, Any] = {}
    warnings: list[str] = []
    for key, value in data.items():
        if key not in _TOP:
            unknown[key] = value
            warnings.append(f"{path}:{key_line(text, key) or '?'}: unknown key '{key}' kept as it is")
    model = _table(data, "model", path, text)
    if not isinstance(model.get("path"), str) or not model.get("path"):
        raise ProfileError(path, "the model's file path is missing", "model.path",
                           key_line(text, "model.path") or key_line(text, "model"))
    for key, value in model.items():
        if key not in _MODEL:
            unknown[f"model.{key}"] = value
            warnings.append(f"{path}:{key_line(text, f'model.{key}') or '?'}: unknown key 'model.{key}' kept as it is")
    load_table = dict(_table(data, "load", path, text))
    load_table["model_path"] = model["path"]
    load = _settings(LoadSettings, load_table, "load", path, text, unknown, warnings)
    sampling = _settings(SamplingSettings, _table(data, "sampling", path, text), "sampling", path,
                         text, unknown, warnings)
    results = _table(data, "results", path, text)
    for key, value in results.items():
        problem = _type_problem(_RESULTS.get(key, ""), value)
        if problem:
            raise ProfileError(path, f"{problem}, not {_shown(value)}", f"results.{key}",
                               key_line(text, f"results.{key}"))
    for text_key in ("notes", "system_prompt"):
        if not isinstance(data.get(text_key, ""), str):
            raise ProfileError(path, f"'{text_key}' must be a string", text_key, key_line(text, text_key))
    size = model.get("size_bytes")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
        raise ProfileError(path, "must be a whole number of bytes", "model.size_bytes",
                           key_line(text, "model.size_bytes"))
    return Profile(name=name, load=load, sampling=sampling,
                   system_prompt=data.get("system_prompt", ""), notes=data.get("notes", ""),
                   model_size_bytes=size, model_fingerprint=str(model.get("fingerprint", "")),
                   results=dict(results), unknown=unknown, warnings=warnings)


def _set_dotted(data: dict, dotted: str, value: Any) -> None:
    head, _, rest = dotted.partition(".")
    if rest and isinstance(data.get(head), dict):
        data[head][rest] = value
    elif rest:
        data.setdefault(head, {})[rest] = value
    else:
        data[head] = value


def profile_to_toml(p: Profile) -> str:
    load = {k: v for k, v in p.load.to_dict().items() if k != "model_path" and v is not None}
    model: dict[str, Any] = {"path": p.load.model_path}
    if p.model_size_bytes is not None:
        model["size_bytes"] = p.model_size_bytes
    if p.model_fingerprint:
        model["fingerprint"] = p.model_fingerprint
    data: dict[str, Any] = {"schema": SCHEMA_VERSION, "notes": p.notes,
                            "system_prompt": p.system_prompt, "model": model, "load": load,
                            "sampling": p.sampling.to_dict()}
    if p.results:
        data["results"] = p.results
    for dotted, value in p.unknown.items():
        _set_dotted(data, dotted, value)
    return tomli_w.dumps(data)
