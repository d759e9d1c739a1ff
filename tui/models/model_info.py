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
    tensor_groups: tuple[tuple[int, str, str, int], ...] = ()
    """(block, part, ggml type, bytes) summed over the tensors of each block, part and type:
    block -1 is the output layer, -2 the input tensors (part "embd": token_embd, which is the
    output matrix too when there is no output.weight); part is "attn", "ffn", "exps" (MoE
    experts) or "norm". What
    the speed model reads per token at each type's own rate. Empty for older cached entries."""

    @property
    def tensor_bytes(self) -> int:
        return sum(self.block_bytes) + self.input_bytes + self.output_bytes

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["block_bytes"] = list(self.block_bytes)
        d["block_expert_bytes"] = list(self.block_expert_bytes)
        d["tensor_groups"] = [list(g) for g in self.tensor_groups]
        d["tensor_bytes"] = self.tensor_bytes
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelInfo":
        """The ModelInfo to_dict() wrote; TypeError when a value is not of its field's type."""
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        for name in ("block_bytes", "block_expert_bytes"):
            value = known.get(name, [])
            if not isinstance(value, list) or not all(type(x) is int for x in value):
                raise TypeError(f"{name} is not a list of whole numbers")
            known[name] = tuple(value)
        groups = known.get("tensor_groups", [])
        if not isinstance(groups, list) or not all(
                isinstance(g, list) and len(g) == 4 and type(g[0]) is int and type(g[1]) is str
                and type(g[2]) is str and type(g[3]) is int for g in groups):
            raise TypeError("tensor_groups is not a list of [block, part, type, bytes]")
        known["tensor_groups"] = tuple(tuple(g) for g in groups)
        for name, f in cls.__dataclass_fields__.items():
            expected = {"int": int, "str": str, "float": float, "bool": bool}.get(str(f.type))
            if expected and name in known and not (type(known[name]) is expected or (
                    expected is float and type(known[name]) is int)):
                raise TypeError(f"{name} is not of type {f.type}")
        return cls(**known)


# The most a real model has of each, with room to spare: a header past these is damaged, and
# believing it would cost memory in proportion (a list per block, say).
_LIMITS = {"block_count": 4096, "embedding_length": 1 << 20, "head_count": 1 << 16,
           "head_count_kv": 1 << 16, "key_length": 1 << 16, "value_length": 1 << 16,
           "context_length": 1 << 32, "vocab_size": 1 << 24, "expert_count": 1 << 16}


def _int(md: dict, key: str, default: int = 0) -> int:
    """A whole-number metadata value within what a real model has. GgufError names the key when
    the value is of the wrong type or out of range (a string, NaN, inf, 10^9 blocks)."""
    value = md.get(key, default)
    if isinstance(value, list) and value:  # per-layer arrays (e.g. head_count_kv on some models)
        value = max(value, key=lambda v: v if isinstance(v, int) and not isinstance(v, bool) else -1)
    elif isinstance(value, (list, ArrayInfo)):
        value = default
    limit = _LIMITS.get(key.rpartition(".")[2], 1 << 62)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
        raise GgufError("corrupt", f"{key} is {shown}, not a whole number from 0 to {limit:,}: "
                                   "damaged header")
    return value


def _text(md: dict, key: str, limit: int = 200) -> str:
    """A short display string from the metadata ('' when it is not a string)."""
    value = md.get(key, "")
    return value[:limit] if isinstance(value, str) else ""


def _vocab_size(md: dict, arch: str) -> int:
    tokens = md.get("tokenizer.ggml.tokens")
    if isinstance(tokens, ArrayInfo):
        return tokens.length
    if isinstance(tokens, list) and tokens:
        return len(tokens)
    if tokens is not None and not isinstance(tokens, list):
        raise GgufError("corrupt", "tokenizer.ggml.tokens is not a list of tokens: damaged header")
    return _int(md, f"{arch}.vocab_size")


def tensor_part(name: str) -> str:
    """Which part of its block a tensor belongs to: "exps" (MoE experts), "ffn", "norm" (norms
    and biases: small vectors) or "attn" (the rest: attention, and the output matrix)."""
    if _EXPERTS.match(name):
        return "exps"
    if name.endswith(("norm.weight", "norm.bias")) or ".bias" in name:
        return "norm"
    if ".ffn_" in name:
        return "ffn"
    return "attn"


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
    arch = md.get("general.architecture", "?")
    if not isinstance(arch, str) or len(arch) > 64:
        raise GgufError("corrupt", "general.architecture is not a short name: damaged header")
    n_layer = _int(md, f"{arch}.block_count")
    n_embd = _int(md, f"{arch}.embedding_length")
    n_head = _int(md, f"{arch}.attention.head_count")
    n_head_kv = _int(md, f"{arch}.attention.head_count_kv", n_head)
    default_dim = n_embd // n_head if n_head else 0
    head_dim_k = _int(md, f"{arch}.attention.key_length", default_dim)
    head_dim_v = _int(md, f"{arch}.attention.value_length", default_dim)
    blocks = [0] * n_layer
    experts = [0] * n_layer
    input_bytes = output_bytes = 0
    n_params = 0
    groups: dict[tuple[int, str, str], int] = {}
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
            key = (int(m.group(1)), tensor_part(t.name), t.type_name)
            groups[key] = groups.get(key, 0) + t.n_bytes
        elif t.name in OUTPUT_TENSORS:
            output_bytes += t.n_bytes
            key = (-1, tensor_part(t.name), t.type_name)
            groups[key] = groups.get(key, 0) + t.n_bytes
        else:
            input_bytes += t.n_bytes
            key = (-2, "embd" if t.name == "token_embd.weight" else tensor_part(t.name), t.type_name)
            groups[key] = groups.get(key, 0) + t.n_bytes
    n_vocab = _vocab_size(md, arch)
    total = sum(blocks) + input_bytes + output_bytes
    return ModelInfo(
        path=h.path, file_size=h.file_size, architecture=arch,
        name=_text(md, "general.name"), size_label=_text(md, "general.size_label"),
        n_params=n_params, quant=file_type_name(_int(md, "general.file_type", -1)
                                                if "general.file_type" in md else None),
        bits_per_weight=round(total * 8 / n_params, 3) if n_params else 0.0,
        n_layer=n_layer, n_embd=n_embd, n_head=n_head, n_head_kv=n_head_kv,
        head_dim_k=head_dim_k, head_dim_v=head_dim_v,
        n_ctx_train=_int(md, f"{arch}.context_length"), n_vocab=n_vocab,
        n_expert=_int(md, f"{arch}.expert_count"),
        has_chat_template="tokenizer.chat_template" in md,
        block_bytes=tuple(blocks), input_bytes=input_bytes, output_bytes=output_bytes,
        block_expert_bytes=tuple(experts) if any(experts) else (),
        tensor_groups=tuple((b, p, ty, n) for (b, p, ty), n in sorted(groups.items())),
    )
