"""Placement, arithmetic and fit on known shapes; fit is monotone in the budget."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tui.engine.settings import LoadSettings
from tui.fit.budget import MemoryBudget
from tui.fit.estimate import (
    Calibration,
    estimate,
    formula_calibration,
    layer_devices,
    offloaded_layers,
    padded_ctx,
)
from tui.fit.search import fit_context, fit_layers
from tui.models.model_info import load_model_info

GiB, MiB = 1024**3, 1024**2


@pytest.fixture(scope="module")
def info70(sparse_70b):
    return load_model_info(sparse_70b)


def cal(info, s) -> Calibration:
    return formula_calibration(info, s)


def test_llama_cpp_places_the_output_layer_first():
    """n_gpu_layers=N: output (layer n_layer) plus the last N-1 blocks, as llama.cpp 0.3.36 does."""
    assert layer_devices(4, 0, 1) == [None] * 5
    assert layer_devices(4, 1, 1) == [None, None, None, None, 0]
    assert layer_devices(4, 3, 1) == [None, None, 0, 0, 0]
    assert layer_devices(4, -1, 1) == [0] * 5
    assert layer_devices(4, 99, 1) == [0] * 5
    assert layer_devices(4, 2, 0) == [None] * 5, "no GPU: everything on the CPU"


def test_tensor_split_divides_offloaded_layers_in_proportion():
    devices = layer_devices(79, -1, 2, (1.0, 1.0))  # 80 layers with the output
    assert devices.count(0) == 40 and devices.count(1) == 40
    devices = layer_devices(80, -1, 2, (2.0, 1.0))
    assert devices.count(0) == 54 and devices.count(1) == 27 and devices[-1] == 1


def test_70b_weights_follow_the_tensor_table(info70):
    s = LoadSettings(model_path=info70.path, n_gpu_layers=41, n_ctx=4096)
    e = estimate(info70, s, cal(info70, s), MemoryBudget(gpus=(24 * GiB,), overheads=(512 * MiB,), margin=0))
    gpu, host = e.gpus[0], e.host
    assert gpu.weights == info70.output_bytes + sum(info70.block_bytes[-40:])
    assert host.weights == info70.input_bytes + sum(info70.block_bytes[:40])
    assert gpu.weights + host.weights == info70.tensor_bytes
    # Llama-3.1-70B, 4096 ctx, f16: 8 KV heads x 128 dims x 2 (K,V) x 2 bytes x 4096 = 16 MiB a layer
    assert gpu.kv == 40 * 16 * MiB and host.kv == 40 * 16 * MiB
    assert gpu.overhead == 512 * MiB and e.n_gpu_layers == 41


@pytest.mark.parametrize("kv, per_layer_mib", [("f16", 16), ("q8_0", 8.5), ("q4_0", 4.5)])
def test_kv_cache_size_per_type(info70, kv, per_layer_mib):
    s = LoadSettings(model_path=info70.path, n_ctx=4096, type_k=kv, type_v=kv)
    assert cal(info70, s).kv_bytes_per_layer == int(per_layer_mib * MiB)


def test_context_is_padded_like_llama_cpp():
    assert padded_ctx(0, 8192) == 8192
    assert padded_ctx(100, 8192) == 256
    assert padded_ctx(4097, 8192) == 4352
    assert offloaded_layers(-1, 80) == 81 and offloaded_layers(200, 80) == 81


def test_fit_24gib_on_70b_chooses_the_largest_layer_count_under_budget(info70):
    s = LoadSettings(model_path=info70.path, n_ctx=4096)
    c = cal(info70, s)
    r = fit_layers(info70, s, c, MemoryBudget(gpus=(24 * GiB,), overheads=(522 * MiB,), margin=0))
    assert r.gpu_fits and 40 <= r.estimate.n_gpu_layers <= 50
    assert r.estimate.gpus[0].total <= 24 * GiB
    assert r.next_estimate.gpus[0].total > 24 * GiB


def test_fit_says_when_not_even_zero_layers_fit(info70):
    s = LoadSettings(model_path=info70.path, n_ctx=4096)
    r = fit_layers(info70, s, cal(info70, s), MemoryBudget(gpus=(256 * MiB,), overheads=(522 * MiB,), margin=0))
    assert not r.gpu_fits and r.settings.n_gpu_layers == 0


def test_host_ram_that_is_too_small_is_reported(info70):
    s = LoadSettings(model_path=info70.path, n_ctx=4096)
    r = fit_layers(info70, s, cal(info70, s),
        MemoryBudget(gpus=(8 * GiB,), overheads=(522 * MiB,), margin=0, host=16 * GiB))
    assert r.gpu_fits and not r.host_fits


def test_two_gpus_hold_more_layers_than_one(info70):
    s = LoadSettings(model_path=info70.path, n_ctx=4096, tensor_split=(1.0, 1.0))
    c = cal(info70, s)
    one = fit_layers(info70, s.with_changes(tensor_split=()), c,
        MemoryBudget(gpus=(24 * GiB,), overheads=(522 * MiB,), margin=0))
    two = fit_layers(info70, s, c, MemoryBudget(gpus=(24 * GiB, 24 * GiB), overheads=(522 * MiB, 522 * MiB), margin=0))
    assert two.estimate.n_gpu_layers == 81 > one.estimate.n_gpu_layers
    assert all(g.total <= 24 * GiB for g in two.estimate.gpus)


@settings(max_examples=60, deadline=None)
@given(small=st.integers(0, 80), extra=st.integers(0, 60), kv=st.sampled_from(["f16", "q8_0", "q4_0"]),
       ctx=st.sampled_from([2048, 4096, 32768]), margin=st.integers(0, 1024))
def test_more_vram_never_gives_fewer_layers(info70, small, extra, kv, ctx, margin):
    s = LoadSettings(model_path=info70.path, n_ctx=ctx, type_k=kv, type_v=kv)
    c = cal(info70, s)
    a = fit_layers(info70, s, c, MemoryBudget(gpus=(small * GiB,), overheads=(522 * MiB,), margin=margin * MiB))
    b = fit_layers(info70, s, c,
        MemoryBudget(gpus=((small + extra) * GiB,), overheads=(522 * MiB,), margin=margin * MiB))
    assert b.estimate.n_gpu_layers >= a.estimate.n_gpu_layers
    if a.gpu_fits:
        assert a.estimate.gpus[0].total + margin * MiB <= small * GiB


def test_fit_context_finds_the_longest_context_that_fits(info70):
    s = LoadSettings(model_path=info70.path, n_ctx=4096, n_gpu_layers=-1)
    c = cal(info70, s)
    longer = fit_context(info70, s, c, MemoryBudget(gpus=(48 * GiB,), overheads=(522 * MiB,), margin=0))
    assert 4096 < longer.n_ctx <= info70.n_ctx_train and longer.n_ctx % 256 == 0
    c2 = cal(info70, longer)
    assert estimate(info70, longer, c2,
        MemoryBudget(gpus=(48 * GiB,), overheads=(522 * MiB,), margin=0)).gpus[0].total <= 48 * GiB
    one_more = longer.with_changes(n_ctx=longer.n_ctx + 256)
    assert estimate(info70, one_more, cal(info70, one_more),
                    MemoryBudget(gpus=(48 * GiB,), overheads=(522 * MiB,), margin=0)).gpus[0].total > 48 * GiB
