"""Per-GPU runtime overhead: VRAM a llama.cpp process holds beyond the buffers it reports
(CUDA context, cuBLAS workspaces). Measured at each real load and remembered per GPU model.

The default, used until a load on this machine has measured it, is 768 MiB: an H100 80GB with
llama-cpp-python 0.3.36 measured 518-523 MiB (docs/benchmarks.md); consumer cards are reported
at 0.6-0.9 GiB, so the default errs on the side of fitting.
"""

from __future__ import annotations

import json
from pathlib import Path

from platformdirs import user_cache_dir

from tui.files import read_regular_text, write_atomically

MIB = 1024**2
DEFAULT_GPU_OVERHEAD = 768 * MIB


def measured_overhead(vram_bytes_per_gpu: tuple[int, ...], buffers: dict) -> list[int | None]:
    """For each GPU: measured VRAM minus the buffers llama.cpp logged for it (CUDA<i>)."""
    out: list[int | None] = []
    for i, used in enumerate(vram_bytes_per_gpu):
        logged = sum(per_dev.get(f"CUDA{i}", 0) for per_dev in buffers.values())
        out.append(used - logged if used and logged else None)
    return out


def remember_from_load(vram_bytes_per_gpu: tuple[int, ...], buffers: dict, gpu_names: list[str],
                       store: "OverheadStore | None" = None) -> dict[str, int]:
    """After a real load: store each GPU's measured overhead under its name; return what was stored."""
    stored = {}
    for name, overhead in zip(gpu_names, measured_overhead(vram_bytes_per_gpu, buffers), strict=False):
        if overhead is not None and 0 < overhead < 8 * 1024 * MIB:
            (store or OverheadStore()).remember(name, overhead)
            stored[name] = overhead
    return stored


class OverheadStore:
    def __init__(self, path: Path | None = None):
        self.path = path or Path(user_cache_dir("vramdeck")) / "gpu_overhead.json"

    def _read(self) -> dict[str, int]:
        try:
            data = json.loads(read_regular_text(self.path, 1 << 20))
            return {str(k): int(v) for k, v in data.items()}
        except (OSError, ValueError, TypeError, AttributeError, OverflowError, RecursionError):
            return {}

    def lookup(self, gpu_name: str) -> int | None:
        return self._read().get(gpu_name)

    def for_gpus(self, names: list[str]) -> tuple[int, ...]:
        known = self._read()
        return tuple(known.get(n, DEFAULT_GPU_OVERHEAD) for n in names)

    def remember(self, gpu_name: str, overhead_bytes: int) -> None:
        data = self._read()
        data[gpu_name] = int(overhead_bytes)
        write_atomically(self.path, json.dumps(data, indent=2))
