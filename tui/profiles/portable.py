"""A profile records the machine it was measured on; loading it on another one says so."""

from __future__ import annotations

from datetime import date

from tui.monitor.sample import Sample
from tui.profiles.schema import Profile
from tui.profiles.tried import Spread
from tui.quality.figures import QualityFigures
from tui.units import format_bytes


def machine_record(sample: Sample | None, llama_cpp_version: str) -> dict:
    gpus = sample.gpus if sample else ()
    return {"gpus": [g.name for g in gpus],
            "gpu_memory_bytes": [g.memory_total_bytes or 0 for g in gpus],
            "driver": (sample.driver_version if sample else None) or "",
            "llama_cpp_version": llama_cpp_version}


def measured_results(machine: dict, vram_bytes_per_gpu, load_seconds: float,
                     pp_tokens_per_s: float | None = None,
                     tg_tokens_per_s: float | None = None, speed: Spread | None = None,
                     quality: QualityFigures | None = None, reference: str = "") -> dict:
    """A profile's [results]: the machine, today's date, and what was measured there: speed
    with its spread and run count, and quality against `reference` (a file name)."""
    results = {**machine, "date": date.today().isoformat(),
               "vram_bytes_per_gpu": list(vram_bytes_per_gpu),
               "load_seconds": round(load_seconds, 3)}
    if tg_tokens_per_s is not None:
        results["pp_tokens_per_s"] = round(pp_tokens_per_s or 0.0, 2)
        results["tg_tokens_per_s"] = round(tg_tokens_per_s, 2)
    if speed is not None:
        results.update(pp_stdev=round(speed.pp_stdev, 2), tg_stdev=round(speed.tg_stdev, 2), runs=speed.runs)
    if quality is not None:
        results.update(quality_results(quality, reference))
    return results


def quality_results(f: QualityFigures, reference: str) -> dict:
    """A profile's quality keys: the figures against `reference` (a file name)."""
    return {"kld_mean": round(f.kld_mean, 6), "kld_mean_se": round(f.kld_mean_se, 6),
            "kld_p99": round(f.kld_p99, 6), "same_top": round(f.same_top, 4),
            "same_top_se": round(f.same_top_se, 4), "ppl": round(f.ppl, 4),
            "ppl_ratio": round(f.ppl_ratio, 5), "ppl_ratio_se": round(f.ppl_ratio_se, 5),
            "quality_tokens": f.tokens, "quality_reference": reference}


def _describe(names: list, memory: list) -> str:
    if not names:
        return "no NVIDIA GPU"
    parts = []
    for i, name in enumerate(names):
        size = memory[i] if i < len(memory) else 0
        parts.append(f"{name}" + (f" ({format_bytes(size, 0)})" if size else ""))
    return " + ".join(parts)


def machine_mismatch(profile: Profile, sample: Sample | None) -> str:
    """A sentence when the profile was measured on other GPUs than this machine has, else ""."""
    r = profile.results
    if not r or "gpus" not in r or not isinstance(r.get("gpus"), list):
        return ""
    then_names = [str(x) for x in r["gpus"]]
    then_memory = [int(x) for x in r.get("gpu_memory_bytes", []) if isinstance(x, int)]
    now = sample.gpus if sample else ()
    now_names = [g.name for g in now]
    now_memory = [g.memory_total_bytes or 0 for g in now]
    same_memory = not then_memory or then_memory == now_memory
    if then_names == now_names and same_memory:
        return ""
    return (f"Profile '{profile.name}' was measured on {_describe(then_names, then_memory)}; this "
            f"machine has {_describe(now_names, now_memory)}. Its layer count may not fit here: "
            "in the Tuner (F4), f fits it to this machine.")
