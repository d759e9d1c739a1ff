"""Read a GGUF file's header (metadata and tensor table) without touching tensor data.

A purpose-built reader: it skips the large tokenizer arrays instead of materialising them, so a
70B file's header reads in tens of milliseconds, and it checks the file is as long as its tensor
table says, which is how a truncated download is told apart from a good file.
"""

from __future__ import annotations

import mmap
import os
import stat
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tui.models.gguf_tables import GGML_QUANT_SIZES, GGMLQuantizationType, LlamaFileType

GGUF_MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32
_SMALL_ARRAY = 64  # arrays up to this length are kept; longer ones only counted

# Bounds a real model never reaches, so that a damaged or hostile header costs milliseconds and
# kilobytes, never minutes and gigabytes: every count is also bounded by the bytes left in the file.
MAX_KEY_BYTES = 1024
MAX_NAME_BYTES = 1024
"""Tensor names (llama.cpp itself allows 63 bytes)."""
MAX_STRING_BYTES = 16 << 20
"""A metadata string (chat templates are tens of KB)."""
MAX_ARRAY_ITEMS = 1 << 21
"""The largest vocabularies and merge lists are a few hundred thousand entries."""
MAX_ARRAY_DEPTH = 2
"""An array of arrays at most (llama.cpp's own reader takes none)."""
MAX_ALIGNMENT = 1 << 16

# value type id -> struct format (scalars)
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
            10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9


class GgufError(Exception):
    """The file cannot be read as a GGUF model. `kind` is one of: missing, not_gguf, corrupt."""

    def __init__(self, kind: str, message: str):
        self.kind = kind
        super().__init__(message)


@dataclass(frozen=True)
class ArrayInfo:
    """A long metadata array we only counted (e.g. the tokenizer's token list)."""

    item_type: int
    length: int


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    ggml_type: int
    offset: int
    n_bytes: int

    @property
    def type_name(self) -> str:
        try:
            return GGMLQuantizationType(self.ggml_type).name
        except ValueError:
            return f"type{self.ggml_type}"


@dataclass(frozen=True)
class GgufHeader:
    path: str
    file_size: int
    version: int
    metadata: dict[str, Any]
    tensors: tuple[TensorInfo, ...]
    data_offset: int
    expected_size: int
    """Bytes the file must have for every tensor to be present."""
    extra: dict[str, Any] = field(default_factory=dict)
    """kv_end: where the metadata ends and the tensor table starts (byte offset); kv_spans:
    (key, start, end) of each metadata entry."""

    @property
    def truncated(self) -> bool:
        return self.file_size < self.expected_size

    @property
    def tensor_bytes(self) -> int:
        return sum(t.n_bytes for t in self.tensors)


def tensor_nbytes(ggml_type: int, shape: tuple[int, ...]) -> int:
    """Bytes of one tensor's data, from its GGML type's block size and bytes per block."""
    try:
        block, type_size = GGML_QUANT_SIZES[GGMLQuantizationType(ggml_type)]
    except (ValueError, KeyError):
        raise GgufError("corrupt", f"unknown tensor type id {ggml_type}") from None
    n = 1
    for d in shape:
        n *= d
    if shape and shape[0] % block:
        raise GgufError("corrupt", f"row of {shape[0]} elements is not a whole number of "
                                   f"{block}-element blocks")
    return n // block * type_size


class _Cursor:
    def __init__(self, buf: mmap.mmap | bytes, size: int, file_size: int | None = None):
        """`size` bytes of `buf` are here; the file has `file_size` (more, for a range read)."""
        self.buf, self.size, self.pos = buf, size, 0
        self.file_size = size if file_size is None else max(size, file_size)

    @property
    def left(self) -> int:
        """Bytes the rest of the file has: what any count must fit in."""
        return self.file_size - self.pos

    def need(self, n: int) -> None:
        if n < 0 or self.pos + n > self.size:
            raise GgufError("corrupt", f"header ends early at byte {self.pos:,} "
                                       f"(needs {n:,} more of {self.size:,}): truncated or damaged")

    def count(self, n: int, min_item_bytes: int, what: str, limit: int) -> int:
        """`n` items of at least `min_item_bytes` each, checked against `limit` and the bytes left."""
        if n > limit or n * min_item_bytes > self.left:
            raise GgufError("corrupt", f"{what} count {n:,} at byte {self.pos:,} does not fit "
                                       f"the file: damaged header")
        return n

    def unpack(self, fmt: str) -> Any:
        n = struct.calcsize(fmt)
        self.need(n)
        (value,) = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += n
        return value

    def string(self, limit: int = MAX_STRING_BYTES, what: str = "string") -> str:
        n = self.unpack("<Q")
        if n > limit:
            raise GgufError("corrupt", f"{what} of {n:,} bytes at byte {self.pos:,}: damaged header")
        self.need(n)
        raw = bytes(self.buf[self.pos:self.pos + n])
        self.pos += n
        return raw.decode("utf-8", errors="replace")

    def skip_strings(self, count: int) -> None:
        buf, pos, size = self.buf, self.pos, self.size
        unpack_from = struct.unpack_from
        for _ in range(count):
            if pos + 8 > size:
                self.pos = pos
                self.need(8)
            pos += 8 + unpack_from("<Q", buf, pos)[0]
            if pos > self.file_size:
                raise GgufError("corrupt", "a string in an array runs past the end of the file: "
                                           "truncated or damaged")
            if pos > size:  # past what was read of a larger file: read more
                self.need(pos - self.pos)
        self.pos = pos

    def value(self, vtype: int, depth: int = 0) -> Any:
        if vtype in _SCALARS:
            return self.unpack(_SCALARS[vtype])
        if vtype == _STRING:
            return self.string()
        if vtype == _ARRAY:
            if depth >= MAX_ARRAY_DEPTH:
                raise GgufError("corrupt", f"arrays nested more than {MAX_ARRAY_DEPTH} deep at byte "
                                           f"{self.pos:,}: damaged header")
            item_type = self.unpack("<I")
            length = self.unpack("<Q")
            item_bytes = struct.calcsize(_SCALARS[item_type]) if item_type in _SCALARS else (
                8 if item_type == _STRING else 12)
            if item_type not in _SCALARS and item_type not in (_STRING, _ARRAY):
                raise GgufError("corrupt", f"unknown array item type {item_type} at byte "
                                           f"{self.pos:,}: damaged header")
            self.count(length, item_bytes, "array item", MAX_ARRAY_ITEMS)
            if length <= _SMALL_ARRAY:
                return [self.value(item_type, depth + 1) for _ in range(length)]
            if item_type in _SCALARS:
                self.pos += item_bytes * length
            elif item_type == _STRING:
                self.skip_strings(length)
            else:
                for _ in range(length):
                    self.value(item_type, depth + 1)
            return ArrayInfo(item_type, length)
        raise GgufError("corrupt", f"unknown metadata value type {vtype} at byte {self.pos:,}")


def check_path(path: str | os.PathLike[str]) -> Path:
    """The path as a readable regular file, or GgufError saying plainly what it is instead."""
    p = Path(path).expanduser()
    if not p.exists():
        raise GgufError("missing", f"No file at {p}.")
    if p.is_dir():
        raise GgufError("missing", f"{p} is a folder, not a model file.")
    if not p.is_file():
        raise GgufError("not_gguf", f"{p} is not a regular file.")
    if not os.access(p, os.R_OK):
        raise GgufError("missing", f"{p} cannot be read (permission denied).")
    return p


def read_header(path: str | os.PathLike[str]) -> GgufHeader:
    """Parse the header of a GGUF file. Raises GgufError for anything that is not a whole GGUF."""
    p = check_path(path)
    try:
        # O_NONBLOCK: a FIFO swapped in after check_path must not block the open
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise GgufError("missing", f"{p} cannot be opened: {exc.strerror or exc}.") from None
    with open(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise GgufError("not_gguf", f"{p} is not a regular file.")
        size = st.st_size
        if size == 0:
            raise GgufError("not_gguf", f"{p.name} is empty (0 bytes).")
        head = f.read(4)
        if head != GGUF_MAGIC:
            raise GgufError("not_gguf", f"{p.name} is not a GGUF file (it starts with "
                                        f"{head!r}, not b'GGUF').")
        if size < 24:
            raise GgufError("corrupt", f"{p.name} is only {size} bytes: truncated.")
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            return _parse(str(p), buf, size, size)


def parse_header_bytes(data: bytes, file_size: int | None = None, path: str = "") -> GgufHeader:
    """Parse a header held in memory: the first bytes of a file of `file_size` bytes (a range read
    of a remote file, say). Raises GgufError, with kind "corrupt" when `data` ends mid-header."""
    if data[:4] != GGUF_MAGIC:
        raise GgufError("not_gguf", f"{path or 'the data'} is not a GGUF file (it starts with "
                                    f"{bytes(data[:4])!r}, not b'GGUF').")
    return _parse(path, data, len(data), len(data) if file_size is None else file_size)


def _alignment(value: Any) -> int:
    """general.alignment as llama.cpp requires it: a power of two (32 when absent)."""
    if value is None:
        return DEFAULT_ALIGNMENT
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0 \
            or value > MAX_ALIGNMENT or value & (value - 1):
        raise GgufError("corrupt", f"general.alignment is {_shown(value)}, not a power of two: "
                                   "damaged header")
    return value


def _shown(value: Any) -> str:
    """A value for an error message: short whatever it holds."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _parse(path: str, buf: mmap.mmap | bytes, size: int, file_size: int) -> GgufHeader:
    """`size` bytes of `buf` hold the header (or all) of a file of `file_size` bytes."""
    c = _Cursor(buf, size, file_size)
    c.pos = 4
    version = c.unpack("<I")
    if version not in (2, 3):
        raise GgufError("corrupt", f"GGUF version {version} is not supported (2 or 3 expected).")
    n_tensors = c.unpack("<Q")
    n_kv = c.unpack("<Q")
    c.count(n_kv, 8 + 4 + 1, "metadata key", 1 << 20)  # key length, value type, one byte
    c.count(n_tensors, 8 + 4 + 4 + 8, "tensor", 1 << 20)  # name length, dims, type, offset
    metadata: dict[str, Any] = {}
    spans: list[tuple[str, int, int]] = []
    for _ in range(n_kv):
        start = c.pos
        key = c.string(MAX_KEY_BYTES, "key")
        metadata[key] = c.value(c.unpack("<I"))
        spans.append((key, start, c.pos))
    kv_end = c.pos
    raw_tensors = []
    for _ in range(n_tensors):
        name = c.string(MAX_NAME_BYTES, "tensor name")
        n_dims = c.unpack("<I")
        if n_dims > 8:
            raise GgufError("corrupt", f"tensor {name!r} has {n_dims} dimensions: damaged header")
        shape = tuple(c.unpack("<Q") for _ in range(n_dims))
        ggml_type = c.unpack("<I")
        offset = c.unpack("<Q")
        raw_tensors.append((name, shape, ggml_type, offset))
    alignment = _alignment(metadata.get("general.alignment"))
    data_offset = -(-c.pos // alignment) * alignment
    tensors = tuple(TensorInfo(n, s, t, o, tensor_nbytes(t, s)) for n, s, t, o in raw_tensors)
    end = max((t.offset + t.n_bytes for t in tensors), default=0)
    return GgufHeader(path=path, file_size=file_size, version=version, metadata=metadata,
                      tensors=tensors, data_offset=data_offset, expected_size=data_offset + end,
                      extra={"kv_end": kv_end, "kv_spans": spans})


def check_model_file(path: str | os.PathLike[str]) -> GgufHeader:
    """read_header, and also refuse a file shorter than its tensor table needs."""
    header = read_header(path)
    if header.truncated:
        missing = header.expected_size - header.file_size
        raise GgufError("corrupt", f"{Path(path).name} is truncated: {header.file_size:,} bytes, "
                                   f"but its tensors need {header.expected_size:,} "
                                   f"({missing:,} missing). Download it again.")
    return header


def file_type_name(file_type: int | None) -> str:
    """The quant name of general.file_type (e.g. 15 -> 'Q4_K_M')."""
    if file_type is None:
        return "?"
    try:
        name = LlamaFileType(file_type).name
    except ValueError:
        return f"type{file_type}"
    return name.removeprefix("MOSTLY_").replace("ALL_F32", "F32")


def write_sparse(source_head: bytes, header: GgufHeader, out: str | os.PathLike[str],
                 drop_keys: tuple[str, ...] = ()) -> None:
    """A GGUF with `source_head`'s metadata (its first header.extra["kv_end"] bytes, copied as
    they are, less the keys starting with any of `drop_keys`) and `header`'s tensor table, whose
    data is a hole: the file is as long as the tensors need but takes a few MB of disk. llama.cpp
    reads its header as a real file's (fit, dry runs)."""
    kv_end = header.extra["kv_end"]
    if drop_keys:
        kept = [(s, e) for key, s, e in header.extra["kv_spans"] if not key.startswith(drop_keys)]
        source_head = (source_head[:16] + struct.pack("<Q", len(kept))
                       + b"".join(source_head[s:e] for s, e in kept))
        kv_end = len(source_head)
    alignment = header.metadata.get("general.alignment", DEFAULT_ALIGNMENT) or DEFAULT_ALIGNMENT
    table = bytearray()
    for t in header.tensors:
        name = t.name.encode()
        table += struct.pack("<Q", len(name)) + name + struct.pack("<I", len(t.shape))
        table += b"".join(struct.pack("<Q", d) for d in t.shape)
        table += struct.pack("<IQ", t.ggml_type, t.offset)
    head = bytearray(source_head[:kv_end])
    head[8:16] = struct.pack("<Q", len(header.tensors))
    head += table
    head += b"\0" * (-len(head) % alignment)
    end = max((t.offset + t.n_bytes for t in header.tensors), default=0)
    with open(out, "wb") as f:
        f.write(head)
        f.truncate(len(head) + -(-end // alignment) * alignment)
