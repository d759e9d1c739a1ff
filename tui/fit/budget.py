"""What memory a load may use: VRAM per GPU, the CUDA overhead each GPU adds, host RAM, a margin.

One rule for every front end (the Tuner, its auto-tune, `fit`, `tune`, `plan`, `bench`): a GPU's
budget is its memory less what other processes hold (or the size given with --vram); the host's
is the RAM available now plus what the engine itself holds, since a reload gives that back first.
The app builds it from a sampler reading (`from_sample`), the commands from their options and
NVML (`from_cli`); both live here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from tui.monitor.sample import Sample

FIT_MARGIN_BYTES = 256 * 1024**2
"""Left free on each GPU when fitting layers: allocator slack and a desktop's small growth."""
MARGIN_ARG = f"{FIT_MARGIN_BYTES // 2**20}MiB"
"""The margin as the commands' --margin default says it."""


class NoGpu(ValueError):
    """No NVIDIA GPU to read and no --vram given (the message says how to plan for one)."""


def host_budget(available_bytes: int | None, engine_rss_bytes: int | None = None) -> int | None:
    if available_bytes is None:
        return None
    return available_bytes + (engine_rss_bytes or 0)


@dataclass(frozen=True)
class MemoryBudget:
    gpus: tuple[int | None, ...] = ()
    """Bytes this engine may use on each GPU (None where the GPU cannot say)."""
    overheads: tuple[int, ...] = ()
    """The CUDA context and workspaces each GPU adds beyond llama.cpp's buffers."""
    host: int | None = None
    margin: int = FIT_MARGIN_BYTES
    names: tuple[str, ...] = ()
    """The GPUs' names, as NVML gives them (what overheads and profiles are keyed by)."""
    source: str = ""
    """Where the GPU budgets came from, in words ("free VRAM now (NVML)", "given with --vram")."""

    @classmethod
    def from_sample(cls, sample: Sample | None,
                    overheads_for: Callable[[list[str]], tuple[int, ...]]) -> "MemoryBudget":
        """From a sampler reading: each GPU's memory less what other processes hold on it."""
        if sample is None:
            return cls()
        h = sample.host
        available = (h.ram_total_bytes - h.ram_used_bytes
                     if h.ram_total_bytes is not None and h.ram_used_bytes is not None else None)
        host = host_budget(available, h.engine_rss_bytes)
        if not sample.gpus:
            return cls(host=host)
        gpus = []
        for g in sample.gpus:
            others = (g.memory_used_bytes or 0) - (g.engine_bytes() or 0)
            gpus.append((g.memory_total_bytes - others) if g.memory_total_bytes else None)
        names = tuple(g.name for g in sample.gpus)
        return cls(gpus=tuple(gpus), overheads=overheads_for(list(names)), host=host, names=names,
                   source="this machine's GPUs")

    def planned_for(self, vram: str, overheads_for: Callable[[list[str]], tuple[int, ...]]) -> "MemoryBudget":
        """This budget with the GPUs `vram` names ("24GiB" or "24GiB,24GiB"), for a GPU this
        machine lacks (ValueError for a bad size): what --vram does on the command line."""
        from tui.units import parse_size

        sizes = tuple(parse_size(x) for x in vram.split(","))
        names = ["GPU"] * len(sizes)
        return replace(self, gpus=sizes, overheads=overheads_for(names), names=tuple(names),
                       source="given for the plan")

    @classmethod
    def from_cli(cls, vram: str | None, margin: str = MARGIN_ARG, cpu_only_ok: bool = False) -> "MemoryBudget":
        """The budget from a command's options: --vram sizes (else the free VRAM NVML reports),
        the GPU overheads measured on this machine, the host RAM available now. ValueError for a
        bad size; NoGpu when there is no GPU and no --vram (unless `cpu_only_ok`: then a budget
        of host RAM alone)."""
        import psutil

        from tui.fit.overhead import OverheadStore
        from tui.monitor.nvml import NvmlSource
        from tui.units import parse_size

        gpus, status = NvmlSource().read(memory_only=True)
        names = [g.name for g in gpus]
        host = host_budget(psutil.virtual_memory().available)
        if vram:
            sizes: tuple[int | None, ...] = tuple(parse_size(x) for x in vram.split(","))
            names = (names + [names[-1] if names else "GPU"] * len(sizes))[:len(sizes)]
            source = "given with --vram"
        elif gpus:
            sizes, source = tuple(g.memory_free_bytes or 0 for g in gpus), "free VRAM now (NVML)"
        elif cpu_only_ok:
            return cls(host=host, margin=parse_size(margin),
                       source=f"{status or 'no NVIDIA GPU found'}: the CPU alone")
        else:
            raise NoGpu(f"{status or 'no NVIDIA GPU found'}; give a budget with --vram 24GiB to plan for one")
        return cls(gpus=sizes, overheads=OverheadStore().for_gpus(names), host=host, margin=parse_size(margin),
                   names=tuple(names), source=source)
