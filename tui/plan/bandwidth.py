"""This machine's memory bandwidth and compute, measured once and remembered, for the plan's
speed predictions (in place of the speed model's defaults).

- host read bandwidth: one thread per physical core sums its own slice of a 256 MiB array
  (numpy's reductions release the GIL), best of three passes after a warm-up;
- host compute: a float32 matrix product's FLOP/s, all cores (numpy's BLAS), best of three.

The GPU's bandwidth is not probed here (that takes the engine and a CUDA build): with a GPU the
default stands, and the table says so. Generation on the CPU is bandwidth-bound for big models
and compute-bound for small ones: the prediction takes the slower of the two, with llama.cpp's
quantized kernels reaching a stated share (CPU_KERNEL_EFFICIENCY) of the BLAS figure.
"""

from __future__ import annotations

import json
import platform
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil
from platformdirs import user_cache_dir

from tui.files import read_regular_text, write_atomically

CPU_KERNEL_EFFICIENCY = 0.35
"""Share of the BLAS FLOP/s that llama.cpp's quantized dot products reach when generating
(SmolLM2-135M on the 2-core VM: ~150 tok/s measured)."""
PROBE_BYTES = 256 * 1024**2


@dataclass(frozen=True)
class MachineSpeeds:
    host_read_bytes_per_s: float
    host_flops: float
    machine: str
    measured_at: str

    @property
    def cpu_kernel_flops(self) -> float:
        return self.host_flops * CPU_KERNEL_EFFICIENCY


def machine_key() -> str:
    """What the figures belong to: host, processor, cores and memory (a new machine is re-probed)."""
    vm = psutil.virtual_memory()
    return (f"{platform.node()}|{platform.processor() or platform.machine()}|"
            f"{psutil.cpu_count(logical=False)}c|{vm.total // 2**30}GiB")


def _read_bandwidth(threads: int) -> float:
    import numpy as np

    data = np.ones(PROBE_BYTES // 4, dtype=np.float32)
    slices = np.array_split(data, threads)

    def one_pass() -> float:
        started = time.perf_counter()
        workers = [threading.Thread(target=np.add.reduce, args=(s,)) for s in slices]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        return time.perf_counter() - started

    one_pass()  # page the array in
    return data.nbytes / min(one_pass() for _ in range(3))


def _flops() -> float:
    import numpy as np

    n = 1024
    a = np.ones((n, n), dtype=np.float32)
    _timed(lambda: a @ a)  # warm-up
    best = min(_timed(lambda: a @ a) for _ in range(3))
    return 2 * n**3 / best


def _timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def probe() -> MachineSpeeds:
    threads = psutil.cpu_count(logical=False) or 1
    return MachineSpeeds(host_read_bytes_per_s=_read_bandwidth(threads), host_flops=_flops(),
                         machine=machine_key(), measured_at=time.strftime("%Y-%m-%d"))


def cache_path() -> Path:
    return Path(user_cache_dir("vramdeck")) / "machine_speeds.json"


def machine_speeds(path: Path | None = None, fresh: bool = False) -> MachineSpeeds:
    """The remembered figures of this machine, probing (about a second) when there are none."""
    path = path or cache_path()
    key = machine_key()
    if not fresh:
        try:
            data = json.loads(read_regular_text(path, 1 << 16))
            if isinstance(data, dict) and data.get("machine") == key:
                return MachineSpeeds(float(data["host_read_bytes_per_s"]), float(data["host_flops"]),
                                     key, str(data.get("measured_at", "")))
        except (OSError, ValueError, KeyError, TypeError, RecursionError):
            pass
    speeds = probe()
    try:
        write_atomically(path, json.dumps(asdict(speeds)))
    except OSError:
        pass  # measured again next time
    return speeds


GPU_PROBE_SHAPE = "Llama-3-8B-shaped Q4_K_M (4.6 GB, a sparse file)"


def gpu_bandwidth(path: Path | None = None) -> tuple[float | None, str]:
    """The GPU's effective weight-streaming bandwidth, through the engine: a fully offloaded
    sparse 8B-shaped Q4_K_M, bytes read per token times the tokens per second it generates (an
    H200 gives ~1,270 GB/s this way). Measured once per machine and remembered; (None, why) when
    there is no GPU, the build cannot offload, or the probe does not fit."""
    from tui.monitor.nvml import NvmlSource

    gpus, status = NvmlSource().read(memory_only=True)
    if not gpus:
        return None, status or "no NVIDIA GPU"
    path = path or cache_path()
    key = machine_key() + "|" + gpus[0].name
    try:
        data = json.loads(read_regular_text(path, 1 << 16))
        if isinstance(data, dict) and data.get("gpu_machine") == key and data.get("gpu_bandwidth"):
            return float(data["gpu_bandwidth"]), f"measured through the engine ({data.get('gpu_measured_at')})"
    except (OSError, ValueError, TypeError, RecursionError):
        data = {}
    measured, why = _probe_gpu()
    if measured is None:
        return None, why
    data = data if isinstance(data, dict) else {}
    data.update(gpu_machine=key, gpu_bandwidth=measured, gpu_measured_at=time.strftime("%Y-%m-%d"))
    try:
        write_atomically(path, json.dumps(data))
    except OSError:
        pass
    return measured, f"measured through the engine ({data['gpu_measured_at']})"


def _probe_gpu() -> tuple[float | None, str]:
    import asyncio
    import tempfile

    from tui.engine.client import EngineClient
    from tui.engine.protocol import Loaded
    from tui.engine.settings import ALL_LAYERS, LoadSettings
    from tui.fit.speed import bytes_per_token
    from tui.models.model_info import load_model_info
    from tui.models.synthetic import LLAMA3_8B, write_sparse_llama

    async def run(model: Path) -> tuple[float | None, str]:
        client = EngineClient()
        try:
            loaded = await client.load(LoadSettings(model_path=str(model), n_gpu_layers=ALL_LAYERS,
                                                    n_ctx=512, flash_attn="on"))
            if not isinstance(loaded, Loaded):
                return None, f"the probe model did not load ({loaded.kind})"
            if not (client.hello and client.hello.gpu_offload):
                return None, "this llama.cpp build cannot offload to the GPU"
            bench = await client.bench(0, 64, 3)
        finally:
            await client.stop()
        tg = sorted(bench.tg_tokens_per_s)[len(bench.tg_tokens_per_s) // 2] if bench.tg_tokens_per_s else 0
        gpu_bytes, _ = bytes_per_token(load_model_info(model), LoadSettings(model_path=str(model)), 1)
        return (gpu_bytes * tg, "measured") if tg else (None, "the probe generated nothing")

    with tempfile.TemporaryDirectory(prefix="vramdeck-probe-") as tmp:
        model = write_sparse_llama(Path(tmp) / "probe-Q4_K_M.gguf", LLAMA3_8B, "Q4_K_M")
        return asyncio.run(run(model))
