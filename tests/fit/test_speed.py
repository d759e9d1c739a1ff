"""The bandwidth model of generation speed: bytes per token from the placement, bandwidths fitted
to benchmarks."""

from __future__ import annotations

import pytest

from tui.engine.settings import ALL_LAYERS, LoadSettings
from tui.fit.speed import GB, SpeedModel, bytes_per_token, fitted
from tui.models.model_info import load_model_info


def test_bytes_per_token_follow_the_placement(sparse_70b):
    info = load_model_info(sparse_70b)
    every = sum(info.block_bytes) + info.output_bytes
    none = bytes_per_token(info, LoadSettings(model_path=info.path, n_gpu_layers=0), 1)
    assert none == (0, every)
    full = bytes_per_token(info, LoadSettings(model_path=info.path, n_gpu_layers=ALL_LAYERS), 1)
    assert full == (every, 0)
    half = bytes_per_token(info, LoadSettings(model_path=info.path, n_gpu_layers=41), 1)
    assert half[0] == sum(info.block_bytes[40:]) + info.output_bytes and sum(half) == every
    assert bytes_per_token(info, LoadSettings(model_path=info.path, n_gpu_layers=41), 0) == (0, every)


def test_two_benchmarks_recover_both_bandwidths():
    truth = SpeedModel(900 * GB, 50 * GB)
    points = [(g, c, truth.predict(g, c)) for g, c in ((20 * GB, 20 * GB), (35 * GB, 5 * GB))]
    model = fitted(points)
    assert model.points == 2
    assert model.gpu_bandwidth == pytest.approx(900 * GB, rel=1e-6)
    assert model.cpu_bandwidth == pytest.approx(50 * GB, rel=1e-6)


def test_one_benchmark_scales_the_defaults_to_match_it():
    model = fitted([(20 * GB, 20 * GB, 2.0)])
    assert model.points == 1 and model.predict(20 * GB, 20 * GB) == pytest.approx(2.0)
    assert fitted([]) == SpeedModel()
