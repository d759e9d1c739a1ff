"""The one speed model: how fast a placement of a model generates and reads prompts here.

Generation, per token step:
    fixed cost (per step, per block on each device, per CPU/GPU hand-over)
  + for every tensor group, its bytes at its type's measured rate on its device
  + the KV cache attention reads at the context depth, at the rate of each block's device.
Prompts, per ubatch: GPU-resident weights at the GPU's rate for their type; CPU-resident weights
copied to the GPU first (llama.cpp's op offload, batches of 32+ tokens with a GPU; pinned or
pageable host memory) or, below that or with no GPU, computed on the CPU at its rate.

Rates come from `tui.speed.calibrate` (this machine, each type measured); a type that was not
measured borrows its nearest measured neighbour (same family, nearest bits per weight), and with
no calibration at all the defaults stand. Every prediction says which, how far off it may be,
and what bounds it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from tui.engine.settings import LoadSettings
from tui.fit.estimate import KV_BYTES_PER_ELEMENT, layer_devices
from tui.models.gguf_tables import GGML_QUANT_SIZES, GGMLQuantizationType
from tui.models.model_info import ModelInfo
from tui.speed.rates import DeviceRates, MachineRates, TypeRate

GB = 1e9
OP_OFFLOAD_MIN_BATCH = 32
"""llama.cpp copies CPU-resident weights to the GPU for batches of this many tokens or more
(GGML_OP_OFFLOAD_MIN_BATCH in ggml-cuda.cu); below it the CPU computes them."""
DEFAULT_BAND = 0.5
"""How far off an uncalibrated figure may be (the H200 rows missed by up to +52 %)."""
MIN_BAND = 0.05

# Rough defaults, used only with no calibration (the prediction then says "default").
DEFAULT_CPU = DeviceRates(types={"Q4_K": TypeRate(20 * GB, 40e9)}, step_s=2e-3, layer_s=5e-5,
                          kv_bytes_per_s=20 * GB)
DEFAULT_GPU = DeviceRates(types={"Q4_K": TypeRate(700 * GB, 20e12)}, step_s=1e-3, layer_s=2e-5,
                          kv_bytes_per_s=500 * GB)
DEFAULT_H2D = 12 * GB
_FAMILY_SPEED = {"iq": 0.45, "k": 1.0, "legacy": 1.0, "float": 1.0}
"""What the defaults scale each family's CPU rate by: sub-4-bit i-quants are compute-bound on
CPUs (2-core VM, sparse 8B: IQ2_XXS made 2.25 tok/s where Q4_K_M made 7.7 at twice the bytes)."""


def family(ggml_type: str) -> str:
    t = ggml_type.upper()
    if t.startswith("IQ") or t.startswith("TQ"):
        return "iq"
    if t.endswith("_K"):
        return "k"
    if t in ("F16", "BF16", "F32", "F64"):
        return "float"
    return "legacy"


def bits_per_weight(ggml_type: str) -> float:
    try:
        block, size = GGML_QUANT_SIZES[GGMLQuantizationType[ggml_type.upper()]]
    except KeyError:
        return 4.5
    return size * 8 / block


def params_of(ggml_type: str, n_bytes: int) -> float:
    """How many weights `n_bytes` of this type hold."""
    return n_bytes * 8 / bits_per_weight(ggml_type)


@dataclass(frozen=True)
class RateChoice:
    rate: TypeRate
    basis: str
    """"measured", "measured while busy", "from <TYPE>" (a neighbour's), "default" or "assumed"."""


def rate_for(device: DeviceRates | None, ggml_type: str, default: DeviceRates,
             assumed: bool = False) -> RateChoice:
    """The rate of a type on a device: measured, else its nearest measured neighbour's (same
    family first, then nearest bits per weight), else (no device rates) the default scaled for
    its family."""
    t = ggml_type.upper()
    if device is None:
        device = DeviceRates()
    if t in device.types:
        r = device.types[t]
        return RateChoice(r, "assumed" if assumed else ("measured while busy" if r.busy else "measured"))
    if device.types:
        bpw = bits_per_weight(t)
        same = [n for n in device.types if family(n) == family(t)] or list(device.types)
        near = min(same, key=lambda n: (abs(bits_per_weight(n) - bpw), n))
        return RateChoice(device.types[near], "assumed" if assumed else f"from {near}")
    base = next(iter(default.types.values()))
    scale = _FAMILY_SPEED[family(t)]
    return RateChoice(replace(base, tg_bytes_per_s=base.tg_bytes_per_s * scale,
                              pp_params_per_s=base.pp_params_per_s * scale), "default")


@dataclass(frozen=True)
class Reads:
    """What one token step reads where: (device, ggml type) -> bytes, the KV bytes per token of
    context on each device, and the blocks on each."""

    weights: dict[tuple[str, str], int]
    kv_per_token: dict[str, int]
    blocks: dict[str, int]
    switches: int


def reads(info: ModelInfo, s: LoadSettings, n_gpus: int) -> Reads:
    """Where each tensor group of `info` sits under `s` ("gpu" for any GPU, "cpu")."""
    devs = layer_devices(info.n_layer, s.n_gpu_layers, n_gpus, s.tensor_split)
    where = ["cpu" if d is None else "gpu" for d in devs]
    weights: dict[tuple[str, str], int] = {}
    groups = info.tensor_groups or _groups_from_bytes(info)
    has_output = any(b == -1 and part == "attn" for b, part, _, _ in groups)

    def add(dev: str, t: str, n: int) -> None:
        weights[(dev, t)] = weights.get((dev, t), 0) + n

    for block, part, t, n in groups:
        if part == "norm":
            continue  # small vectors
        if block == -2:
            if part == "embd" and not has_output:
                add(where[info.n_layer], t, n)  # tied embeddings: the output matrix too
            continue
        if block == -1:
            add(where[info.n_layer], t, n)
        elif part == "exps" and block < s.n_cpu_moe:
            add("cpu", t, n)
        else:
            add(where[block], t, n)
    per_layer = info.n_head_kv * (info.head_dim_k * KV_BYTES_PER_ELEMENT.get(s.type_k, 2.0)
                                  + info.head_dim_v * KV_BYTES_PER_ELEMENT.get(s.type_v, 2.0))
    kv: dict[str, int] = {}
    blocks: dict[str, int] = {}
    for il in range(info.n_layer):
        dev = where[il] if s.offload_kqv else "cpu"
        kv[dev] = kv.get(dev, 0) + int(per_layer)
        blocks[where[il]] = blocks.get(where[il], 0) + 1
    switches = sum(1 for a, b in zip(where, where[1:], strict=False) if a != b)
    return Reads(weights, kv, blocks, switches)


def _groups_from_bytes(info: ModelInfo) -> tuple[tuple[int, str, str, int], ...]:
    """Without a tensor table (an older cache entry): every block in the file's main type."""
    t = main_type(info.quant)
    out = [(il, "ffn", t, n) for il, n in enumerate(info.block_bytes)]
    if info.output_bytes:
        out.append((-1, "attn", t, info.output_bytes))
    return tuple(out)


def main_type(quant: str) -> str:
    """The ggml type most of a quant's tensors have: Q4_K_M -> Q4_K, IQ3_M -> IQ3_S, Q8_0 -> Q8_0."""
    q = quant.upper()
    known = GGMLQuantizationType.__members__
    if q in known:
        return q
    head, _, _ = q.rpartition("_")
    if head in known:
        return head
    return {"IQ3_M": "IQ3_S", "IQ2_M": "IQ2_S", "IQ4_XS": "IQ4_XS"}.get(q, "Q4_K")


@dataclass(frozen=True)
class Prediction:
    tg: float
    """Tokens per second generated at `depth`."""
    pp: float
    """Prompt tokens per second (a `n_prompt`-token prompt at depth 0)."""
    depth: int
    bound: str
    """What takes most of a token step: "GPU bandwidth", "CPU bandwidth", "CPU compute",
    "attention at depth", "per-token overhead"."""
    pp_bound: str
    """"GPU compute", "host-to-GPU copies" or "CPU compute"."""
    basis: str
    """"measured", "measured while busy", "partly from neighbouring types", "default", "assumed"."""
    band: float
    """The relative error the figures may have (0.15: ±15 %)."""

    @property
    def band_text(self) -> str:
        return f"±{self.band:.0%}"


class SpeedModel:
    """Predictions from `rates` (None: defaults). `assumed_gpu`: a GPU this machine lacks,
    planned for with `--gpu` (its figures are "assumed")."""

    def __init__(self, rates: MachineRates | None = None, assumed_gpu: DeviceRates | None = None,
                 scale: tuple[float, float] = (1.0, 1.0)):
        self.rates = rates
        self.assumed = assumed_gpu is not None
        self.cpu = rates.cpu if rates and rates.cpu else None
        self.gpu = assumed_gpu or (rates.gpu if rates and rates.gpu else None)
        self.scale = scale
        """(GPU, CPU) factors fitted to this session's benchmarks (refitted)."""

    @property
    def calibrated(self) -> bool:
        return self.rates is not None and bool(self.cpu and self.cpu.types)

    def _device(self, dev: str) -> tuple[DeviceRates | None, DeviceRates, bool]:
        """(the measured or assumed rates, or None; the defaults; whether assumed)."""
        if dev == "gpu":
            return self.gpu, DEFAULT_GPU, self.assumed
        return self.cpu, DEFAULT_CPU, False

    def step_terms(self, r: Reads, depth: int) -> tuple[dict[str, float], set[str]]:
        """Seconds of one token step by what they go to, and the bases of the rates used."""
        terms: dict[str, float] = {}
        bases: set[str] = set()
        for (dev, t), n in r.weights.items():
            device, default, assumed = self._device(dev)
            choice = rate_for(device, t, default, assumed)
            bases.add(choice.basis)
            k = self.scale[0] if dev == "gpu" else self.scale[1]
            seconds = n / choice.rate.tg_bytes_per_s * k
            if dev == "gpu":
                name = "GPU bandwidth"
            else:
                best = max((x.tg_bytes_per_s for x in (device or default).types.values()), default=0.0)
                best *= 1.0 if device else _FAMILY_SPEED["k"]
                name = "CPU compute" if best and choice.rate.tg_bytes_per_s < 0.8 * best else "CPU bandwidth"
            terms[name] = terms.get(name, 0.0) + seconds
        overhead = 0.0
        for dev, blocks in r.blocks.items():
            device, default, _ = self._device(dev)
            overhead += (device or default).layer_s * blocks
        used = {dev for dev, _ in r.weights} | set(r.blocks)
        cpu_dev, cpu_default, _ = self._device("cpu")
        gpu_dev, gpu_default, _ = self._device("gpu")
        overhead += ((gpu_dev or gpu_default).step_s if "gpu" in used else (cpu_dev or cpu_default).step_s)
        overhead += r.switches * (self.rates.switch_s if self.rates else 0.0)
        terms["per-token overhead"] = overhead
        if depth > 0:
            for dev, per_token in r.kv_per_token.items():
                device, default, _ = self._device(dev)
                rate = (device.kv_bytes_per_s if device else 0.0) or default.kv_bytes_per_s
                terms["attention at depth"] = terms.get("attention at depth", 0.0) + depth * per_token / rate
        return terms, bases

    def predict(self, info: ModelInfo, s: LoadSettings, n_gpus: int, depth: int = 0,
                n_prompt: int = 512) -> Prediction:
        r = reads(info, s, n_gpus)
        terms, bases = self.step_terms(r, depth)
        seconds = sum(terms.values())
        pp, pp_bound, pp_bases = self._prompt(r, s, n_gpus, n_prompt)
        bases |= pp_bases
        bound = max(terms, key=lambda k: terms[k]) if terms else "per-token overhead"
        return Prediction(tg=1.0 / seconds if seconds > 0 else 0.0, pp=pp, depth=depth, bound=bound,
                          pp_bound=pp_bound, basis=self._basis(bases), band=self._band(bases))

    def _prompt(self, r: Reads, s: LoadSettings, n_gpus: int, n: int) -> tuple[float, str, set[str]]:
        n = max(1, n)
        ub = max(1, min(s.n_ubatch, s.n_batch, n))
        n_ubatches = math.ceil(n / ub)
        offload = n_gpus > 0 and ub >= OP_OFFLOAD_MIN_BATCH
        terms: dict[str, float] = {}
        bases: set[str] = set()
        for (dev, t), nbytes in r.weights.items():
            params = params_of(t, nbytes)
            if dev == "gpu" or offload:
                device, default, assumed = self._device("gpu")
                choice = rate_for(device, t, default, assumed)
                rate = choice.rate.pp_params_per_s or next(iter(default.types.values())).pp_params_per_s
                terms["GPU compute"] = terms.get("GPU compute", 0.0) + n * params / rate
                if dev == "cpu":
                    h2d = self._h2d(s.use_mmap)
                    terms["host-to-GPU copies"] = terms.get("host-to-GPU copies", 0.0) + n_ubatches * nbytes / h2d
            else:
                device, default, _ = self._device("cpu")
                choice = rate_for(device, t, default)
                rate = choice.rate.pp_params_per_s or next(iter(default.types.values())).pp_params_per_s
                terms["CPU compute"] = terms.get("CPU compute", 0.0) + n * params / rate
            bases.add(choice.basis)
        seconds = sum(terms.values())
        if seconds <= 0:
            return 0.0, "GPU compute", bases
        return n / seconds, max(terms, key=lambda k: terms[k]), bases

    def _h2d(self, use_mmap: bool) -> float:
        if self.rates:
            value = self.rates.h2d_pageable if use_mmap else self.rates.h2d_pinned
            if value > 0:
                return value
        return DEFAULT_H2D if not use_mmap else DEFAULT_H2D / 2

    @staticmethod
    def _basis(bases: set[str]) -> str:
        if "assumed" in bases:
            return "assumed"
        if "default" in bases:
            return "default"
        if any(b.startswith("from ") for b in bases):
            return "partly from neighbouring types"
        if "measured while busy" in bases:
            return "measured while busy"
        return "measured"

    def _band(self, bases: set[str]) -> float:
        if "default" in bases or "assumed" in bases or self.rates is None:
            return DEFAULT_BAND
        spreads = [r.spread for d in (self.cpu, self.gpu) if d for r in d.types.values()]
        band = max([self.rates.residual, *spreads, MIN_BAND])
        if any(b.startswith("from ") for b in bases):
            band = max(band, 0.25)
        if "measured while busy" in bases:
            band = max(band, DEFAULT_BAND)
        return round(band, 3)

    def refitted(self, points: list[tuple[ModelInfo, LoadSettings, int, float]]) -> "SpeedModel":
        """The model scaled to measured (model, settings, GPUs, tg) points: one factor for the
        GPU's weight terms and one for the CPU's, least squares on seconds per token (one point,
        or points that cannot tell the sides apart, scale both alike)."""
        rows = []
        for info, s, n_gpus, tg in points:
            if tg <= 0:
                continue
            r = reads(info, s, n_gpus)
            base = SpeedModel(self.rates, self.gpu if self.assumed else None)
            terms, _ = base.step_terms(r, 0)
            g = terms.get("GPU bandwidth", 0.0)
            c = terms.get("CPU bandwidth", 0.0) + terms.get("CPU compute", 0.0)
            rest = terms.get("per-token overhead", 0.0)
            rows.append((g, c, 1.0 / tg - rest))
        if not rows:
            return self
        sgg = sum(g * g for g, _, _ in rows)
        scc = sum(c * c for _, c, _ in rows)
        sgc = sum(g * c for g, c, _ in rows)
        sgt = sum(g * t for g, _, t in rows)
        sct = sum(c * t for _, c, t in rows)
        det = sgg * scc - sgc * sgc
        if len(rows) >= 2 and det > 1e-9 * sgg * scc:
            x, y = (sgt * scc - sct * sgc) / det, (sct * sgg - sgt * sgc) / det
            if x > 0 and y > 0:
                return SpeedModel(self.rates, self.gpu if self.assumed else None, (x, y))
        total = sum(g + c for g, c, _ in rows)
        k = sum(t for _, _, t in rows) / total if total > 0 else 1.0
        k = k if k > 0 else 1.0
        return SpeedModel(self.rates, self.gpu if self.assumed else None, (k, k))
