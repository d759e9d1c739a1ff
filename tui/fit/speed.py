"""Speculative decoding's arithmetic: what a draft of k tokens kept at rate a yields per second.
(Generation speed itself comes from the one speed model, tui.speed.model.)"""

from __future__ import annotations

DEFAULT_ACCEPTANCE = 0.7
"""What a draft of the same family gets accepted at when nothing was measured: the middle of the
60-80 % llama.cpp users report for Llama-3.2-1B drafting Llama-3.1-70B on chat text."""


CPU_BATCH_COST = 0.55
"""What each extra token of a verify batch adds to the CPU layers' share of a target step.
Measured on the H200 host (16 cores) with the 70B shape in Q4_K_M at 40 of 81 layers: a batch of
5 cost 2.8 single steps, one of 17 cost 11 (llama.cpp's CPU matmuls for K-quants grow with the
batch); the GPU layers' share stays about one step while memory-bound. docs/benchmarks.md."""


def speculative_tg(target_tg: float, draft_tg: float, acceptance: float, draft_max: int,
                   cpu_share: float = 0.0) -> float:
    """Expected tokens per second with a draft. A round drafts k tokens (k draft steps) and
    checks them in one target batch: about one target step for the layers on a GPU, and
    1 + CPU_BATCH_COST x k steps for the share `cpu_share` of the step spent on CPU layers. With
    each drafted token kept with probability a, a round yields (1 - a^(k+1)) / (1 - a) tokens.
    (Rounds that stop early at --draft-p-min cost less than this counts, so it errs low.)"""
    if target_tg <= 0 or draft_tg <= 0 or draft_max <= 0:
        return target_tg
    a = min(max(acceptance, 0.0), 0.999)
    k = draft_max
    tokens = (1 - a ** (k + 1)) / (1 - a)
    verify = (1 + CPU_BATCH_COST * k * min(max(cpu_share, 0.0), 1.0)) / target_tg
    return tokens / (k / draft_tg + verify)
