"""The quality figures' data: the statistics (llama-perplexity's formulas), the array codec on the
engine protocol, the store and the file fingerprint, against hostile and damaged input."""

from __future__ import annotations

import io
import math
import os
import stat
import threading

import numpy as np
import pytest

from tui.files import NotARegularFile
from tui.quality.arrays import ArrayError, pack, unpack
from tui.quality.figures import MIN_TOKENS, clearly_below, figures, percentile_interval
from tui.quality.fingerprint import file_fingerprint
from tui.quality.store import QualityStore, ReferenceDistributions, TokenFigures

RNG = np.random.default_rng(1)


def _llama_mean_and_uncertainty(values: np.ndarray) -> tuple[float, float]:
    """tools/perplexity/perplexity.cpp's own formula, from sums."""
    n = len(values)
    f = values.sum() / n
    df = (values ** 2).sum() / n - f * f
    return f, math.sqrt(df / (n - 1))


def test_figures_use_llama_perplexitys_formulas():
    n = 765
    kld = RNG.gamma(0.5, 0.3, n)
    ref_nll = RNG.gamma(2.0, 1.5, n)
    nll = ref_nll + RNG.normal(0.1, 0.3, n)  # the quant: the reference's hard spots, a bit worse
    same = (RNG.random(n) < 0.8).astype(np.uint8)
    f = figures(kld, nll, ref_nll, same)
    mean, se = _llama_mean_and_uncertainty(kld)
    assert f.kld_mean == pytest.approx(mean) and f.kld_mean_se == pytest.approx(se, rel=1e-9)
    p = same.mean()
    assert f.same_top == pytest.approx(p) and f.same_top_se == pytest.approx(math.sqrt(p * (1 - p) / (n - 1)))
    log_ppl, log_se = _llama_mean_and_uncertainty(nll)
    assert f.ppl == pytest.approx(math.exp(log_ppl)) and f.ppl_se == pytest.approx(f.ppl * log_se, rel=1e-9)
    # the ratio's uncertainty from the paired differences equals llama.cpp's with the covariance term
    log_ref, ref_se = _llama_mean_and_uncertainty(ref_nll)
    cov = ((nll * ref_nll).sum() / n - nll.mean() * ref_nll.mean()) / (n - 1)
    ratio_se = math.sqrt(log_se ** 2 + ref_se ** 2 - 2 * cov)
    assert f.ppl_ratio == pytest.approx(math.exp(log_ppl - log_ref))
    assert f.ppl_ratio_se == pytest.approx(f.ppl_ratio * ratio_se, rel=1e-6)
    assert f.ppl_ratio_se < f.ppl_ratio * math.sqrt(log_se ** 2 + ref_se ** 2) / 3, \
        "what the two share cancels: far tighter than independent errors"


def test_the_99th_percentile_interval_brackets_it_and_narrows_with_more_tokens():
    small = np.sort(RNG.exponential(1.0, 800))
    large = np.sort(RNG.exponential(1.0, 80_000))
    est, low, high = percentile_interval(small, 0.99)
    assert low <= est <= high
    est2, low2, high2 = percentile_interval(large, 0.99)
    assert high2 - low2 < (high - low) / 4
    assert low2 <= -math.log(0.01) <= high2, "the exponential's true 99th percentile, 4.605"


def test_too_few_tokens_and_ragged_arrays_are_refused():
    a = np.zeros(MIN_TOKENS - 1)
    with pytest.raises(ValueError, match="too few"):
        figures(a, a, a, a.astype(np.uint8))
    with pytest.raises(ValueError, match="different lengths"):
        figures(np.zeros(200), np.zeros(200), np.zeros(199), np.zeros(200, np.uint8))


def test_clearly_below_needs_two_standard_errors_of_daylight():
    base = figures(np.full(200, 0.1) + RNG.normal(0, 0.01, 200), np.ones(200), np.ones(200), np.ones(200, np.uint8))
    same = figures(np.full(200, 0.1) + RNG.normal(0, 0.01, 200), np.ones(200), np.ones(200), np.ones(200, np.uint8))
    far = figures(np.full(200, 0.2) + RNG.normal(0, 0.01, 200), np.ones(200), np.ones(200), np.ones(200, np.uint8))
    assert clearly_below(base, far) and not clearly_below(base, same) and not clearly_below(far, base)


# ------------------------------------------------------------------ the array codec


def test_arrays_round_trip_exactly():
    for a, kind in ((RNG.integers(0, 50_000, (7, 3)).astype(np.int32), "i4"),
                    (RNG.normal(size=(5, 2)).astype(np.float32), "f4"),
                    (RNG.normal(size=11), "f8"), (np.array([0, 1, 1], np.uint8), "u1")):
        back = unpack(pack(a, kind), kind, a.ndim)
        assert back.dtype == np.dtype(kind).newbyteorder("<") and np.array_equal(back, a)


@pytest.mark.parametrize("text", [
    "", "f8", "f8:3", "i4:3:AAAA", "f8:3:" + "A" * 31 + "!", "f8:x:AAAA", "f8:-1:", "O:1:gASVAQ==",
    "f8:99999999x99999999:AAAA", "f8:2x2:" + pack(np.zeros(3), "f8").split(":", 2)[2],
])
def test_hostile_packed_arrays_are_refused_before_numpy_sees_them(text):
    import tracemalloc

    tracemalloc.start()
    try:
        with pytest.raises(ArrayError):
            unpack(text, "f8", 1 if text.count("x") == 0 else 2)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20, "nothing sized by the claimed shape was allocated"


# ------------------------------------------------------------------ the store


def _reference(n: int = 120, k: int = 4, m: int = 3) -> ReferenceDistributions:
    lp = np.log(np.full((n, k), 0.2, np.float32))
    return ReferenceDistributions(
        tokens=np.arange(n + 10, dtype=np.int32) % 50, ids=np.tile(np.arange(k, dtype=np.int32), (n, 1)),
        logprobs=lp, rest_logp=np.full(n, math.log(0.2)), tail_ids=np.full((n, m), 7, np.int32),
        tail_logprobs=np.full((n, m), -5.0, np.float32), nll=np.full(n, 1.5), n_vocab=50, chunk=512,
        about={"name": "ref.gguf"})


def test_the_store_round_trips_private_and_rejects_damage(tmp_path):
    store = QualityStore(tmp_path / "q")
    ref = _reference()
    path = store.save_reference("key", ref)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    back = store.reference("key")
    assert back is not None and np.array_equal(back.tail_ids, ref.tail_ids) and back.about == ref.about
    figs = TokenFigures(np.zeros(ref.positions), np.ones(ref.positions), np.ones(ref.positions, np.uint8))
    store.save_token_figures("cand", "key", figs)
    assert store.token_figures("cand", "key", ref.positions) is not None
    assert store.token_figures("cand", "key", ref.positions + 1) is None, "another reference length"
    data = path.read_bytes()
    for damaged in (data[: len(data) // 2], b"", os.urandom(4096), b"PK\x03\x04" + os.urandom(200)):
        path.write_bytes(damaged)
        assert store.reference("key") is None, "damaged: measured again, never trusted"


@pytest.mark.parametrize("change", [
    {"ids": np.full((120, 4), 50, np.int32)},  # outside the vocabulary
    {"logprobs": np.full((120, 4), np.nan, np.float32)},
    {"logprobs": np.full((120, 4), 2.0, np.float32)},  # log-probabilities above 0
    {"tail_logprobs": np.zeros((120, 2), np.float32)},  # shapes that do not fit
    {"nll": np.full(7, 1.0)},
])
def test_stored_references_with_wrong_values_are_measured_again(tmp_path, change):
    store = QualityStore(tmp_path)
    ref = _reference()
    arrays = {**{k: getattr(ref, k) for k in ("tokens", "ids", "logprobs", "rest_logp", "tail_ids",
                                              "tail_logprobs", "nll")}, **change}
    out = io.BytesIO()
    np.savez(out, **arrays, sizes=np.array([50, 512]), about=np.array("{}"))
    (tmp_path / "reference-key.npz").write_bytes(out.getvalue())
    assert store.reference("key") is None


def test_a_pickled_object_array_in_the_store_is_never_unpickled(tmp_path):
    out = io.BytesIO()
    np.savez(out, tokens=np.array([object()], dtype=object), ids=np.zeros((1, 1)), logprobs=np.zeros((1, 1)),
             rest_logp=np.zeros(1), tail_ids=np.zeros((1, 1)), tail_logprobs=np.zeros((1, 1)), nll=np.zeros(1),
             sizes=np.array([1, 512]), about=np.array("{}"))
    (tmp_path / "reference-key.npz").write_bytes(out.getvalue())
    assert QualityStore(tmp_path).reference("key") is None


def test_a_fifo_in_the_store_does_not_hang(tmp_path):
    os.mkfifo(tmp_path / "reference-key.npz")
    done = threading.Event()
    result = []
    threading.Thread(target=lambda: (result.append(QualityStore(tmp_path).reference("key")), done.set()),
                     daemon=True).start()
    assert done.wait(5), "reading a FIFO would block forever"
    assert result == [None]


# ------------------------------------------------------------------ the fingerprint


def test_the_fingerprint_follows_the_content_not_the_name(tmp_path):
    data = bytearray(os.urandom(5 << 20))
    a, b = tmp_path / "a.gguf", tmp_path / "copy" / "b.gguf"
    b.parent.mkdir()
    a.write_bytes(data)
    b.write_bytes(data)
    assert file_fingerprint(a) == file_fingerprint(b), "a copy or a re-download keeps its figures"
    for at in (100, (1 << 20) + (4 << 20) * 3 // 16 + 5):  # in the header; in a sampled block
        changed = bytearray(data)
        changed[at] ^= 0xFF
        b.write_bytes(changed)
        assert file_fingerprint(b) != file_fingerprint(a)
    b.write_bytes(data + b"x")
    assert file_fingerprint(b) != file_fingerprint(a), "another size"


def test_the_fingerprint_refuses_a_fifo_at_once(tmp_path):
    os.mkfifo(tmp_path / "model.gguf")
    with pytest.raises(NotARegularFile):
        file_fingerprint(tmp_path / "model.gguf")


def test_fuzzed_packed_text_gives_an_array_or_an_array_error():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    good = pack(RNG.normal(size=(3, 4)).astype(np.float32), "f4")

    @settings(max_examples=300, deadline=None)
    @given(st.one_of(st.text(max_size=60), st.binary(max_size=60).map(lambda b: b.decode("latin-1")),
                     st.integers(0, len(good) - 1).flatmap(
                         lambda i: st.characters().map(lambda c: good[:i] + c + good[i + 1:]))))
    def check(text):
        try:
            a = unpack(text, "f4", 2)
        except ArrayError:
            return
        assert a.dtype == np.float32 and a.ndim == 2

    check()


# ------------------------------------------------------------------ hostile store files (issue 25)


def _npy_header(dtype: str, shape: tuple[int, ...]) -> bytes:
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(out, {"descr": dtype, "fortran_order": False, "shape": shape})
    return np.lib.format.magic(1, 0) + out.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return out.getvalue()


def _reference_members(**replace: bytes) -> dict[str, bytes]:
    ref = _reference()
    members = {}
    for name in ("tokens", "ids", "logprobs", "rest_logp", "tail_ids", "tail_logprobs", "nll"):
        buf = io.BytesIO()
        np.save(buf, getattr(ref, name))
        members[f"{name}.npy"] = buf.getvalue()
    for name, value in (("sizes", np.array([50, 512])), ("about", np.array("{}"))):
        buf = io.BytesIO()
        np.save(buf, value)
        members[f"{name}.npy"] = buf.getvalue()
    return {**members, **{f"{k}.npy": v for k, v in replace.items()}}


def test_an_array_bomb_in_the_store_is_refused_before_memory_is_taken(tmp_path):
    """A 2.5 MB .npz declaring a 500M-element array drove `quality` to 7 GB and was accepted."""
    import tracemalloc

    bomb = _npy_header("<i4", (500_000_000,)) + b"\0" * (2 << 20)  # compresses to a few KB
    (tmp_path / "reference-key.npz").write_bytes(_zip(_reference_members(tokens=bomb)))
    tracemalloc.start()
    try:
        assert QualityStore(tmp_path).reference("key") is None
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 32 << 20, f"{peak / 2**20:.0f} MiB taken for a file that declares 2 GB"


@pytest.mark.parametrize("member", [b"not an npy file", b"\x93NUMPY\x09\x00" + b"x" * 40, b""])
def test_a_member_that_is_not_npy_is_damage_not_a_crash(tmp_path, member):
    (tmp_path / "reference-key.npz").write_bytes(_zip(_reference_members(ids=member)))
    assert QualityStore(tmp_path).reference("key") is None


@pytest.mark.parametrize("kld, nll, same_top", [
    (-5.0, 1.0, 1),  # a negative KLD was shown as a result
    (428.0, 1.0, 1),  # and one of 428
    (0.1, -3.0, 1),
    (0.1, 1.0, 7),  # same_top = 7 raised ValueError
])
def test_stored_figures_out_of_range_are_measured_again(tmp_path, kld, nll, same_top):
    store = QualityStore(tmp_path)
    n = 120
    out = io.BytesIO()
    np.savez(out, kld=np.full(n, kld), nll=np.full(n, nll), same_top=np.full(n, same_top, np.uint8))
    (tmp_path / "kld-cand-vs-key.npz").write_bytes(out.getvalue())
    assert store.token_figures("cand", "key", n) is None


def test_a_reference_of_other_sizes_than_asked_is_measured_again(tmp_path):
    store = QualityStore(tmp_path)
    store.save_reference("key", _reference())
    assert store.reference("key", chunk=512, k=4, m=3) is not None
    assert store.reference("key", chunk=256) is None and store.reference("key", k=64) is None


def test_a_folder_at_a_store_path_is_damage_on_read_and_a_warning_on_write(tmp_path):
    from tui.quality.store import StoreWriteError

    store = QualityStore(tmp_path)
    (tmp_path / "reference-key.npz").mkdir()
    (tmp_path / "kld-cand-vs-key.npz").mkdir()
    assert store.reference("key") is None and store.token_figures("cand", "key", 120) is None
    with pytest.raises(StoreWriteError, match="could not be kept"):
        store.save_reference("key", _reference())
    figs = TokenFigures(np.zeros(120), np.ones(120), np.ones(120, np.uint8))
    with pytest.raises(StoreWriteError, match="measured again next time"):
        store.save_token_figures("cand", "key", figs)


def test_a_fifo_at_the_figures_path_does_not_hang(tmp_path):
    os.mkfifo(tmp_path / "kld-cand-vs-key.npz")
    done = threading.Event()
    result = []
    threading.Thread(target=lambda: (result.append(QualityStore(tmp_path).token_figures("cand", "key", 120)),
                                     done.set()), daemon=True).start()
    assert done.wait(5), "reading a FIFO would block forever"
    assert result == [None]
