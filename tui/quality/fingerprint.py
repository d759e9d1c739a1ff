"""A model file's fingerprint: what its stored quality figures are keyed by.

Hashing a 40 GB file would take minutes, so the fingerprint hashes its size, its first MiB (the
GGUF header: architecture, tensor table, quant types, the imatrix used) and 16 blocks of 64 KiB
spread over the rest. A re-download or a copy of the same file keeps its figures; a file
quantized again (another type, another imatrix) gets new ones, since its header or data differ.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from tui.files import NotARegularFile

HEAD_BYTES = 1 << 20
SAMPLES, SAMPLE_BYTES = 16, 64 << 10


def file_fingerprint(path: str | Path) -> str:
    """24 hex digits. OSError (NotARegularFile for a FIFO or device) when it cannot be read."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotARegularFile(f"{path} is not a regular file")
        size = st.st_size
        h = hashlib.sha256(f"gguf-fingerprint-1:{size}:".encode())
        h.update(os.pread(fd, HEAD_BYTES, 0))
        if size > HEAD_BYTES:
            span = size - HEAD_BYTES
            for i in range(SAMPLES):
                h.update(os.pread(fd, SAMPLE_BYTES, HEAD_BYTES + span * i // SAMPLES))
    finally:
        os.close(fd)
    return h.hexdigest()[:24]


def text_fingerprint(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
