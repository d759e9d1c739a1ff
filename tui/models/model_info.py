"""What a GGUF header says about the model: shape, quant, and the bytes of each block."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from tui.models.gguf_info import ArrayInfo, GgufError, GgufHeader, check_model_file, file_type_name

_BLOCK = re.compile(r"^blk\.(\d+)\.")
_EXPERTS = re.compile(r"^blk\.\d+\.ffn_(up|down|gate|gate_up)_(ch)?exps")
"""The tensors llama.cpp's --n-cpu-moe keeps in host memory."""
_SPLIT = re.compile(r"^(.+)-(\d{5})-of-(\d{5})\.gguf$", re.IGNORECASE)
OUTPUT_TENSORS = ("output.weight", "output_norm.weight", "output_norm.bias", "output.bias")


@dataclass(frozen=True)
class ModelInfo:
    path: str
    file_size: int
    architecture: str
    name: str
    size_label: str
    n_params: int
    quant: str
    bits_per_weight: float
    n_layer: int
    n_embd: int
    n_head: int
    n_head_kv: int
    head_dim_k: int
    head_dim_v: int
    n_ctx_train: int
    n_vocab: int
    n_expert: int
    has_chat_template: bool
    block_bytes: tuple[int, ...]
    """Bytes of each repeating block (blk.N.*), by block index."""
    input_bytes: int
    """token_embd and other tensors that stay on the CPU."""
    output_bytes: int
    """output.weight and output_norm: offloaded first, as the GPU's first 'layer'."""
    block_expert_bytes: tuple[int, ...] = ()
    """Bytes of each block's MoE expert tensors (ffn_*_exps), part of block_bytes; empty for
    a dense model."""

    @property
    def tensor_bytes(self) -> int:
        return sum(self.block_bytes) + self.input_bytes + self.output_bytes

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["block_bytes"] = list(self.block_bytes)
        d["tensor_bytes"] = self.tensor_bytes
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelInfo":
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        known["block_bytes"] = tuple(known.get("block_bytes", ()))
        known["block_expert_bytes"] = tuple(known.get("block_expert_bytes", ()))
        return cls(**known)


def _int(md: dict, key: str, default: int = 0) -> int:
    value = md.get(key, default)
    if isinstance(value, list):  # per-layer arrays (e.g. head_count_kv on some models)
        value = max(value) if value else default
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def split_parts(path: str | Path) -> list[Path]:
    """All parts of a split model given any one of them (just [path] for a single file)."""
    p = Path(path)
    m = _SPLIT.match(p.name)
    if not m:
        return [p]
    count = int(m.group(3))
    return [p.with_name(f"{m.group(1)}-{i:05d}-of-{count:05d}.gguf") for i in range(1, count + 1)]


def load_model_info(path: str | Path) -> ModelInfo:
    """ModelInfo of a model file, reading every part of a split model. Raises GgufError."""
    parts = split_parts(path)
    missing = [str(p) for p in parts if not p.exists()]
    if missing and len(parts) > 1:
        raise GgufError("missing", f"split model part missing: {missing[0]}")
    return model_info_from_headers([check_model_file(p) for p in parts])


def model_info_from_headers(headers: list[GgufHeader]) -> ModelInfo:
    """One ModelInfo from the headers of all parts of a model (metadata from the first)."""
    if len(headers) == 1:
        return model_info(headers[0])
    first = headers[0]
    merged = replace(first, tensors=tuple(t for h in headers for t in h.tensors),
                     file_size=sum(h.file_size for h in headers))
    return model_info(merged)


def model_info(h: GgufHeader) -> ModelInfo:
    md = h.metadata
    arch = str(md.get("general.architecture", "?"))
    n_layer = _int(md, f"{arch}.block_count")
    n_embd = _int(md, f"{arch}.embedding_length")
    n_head = _int(md, f"{arch}.attention.head_count")
    n_head_kv = _int(md, f"{arch}.attention.head_count_kv", n_head)
    default_dim = n_embd // n_head if n_head else 0
    blocks = [0] * n_layer
    experts = [0] * n_layer
    input_bytes = output_bytes = 0
    n_params = 0
    for t in h.tensors:
        n = 1
        for d in t.shape:
            n *= d
        n_params += n
        m = _BLOCK.match(t.name)
        if m and int(m.group(1)) < n_layer:
            blocks[int(m.group(1))] += t.n_bytes
            if _EXPERTS.match(t.name):
                experts[int(m.group(1))] += t.n_bytes
        elif t.name in OUTPUT_TENSORS:
            output_bytes += t.n_bytes
        else:
            input_bytes += t.n_bytes
    tokens = md.get("tokenizer.ggml.tokens")
    n_vocab = tokens.length if isinstance(tokens, ArrayInfo) else len(tokens or []) or _int(md, f"{arch}.vocab_size")
    total = sum(blocks) + input_bytes + output_bytes
    return ModelInfo(
        path=h.path, file_size=h.file_size, architecture=arch,
        name=str(md.get("general.name", "")), size_label=str(md.get("general.size_label", "")),
        n_params=n_params, quant=file_type_name(md.get("general.file_type")),
        bits_per_weight=round(total * 8 / n_params, 3) if n_params else 0.0,
        n_layer=n_layer, n_embd=n_embd, n_head=n_head, n_head_kv=n_head_kv,
        head_dim_k=_int(md, f"{arch}.attention.key_length", default_dim),
        head_dim_v=_int(md, f"{arch}.attention.value_length", default_dim),
        n_ctx_train=_int(md, f"{arch}.context_length"), n_vocab=n_vocab,
        n_expert=_int(md, f"{arch}.expert_count"),
        has_chat_template="tokenizer.chat_template" in md,
        block_bytes=tuple(blocks), input_bytes=input_bytes, output_bytes=output_bytes,
        block_expert_bytes=tuple(experts) if any(experts) else (),
    )
