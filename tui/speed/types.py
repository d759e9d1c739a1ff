"""The tensor types a calibration measures."""

from __future__ import annotations

ALL_TYPES: tuple[str, ...] = (
    "Q4_K", "Q6_K", "Q8_0", "Q5_K", "Q3_K", "Q2_K", "IQ4_XS", "IQ3_XXS", "IQ3_S", "IQ2_XXS",
    "IQ2_XS", "IQ2_S", "IQ1_S", "F16", "Q4_0", "Q5_0", "IQ1_M", "IQ4_NL", "BF16", "Q4_1", "Q5_1")
"""Every tensor type the plan's 23 quants are made of, the common ones first."""
CALIBRATED_TYPES = ALL_TYPES[:16]
"""What a calibration measures by default: the last five run within a few percent of a measured
neighbour (IQ1_M of IQ1_S, IQ4_NL of IQ4_XS, BF16 of F16, Q4_1 of Q4_0, Q5_1 of Q5_0 on the H100
host's CPU and GPU; docs/results/speed_model_h100_cal.json), which then stands in for them."""

