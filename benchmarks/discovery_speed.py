"""Header reading and rescans: a 70B-shaped header vs a tiny one, and a cold scan vs a rescan.

    python benchmarks/discovery_speed.py

Targets: reading a 70B-shaped header < 100 ms; rescanning 200 unchanged files < 0.5 s.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tui.models.discovery import HeaderCache, Location, scan  # noqa: E402
from tui.models.gguf_info import read_header  # noqa: E402
from tui.models.synthetic import LLAMA31_70B, TINY, write_random_llama, write_sparse_llama  # noqa: E402


def timed(fn, repeat: int = 7) -> float:
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t)
    return statistics.median(runs)


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        big = write_sparse_llama(root / "70b.gguf", LLAMA31_70B)
        tiny = write_random_llama(root / "tiny.gguf", TINY)
        t_big, t_tiny = timed(lambda: read_header(big)), timed(lambda: read_header(tiny))
        print(f"header read: 70B-shaped {t_big * 1000:.1f} ms, tiny {t_tiny * 1000:.1f} ms "
              f"(ratio {t_big / t_tiny:.1f}x; 128k-token vocabulary vs 384)")
        models = root / "models"
        for i in range(200):
            sub = models / f"family{i % 10}"
            sub.mkdir(parents=True, exist_ok=True)
            if i % 20:
                shutil.copy(tiny, sub / f"model-{i:03d}.gguf")
            else:  # sparse: copying would write the hole out
                write_sparse_llama(sub / f"model-{i:03d}.gguf", LLAMA31_70B)
        cache_file = root / "cache.json"
        locations = [Location(models, "folder")]
        t = time.perf_counter()
        cold = scan(locations, HeaderCache(cache_file))
        t_cold = time.perf_counter() - t
        t_warm = timed(lambda: scan(locations, HeaderCache(cache_file)), 5)
        warm = scan(locations, HeaderCache(cache_file))
        print(f"scan of {len(cold.models)} files: cold {t_cold * 1000:.0f} ms ({cold.parsed} headers read), "
              f"rescan {t_warm * 1000:.0f} ms ({warm.parsed} read), ratio {t_cold / t_warm:.1f}x")


if __name__ == "__main__":
    main()
