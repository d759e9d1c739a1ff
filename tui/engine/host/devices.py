"""The compute devices llama.cpp's ggml sees (CPU, CUDA0, ...), read through its C library.

llama-cpp-python does not bind the ggml backend-device functions, so they are declared here.
"""

from __future__ import annotations

import ctypes

import llama_cpp as L


def _bind(name: str, restype, argtypes):
    fn = getattr(L.llama_cpp._lib, name)
    fn.restype, fn.argtypes = restype, argtypes
    return fn


def list_devices() -> list[str]:
    """'NAME: description' for each device, e.g. 'CUDA0: NVIDIA H100 80GB HBM3'."""
    try:
        count = _bind("ggml_backend_dev_count", ctypes.c_size_t, [])
        get = _bind("ggml_backend_dev_get", ctypes.c_void_p, [ctypes.c_size_t])
        name = _bind("ggml_backend_dev_name", ctypes.c_char_p, [ctypes.c_void_p])
        desc = _bind("ggml_backend_dev_description", ctypes.c_char_p, [ctypes.c_void_p])
    except AttributeError:
        return []
    out = []
    for i in range(count()):
        dev = get(i)
        out.append(f"{(name(dev) or b'?').decode()}: {(desc(dev) or b'').decode()}")
    return out
