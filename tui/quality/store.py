"""Where quality measurements are kept: the reference's distributions over the shipped text
(computed once per reference file) and each candidate's per-token figures against it.

Keyed by fingerprints (the file's, the text's) and the chunk and top-k sizes, so an unchanged
file is never run again, and a changed one never reuses stale figures. Files are .npz archives
in the user's cache folder, 0600, written atomically. What is read back is checked (keys,
dtypes, shapes, values) and a file that fails is measured again, never trusted or crashed on.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from platformdirs import user_cache_dir

from tui.files import read_regular_bytes, remove_stale_temps, write_atomically

STORE_LIMIT = 64 << 20
"""A reference of the shipped text is ~1 MB; a file, or the arrays it declares, past this is not
one of ours (the arrays' headers are read first, so a small file declaring a huge array is
refused before any memory is taken)."""
KLD_RANGE = (-1.0, 100.0)
"""Per-token KL divergence, nats. The estimate's tail term can make one token slightly negative;
below -1 or above 100 (a reference token the quant gives e^-100) is not a measurement."""
NLL_MAX = 200.0
MIN_MEAN_KLD = -0.01


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
        """The figures fit `positions` and hold values a measurement can give (see KLD_RANGE)."""
        if not (self.kld.shape == self.nll.shape == self.same_top.shape == (positions,)):
            raise StoredDataError(f"per-token figures are not {positions} long")
        if not (np.all(np.isfinite(self.kld)) and np.all(np.isfinite(self.nll))):
            raise StoredDataError("per-token figures that are not finite")
        if positions and (self.kld.min() < KLD_RANGE[0] or self.kld.max() > KLD_RANGE[1]
                          or self.kld.mean() < MIN_MEAN_KLD):
            raise StoredDataError(f"KL divergences out of range ({self.kld.min():.3g} to {self.kld.max():.3g})")
        if positions and (self.nll.min() < -1e-3 or self.nll.max() > NLL_MAX):
            raise StoredDataError("negative log-likelihoods out of range")
        if positions and self.same_top.max() > 1:
            raise StoredDataError("same-top flags other than 0 and 1")
        return self


def _npz(**arrays: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.savez_compressed(out, **arrays)  # type: ignore[arg-type]
    return out.getvalue()


def _member(archive: zipfile.ZipFile, name: str, kind: str, ndim: int, budget: list[int]) -> np.ndarray:
    """One array of the archive, its .npy header checked (dtype kind, dimensions, and the bytes
    its shape needs against what is left of `budget`) before its data is read."""
    try:
        info = archive.getinfo(f"{name}.npy")
    except KeyError:
        raise StoredDataError(f"no {name} in it") from None
    with archive.open(info) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise StoredDataError(f"{name} has .npy version {version}")
        if dtype.kind != kind or dtype.hasobject or len(shape) != ndim or fortran:
            raise StoredDataError(f"{name} is {dtype} with {len(shape)} dimensions")
        items = 1
        for n in shape:
            items *= n
        need = items * dtype.itemsize
        if need > budget[0]:
            raise StoredDataError(f"{name} declares {need:,} bytes, more than a stored file holds")
        budget[0] -= need
        data = f.read(need + 1)
    if len(data) != need:
        raise StoredDataError(f"{name} holds {len(data):,} bytes where its shape needs {need:,}")
    return np.frombuffer(data, dtype=dtype).reshape(shape)


def _load(path: Path, spec: dict[str, tuple[str, int]]) -> dict[str, np.ndarray]:
    """The arrays of `path`, each of the dtype kind and dimensions in `spec`. StoredDataError for
    anything else: a damaged or foreign file, a folder or FIFO in its place, an array bomb."""
    try:
        data = read_regular_bytes(path, STORE_LIMIT)
        budget = [STORE_LIMIT]
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return {name: _member(archive, name, kind, ndim, budget) for name, (kind, ndim) in spec.items()}
    except StoredDataError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, RuntimeError, NotImplementedError) as exc:
        raise StoredDataError(f"{type(exc).__name__}: {str(exc)[:200]}") from None


class StoreWriteError(Exception):
    """The figures were measured but could not be kept; they are still shown."""


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

    def reference(self, key: str, chunk: int | None = None, k: int | None = None,
                  m: int | None = None) -> ReferenceDistributions | None:
        """The stored reference, or None when there is none or it is damaged or of other sizes
        than `chunk`, `k` and `m` (then it is measured again)."""
        path = self._ref_path(key)
        if not path.is_file():
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
            ref = ReferenceDistributions(
                tokens=a["tokens"].astype(np.int32), ids=a["ids"].astype(np.int32),
                logprobs=a["logprobs"].astype(np.float32), rest_logp=a["rest_logp"].astype(np.float64),
                tail_ids=a["tail_ids"].astype(np.int32), tail_logprobs=a["tail_logprobs"].astype(np.float32),
                nll=a["nll"].astype(np.float64), n_vocab=int(a["sizes"][0]), chunk=int(a["sizes"][1]),
                about=about).check()
        except (StoredDataError, ValueError):
            return None
        if (chunk is not None and ref.chunk != chunk) or (k is not None and ref.ids.shape[1] != k) or \
                (m is not None and ref.tail_ids.shape[1] != m):
            return None
        return ref

    def discard_reference(self, key: str) -> None:
        """Forget a stored reference the engine found at odds with the model (it is run again)."""
        with contextlib.suppress(OSError):
            self._ref_path(key).unlink()

    def save_reference(self, key: str, ref: ReferenceDistributions) -> Path:
        """Keep the reference. StoreWriteError when it cannot be written (the caller warns)."""
        path = self._ref_path(key)
        try:
            if self.folder.is_dir():
                remove_stale_temps(self.folder)  # a save killed mid-write
            self._write(path, _npz(tokens=ref.tokens, ids=ref.ids, logprobs=ref.logprobs,
                                    rest_logp=ref.rest_logp, tail_ids=ref.tail_ids,
                                    tail_logprobs=ref.tail_logprobs, nll=ref.nll,
                                    sizes=np.array([ref.n_vocab, ref.chunk], dtype=np.int64),
                                    about=np.array(json.dumps(ref.about))))
        except OSError as exc:
            raise StoreWriteError(f"the reference could not be kept in {self.folder} ({exc.strerror or exc}); "
                                  "it will be run again next time") from None
        return path

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        if path.is_dir() or (path.exists() and not path.is_file()):
            raise IsADirectoryError(errno.EISDIR, "something other than a file is in its place", str(path))
        write_atomically(path, data)

    def token_figures(self, candidate_fp: str, key: str, positions: int) -> TokenFigures | None:
        path = self._fig_path(candidate_fp, key)
        if not path.is_file():
            return None
        try:
            a = _load(path, {"kld": ("f", 1), "nll": ("f", 1), "same_top": ("u", 1)})
            return TokenFigures(a["kld"].astype(np.float64), a["nll"].astype(np.float64),
                                a["same_top"].astype(np.uint8)).check(positions)
        except StoredDataError:
            return None

    def save_token_figures(self, candidate_fp: str, key: str, figures: TokenFigures) -> Path:
        """Keep a candidate's figures. StoreWriteError when they cannot be written."""
        path = self._fig_path(candidate_fp, key)
        try:
            self._write(path, _npz(kld=figures.kld, nll=figures.nll, same_top=figures.same_top))
        except OSError as exc:
            raise StoreWriteError(f"the figures could not be kept in {self.folder} ({exc.strerror or exc}); "
                                  "they will be measured again next time") from None
        return path
