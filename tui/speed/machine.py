"""The speed model of this machine (its saved calibration), or of a GPU it lacks (`--gpu`)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from tui.speed.machine_key import current_key, machine_key
from tui.speed.model import SpeedModel
from tui.speed.rates import DeviceRates, TypeRate, read_rates

GB = 1e9
PEAK_BANDWIDTH = {
    "H200": 4800, "H100 SXM": 3350, "H100 PCIE": 2000, "H100": 3350, "A100 80GB": 2039, "A100": 1555,
    "L40S": 864, "L40": 864, "A6000": 768, "A5000": 768, "A4000": 448, "RTX 6000 ADA": 960,
    "RTX 5090": 1792, "RTX 5080": 960, "RTX 4090": 1008, "RTX 4080": 717, "RTX 4070 TI": 504,
    "RTX 4070": 504, "RTX 4060 TI": 288, "RTX 3090 TI": 1008, "RTX 3090": 936, "RTX 3080": 760,
    "RTX 3060": 360, "P40": 347, "V100": 900, "T4": 320, "7900 XTX": 960, "MI300X": 5300}
"""Peak memory bandwidth in GB/s of GPUs people plan for (their makers' figures)."""

# Measured on an H100 SXM (docs/results/speed_rates_h100.json): each type's weight-streaming
# rate as a share of the card's peak bandwidth, prompt rates in weights x tokens per second,
# and the fixed costs. An assumed GPU scales them by its peak against the H100's 3350 GB/s.
H100_SHARE = {"Q4_K": 0.50, "Q6_K": 0.45, "Q8_0": 0.71, "Q5_K": 0.55, "Q3_K": 0.22, "Q2_K": 0.29,
              "IQ4_XS": 0.54, "IQ3_XXS": 0.32, "IQ3_S": 0.34, "IQ2_XXS": 0.25, "IQ2_XS": 0.27,
              "IQ2_S": 0.29, "IQ1_M": 0.22, "IQ1_S": 0.24, "IQ4_NL": 0.56, "F16": 0.90, "BF16": 0.89,
              "Q4_0": 0.58, "Q4_1": 0.69, "Q5_0": 0.59, "Q5_1": 0.62}
H100_PP = 7e13
H100_PEAK = 3350.0


def assumed_gpu(spec: str) -> tuple[DeviceRates, str]:
    """Rates for a GPU named ("RTX 3090") or given by its bandwidth ("936GB/s", "936"); ValueError
    when neither is understood. Returns the rates and what was assumed, in words."""
    text = spec.strip()
    number = text.upper().removesuffix("GB/S").removesuffix("GBPS").strip()
    try:
        peak = float(number)
        label = f"a GPU with {peak:g} GB/s"
    except ValueError:
        key = text.upper().replace("NVIDIA", "").replace("GEFORCE", "").strip()
        match = next((k for k in sorted(PEAK_BANDWIDTH, key=len, reverse=True) if k in key), None)
        if match is None:
            raise ValueError(f"--gpu {spec!r}: not a GPU vramdeck knows ({', '.join(PEAK_BANDWIDTH)}) "
                             "nor a bandwidth in GB/s such as 936") from None
        peak, label = float(PEAK_BANDWIDTH[match]), f"{match} ({PEAK_BANDWIDTH[match]} GB/s)"
    if not 10 <= peak <= 100_000:
        raise ValueError(f"--gpu {spec!r}: a bandwidth from 10 to 100000 GB/s")
    scale = peak / H100_PEAK
    types = {t: TypeRate(share * peak * GB, H100_PP * scale) for t, share in H100_SHARE.items()}
    return DeviceRates(types=types, step_s=8e-5, layer_s=2.4e-5, kv_bytes_per_s=0.43 * peak * GB), label


def machine_speed_model(gpu: str | None = None, path: Path | None = None,
                        identity: str | None = None) -> tuple[SpeedModel, str]:
    """The model from this machine's calibration (defaults where there is none), with `gpu`
    (--gpu) standing in for the GPU; and a sentence on where its figures come from. `identity`:
    the GPU as the app's sampler saw it (sample_identity); None reads NVML (the commands)."""
    rates, why = read_rates(current_key() if identity is None else machine_key(identity), path)
    words = []
    assumed = None
    if gpu:
        assumed, label = assumed_gpu(gpu)
        words.append(f"GPU assumed: {label}, scaled from an H100's measured rates")
        if rates is not None:
            rates = replace(rates, gpu=None)
    if rates is None:
        words.append(f"CPU: default rates ({why})")
    else:
        busy = " (some measured while the machine was busy)" if rates.busy else ""
        words.append(f"measured on this machine {rates.measured_at}{busy}")
    return SpeedModel(rates, assumed), "; ".join(words)

