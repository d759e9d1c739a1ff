"""Numeric arrays on the engine's JSON-lines protocol: dtype, shape and the raw little-endian
bytes in base64, about a third of the size of a JSON list and exact.

What comes in is checked before numpy sees it: only the dtypes vramdeck sends, a shape whose
size matches the bytes, and at most MAX_ITEMS items (a reference's top-k of a long text is ~10^5).
"""

from __future__ import annotations

import base64
import binascii

import numpy as np

DTYPES = {"i4": np.dtype("<i4"), "f4": np.dtype("<f4"), "f8": np.dtype("<f8"), "u1": np.dtype("u1")}
MAX_ITEMS = 64 << 20


class ArrayError(ValueError):
    """Packed array text that is not one vramdeck wrote."""


def pack(array: np.ndarray, dtype: str) -> str:
    a = np.ascontiguousarray(array, dtype=DTYPES[dtype])
    shape = "x".join(str(n) for n in a.shape)
    return f"{dtype}:{shape}:{base64.b64encode(a.tobytes()).decode('ascii')}"


def unpack(text: str, dtype: str, ndim: int) -> np.ndarray:
    """The array packed in `text`, which must be of `dtype` with `ndim` dimensions."""
    try:
        kind, shape_text, data = text.split(":", 2)
    except (AttributeError, ValueError):
        raise ArrayError("not a packed array") from None
    if kind != dtype or kind not in DTYPES:
        raise ArrayError(f"expected {dtype} values, got {kind[:8]!r}")
    try:
        shape = tuple(int(n) for n in shape_text.split("x")) if shape_text else ()
    except ValueError:
        raise ArrayError(f"bad shape {shape_text[:40]!r}") from None
    if len(shape) != ndim or any(n < 0 for n in shape):
        raise ArrayError(f"expected {ndim} dimensions, got shape {shape_text[:40]!r}")
    items = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if items > MAX_ITEMS:
        raise ArrayError(f"{items:,} values is more than any text vramdeck scores")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ArrayError("the values are not base64") from None
    if len(raw) != items * DTYPES[dtype].itemsize:
        raise ArrayError(f"{len(raw):,} bytes do not make shape {shape_text[:40]}")
    return np.frombuffer(raw, dtype=DTYPES[dtype]).reshape(shape).copy()
