"""Where each tensor is read from per token (tui.speed.model.reads): the placement's bytes."""

from __future__ import annotations

from tui.engine.settings import ALL_LAYERS, LoadSettings
from tui.models.model_info import load_model_info
from tui.speed.model import reads


def sides(info, n_gpu_layers, n_gpus):
    r = reads(info, LoadSettings(model_path=info.path, n_gpu_layers=n_gpu_layers), n_gpus)
    return (sum(n for (dev, _), n in r.weights.items() if dev == "gpu"),
            sum(n for (dev, _), n in r.weights.items() if dev == "cpu"))


def test_bytes_per_token_follow_the_placement(sparse_70b):
    info = load_model_info(sparse_70b)
    norms = sum(n for b, part, _, n in info.tensor_groups if part == "norm" and b >= -1)
    every = sum(info.block_bytes) + info.output_bytes - norms
    assert sides(info, 0, 1) == (0, every)
    assert sides(info, ALL_LAYERS, 1) == (every, 0)
    gpu, cpu = sides(info, 41, 1)
    gpu_norms = sum(n for b, part, _, n in info.tensor_groups if part == "norm" and (b >= 40 or b == -1))
    assert gpu == sum(info.block_bytes[40:]) + info.output_bytes - gpu_norms and gpu + cpu == every
    assert sides(info, 41, 0) == (0, every), "no GPU: everything on the CPU"
