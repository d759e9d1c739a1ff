"""Where a model to plan comes from: a local GGUF, an Ollama tag, a Hugging Face repo of GGUFs
(one header read by range requests, copied locally as a sparse file), or a repo of safetensors
and config.json not yet converted (the shape built from the config, Llama-shaped only)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from tui.models.discovery import Location, default_locations, scan
from tui.models.gguf_info import GgufError, write_sparse
from tui.models.model_info import ModelInfo, load_model_info
from tui.plan.hub import HubError, RemoteModel, RemoteRepo, list_repo, read_range, read_remote_header
from tui.safe_text import terminal_safe

SUPPORTED_CONFIGS = ("LlamaForCausalLM", "MistralForCausalLM")
"""Architectures whose config.json vramdeck can turn into a GGUF shape (the Llama block)."""
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class SourceError(Exception):
    """The source names nothing vramdeck can plan from; the message says why."""


@dataclass(frozen=True)
class PlanSource:
    label: str
    gguf: Path
    """A local GGUF with the model's tensor table: the file itself, or a sparse copy."""
    info: ModelInfo
    quant: str
    """The quant of `gguf` (what is on disk when the source is local)."""
    on_disk: Path | None = None
    remote: RemoteRepo | None = None
    header_bytes_read: int = 0
    note: str = ""


def resolve(source: str, scratch: Path) -> PlanSource:
    """The model `source` names. SourceError (or HubError for the hub) says what is wrong."""
    path = Path(source).expanduser()
    if path.exists():
        return _local(path, source)
    if ":" in source and "/" not in source.split(":")[0] or source.count("/") == 0:
        ollama = _ollama(source)
        if ollama is not None:
            return ollama
        store = next((loc.path for loc in default_locations() if loc.source == "ollama"), None)
        if ":" in source and "/" not in source:
            if store is None or not store.exists():
                raise SourceError(f"{source} looks like an Ollama tag, but Ollama's model store was not found "
                                  f"({store}; set OLLAMA_MODELS if it is elsewhere). Plan from a GGUF file "
                                  "or a Hugging Face repo id instead")
            raise SourceError(f"Ollama has no {source} in {store}: `ollama pull {source}` first, or plan "
                              "from a GGUF file or a Hugging Face repo id")
    if _REPO_ID.match(source):
        return _hub(source, scratch)
    raise SourceError(f"{source}: no such file, Ollama tag or Hugging Face repo id "
                      f"(like bartowski/Meta-Llama-3.1-70B-Instruct-GGUF)")


def _local(path: Path, label: str) -> PlanSource:
    try:
        info = load_model_info(path)
    except GgufError as exc:
        raise SourceError(str(exc)) from None
    return PlanSource(label=label, gguf=path, info=info, quant=info.quant, on_disk=path)


def _ollama(tag: str) -> PlanSource | None:
    name = tag if ":" in tag else f"{tag}:latest"
    locations = [loc for loc in default_locations() if loc.source == "ollama"]
    for model in scan(locations).models:
        if model.name in (name, f"library/{name}") and model.ok:
            return _local(Path(model.path), tag)
    return None


def _hub(repo_id: str, scratch: Path) -> PlanSource:
    repo = list_repo(repo_id)
    if repo.models:
        model = min(repo.models, key=lambda m: m.size)  # any quant's header gives the shape
        return _from_remote_gguf(repo, model, scratch)
    names = {f.path for f in repo.files}
    if "config.json" in names:
        return _from_config(repo, scratch)
    raise SourceError(f"{repo_id} has no GGUF file and no config.json: nothing to plan from")


def _from_remote_gguf(repo: RemoteRepo, model: RemoteModel, scratch: Path) -> PlanSource:
    folder = scratch / repo.repo_id.replace("/", "--")
    folder.mkdir(parents=True, exist_ok=True)
    read = 0
    for part in model.parts:  # every part's own header: llama.cpp reads a split model whole
        header, head, fetched = read_remote_header(repo.repo_id, part, repo.revision)
        read += fetched
        write_sparse(head, header, folder / Path(part.path).name)
    first = folder / Path(model.parts[0].path).name
    try:
        info = load_model_info(first)
    except GgufError as exc:
        raise SourceError(f"{repo.repo_id}/{model.name}: {exc}") from None
    return PlanSource(label=repo.repo_id, gguf=first, info=info, quant=model.quant,
                      remote=repo, header_bytes_read=read,
                      note=f"shape from the header of {model.name} ({read / 2**20:.1f} MiB read)")


CONFIG_MAX_BYTES = 1 << 20
"""A model's config.json is a few KB; one larger than this is not one."""
_CONFIG_LIMITS = {  # key: (smallest, largest) a real model has, with room to spare
    "num_hidden_layers": (1, 1024), "hidden_size": (1, 1 << 17), "intermediate_size": (1, 1 << 20),
    "num_attention_heads": (1, 1024), "num_key_value_heads": (1, 1024), "vocab_size": (1, 1 << 22),
    "max_position_embeddings": (1, 1 << 24),
}


def _config_number(config: dict, key: str, default: int | None = None) -> int:
    """config[key] as a whole number within what a model has; SourceError naming the key."""
    value = config.get(key, default)
    lo, hi = _CONFIG_LIMITS[key]
    if value is None:
        raise SourceError(f"config.json has no {key}")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or \
            value in (float("inf"), float("-inf")) or value != int(value):
        raise SourceError(f"config.json's {key} is not a whole number: {str(value)[:40]!r}")
    if not lo <= int(value) <= hi:
        raise SourceError(f"config.json's {key} is {int(value):,}, outside what a model has ({lo}..{hi:,})")
    return int(value)


def _from_config(repo: RemoteRepo, scratch: Path) -> PlanSource:
    size = next(f.size for f in repo.files if f.path == "config.json")
    if size > CONFIG_MAX_BYTES:
        raise SourceError(f"{repo.repo_id}: config.json is listed at {size:,} bytes, not a model's config")
    try:
        config = json.loads(read_range(repo.repo_id, "config.json", repo.revision, 0, max(0, size - 1)))
    except (ValueError, RecursionError):
        raise SourceError(f"{repo.repo_id}: config.json is not JSON (or is nested too deep)") from None
    try:
        return _from_config_values(repo, config, scratch)
    except SourceError as exc:
        raise SourceError(f"{repo.repo_id}: {exc}") from None


def _from_config_values(repo: RemoteRepo, config: object, scratch: Path) -> PlanSource:
    from tui.models.synthetic import LlamaShape, write_sparse_llama

    if not isinstance(config, dict):
        raise SourceError(f"config.json is a {type(config).__name__}, not a table of settings")
    archs = config.get("architectures")
    if archs is None:
        archs = ["?"]
    if not isinstance(archs, list) or not archs or not all(isinstance(a, str) for a in archs):
        raise SourceError(f"config.json's architectures is not a list of names: {str(archs)[:40]!r}")
    arch = archs[0][:80]
    if arch not in SUPPORTED_CONFIGS:
        raise SourceError(f"it is a {terminal_safe(arch)}: vramdeck builds a plan from config.json "
                          f"for {', '.join(SUPPORTED_CONFIGS)} only. Plan from a GGUF repo of it.")
    rope = config.get("rope_theta", 10000.0)
    if isinstance(rope, bool) or not isinstance(rope, (int, float)) or not 1.0 <= rope <= 1e12:
        raise SourceError(f"config.json's rope_theta is not a rope base: {str(rope)[:40]!r}")
    n_head = _config_number(config, "num_attention_heads")
    n_embd = _config_number(config, "hidden_size")
    n_head_kv = _config_number(config, "num_key_value_heads", n_head)
    if n_embd % n_head or n_head % n_head_kv:
        raise SourceError(f"config.json's hidden_size {n_embd} and heads {n_head}/{n_head_kv} do not divide")
    shape = LlamaShape(
        name=repo.repo_id.split("/")[-1], n_layer=_config_number(config, "num_hidden_layers"),
        n_embd=n_embd, n_ff=_config_number(config, "intermediate_size"), n_head=n_head, n_head_kv=n_head_kv,
        n_vocab=_config_number(config, "vocab_size"),
        n_ctx_train=_config_number(config, "max_position_embeddings", 8192), rope_base=float(rope))
    scratch.mkdir(parents=True, exist_ok=True)
    out = scratch / f"{shape.name}-F16.gguf"
    write_sparse_llama(out, shape, "F16")
    info = load_model_info(out)
    return PlanSource(label=repo.repo_id, gguf=out, info=info, quant="F16", remote=repo,
                      note=f"shape from config.json ({arch}); not converted to GGUF yet")


def local_quants(source: PlanSource, locations: list[Location] | None = None) -> dict[str, Path]:
    """Files of the same model on this disk, by quant (same architecture, layer count and name)."""
    out: dict[str, Path] = {}
    if source.on_disk is not None:
        out[source.quant] = source.on_disk
    i = source.info
    for m in scan(locations if locations is not None else default_locations()).models:
        if m.ok and m.info is not None and m.info.architecture == i.architecture \
                and m.info.n_layer == i.n_layer and m.info.n_embd == i.n_embd \
                and m.info.name == i.name and m.info.quant not in out:
            out[m.info.quant] = Path(m.path)
    return out


__all__ = ["HubError", "PlanSource", "SourceError", "local_quants", "resolve"]
