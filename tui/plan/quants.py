"""The quant types vramdeck plans for, with llama.cpp's file type ids and the published quality
figures (data in published_quality.toml, with its source)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources

from tui.models.gguf_tables import LlamaFileType

PLAN_TYPES: tuple[str, ...] = (
    "F16", "BF16", "Q8_0", "Q6_K", "Q5_K_M", "Q5_K_S", "Q4_K_M", "Q4_K_S", "IQ4_XS", "IQ4_NL",
    "Q3_K_L", "Q3_K_M", "Q3_K_S", "IQ3_M", "IQ3_XXS", "Q2_K", "Q2_K_S", "IQ2_M", "IQ2_S", "IQ2_XS",
    "IQ2_XXS", "IQ1_M", "IQ1_S")
"""Largest to smallest, roughly: the order of the plan table."""


def file_type_id(name: str) -> int:
    """llama.cpp's LLAMA_FTYPE_MOSTLY_<name> (ValueError for a name it does not have)."""
    key = name.upper()
    for member in LlamaFileType:
        if member.name in (f"MOSTLY_{key}", key):
            return int(member.value)
    raise ValueError(f"unknown quant type {name!r} ({', '.join(PLAN_TYPES)})")


@dataclass(frozen=True)
class PublishedQuality:
    ppl_increase: float | None
    """Perplexity above the F16 model's, as published; None where none is."""
    model: str
    source: str

    def describe(self) -> str:
        if self.ppl_increase is None:
            return "no published figure"
        return f"{self.ppl_increase:+.4f} ppl @ {self.model} (published)"


@cache
def _table() -> dict:
    text = resources.files("tui.plan").joinpath("published_quality.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def published_quality(quant: str) -> PublishedQuality:
    table = _table()
    row = table["ppl_increase"].get(quant.upper())
    if row is None:
        return PublishedQuality(None, "", table["source"])
    return PublishedQuality(float(row["value"]), str(row["model"]), table["source"])
