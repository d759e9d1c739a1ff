"""GGUF files written byte by byte: a real header with one field set to what an attacker likes."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

_FORMATS = {"u32": (4, "<I"), "i32": (5, "<i"), "f32": (6, "<f"), "u64": (10, "<Q"), "f64": (12, "<d")}


def gguf_bytes(metadata: list[tuple[str, str, object]], tensors: list[tuple[str, tuple, int, int]] = (),
               tail: bytes = b"") -> bytes:
    """A GGUF v3 header: metadata as (key, kind, value) with kind u32/i32/f32/u64/f64/str/raw
    (raw: the value's bytes as they are, type id first), tensors as (name, shape, type, offset)."""
    out = [b"GGUF", struct.pack("<IQQ", 3, len(tensors), len(metadata))]
    for key, kind, value in metadata:
        out.append(_string(key))
        if kind == "str":
            out.append(struct.pack("<I", 8) + _string(value))
        elif kind == "raw":
            out.append(value)
        else:
            type_id, fmt = _FORMATS[kind]
            out.append(struct.pack("<I", type_id) + struct.pack(fmt, value))
    for name, shape, ggml_type, offset in tensors:
        out.append(_string(name) + struct.pack("<I", len(shape))
                   + b"".join(struct.pack("<Q", d) for d in shape) + struct.pack("<IQ", ggml_type, offset))
    return b"".join(out) + tail


def _string(text: str | bytes) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return struct.pack("<Q", len(raw)) + raw


def llama_metadata(**override) -> list[tuple[str, str, object]]:
    md = {"general.architecture": ("str", "llama"), "general.name": ("str", "tiny"),
          "llama.block_count": ("u32", 2), "llama.embedding_length": ("u32", 64),
          "llama.attention.head_count": ("u32", 4), "llama.context_length": ("u32", 2048)}
    md.update(override)
    return [(k, kind, v) for k, (kind, v) in md.items()]


@pytest.fixture
def write_gguf(tmp_path):
    def write(name: str, data: bytes) -> Path:
        path = tmp_path / name
        path.write_bytes(data + b"\0" * 64)
        return path
    return write
