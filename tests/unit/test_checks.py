"""Each pre-load check, triggered by a crafted setting; sane settings trigger none."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tui.engine.settings import LoadSettings
from tui.fit.checks import Machine, preload_checks
from tui.models.model_info import load_model_info

MACHINE = Machine(n_gpus=1, gpu_offload=True, physical_cores=8, memlock_limit=None)


@pytest.fixture(scope="module")
def info(sparse_70b):
    return load_model_info(sparse_70b)


def words(info, machine=MACHINE, **settings) -> list[tuple[str, str]]:
    s = LoadSettings(model_path=info.path, n_ctx=8192, **settings)
    return [(c.level, c.message) for c in preload_checks(info, s, machine)]


def test_sane_settings_pass(info):
    assert words(info, flash_attn="on", type_k="q8_0", type_v="q8_0") == []


def test_quantized_v_without_flash_attention(info):
    [(level, message)] = words(info, type_v="q8_0", flash_attn="off")
    assert level == "error" and "needs flash attention" in message
    [(level, _)] = words(info, type_v="q4_0", flash_attn="auto")
    assert level == "warning"


def test_head_size_the_kv_type_cannot_hold(info):
    odd = replace(info, head_dim_k=80 + 8)  # 88 is not a multiple of 32
    assert any(level == "error" and "88 wide" in m
               for level, m in words(odd, type_k="q4_0", flash_attn="on"))


def test_context_above_the_trained_context(info):
    s = LoadSettings(model_path=info.path, n_ctx=info.n_ctx_train * 2)
    assert any("above what the model was trained on" in c.message
               for c in preload_checks(info, s, MACHINE))


def test_ubatch_above_batch_and_too_many_threads(info):
    found = words(info, n_batch=256, n_ubatch=512, n_threads=32)
    assert any("n_ubatch 512 is above n_batch 256" in m for _, m in found)
    assert any("32 threads on 8 physical cores" in m for _, m in found)


def test_mlock_without_the_limit_to_back_it(info):
    small = replace(MACHINE, memlock_limit=64 * 2**20)
    assert any("ulimit -l" in m for _, m in words(info, small, use_mlock=True))
    assert not any("ulimit" in m for _, m in words(info, MACHINE, use_mlock=True))


def test_a_split_that_leaves_a_gpu_empty(info):
    two = replace(MACHINE, n_gpus=2)
    assert any("leaves GPU1 without a layer" in m for _, m in words(info, two, tensor_split=(1.0, 0.0)))
    assert not any("without a layer" in m for _, m in words(info, two, tensor_split=(1.0, 1.0)))
    assert any(level == "error" for level, _ in words(info, two, main_gpu=3))


def test_cpu_only_build_on_a_gpu_box(info):
    cpu_build = replace(MACHINE, gpu_offload=False)
    assert any("CPU-only" in m for _, m in words(info, cpu_build))
