"""This machine's measured rates: what the speed model multiplies bytes by.

Each device (the CPU at its thread count, the GPU) has, per ggml tensor type, the bytes per
second a generated token streams that type at and the weights x tokens per second a prompt batch
computes it at, plus a fixed cost per token step and per layer, and what reading the KV cache
costs at depth. Between them, host-to-GPU copy bandwidth (pinned and pageable) for prompts whose
CPU-resident weights llama.cpp copies to the GPU per ubatch.

Written by `tui.speed.calibrate` and read back with every value checked: a cache file is data,
never trusted (a foreign, damaged or hostile one is rebuilt, with a message).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from platformdirs import user_cache_dir

from tui.files import read_regular_text, write_atomically

FORMAT = 1
MAX_CACHE_BYTES = 1 << 20
MAX_FIXED_S = 60.0
"""The largest fixed cost per token step or block a cache file may hold (more is damage)."""


class RatesError(ValueError):
    """A cache file that is not a calibration this version wrote (the reason, in words)."""


@dataclass(frozen=True)
class TypeRate:
    tg_bytes_per_s: float
    """Bytes of weights of this type one token step reads per second."""
    pp_params_per_s: float = 0.0
    """Weights x prompt tokens per second a batch computes (0: not measured)."""
    spread: float = 0.0
    """Relative spread (max - min) / median of the generation runs."""
    busy: bool = False
    """Other processes kept cores busy while it was measured: redone when the machine is quiet."""


@dataclass(frozen=True)
class DeviceRates:
    types: dict[str, TypeRate] = field(default_factory=dict)
    step_s: float = 0.0
    """Fixed cost of one token step (graph, sampling), whatever the model."""
    layer_s: float = 0.0
    """Fixed cost of each block placed on this device, per step."""
    kv_bytes_per_s: float = 0.0
    """KV-cache bytes attention reads per second at depth (0: not measured)."""
    threads: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    """Types whose probe did not run here, and why (a build without them, out of memory...)."""
    busy: bool = False
    """The fixed costs were measured while other processes kept cores busy."""

    def with_type(self, name: str, rate: TypeRate) -> "DeviceRates":
        return replace(self, types={**self.types, name: rate},
                       failed={k: v for k, v in self.failed.items() if k != name})

    def with_failure(self, name: str, why: str) -> "DeviceRates":
        return replace(self, failed={**self.failed, name: why})


@dataclass(frozen=True)
class MachineRates:
    machine: str
    """The key of the machine and build they were measured on (see machine_key)."""
    measured_at: str = ""
    cpu: DeviceRates | None = None
    gpu: DeviceRates | None = None
    gpu_name: str = ""
    h2d_pinned: float = 0.0
    """Host-to-GPU bytes per second from pinned host memory (use_mmap off)."""
    h2d_pageable: float = 0.0
    """The same from pageable memory (the mmap'd file)."""
    switch_s: float = 0.0
    """What each hand-over between the CPU and the GPU adds to a token step."""
    residual: float = 0.0
    """The largest relative miss of the model on the calibration's own check probes."""
    done: tuple[str, ...] = ()
    """The calibration steps finished (a stopped calibration resumes after them)."""

    @property
    def busy(self) -> bool:
        return any(d is not None and (d.busy or any(r.busy for r in d.types.values()))
                   for d in (self.cpu, self.gpu))

    def to_json(self) -> str:
        return json.dumps({"format": FORMAT, **asdict(self)}, indent=1)


def cache_path() -> Path:
    return Path(user_cache_dir("vramdeck")) / "speed_rates.json"


def _number(value: object, where: str, lo: float = 0.0, hi: float = 1e18) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not lo <= value <= hi:
        raise RatesError(f"{where} is {str(value)[:40]!r}, not a number from {lo:g} to {hi:g}")
    return float(value)


def _text(value: object, where: str, limit: int = 300) -> str:
    if not isinstance(value, str) or len(value) > limit:
        raise RatesError(f"{where} is not a short text")
    return value


def _device(data: object, where: str) -> DeviceRates | None:
    if data is None:
        return None
    if not isinstance(data, dict):
        raise RatesError(f"{where} is not a table")
    types = data.get("types", {})
    failed = data.get("failed", {})
    if not isinstance(types, dict) or len(types) > 64 or not isinstance(failed, dict) or len(failed) > 64:
        raise RatesError(f"{where}.types is not a table of at most 64 types")
    out = {}
    for name, rate in types.items():
        w = f"{where}.types.{str(name)[:20]}"
        _text(name, w, 16)
        if not isinstance(rate, dict):
            raise RatesError(f"{w} is not a table")
        out[name] = TypeRate(tg_bytes_per_s=_number(rate.get("tg_bytes_per_s"), f"{w}.tg_bytes_per_s", 1.0),
                             pp_params_per_s=_number(rate.get("pp_params_per_s", 0.0), f"{w}.pp_params_per_s"),
                             spread=_number(rate.get("spread", 0.0), f"{w}.spread", 0.0, 100.0),
                             busy=rate.get("busy") is True)
    return DeviceRates(types=out, step_s=_number(data.get("step_s", 0.0), f"{where}.step_s", 0.0, MAX_FIXED_S),
                       layer_s=_number(data.get("layer_s", 0.0), f"{where}.layer_s", 0.0, MAX_FIXED_S),
                       kv_bytes_per_s=_number(data.get("kv_bytes_per_s", 0.0), f"{where}.kv_bytes_per_s"),
                       threads=int(_number(data.get("threads", 0), f"{where}.threads", 0, 4096)),
                       failed={_text(k, f"{where}.failed", 16): _text(v, f"{where}.failed.{k}")
                               for k, v in failed.items()},
                       busy=data.get("busy") is True)


def parse_rates(text: str) -> MachineRates:
    """The MachineRates a cache file holds; RatesError says what is wrong with it."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise RatesError(f"not JSON ({str(exc)[:80]})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise RatesError("not a calibration this version of vramdeck wrote")
    done = data.get("done", [])
    if not isinstance(done, list) or len(done) > 256 or not all(isinstance(d, str) and len(d) < 40 for d in done):
        raise RatesError("done is not a list of step names")
    return MachineRates(machine=_text(data.get("machine"), "machine", 1000),
                        measured_at=_text(data.get("measured_at", ""), "measured_at", 40),
                        cpu=_device(data.get("cpu"), "cpu"), gpu=_device(data.get("gpu"), "gpu"),
                        gpu_name=_text(data.get("gpu_name", ""), "gpu_name", 200),
                        h2d_pinned=_number(data.get("h2d_pinned", 0.0), "h2d_pinned"),
                        h2d_pageable=_number(data.get("h2d_pageable", 0.0), "h2d_pageable"),
                        switch_s=_number(data.get("switch_s", 0.0), "switch_s", 0.0, MAX_FIXED_S),
                        residual=_number(data.get("residual", 0.0), "residual", 0.0, 100.0),
                        done=tuple(done))


def read_rates(key: str, path: Path | None = None) -> tuple[MachineRates | None, str]:
    """The cached rates of the machine `key` names, else (None, why there are none)."""
    path = path or cache_path()
    try:
        text = read_regular_text(path, MAX_CACHE_BYTES)
    except FileNotFoundError:
        return None, "not calibrated yet: `vramdeck calibrate` measures this machine"
    except (OSError, ValueError) as exc:
        return None, f"the calibration cache {path} is unreadable ({exc}); it is measured again"
    try:
        rates = parse_rates(text)
    except RatesError as exc:
        return None, f"the calibration cache {path} is damaged ({exc}); it is measured again"
    if rates.machine != key:
        return None, "calibrated on another machine or llama.cpp build; it is measured again"
    return rates, ""


def write_rates(rates: MachineRates, path: Path | None = None) -> None:
    """Atomically, private to the user (write_atomically's 0600). OSError when it cannot."""
    write_atomically(path or cache_path(), rates.to_json())
