"""The shipped text every quant is scored on, and the prompt speculative decoding is timed on."""

from __future__ import annotations

from importlib import resources


def perplexity_text() -> str:
    """The text every quant is scored on (perplexity and KL divergence): public-domain American
    documents, long enough that the figures' uncertainty separates the quants of a ladder."""
    return resources.files("tui.tune").joinpath("perplexity_text.txt").read_text(encoding="utf-8")


DRAFT_PROMPT = "Repeat this text word for word, then go on in the same style:\n\n"


def draft_prompt() -> str:
    """What speculative decoding is measured on: the shipped text to repeat and go on, the kind
    of reply a draft (or prompt lookup) helps with, the same for every set-up."""
    return DRAFT_PROMPT + perplexity_text()[:1500]
