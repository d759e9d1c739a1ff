"""Where quality measurements are kept: the reference's distributions over the shipped text
(computed once per reference file) and each candidate's per-token figures against it.

Keyed by fingerprints (the file's, the text's) and the chunk and top-k sizes, so an unchanged
file is never run again, and a changed one never reuses stale figures. Files are .npz archives
in the user's cache folder, 0600, written atomically. What is read back is checked (keys,
dtypes, shapes, values) and a file that fails is measured again, never trusted or crashed on.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from platformdirs import user_cache_dir

from tui.files import read_regular_bytes, remove_stale_temps, write_atomically

STORE_LIMIT = 512 << 20
"""A reference of the shipped text is ~1 MB; anything near this is not one of ours."""


class StoredDataError(ValueError):
    """A stored file that is damaged or not what vramdeck wrote."""


@dataclass(frozen=True)
class ReferenceDistributions:
    """The reference model's next-token distributions at every scored position of the text: its
    top-k log-probabilities, the log of the probability left over, and m tokens drawn from that
    leftover with their log-probabilities (see tui/engine/host/kld.py)."""

    tokens: np.ndarray
    """int32 [n]: the text as the reference tokenized it (the candidate must agree)."""
    ids: np.ndarray
    """int32 [positions, k]: the k most likely next tokens, most likely first."""
    logprobs: np.ndarray
    """float32 [positions, k]: their log-probabilities."""
    rest_logp: np.ndarray
    """float64 [positions]: log of the probability of every other token together."""
    tail_ids: np.ndarray
    """int32 [positions, m]: tokens drawn from the distribution outside the top k."""
    tail_logprobs: np.ndarray
    """float32 [positions, m]: their log-probabilities."""
    nll: np.ndarray
    """float64 [positions]: -log p(the actual next token)."""
    n_vocab: int
    chunk: int
    about: dict

    @property
    def positions(self) -> int:
        return len(self.nll)

    def check(self) -> "ReferenceDistributions":
        check_reference_arrays(self.tokens, self.ids, self.logprobs, self.rest_logp, self.tail_ids,
                               self.tail_logprobs, self.n_vocab, self.chunk)
        if self.nll.shape != self.rest_logp.shape or not np.all(np.isfinite(self.nll)) or \
                (self.nll.size and self.nll.min() < -1e-3):
            raise StoredDataError("the reference's nll does not fit its other arrays")
        return self


def check_reference_arrays(tokens: np.ndarray, ids: np.ndarray, logprobs: np.ndarray, rest_logp: np.ndarray,
                           tail_ids: np.ndarray, tail_logprobs: np.ndarray, n_vocab: int, chunk: int) -> None:
    """A reference's arrays agree in shape, name tokens of the vocabulary and hold finite
    log-probabilities (the store's files and the engine's KLD command are checked alike).
    StoredDataError (a ValueError) saying what does not fit."""
    def bad(why: str) -> StoredDataError:
        return StoredDataError(f"the reference's arrays do not fit together: {why}")

    n, k = ids.shape if ids.ndim == 2 else (-1, -1)
    m = tail_ids.shape[1] if tail_ids.ndim == 2 else -1
    if n < 0 or m < 1 or logprobs.shape != (n, k) or rest_logp.shape != (n,) or tail_logprobs.shape != (n, m):
        raise bad("inconsistent shapes")
    if tokens.ndim != 1 or k < 1 or n_vocab < k or chunk < 32:
        raise bad("sizes out of range")
    if any(a.size and (a.min() < 0 or a.max() >= n_vocab) for a in (ids, tail_ids, tokens)):
        raise bad("token ids outside the vocabulary")
    for name, values in (("logprobs", logprobs), ("rest_logp", rest_logp), ("tail_logprobs", tail_logprobs)):
        if not np.all(np.isfinite(values)):
            raise bad(f"{name} has values that are not finite")
        if values.size and values.max() > 1e-3:
            raise bad(f"{name} has log-probabilities above 0")


@dataclass(frozen=True)
class TokenFigures:
    """A candidate's per-token values against one reference."""

    kld: np.ndarray
    nll: np.ndarray
    same_top: np.ndarray

    def check(self, positions: int) -> "TokenFigures":
        if not (self.kld.shape == self.nll.shape == self.same_top.shape == (positions,)):
            raise StoredDataError(f"per-token figures are not {positions} long")
        if not (np.all(np.isfinite(self.kld)) and np.all(np.isfinite(self.nll))):
            raise StoredDataError("per-token figures that are not finite")
        return self


def _npz(**arrays: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.savez_compressed(out, **arrays)  # type: ignore[arg-type]
    return out.getvalue()


def _load(path: Path, spec: dict[str, tuple[str, int]]) -> dict[str, np.ndarray]:
    """The arrays of `path`, each of the dtype kind and dimensions in `spec`."""
    try:
        data = read_regular_bytes(path, STORE_LIMIT)
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            missing = set(spec) - set(archive.files)
            if missing:
                raise StoredDataError(f"no {sorted(missing)[0]} in it")
            arrays = {name: archive[name] for name in spec}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise StoredDataError(str(exc)[:200]) from None
    for name, (kind, ndim) in spec.items():
        a = arrays[name]
        if a.dtype.kind != kind or a.ndim != ndim:
            raise StoredDataError(f"{name} is {a.dtype} with {a.ndim} dimensions")
    return arrays


class QualityStore:
    def __init__(self, folder: Path | None = None):
        self.folder = folder or Path(user_cache_dir("vramdeck")) / "quality"

    @staticmethod
    def reference_key(reference_fp: str, text_fp: str, chunk: int, k: int, m: int) -> str:
        return f"{reference_fp}-{text_fp}-c{chunk}-k{k}-m{m}"

    def _ref_path(self, key: str) -> Path:
        return self.folder / f"reference-{key}.npz"

    def _fig_path(self, candidate_fp: str, key: str) -> Path:
        return self.folder / f"kld-{candidate_fp}-vs-{key}.npz"

    def reference(self, key: str) -> ReferenceDistributions | None:
        """The stored reference, or None when there is none or it is damaged (then measured again)."""
        path = self._ref_path(key)
        if not path.exists():
            return None
        try:
            a = _load(path, {"tokens": ("i", 1), "ids": ("i", 2), "logprobs": ("f", 2),
                             "rest_logp": ("f", 1), "tail_ids": ("i", 2), "tail_logprobs": ("f", 2),
                             "nll": ("f", 1), "sizes": ("i", 1), "about": ("U", 0)})
            if a["sizes"].shape != (2,):
                raise StoredDataError("sizes is not (n_vocab, chunk)")
            about = json.loads(str(a["about"]))
            if not isinstance(about, dict):
                raise StoredDataError("about is not a table")
            return ReferenceDistributions(
                tokens=a["tokens"].astype(np.int32), ids=a["ids"].astype(np.int32),
                logprobs=a["logprobs"].astype(np.float32), rest_logp=a["rest_logp"].astype(np.float64),
                tail_ids=a["tail_ids"].astype(np.int32), tail_logprobs=a["tail_logprobs"].astype(np.float32),
                nll=a["nll"].astype(np.float64), n_vocab=int(a["sizes"][0]), chunk=int(a["sizes"][1]),
                about=about).check()
        except (StoredDataError, ValueError):
            return None

    def save_reference(self, key: str, ref: ReferenceDistributions) -> Path:
        path = self._ref_path(key)
        if self.folder.exists():
            remove_stale_temps(self.folder)  # a save killed mid-write
        write_atomically(path, _npz(tokens=ref.tokens, ids=ref.ids, logprobs=ref.logprobs,
                                    rest_logp=ref.rest_logp, tail_ids=ref.tail_ids,
                                    tail_logprobs=ref.tail_logprobs, nll=ref.nll,
                                    sizes=np.array([ref.n_vocab, ref.chunk], dtype=np.int64),
                                    about=np.array(json.dumps(ref.about))))
        return path

    def token_figures(self, candidate_fp: str, key: str, positions: int) -> TokenFigures | None:
        path = self._fig_path(candidate_fp, key)
        if not path.exists():
            return None
        try:
            a = _load(path, {"kld": ("f", 1), "nll": ("f", 1), "same_top": ("u", 1)})
            return TokenFigures(a["kld"].astype(np.float64), a["nll"].astype(np.float64),
                                a["same_top"].astype(np.uint8)).check(positions)
        except StoredDataError:
            return None

    def save_token_figures(self, candidate_fp: str, key: str, figures: TokenFigures) -> Path:
        path = self._fig_path(candidate_fp, key)
        write_atomically(path, _npz(kld=figures.kld, nll=figures.nll, same_top=figures.same_top))
        return path
