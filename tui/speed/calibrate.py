"""Measure this machine's rates (tui.speed.rates) through the engine, once, on sparse probe files.

Each ggml type gets a probe whose every matrix has that type, at a real model's matrix sizes (the
Llama-3-8B width, fewer blocks), so the kernels and the memory traffic are a real model's. On the
CPU (every layer there; host memory read in, not mmap'd, so no filesystem trick can make reads
free) and, with a GPU build and an NVIDIA GPU, on the GPU (every layer offloaded):
  - fixed costs: two tiny models, few and many blocks (per step and per block);
  - each type: tg and pp;
  - attention at depth: tg at depth 0 and deep, the KV bytes between them;
  - host-to-GPU copies: a prompt on a GPU build with every layer on the CPU, pinned and pageable;
  - a check: a mixed Q4_K_M probe (half the layers on the GPU, when there is one) against what
    the model predicts for it; the miss is the figures' error band (and the hand-over cost).

Each step is saved as it finishes, so a stopped calibration resumes where it stopped. A step
measured while other processes kept cores busy is marked and done again next time.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import psutil

from tui.engine.client import EngineError
from tui.engine.settings import ALL_LAYERS, LoadSettings
from tui.models.gguf_info import GgufError
from tui.models.model_info import ModelInfo, load_model_info
from tui.models.synthetic import LlamaShape, write_sparse_llama
from tui.monitor.contention import OTHER_CORES_WARN, ContentionLike, ContentionMeter
from tui.speed.machine_key import gpu_identity, machine_key
from tui.speed.model import SpeedModel, params_of, reads
from tui.speed.rates import DeviceRates, MachineRates, TypeRate, read_rates, write_rates
from tui.speed.types import ALL_TYPES, CALIBRATED_TYPES  # noqa: F401 (re-exported)

CPU_PROBE = LlamaShape("speed-probe-cpu", n_layer=3, n_embd=4096, n_ff=14336, n_head=32, n_head_kv=8,
                       n_vocab=8192, n_ctx_train=8192)
GPU_PROBE = replace(CPU_PROBE, name="speed-probe-gpu", n_layer=16)
PROBE_FEWER = {"cpu": 1, "gpu": 4}
"""Each type is probed at two block counts and its rate is the difference's: what one more block
of the type costs, free of the output matrix and the fixed costs (a pure-Q4_K probe's Q4_K
output matrix alone made its rate look half of what 70B rows of Q4_K blocks then ran at)."""
FIXED_FEW = LlamaShape("speed-probe-few", n_layer=2, n_embd=256, n_ff=512, n_head=4, n_head_kv=2,
                       n_vocab=384, n_ctx_train=2048)
FIXED_MANY = replace(FIXED_FEW, name="speed-probe-many", n_layer=24)
CPU_UBATCH_ON_GPU_BUILD = 16
"""Prompt batches under llama.cpp's op-offload threshold (32), so a GPU build computes the CPU
probe's prompt on the CPU."""


STEP_TIMEOUT_S = 300.0
"""The longest one step may take (a probe that hangs is recorded as failed, and skipped)."""


class CalibrationStopped(Exception):
    pass


@dataclass(frozen=True)
class Step:
    key: str
    """"cpu:fixed", "cpu:Q4_K", "gpu:kv", "h2d", "cpu:check"..."""
    label: str


def plan_steps(gpu: bool, types: tuple[str, ...] = CALIBRATED_TYPES) -> list[Step]:
    steps = [Step("cpu:fixed", "CPU fixed costs")]
    steps += [Step(f"cpu:{t}", f"CPU {t}") for t in types]
    steps += [Step("cpu:kv", "CPU attention at depth"), Step("cpu:check", "CPU check (Q4_K_M mix)")]
    if gpu:
        steps += [Step("gpu:fixed", "GPU fixed costs")]
        steps += [Step(f"gpu:{t}", f"GPU {t}") for t in types]
        steps += [Step("gpu:kv", "GPU attention at depth"), Step("h2d", "host-to-GPU copies"),
                  Step("gpu:check", "GPU check (Q4_K_M mix, half offloaded)")]
    return steps


def _median(xs: tuple[float, ...] | list[float]) -> float:
    return statistics.median(xs) if xs else 0.0


def _spread(xs: tuple[float, ...] | list[float]) -> float:
    """(max - min) / median, at most 99 (runs a hundredfold apart say enough)."""
    m = _median(xs)
    return min(99.0, (max(xs) - min(xs)) / m) if xs and m > 0 else 0.0


def _weight_bytes(info: ModelInfo, t: str) -> tuple[int, float]:
    """The bytes of type `t` a step reads (every matrix but the input embeddings), and their weights."""
    n = sum(b for blk, part, ty, b in info.tensor_groups if ty == t and part != "norm" and blk != -2)
    return n, params_of(t, n)


class Calibrator:
    """Runs the steps through one engine, saving after each. `contention(pid)` measures other
    processes' CPU use (the fake sampler's fixed meter in tests)."""

    def __init__(self, folder: Path, cache: Path | None = None, fresh: bool = False,
                 types: tuple[str, ...] = CALIBRATED_TYPES, use_gpu: bool = True,
                 contention: Callable[[int | None], ContentionLike] = ContentionMeter,
                 key: str | None = None, threads: int | None = None, force_gpu_steps: bool = False,
                 gpu_name: str | None = None):
        self.folder = folder
        self.cache = cache
        self.types = types
        self.use_gpu = use_gpu
        self.contention = contention
        self.threads = threads or psutil.cpu_count(logical=False) or 1
        self.gpu_name = (gpu_identity() if gpu_name is None else gpu_name) if use_gpu else ""
        self.key = key or machine_key(self.gpu_name)
        old, self.message = (None, "") if fresh else read_rates(self.key, cache)
        self.rates = old or MachineRates(machine=self.key, gpu_name=self.gpu_name)
        self.gpu_build = False
        self.force_gpu_steps = force_gpu_steps
        self.step_timeout = STEP_TIMEOUT_S
        self.probe_shapes = (CPU_PROBE, GPU_PROBE)
        """(CPU probe, GPU probe): tests swap in tiny shapes."""
        """Run the GPU steps on any build (tests: a CPU build ignores the layer placement)."""

    def todo(self, steps: list[Step]) -> list[Step]:
        """Steps not yet done, or done while the machine was busy."""
        busy = self._busy_steps()
        return [s for s in steps if s.key not in self.rates.done or s.key in busy]

    def _busy_steps(self) -> set[str]:
        out = set()
        for side, dev in (("cpu", self.rates.cpu), ("gpu", self.rates.gpu)):
            if dev is None:
                continue
            out |= {f"{side}:{t}" for t, r in dev.types.items() if r.busy}
            if dev.busy:
                out |= {f"{side}:fixed", f"{side}:kv"}
        return out

    async def run(self, on_step: Callable[[int, int, Step, str], None] = lambda *a: None,
                  stopped: Callable[[], bool] = lambda: False) -> MachineRates:
        from tui.engine.client import EngineClient

        client = EngineClient()
        try:
            await client.start()
            self.gpu_build = self.force_gpu_steps or (bool(client.hello and client.hello.gpu_offload)
                                                      and bool(self.gpu_name))
            steps = plan_steps(self.use_gpu and self.gpu_build, self.types)
            todo = self.todo(steps)
            for i, step in enumerate(todo):
                if stopped():
                    raise CalibrationStopped(f"stopped after {i} of {len(todo)} steps; run it again to resume")
                on_step(i, len(todo), step, "")
                try:
                    result = await asyncio.wait_for(self._step(client, step), self.step_timeout)
                except TimeoutError:
                    result = f"skipped: no answer in {self.step_timeout:.0f} s"
                    self._record_failure(step, result)
                    await client.stop()  # a hung engine: the next step starts a fresh one
                    await client.start()
                self.rates = replace(self.rates, done=tuple(sorted({*self.rates.done, step.key})),
                                     measured_at=time.strftime("%Y-%m-%d %H:%M"))
                self._save()
                on_step(i + 1, len(todo), step, result)
        finally:
            await client.stop()
        return self.rates

    def _record_failure(self, step: Step, why: str) -> None:
        side, _, what = step.key.partition(":")
        if side in ("cpu", "gpu"):
            device = getattr(self.rates, side) or DeviceRates()
            self.rates = replace(self.rates, **{side: device.with_failure(what, why)})

    def _save(self) -> None:
        try:
            write_rates(self.rates, self.cache)
        except OSError as exc:
            self.message = f"could not save the calibration ({exc}); it is measured again next time"

    async def _bench(self, client, model: Path, settings: LoadSettings, n_prompt: int, n_gen: int,
                     reps: int, depths: tuple[int, ...] = ()):
        from tui.engine.protocol import Loaded

        loaded = await client.load(settings)
        if not isinstance(loaded, Loaded):
            raise ProbeFailed(getattr(loaded, "detail", "") or getattr(loaded, "kind", "did not load"))
        meter = self.contention(client.pid).start()
        result = await client.bench(n_prompt, n_gen, reps, depths)
        busy = meter.stop().other_cores >= OTHER_CORES_WARN
        return result, busy

    def _shape(self, side: str) -> LlamaShape:
        return self.probe_shapes[0] if side == "cpu" else self.probe_shapes[1]

    def _probe(self, shape: LlamaShape, t: str = "", quant: str = "Q4_K_M") -> Path:
        path = self.folder / f"{shape.name}-{t or quant}.gguf"
        if not path.exists():
            write_sparse_llama(path, shape, quant, tensor_type=t)
        return path

    def _settings(self, model: Path, side: str, **changes) -> LoadSettings:
        base = LoadSettings(model_path=str(model), n_ctx=512, flash_attn="auto", n_threads=self.threads,
                            n_threads_batch=self.threads)
        if side == "cpu":
            ub = CPU_UBATCH_ON_GPU_BUILD if self.gpu_build else 64
            base = base.with_changes(n_gpu_layers=0, use_mmap=False, n_batch=ub, n_ubatch=ub)
        else:
            base = base.with_changes(n_gpu_layers=ALL_LAYERS)
        return base.with_changes(**changes)

    async def _step(self, client, step: Step) -> str:
        side, _, what = step.key.partition(":")
        if step.key == "h2d":
            return await self._h2d(client)
        device = (self.rates.cpu if side == "cpu" else self.rates.gpu) or DeviceRates(threads=self.threads
                                                                                       if side == "cpu" else 0)
        try:
            if what == "fixed":
                device, text = await self._fixed(client, side, device)
            elif what == "kv":
                device, text = await self._kv(client, side, device)
            elif what == "check":
                return await self._check(client, side)
            else:
                device, text = await self._type(client, side, device, what)
        except (ProbeFailed, GgufError, OSError, EngineError) as exc:
            device, text = device.with_failure(what, str(exc)[:200]), f"skipped: {str(exc)[:120]}"
        self.rates = replace(self.rates, **{side: device})
        return text

    async def _type(self, client, side: str, device: DeviceRates, t: str) -> tuple[DeviceRates, str]:
        many = self._shape(side)
        few = replace(many, name=many.name + "-few", n_layer=min(PROBE_FEWER[side], many.n_layer - 1))
        n_gen = 16 if side == "cpu" else 64
        figures = []
        busy = False
        for shape, n_prompt in ((few, 0), (many, 64 if side == "cpu" else 512)):
            model = self._probe(shape, t)
            result, was_busy = await self._bench(client, model, self._settings(model, side), n_prompt, n_gen, 3)
            busy |= was_busy
            if _median(result.tg_tokens_per_s) <= 0:
                raise ProbeFailed("the probe generated nothing")
            figures.append((load_model_info(model), result))
        (info_few, few_result), (info, result) = figures
        tg_few, tg, pp = (_median(few_result.tg_tokens_per_s), _median(result.tg_tokens_per_s),
                          _median(result.pp_tokens_per_s))
        nbytes = _weight_bytes(info, t)[0] - _weight_bytes(info_few, t)[0]
        blocks = info.n_layer - info_few.n_layer
        seconds = 1.0 / tg - 1.0 / tg_few - device.layer_s * blocks
        if seconds <= 0:  # noise larger than the blocks' cost: the whole probe's average instead
            seconds = 1.0 / tg - device.step_s - device.layer_s * info.n_layer
            nbytes = _weight_bytes(info, t)[0]
        _, params = _weight_bytes(info, t)
        rate = TypeRate(tg_bytes_per_s=nbytes / max(seconds, 1e-9), pp_params_per_s=params * pp if pp else 0.0,
                        spread=round(max(_spread(result.tg_tokens_per_s), _spread(few_result.tg_tokens_per_s)), 3),
                        busy=busy)
        note = " (machine busy: redone next time)" if busy else ""
        return device.with_type(t, rate), f"tg {tg:.1f} tok/s, {rate.tg_bytes_per_s / 1e9:.1f} GB/s{note}"

    async def _fixed(self, client, side: str, device: DeviceRates) -> tuple[DeviceRates, str]:
        times, any_busy = [], False
        for shape in (FIXED_FEW, FIXED_MANY):
            model = self._probe(shape, "Q8_0")
            result, busy = await self._bench(client, model, self._settings(model, side), 0, 32, 3)
            any_busy |= busy
            tg = _median(result.tg_tokens_per_s)
            if tg <= 0:
                raise ProbeFailed("the probe generated nothing")
            times.append(1.0 / tg)
        per_layer = max(0.0, (times[1] - times[0]) / (FIXED_MANY.n_layer - FIXED_FEW.n_layer))
        step = max(0.0, times[0] - per_layer * FIXED_FEW.n_layer)
        device = replace(device, step_s=step, layer_s=per_layer, busy=any_busy)
        return device, f"{step * 1e3:.2f} ms a step + {per_layer * 1e3:.3f} ms a block"

    async def _kv(self, client, side: str, device: DeviceRates) -> tuple[DeviceRates, str]:
        shape = self._shape(side)
        deep = 512 if side == "cpu" else 8192
        model = self._probe(shape, "Q4_K")
        s = self._settings(model, side, n_ctx=deep + 128)
        result, busy = await self._bench(client, model, s, 0, 16, 2, (0, deep))
        figures = dict(result.depth_tg)
        t0, t1 = figures.get(0, 0.0), figures.get(deep, 0.0)
        if t0 <= 0 or t1 <= 0:
            raise ProbeFailed("the depth probe generated nothing")
        info = load_model_info(model)
        kv = sum(reads(info, s, 1 if side == "gpu" else 0).kv_per_token.values()) * deep
        extra = 1.0 / t1 - 1.0 / t0
        rate = kv / extra if extra > 0 else 0.0
        device = replace(device, kv_bytes_per_s=rate, busy=device.busy or busy)
        return device, f"{rate / 1e9:.1f} GB/s of KV cache read at depth"

    async def _h2d(self, client) -> str:
        model = self._probe(self._shape("gpu"), "Q4_K")
        info = load_model_info(model)
        nbytes, params = _weight_bytes(info, "Q4_K")
        gpu = self.rates.gpu.types.get("Q4_K") if self.rates.gpu else None
        compute = params / gpu.pp_params_per_s if gpu and gpu.pp_params_per_s else 0.0
        out = {}
        for name, mmap in (("h2d_pageable", True), ("h2d_pinned", False)):
            s = self._settings(model, "gpu", n_gpu_layers=0, use_mmap=mmap, n_ubatch=512, n_batch=512)
            result, _ = await self._bench(client, model, s, 512, 0, 3)
            pp = _median(result.pp_tokens_per_s)
            if pp <= 0:
                raise ProbeFailed("the copy probe read no prompt")
            seconds = 512 / pp - 512 * compute
            out[name] = nbytes / seconds if seconds > 0 else 0.0
        self.rates = replace(self.rates, **out)
        return f"pinned {out['h2d_pinned'] / 1e9:.1f} GB/s, pageable {out['h2d_pageable'] / 1e9:.1f} GB/s"

    async def _check(self, client, side: str) -> str:
        shape = self._shape(side)
        model = self._probe(shape, "", "Q4_K_M")
        info = load_model_info(model)
        s = self._settings(model, side)
        if side == "gpu":
            s = s.with_changes(n_gpu_layers=(shape.n_layer + 1) // 2)
        result, _ = await self._bench(client, model, s, 0, 32 if side == "gpu" else 16, 3)
        measured = _median(result.tg_tokens_per_s)
        if measured <= 0:
            raise ProbeFailed("the check probe generated nothing")
        n_gpus = 1 if side == "gpu" else 0
        predicted = SpeedModel(self.rates).predict(info, s, n_gpus).tg
        if side == "gpu" and predicted > measured:
            switch = 1.0 / measured - 1.0 / predicted  # what the CPU/GPU hand-over costs
            self.rates = replace(self.rates, switch_s=max(0.0, switch / max(1, reads(info, s, 1).switches)))
            predicted = SpeedModel(self.rates).predict(info, s, n_gpus).tg
        miss = abs(predicted - measured) / measured
        self.rates = replace(self.rates, residual=round(max(self.rates.residual if side == "gpu" else 0.0,
                                                            miss), 3))
        return f"predicted {predicted:.1f}, measured {measured:.1f} tok/s ({(predicted / measured - 1):+.0%})"


class ProbeFailed(Exception):
    pass


def probe_folder() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix="vramdeck-speed-")
