"""Mutation fuzzing of real GGUF headers: whatever the bytes, a header read ends in a header or a
GgufError, in bounded time and memory.

Cases: truncation at every field boundary, bit flips, special values (0, 2^31, 2^32, 2^63,
2^64-1, ...) written into every count, length and type field, and hostile nesting. The seed is
fixed; CI runs VRAMDECK_FUZZ_CASES (default 400) mutations per base header, and more by hand:

    VRAMDECK_FUZZ_CASES=20000 pytest tests/hostile/test_gguf_fuzz.py
"""

from __future__ import annotations

import os
import random
import struct
import tracemalloc

import pytest

from tui.models.gguf_info import GgufError, parse_header_bytes, read_header
from tui.models.model_info import model_info

CASES = int(os.environ.get("VRAMDECK_FUZZ_CASES", "400"))
BYTES_PER_CASE = 200 * 1024**2
SPECIALS = (0, 1, 2, 7, 8, 9, 12, 13, 63, 64, 65, 255, 2**16, 2**31 - 1, 2**31, 2**32 - 1, 2**32,
            2**32 + 1, 2**40, 2**62, 2**63 - 1, 2**63, 2**64 - 1)
_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}


def fields(data: bytes) -> list[tuple[int, int]]:
    """(offset, width) of every count, length and type field of a valid header, and of every
    scalar value of 4 bytes or more, in order."""
    out: list[tuple[int, int]] = [(8, 8), (16, 8)]
    n_tensors, n_kv = struct.unpack_from("<QQ", data, 8)
    pos = 24

    def string() -> None:
        nonlocal pos
        out.append((pos, 8))
        (n,) = struct.unpack_from("<Q", data, pos)
        pos += 8 + n

    def value(vtype: int) -> None:
        nonlocal pos
        if vtype in _SIZES:
            if _SIZES[vtype] >= 4:  # a number: block_count, head_count, alignment, ...
                out.append((pos, _SIZES[vtype]))
            pos += _SIZES[vtype]
        elif vtype == 8:
            string()
        else:
            out.append((pos, 4))
            out.append((pos + 4, 8))
            item, length = struct.unpack_from("<IQ", data, pos)
            pos += 12
            for i in range(length):
                if item == 8 and i > 3:  # long string arrays: record the first few lengths only
                    (n,) = struct.unpack_from("<Q", data, pos)
                    pos += 8 + n
                elif item in _SIZES and i > 3:
                    pos += _SIZES[item]
                else:
                    value(item)

    for _ in range(n_kv):
        string()
        out.append((pos, 4))
        (vtype,) = struct.unpack_from("<I", data, pos)
        pos += 4
        value(vtype)
    for _ in range(n_tensors):
        string()
        out.append((pos, 4))
        (n_dims,) = struct.unpack_from("<I", data, pos)
        pos += 4
        for _ in range(n_dims):
            out.append((pos, 8))
            pos += 8
        out.append((pos, 4))
        out.append((pos + 4, 8))
        pos += 12
    return out


def header_bytes(path) -> tuple[bytes, int]:
    """The header of a model file (up to its tensor data) and the file's size."""
    h = read_header(path)
    with open(path, "rb") as f:
        return f.read(h.data_offset), h.file_size


def mutations(data: bytes, seed: int, n: int):
    """Every truncation at a field boundary (a byte either side too), every special value in
    every field when `n` allows (else a random sample of them), and `n` random bit flips."""
    rng = random.Random(seed)
    spots = fields(data)
    boundaries = sorted({o for o, _ in spots} | {o + w for o, w in spots})
    cuts = sorted({max(0, b + d) for b in boundaries for d in (-1, 0, 1)})
    for cut in cuts if len(cuts) <= n else rng.sample(cuts, n):
        yield f"cut@{cut}", data[:cut]
    specials = [(o, w, v % (1 << (8 * w))) for o, w in spots for v in SPECIALS]
    for offset, width, value in specials if len(specials) <= 10 * n else rng.sample(specials, 10 * n):
        buf = bytearray(data)
        buf[offset:offset + width] = value.to_bytes(width, "little")
        yield f"special {value}@{offset}/{width}", bytes(buf)
    for _ in range(n):
        buf = bytearray(data)
        for _ in range(rng.randint(1, 3)):
            buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)
        yield "flip", bytes(buf)


def _read(data: bytes, file_size: int) -> None:
    try:
        model_info(parse_header_bytes(data, max(file_size, len(data))))
    except GgufError:
        pass


def parse_within_bounds(data: bytes, file_size: int, label: str, memory: bool = True) -> None:
    """Parsed on a plain run (pytest's timeout catches a hang), memory measured on a second one
    under tracemalloc."""
    _read(data, file_size)
    if not memory:
        return
    tracemalloc.start()
    try:
        _read(data, file_size)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < BYTES_PER_CASE, f"{label}: {peak / 2**20:.0f} MiB"


@pytest.mark.parametrize("base", ["tiny_llama", "demo_model"])
def test_mutated_headers_end_in_a_header_or_a_typed_error(base, request):
    path = request.getfixturevalue(base)
    data, size = header_bytes(path)
    tiny = base == "tiny_llama"
    n = CASES if tiny else max(10, CASES // 40)  # the demo's 49k tokens take 20 ms a read
    for i, (label, mutated) in enumerate(mutations(data, seed=1234, n=n)):
        parse_within_bounds(mutated, size, label, memory=tiny or i % 4 == 0)


def _header(kvs: list[bytes], n_tensors: int = 0, tail: bytes = b"") -> bytes:
    return b"GGUF" + struct.pack("<IQQ", 3, n_tensors, len(kvs)) + b"".join(kvs) + tail


def _key(name: str) -> bytes:
    raw = name.encode()
    return struct.pack("<Q", len(raw)) + raw


def test_arrays_nested_500_deep_are_refused_not_recursed():
    nested = struct.pack("<I", 9) + b"".join(struct.pack("<IQ", 9, 1) for _ in range(500)) \
        + struct.pack("<IQ", 4, 1) + b"\0" * 4
    data = _header([_key("x") + nested])
    with pytest.raises(GgufError, match="nested"):
        parse_header_bytes(data)


@pytest.mark.parametrize("count", [2**32, 2**40, 2**64 - 1])
def test_huge_array_counts_cost_nothing(count):
    """2^32 strings announced in a 4 KB header: refused at once, nothing allocated."""
    data = _header([_key("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, count)]) + b"\0" * 4096
    tracemalloc.start()
    try:
        with pytest.raises(GgufError, match="count"):
            parse_header_bytes(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20, "refused from the count, nothing walked or allocated"
