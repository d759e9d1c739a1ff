"""Start each GPU's CUDA context on a background thread while Python is still importing llama_cpp.

On an H100 the first CUDA context of a process takes about a second, and `import llama_cpp` on a
CUDA build takes most of another second (it maps cuBLAS). llama.cpp creates the context at its
first load anyway; creating it here, through the driver library alone, lets the two overlap.
llama.cpp's runtime calls then find the primary context already made and use it.

Only the driver (libcuda.so.1) is touched, only when the installed llama_cpp has a CUDA backend,
and every failure is silent: llama.cpp then creates the context itself, as it always did.
"""

from __future__ import annotations

import ctypes
import importlib.util
import threading
from pathlib import Path


def llama_has_cuda() -> bool:
    """Whether the installed llama_cpp was built with the CUDA backend (read off its files; no import)."""
    try:
        spec = importlib.util.find_spec("llama_cpp")
    except (ImportError, ValueError):
        return False
    if spec is None or not spec.origin:
        return False
    return any((Path(spec.origin).parent / "lib").glob("libggml-cuda*"))


def _retain_primary_contexts() -> None:
    try:
        cuda = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return
    if cuda.cuInit(0) != 0:
        return
    count = ctypes.c_int(0)
    if cuda.cuDeviceGetCount(ctypes.byref(count)) != 0:
        return
    threads = [threading.Thread(target=_retain, args=(cuda, i), daemon=True) for i in range(count.value)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _retain(cuda: ctypes.CDLL, ordinal: int) -> None:
    device, context = ctypes.c_int(0), ctypes.c_void_p()
    if cuda.cuDeviceGet(ctypes.byref(device), ordinal) == 0:
        # kept until the process ends: the runtime (llama.cpp) uses this same primary context
        cuda.cuDevicePrimaryCtxRetain(ctypes.byref(context), device)


def start() -> threading.Thread | None:
    """Begin creating the contexts; returns the thread (join it to wait), or None on a CPU build."""
    if not llama_has_cuda():
        return None
    thread = threading.Thread(target=_retain_primary_contexts, name="cuda-warmup", daemon=True)
    thread.start()
    return thread
