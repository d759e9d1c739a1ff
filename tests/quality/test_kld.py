"""KL divergence with the real engine on the demo model's ladder (F16 dequantized from the shipped
Q4_1, then Q8_0, Q4_K_M and Q2_K quantized by llama.cpp): the issue's tests, and the estimator
against the exact full-vocabulary KL divergence."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from tui.engine.settings import LoadSettings
from tui.quality.errors import QualityError
from tui.quality.figures import QualityFigures, clearly_below
from tui.quality.measure import QualityMeter
from tui.quality.reference import pick_reference
from tui.quality.store import QualityStore

pytestmark = pytest.mark.slow


def _measure(meter: QualityMeter, paths: list[Path]) -> list[QualityFigures]:
    async def go() -> list[QualityFigures]:
        return [await meter.measure_file(p) for p in paths]
    return asyncio.run(go())


@pytest.fixture(scope="module")
def ladder_figures(demo_ladder, tmp_path_factory):
    """F16 picked as the reference (the highest precision beside the others), and every file of
    the ladder measured against it, in a store of the module's own."""
    store = QualityStore(tmp_path_factory.mktemp("quality-store"))
    reference = pick_reference([demo_ladder["Q4_K_M"]])
    meter = QualityMeter(reference, LoadSettings(model_path=""), store=store)
    names = ("F16", "Q8_0", "Q4_K_M", "Q2_K")
    figures = dict(zip(names, _measure(meter, [demo_ladder[n] for n in names]), strict=True))
    return reference, store, meter, figures


def test_the_reference_is_the_highest_precision_file_beside_the_candidates(ladder_figures, demo_ladder):
    reference, *_ = ladder_figures
    assert reference == demo_ladder["F16"].resolve()


def test_a_file_against_itself_has_kld_0_and_the_same_top_token_everywhere(ladder_figures):
    f = ladder_figures[3]["F16"]
    assert f.kld_mean == 0.0 and f.kld_p99 == 0.0 and f.same_top == 1.0
    assert f.ppl_ratio == 1.0 and f.ppl == f.reference_ppl


def test_kld_rises_q8_0_q4_k_m_q2_k_with_uncertainties_that_do_not_overlap(ladder_figures):
    f = ladder_figures[3]
    print({k: f"{v.kld_mean:.4f} ± {v.kld_mean_se:.4f}, p99 {v.kld_p99:.3f}, top {v.same_top:.3f}"
           for k, v in f.items()})
    assert clearly_below(f["Q8_0"], f["Q4_K_M"]) and clearly_below(f["Q4_K_M"], f["Q2_K"]), \
        "± 2 standard errors apart: the shipped text is long enough to separate them"
    assert f["Q8_0"].same_top > f["Q4_K_M"].same_top > f["Q2_K"].same_top
    assert f["Q8_0"].kld_p99 < f["Q4_K_M"].kld_p99_low and f["Q4_K_M"].kld_p99_high < f["Q2_K"].kld_p99_low
    assert 1.0 < f["Q4_K_M"].ppl_ratio < f["Q2_K"].ppl_ratio
    assert f["Q8_0"].tokens >= 700


def test_the_stored_reference_and_figures_are_reused_without_running_anything(ladder_figures, demo_ladder):
    reference, store, first, figures = ladder_figures
    assert first.log.reference_runs == 1 and first.log.candidate_runs == 4

    def no_engine():
        raise AssertionError("an engine was started for a file measured before")

    again = QualityMeter(reference, LoadSettings(model_path=""), store=store, client_factory=no_engine)
    repeat = _measure(again, [demo_ladder["Q2_K"], demo_ladder["Q8_0"]])
    assert again.log.reference_runs == 0 and again.log.candidate_runs == 0 and len(again.log.reused) == 2
    assert repeat == [figures["Q2_K"], figures["Q8_0"]]


def test_a_model_of_another_vocabulary_is_refused_with_the_reason(ladder_figures, tiny_llama):
    reference, store, *_ = ladder_figures
    meter = QualityMeter(reference, LoadSettings(model_path=""), store=store)
    with pytest.raises(QualityError, match="reads the text differently from the reference"):
        _measure(meter, [tiny_llama])


def test_the_estimate_is_within_3_percent_of_the_exact_full_vocabulary_kld(ladder_figures, demo_ladder):
    """top 64 exact + 64 tokens drawn from the tail, against summing over all 49,152 tokens
    (what llama-perplexity does); the top 64 alone come out ~14 % low on this model."""
    import llama_cpp

    from tui.engine.host.generate import tokenize
    from tui.engine.host.runtime import LoadedModel
    from tui.engine.host.scored import log_softmax, scored_chunks
    from tui.models.gguf_info import check_model_file
    from tui.tune.text import perplexity_text

    llama_cpp.llama_backend_init()

    def logprobs(path: Path) -> np.ndarray:
        s = LoadSettings(model_path=str(path), n_ctx=512, n_threads=2).validated()
        lm = LoadedModel.load(s, check_model_file(str(path)), lambda _f: None, lambda: [])
        try:
            tokens = tokenize(lm.vocab, perplexity_text(), True)
            return np.concatenate([log_softmax(c.logits) for c in
                                   scored_chunks(lm, tokens, 512, threading.Event())])
        finally:
            lm.free()

    p, q = logprobs(demo_ladder["F16"]), logprobs(demo_ladder["Q4_K_M"])
    exact = float((np.exp(p) * (p - q)).sum(axis=1).mean())
    estimate = ladder_figures[3]["Q4_K_M"].kld_mean
    print(f"exact {exact:.5f}, estimate {estimate:.5f}")
    assert abs(estimate - exact) < 0.03 * exact


def test_quality_cli_prints_every_figure_and_json(ladder_figures, demo_ladder):
    out = subprocess.run([sys.executable, "-m", "tui", "quality", str(demo_ladder["Q2_K"]),
                          str(demo_ladder["Q8_0"]), "--json"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert Path(data["reference"]) == demo_ladder["F16"].resolve()
    q2, q8 = (data["files"][str(demo_ladder[n])] for n in ("Q2_K", "Q8_0"))
    assert q8["kld_mean"] < q2["kld_mean"] and q2["same_top"] < q8["same_top"] < 1
    table = subprocess.run([sys.executable, "-m", "tui", "quality", str(demo_ladder["Q2_K"])],
                           capture_output=True, text=True, timeout=300)
    assert table.returncode == 0, table.stderr
    assert "reference: SmolLM2-135M-F16.gguf" in table.stdout and "from the store" in table.stdout
    assert f"{q2['kld_mean']:8.4f} ± {q2['kld_mean_se']:.4f}" in table.stdout


def test_quality_cli_names_itself_and_the_missing_file(tmp_path):
    out = subprocess.run([sys.executable, "-m", "tui", "quality", str(tmp_path / "absent.gguf")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and out.stderr.startswith("vramdeck quality: ") and "absent.gguf" in out.stderr


def test_a_tune_reports_each_files_quality_and_ranks_the_front_by_kld(ladder_figures, demo_ladder):
    """Each file's figures come with its first set-up measured (here from the store: no extra
    run); the speed/quality front weighs the mean KLD."""
    from tui.fit.estimate import estimate, formula_calibration
    from tui.models.model_info import load_model_info
    from tui.tune.run import run_tune
    from tui.tune.space import Candidate

    reference, store, _, figures = ladder_figures
    candidates = []
    for name in ("Q8_0", "Q2_K"):
        info = load_model_info(demo_ladder[name])
        s = LoadSettings(model_path=str(demo_ladder[name]), n_ctx=512, n_gpu_layers=0)
        candidates.append(Candidate(s, info, estimate(info, s, formula_calibration(info, s), (), ())))
    meter = QualityMeter(reference, LoadSettings(model_path=""), store=store)
    report = asyncio.run(run_tune(candidates, 120, asyncio.Event(), quality=meter))
    q8, q2 = (str(demo_ladder[n]) for n in ("Q8_0", "Q2_K"))
    assert report.quality == {q8: figures["Q8_0"], q2: figures["Q2_K"]}
    assert meter.log.candidate_runs == 0 and report.quality_reference == str(reference)
    assert report.quality_cost(q8) == figures["Q8_0"].kld_mean
    front = {m.candidate.settings.model_path for m in report.pareto()}
    faster = max(report.best_per_file().values(), key=lambda m: m.tg_tokens_per_s).candidate.settings.model_path
    assert q8 in front and faster in front, "the best quality is always on the front, and the fastest"


def test_tune_cli_shows_kld_against_the_reference(demo_ladder):
    out = subprocess.run([sys.executable, "-m", "tui", "tune", str(demo_ladder["Q4_K_M"]), "--time-budget", "1s",
                          "--min-ctx", "512", "--json"], capture_output=True, text=True, timeout=400)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert Path(data["quality_reference"]) == demo_ladder["F16"].resolve()
    q = data["quality"][str(demo_ladder["Q4_K_M"])]
    assert q["kld_mean"] > 0.05 and 0.5 < q["same_top"] < 1 and q["ppl_ratio"] > 1


def test_the_engine_refuses_a_reference_whose_arrays_do_not_fit_and_keeps_working(demo_model):
    """A KldCommand with token ids past the vocabulary, or shapes that disagree, is answered
    with a failure that says so; the engine then still scores text."""
    from tui.engine.client import EngineClient, EngineError
    from tui.engine.protocol import KldCommand, PackedReference
    from tui.quality.arrays import pack
    from tui.tune.text import perplexity_text

    n, k = 765, 4
    good = {"tokens": pack(np.zeros(10, np.int32), "i4"), "logprobs": pack(np.full((n, k), -2.0, np.float32), "f4"),
            "rest_logp": pack(np.full(n, -1.0), "f8"), "tail_ids": pack(np.zeros((n, 2), np.int32), "i4"),
            "tail_logprobs": pack(np.full((n, 2), -9.0, np.float32), "f4")}

    async def go() -> float:
        client = EngineClient()
        try:
            await client.load(LoadSettings(model_path=str(demo_model), n_ctx=512))
            for ids in (np.full((n, k), 10**6, np.int32), np.zeros((n - 1, k), np.int32)):
                with pytest.raises(EngineError, match="do not fit together"):
                    await client.kld(KldCommand(text="x", reference=PackedReference(
                        n_vocab=49152, ids=pack(ids, "i4"), **good)))
            with pytest.raises(EngineError, match="expected f4 values"):
                mixed_up = {**good, "logprobs": good["rest_logp"]}
                await client.kld(KldCommand(text="x", reference=PackedReference(
                    n_vocab=49152, ids=pack(np.zeros((n, k), np.int32), "i4"), **mixed_up)))
            return (await client.perplexity(perplexity_text())).perplexity
        finally:
            await client.stop()

    assert asyncio.run(go()) > 1


def test_a_stored_reference_the_engine_disagrees_with_is_run_again_and_a_failed_write_is_a_warning(
        ladder_figures, demo_ladder, tmp_path):
    """Issue 25: a damaged but well-formed reference (another token list) was trusted for ever,
    and every later run failed 'reads the text differently', blaming the model. And a store that
    cannot be written lost the figures with a traceback."""
    import shutil

    import numpy as np

    from tui.quality.measure import _reference_settings

    reference, store, first, figures = ladder_figures
    copy = QualityStore(tmp_path / "store")
    shutil.copytree(store.folder, copy.folder)
    for stale in copy.folder.glob("kld-*.npz"):
        stale.unlink()
    ref_file = next(copy.folder.glob("reference-*.npz"))
    with np.load(ref_file) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["tokens"] = np.roll(arrays["tokens"], 1)  # well-formed, valid ids, wrong text
    with open(ref_file, "wb") as f:
        np.savez(f, **arrays)

    meter = QualityMeter(reference, LoadSettings(model_path=""), store=copy)
    asyncio.run(meter.prepare())
    assert meter.log.reference_runs == 0, "the tampered reference passes every check on its own"
    q4 = demo_ladder["Q4_K_M"]
    cid = QualityMeter._candidate_id(q4, _reference_settings(meter.base, q4, meter.chunk))
    copy._fig_path(cid, meter.key).mkdir()  # the figures cannot be written
    again = _measure(meter, [demo_ladder["Q8_0"], q4])
    assert meter.log.reference_runs == 1, "run again once the engine disagreed"
    assert again[0].kld_mean == pytest.approx(figures["Q8_0"].kld_mean, rel=0.05)
    assert again[1].kld_mean == pytest.approx(figures["Q4_K_M"].kld_mean, rel=0.05), "figures still shown"
    assert any("did not fit" in w for w in meter.log.warnings)
    assert any("could not be kept" in w for w in meter.log.warnings)
