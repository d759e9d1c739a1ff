"""Every quant of a model, sized exactly: llama.cpp's own quantize rules, run dry, on any one GGUF
of the model (any quant, or a shape-only sparse file).

The engine-side child (`tui.engine.host.quant_sizes`) reports the type llama.cpp would give each
tensor; from those types and the source's tensor table this builds the target file's tensor table
(bytes per tensor, aligned offsets), so the existing estimator and `fit` search work on it
unchanged, and the file's size follows to the byte: the source's header (the same keys, so the
same length) plus the data, each tensor padded to the alignment.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from tui.engine.client import engine_env
from tui.models.gguf_info import GgufError, GgufHeader, TensorInfo, read_header, tensor_nbytes, write_sparse
from tui.models.gguf_tables import GGMLQuantizationType
from tui.models.model_info import ModelInfo, model_info, split_parts
from tui.plan.quants import PLAN_TYPES, file_type_id


class QuantSizeError(Exception):
    """llama.cpp's dry run could not answer (a damaged file, a build that lacks a type...)."""


@dataclass(frozen=True)
class QuantTarget:
    quant: str
    info: ModelInfo
    """The target file's shape and bytes per block: what the estimator and fit take."""
    file_bytes: int
    """The size the quantized file will have."""
    needs_imatrix: bool
    """llama.cpp warned that quantizing to this type for real needs an importance matrix."""
    tensor_types: dict[str, str]
    """The type llama.cpp gives each tensor (for a sparse file with exactly this table)."""


def _type_id(name: str) -> int:
    try:
        return int(GGMLQuantizationType[name.upper()])
    except KeyError:
        raise QuantSizeError(f"llama.cpp named a tensor type vramdeck does not know: {name}") from None


def _align(n: int, alignment: int) -> int:
    return -(-n // alignment) * alignment


def retyped(header: GgufHeader, types: dict[str, str]) -> GgufHeader:
    """`header` with each tensor given its new type: bytes per tensor and offsets follow."""
    alignment = header.metadata.get("general.alignment", 32) or 32
    offset, tensors = 0, []
    for t in header.tensors:
        ggml_type = _type_id(types[t.name]) if t.name in types else t.ggml_type
        n_bytes = tensor_nbytes(ggml_type, t.shape)
        tensors.append(TensorInfo(t.name, t.shape, ggml_type, offset, n_bytes))
        offset += _align(n_bytes, alignment)
    return replace(header, tensors=tuple(tensors), expected_size=header.data_offset + offset,
                   file_size=header.data_offset + offset)


def _run_child(source: str, ftypes: list[int], timeout: float, threads: int = 2) -> dict:
    try:
        done = subprocess.run([sys.executable, "-m", "tui.engine.host.quant_sizes", source,
                               json.dumps(ftypes), str(threads)], capture_output=True, text=True,
                              timeout=timeout, env=engine_env())
    except subprocess.TimeoutExpired:
        raise QuantSizeError(f"llama.cpp's dry run took more than {timeout:.0f} s") from None
    try:
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        tail = " | ".join(done.stderr.strip().splitlines()[-3:])
        raise QuantSizeError(f"llama.cpp's dry run failed (exit {done.returncode}): {tail}") from None


def _lean_copy(parts: list[Path], header: GgufHeader, folder: Path) -> Path:
    """A sparse copy of the model's header without its tokenizer: llama.cpp's quantize rules look
    at tensor names, shapes and the hyperparameters, never the vocabulary, and re-reading 128k
    tokens and 280k merges was most of each dry run's time."""
    with open(parts[0], "rb") as f:
        head = f.read(header.data_offset)
    lean = folder / parts[0].name
    write_sparse(head, header, lean, drop_keys=("tokenizer.",))
    return lean


def quant_targets(source: str | Path, quants: tuple[str, ...] = PLAN_TYPES,
                  timeout: float = 120.0) -> dict[str, QuantTarget | str]:
    """Each quant's target (or, as a string, why llama.cpp would not make it) from one GGUF of
    the model, from one child process whose two threads share the types."""
    parts = split_parts(source)
    try:
        headers = [read_header(p) for p in parts]
    except GgufError as exc:
        raise QuantSizeError(str(exc)) from None
    first = headers[0]
    header = replace(first, tensors=tuple(t for h in headers for t in h.tensors))
    ids = {q: file_type_id(q) for q in quants}
    with tempfile.TemporaryDirectory(prefix="vramdeck-plan-") as tmp:
        lean = _lean_copy(parts, header, Path(tmp)) if len(parts) == 1 else parts[0]
        results = _run_child(str(lean), list(ids.values()), timeout)
    out: dict[str, QuantTarget | str] = {}
    for quant, ftype in ids.items():
        r = results.get(str(ftype))
        if r is None or not r.get("ok"):
            out[quant] = (r or {}).get("error") or "llama.cpp gave no answer for this type"
            continue
        target = retyped(header, r["types"])
        info = replace(model_info(target), quant=quant, path="", file_size=target.file_size)
        out[quant] = QuantTarget(quant=quant, info=info, file_bytes=target.file_size,
                                 needs_imatrix=bool(r.get("needs_imatrix")), tensor_types=r["types"])
    return out
