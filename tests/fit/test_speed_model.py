"""The one speed model (tui.speed.model) on synthetic rates: each term, exact arithmetic."""

from __future__ import annotations

import math

import pytest

from tui.engine.settings import ALL_LAYERS, LoadSettings
from tui.models.model_info import load_model_info
from tui.models.synthetic import LLAMA3_8B, write_sparse_llama
from tui.speed.model import OP_OFFLOAD_MIN_BATCH, SpeedModel, params_of, reads
from tui.speed.rates import DeviceRates, MachineRates, TypeRate

GB = 1e9
CPU = DeviceRates(types={"Q4_K": TypeRate(20 * GB, 50e9), "Q6_K": TypeRate(25 * GB, 40e9),
                         "IQ2_XXS": TypeRate(4 * GB, 10e9)},
                  step_s=0.002, layer_s=0.0001, kv_bytes_per_s=10 * GB, threads=2)
GPU = DeviceRates(types={"Q4_K": TypeRate(1000 * GB, 5e13), "Q6_K": TypeRate(1100 * GB, 4e13)},
                  step_s=0.001, layer_s=0.00002, kv_bytes_per_s=800 * GB)
RATES = MachineRates(machine="test", cpu=CPU, gpu=GPU, h2d_pinned=50 * GB, h2d_pageable=20 * GB,
                     switch_s=0.0005, residual=0.07)


@pytest.fixture(scope="module")
def info8b(tmp_path_factory):
    path = write_sparse_llama(tmp_path_factory.mktemp("speed") / "8b-Q4_K_M.gguf", LLAMA3_8B, "Q4_K_M")
    return load_model_info(path)


def weight_bytes(info, blocks, t, output=True):
    n = sum(b for blk, part, ty, b in info.tensor_groups
            if ty == t and part != "norm" and (blk in blocks or (output and blk == -1)))
    return n


def test_generation_on_the_cpu_is_each_type_at_its_own_rate(info8b):
    s = LoadSettings(model_path=info8b.path, n_gpu_layers=0)
    p = SpeedModel(RATES).predict(info8b, s, n_gpus=0)
    every = range(info8b.n_layer)
    seconds = (0.002 + 0.0001 * info8b.n_layer + weight_bytes(info8b, every, "Q4_K") / (20 * GB)
               + weight_bytes(info8b, every, "Q6_K") / (25 * GB))
    assert p.tg == pytest.approx(1 / seconds, rel=1e-9)
    assert p.basis == "measured" and p.bound == "CPU bandwidth" and p.band == 0.07


def test_partial_offload_splits_the_reads_and_pays_one_hand_over(info8b):
    s = LoadSettings(model_path=info8b.path, n_gpu_layers=9)  # output + the last 8 blocks
    r = reads(info8b, s, 1)
    assert r.switches == 1 and r.blocks == {"cpu": 24, "gpu": 8}
    cpu_blocks, gpu_blocks = range(24), range(24, 32)
    seconds = (0.001 + 0.0001 * 24 + 0.00002 * 8 + 0.0005
               + weight_bytes(info8b, cpu_blocks, "Q4_K", False) / (20 * GB)
               + weight_bytes(info8b, cpu_blocks, "Q6_K", False) / (25 * GB)
               + weight_bytes(info8b, gpu_blocks, "Q4_K") / (1000 * GB)
               + weight_bytes(info8b, gpu_blocks, "Q6_K") / (1100 * GB))
    assert SpeedModel(RATES).predict(info8b, s, 1).tg == pytest.approx(1 / seconds, rel=1e-9)


def test_attention_at_depth_reads_each_blocks_kv_on_its_device(info8b):
    s = LoadSettings(model_path=info8b.path, n_gpu_layers=9, type_k="q8_0", type_v="q8_0")
    model = SpeedModel(RATES)
    shallow, deep = model.predict(info8b, s, 1, 0), model.predict(info8b, s, 1, 16384)
    per_block = 8 * (128 * 34 / 32 + 128 * 34 / 32)
    extra = 16384 * (24 * per_block / (10 * GB) + 8 * per_block / (800 * GB))
    assert 1 / deep.tg - 1 / shallow.tg == pytest.approx(extra, rel=1e-6)
    # the same blocks with their KV cache kept on the CPU (offload_kqv off) read it there
    off = model.predict(info8b, s.with_changes(offload_kqv=False), 1, 16384)
    assert 1 / off.tg - 1 / shallow.tg == pytest.approx(16384 * 32 * per_block / (10 * GB), rel=1e-6)


def test_prompts_copy_cpu_weights_to_the_gpu_per_ubatch_above_the_threshold(info8b):
    s = LoadSettings(model_path=info8b.path, n_gpu_layers=0, n_ubatch=512, n_batch=2048)
    every = range(info8b.n_layer)
    q4, q6 = weight_bytes(info8b, every, "Q4_K"), weight_bytes(info8b, every, "Q6_K")
    compute = 2048 * (params_of("Q4_K", q4) / 5e13 + params_of("Q6_K", q6) / 4e13)
    for mmap, h2d in ((True, 20 * GB), (False, 50 * GB)):
        p = SpeedModel(RATES).predict(info8b, s.with_changes(use_mmap=mmap), 1, n_prompt=2048)
        assert p.pp == pytest.approx(2048 / (4 * (q4 + q6) / h2d + compute), rel=1e-9)
        assert p.pp_bound == "host-to-GPU copies"
    # under the threshold (or with no GPU) the CPU computes them
    small = s.with_changes(n_ubatch=OP_OFFLOAD_MIN_BATCH - 1)
    cpu = 512 * (params_of("Q4_K", q4) / 50e9 + params_of("Q6_K", q6) / 40e9)
    assert SpeedModel(RATES).predict(info8b, small, 1, n_prompt=512).pp == pytest.approx(512 / cpu, rel=1e-9)
    assert SpeedModel(RATES).predict(info8b, s, 0, n_prompt=512).pp == pytest.approx(512 / cpu, rel=1e-9)


def test_a_type_not_measured_borrows_its_nearest_neighbour_and_says_so(tmp_path):
    from tui.models.synthetic import TINY

    info = load_model_info(write_sparse_llama(tmp_path / "iq3.gguf", TINY, tensor_type="IQ3_XXS"))
    s = LoadSettings(model_path=info.path, n_gpu_layers=0)
    p = SpeedModel(RATES).predict(info, s, 0)
    assert p.basis == "partly from neighbouring types" and p.band == 0.25
    nbytes = weight_bytes(info, range(info.n_layer), "IQ3_XXS")
    assert p.tg == pytest.approx(1 / (0.002 + 0.0001 * info.n_layer + nbytes / (4 * GB)), rel=1e-9)
    terms, _ = SpeedModel(RATES).step_terms(reads(info, s, 0), 0)
    assert "CPU compute" in terms and "CPU bandwidth" not in terms  # far under the CPU's best rate


def test_with_no_calibration_the_defaults_say_default_and_i_quants_are_slower(tmp_path):
    from tui.models.synthetic import TINY

    q4 = load_model_info(write_sparse_llama(tmp_path / "q4.gguf", TINY, tensor_type="Q4_K"))
    iq2 = load_model_info(write_sparse_llama(tmp_path / "iq2.gguf", TINY, tensor_type="IQ2_XXS"))
    model = SpeedModel(None)
    a = model.predict(q4, LoadSettings(model_path=q4.path, n_gpu_layers=0), 0)
    b = model.predict(iq2, LoadSettings(model_path=iq2.path, n_gpu_layers=0), 0)
    assert a.basis == b.basis == "default" and a.band == 0.5
    a_weights = 1 / a.tg - 0.002 - 0.00005 * q4.n_layer
    b_weights = 1 / b.tg - 0.002 - 0.00005 * iq2.n_layer
    per_byte = (a_weights / weight_bytes(q4, range(2), "Q4_K"), b_weights / weight_bytes(iq2, range(2), "IQ2_XXS"))
    assert per_byte[1] / per_byte[0] == pytest.approx(1 / 0.45)


def test_an_assumed_gpu_is_labelled_assumed(info8b):
    s = LoadSettings(model_path=info8b.path, n_gpu_layers=ALL_LAYERS)
    cpu_only = MachineRates(machine="test", cpu=CPU)
    assert SpeedModel(cpu_only, assumed_gpu=GPU).predict(info8b, s, 1).basis == "assumed"
    assert SpeedModel(cpu_only).predict(info8b, s, 1).basis == "default"  # no GPU measured, none given


def test_tied_embeddings_are_read_as_the_output_matrix(demo_model):
    info = load_model_info(demo_model)
    assert not any(b == -1 and part == "attn" for b, part, _, _ in info.tensor_groups)
    r = reads(info, LoadSettings(model_path=info.path, n_gpu_layers=0), 0)
    embd = sum(n for b, part, _, n in info.tensor_groups if b == -2 and part == "embd")
    assert sum(r.weights.values()) == sum(n for b, part, _, n in info.tensor_groups
                                          if b >= 0 and part != "norm") + embd


def test_refitting_two_benchmarks_recovers_each_sides_scale(info8b):
    truth = SpeedModel(RATES, scale=(1.3, 0.8))
    points = [(info8b, LoadSettings(model_path=info8b.path, n_gpu_layers=n), 1,
               truth.predict(info8b, LoadSettings(model_path=info8b.path, n_gpu_layers=n), 1).tg)
              for n in (5, 25)]
    fitted = SpeedModel(RATES).refitted(points)
    assert fitted.scale == pytest.approx((1.3, 0.8), rel=1e-6)
    one = SpeedModel(RATES).refitted(points[:1])
    assert one.scale[0] == one.scale[1] and math.isclose(
        one.predict(*points[0][:3]).tg, points[0][3], rel_tol=1e-9)
