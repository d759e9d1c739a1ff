"""The figures a quant is judged by, from per-token values, the way llama-perplexity
--kl-divergence states them: each with its uncertainty (one standard error).

- mean KL divergence of the quant's next-token distribution from the reference's;
- its 99th percentile (the rare tokens a quant gets badly wrong), with a distribution-free
  interval from order statistics;
- "same top token": how often both would pick the same greedy token;
- the quant's perplexity, the reference's, and their ratio. The ratio's uncertainty comes from
  the per-token differences, so what the two share (the text's hard spots) cancels.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

MIN_TOKENS = 100
"""Fewer scored tokens than this say nothing (llama-perplexity refuses statistics below it too)."""


@dataclass(frozen=True)
class QualityFigures:
    tokens: int
    """Scored positions (each predicts the next token of the shipped text)."""
    kld_mean: float
    kld_mean_se: float
    kld_p99: float
    kld_p99_low: float
    kld_p99_high: float
    """The 99th percentile's interval (about 95 %, from the order statistics around it)."""
    same_top: float
    """Fraction of positions where the quant's most likely token is the reference's."""
    same_top_se: float
    ppl: float
    ppl_se: float
    reference_ppl: float
    reference_ppl_se: float
    ppl_ratio: float
    ppl_ratio_se: float

    def to_dict(self) -> dict[str, float | int]:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(self).items()}

    def kld_text(self) -> str:
        """`0.0123 ± 0.0008`: how the tables show the mean KLD."""
        return f"{self.kld_mean:.4f} ± {self.kld_mean_se:.4f}"

    def short(self) -> str:
        """One line: mean and 99th-percentile KLD, same top token, perplexity ratio."""
        return (f"KLD {self.kld_text()} (p99 {self.kld_p99:.3f}) · same top "
                f"{100 * self.same_top:.1f} ± {100 * self.same_top_se:.1f} % · PPL ×{self.ppl_ratio:.4f} "
                f"± {self.ppl_ratio_se:.4f}")


def _mean_se(values: np.ndarray) -> tuple[float, float]:
    n = len(values)
    mean = float(values.mean())
    return mean, (float(values.std(ddof=1)) / math.sqrt(n) if n > 1 else 0.0)


def percentile_interval(sorted_values: np.ndarray, q: float, z: float = 1.96) -> tuple[float, float, float]:
    """(estimate, low, high) of the q-quantile: the ranks nq ± z·sqrt(nq(1-q)) bound it with
    about 95 % confidence whatever the distribution."""
    import numpy as np

    n = len(sorted_values)
    estimate = float(np.quantile(sorted_values, q))
    half = z * math.sqrt(n * q * (1 - q))
    low = sorted_values[max(0, math.floor(n * q - half) - 1)]
    high = sorted_values[min(n - 1, math.ceil(n * q + half))]
    return estimate, float(low), float(high)


def figures(kld: np.ndarray, nll: np.ndarray, reference_nll: np.ndarray,
            same_top: np.ndarray) -> QualityFigures:
    """Per-token KLD, the quant's and the reference's negative log-likelihood of the actual next
    token, and whether their top tokens agree (1/0). ValueError below MIN_TOKENS."""
    import numpy as np

    n = len(kld)
    if not (len(nll) == len(reference_nll) == len(same_top) == n):
        raise ValueError("per-token arrays of different lengths")
    if n < MIN_TOKENS:
        raise ValueError(f"{n} scored tokens are too few for figures (at least {MIN_TOKENS})")
    kld = np.asarray(kld, dtype=np.float64)  # unclamped: a token's tail estimate can dip below 0
    kld_mean, kld_se = _mean_se(kld)
    p99, p99_low, p99_high = percentile_interval(np.sort(kld), 0.99)
    top = float(np.mean(same_top))
    top_se = math.sqrt(top * (1 - top) / (n - 1))
    log_ppl, log_ppl_se = _mean_se(np.asarray(nll, dtype=np.float64))
    log_ref, log_ref_se = _mean_se(np.asarray(reference_nll, dtype=np.float64))
    log_ratio, log_ratio_se = _mean_se(np.asarray(nll, dtype=np.float64) - reference_nll)
    ppl, ref_ppl, ratio = math.exp(log_ppl), math.exp(log_ref), math.exp(log_ratio)
    return QualityFigures(tokens=n, kld_mean=kld_mean, kld_mean_se=kld_se, kld_p99=p99,
                          kld_p99_low=p99_low, kld_p99_high=p99_high, same_top=top, same_top_se=top_se,
                          ppl=ppl, ppl_se=ppl * log_ppl_se, reference_ppl=ref_ppl,
                          reference_ppl_se=ref_ppl * log_ref_se, ppl_ratio=ratio,
                          ppl_ratio_se=ratio * log_ratio_se)


def clearly_below(a: QualityFigures, b: QualityFigures, z: float = 2.0) -> bool:
    """a's mean KLD is below b's by more than z standard errors of each: their intervals
    (± z·se) do not overlap."""
    return a.kld_mean + z * a.kld_mean_se < b.kld_mean - z * b.kld_mean_se
