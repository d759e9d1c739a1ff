"""Plan sizes against llama.cpp itself: the demo model quantized for real to several types must
be exactly the size the dry-run plan predicts; and the 70B plan at 24 GiB fits as `fit` says."""

from __future__ import annotations

import pytest

from tui.engine.settings import LoadSettings
from tui.fit.budget import MemoryBudget
from tui.fit.calibration import calibrate
from tui.fit.search import fit_layers
from tui.models.gguf_info import read_header, write_sparse
from tui.models.model_info import load_model_info
from tui.plan.quants import file_type_id
from tui.plan.sizes import quant_targets, retyped
from tui.plan.table import plan_rows
from tui.speed.model import SpeedModel

GiB = 1024**3
LADDER = ("Q8_0", "Q6_K", "Q4_K_M", "IQ4_NL", "Q2_K")


@pytest.fixture(scope="module")
def real_ladder(demo_model, tmp_path_factory):
    """The demo model quantized by llama.cpp (allow_requantize: it is Q4_1 to begin with)."""
    import llama_cpp

    out = {}
    folder = tmp_path_factory.mktemp("ladder")
    for quant in LADDER:
        path = folder / f"demo-{quant}.gguf"
        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype = file_type_id(quant)
        params.allow_requantize = True
        params.nthread = 2
        assert llama_cpp.llama_model_quantize(str(demo_model).encode(), str(path).encode(), params) == 0
        out[quant] = path
    return out


def test_predicted_sizes_equal_the_real_files_to_the_byte(demo_model, real_ladder):
    targets = quant_targets(demo_model, LADDER)
    for quant, path in real_ladder.items():
        target = targets[quant]
        assert not isinstance(target, str), target
        assert target.file_bytes == path.stat().st_size, quant
        real = {t.name: t.ggml_type for t in read_header(path).tensors}
        planned = {t.name: t.ggml_type for t in retyped(read_header(demo_model), target.tensor_types).tensors}
        assert planned == real, f"{quant}: the planned tensor types are llama.cpp's own"


def test_the_70b_plan_at_24gib(sparse_70b, tmp_path):
    """Q2_K (24.6 GiB) does not fit a 24 GiB card whole, IQ2_XXS (17.8 GiB) does, and each row's
    layer count is what fit gives for a sparse file written with that row's planned table."""
    targets = quant_targets(sparse_70b, ("Q2_K", "IQ2_XXS", "Q4_K_M"))
    base = LoadSettings(model_path=str(sparse_70b), n_ctx=4096, type_k="q8_0", type_v="q8_0",
                        flash_attn="on")
    cal = calibrate(load_model_info(sparse_70b), base, use_dry_run=True)
    budget = MemoryBudget(gpus=(24 * GiB,), overheads=(768 * 2**20,), host=256 * GiB)
    rows, refused = plan_rows(targets, base, cal, budget, SpeedModel())
    by = {r.quant: r for r in rows}
    assert not refused
    assert 24.5 < by["Q2_K"].file_bytes / GiB < 24.7 and not by["Q2_K"].all_on_gpu
    assert 17.7 < by["IQ2_XXS"].file_bytes / GiB < 17.9 and by["IQ2_XXS"].all_on_gpu
    assert targets["IQ2_XXS"].needs_imatrix and not targets["Q2_K"].needs_imatrix
    assert by["IQ2_XXS"].max_ctx and by["IQ2_XXS"].max_ctx > 4096
    source = read_header(sparse_70b)
    with open(sparse_70b, "rb") as f:
        head = f.read(source.data_offset)
    for quant in ("Q2_K", "Q4_K_M"):
        written = tmp_path / f"planned-{quant}.gguf"
        write_sparse(head, retyped(source, targets[quant].tensor_types), written)
        info = load_model_info(written)
        assert info.file_size == by[quant].file_bytes
        fit = fit_layers(info, base.with_changes(model_path=str(written)), cal, budget)
        assert fit.estimate.n_gpu_layers == by[quant].n_gpu_layers, quant
