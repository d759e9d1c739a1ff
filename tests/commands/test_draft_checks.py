"""A draft is checked before anything loads: fit refuses a draft of another vocabulary (bench
refused it only after loading both), and bench refuses a draft larger than free RAM and VRAM
together (a 42 GiB draft took 15.9 GB of memory before its out-of-memory error)."""

from __future__ import annotations

import os
import subprocess
import sys

from tui.commands.draft_args import draft_problem
from tui.engine.settings import LoadSettings
from tui.fit.budget import MemoryBudget

GiB = 1024**3


def test_fit_refuses_a_draft_of_another_vocabulary(demo_model, tiny_llama):
    out = subprocess.run([sys.executable, "-m", "tui", "fit", str(demo_model), "--vram", "8GiB",
                          "--draft", str(tiny_llama), "--formula"], capture_output=True, text=True, timeout=120,
                         env={**os.environ})
    assert out.returncode == 1 and "vocabulary is not the target's" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr


def test_a_draft_larger_than_ram_and_vram_together_is_refused_before_loading(sparse_70b):
    settings = LoadSettings(model_path=str(sparse_70b), draft_model_path=str(sparse_70b))
    small = MemoryBudget(gpus=(8 * GiB,), host=16 * GiB)
    problem = draft_problem(settings, small)
    assert problem and "more than this machine's free RAM and VRAM together" in problem
    assert draft_problem(settings, MemoryBudget(gpus=(48 * GiB,), host=16 * GiB)) is None


def test_a_missing_draft_is_named(demo_model, tmp_path):
    settings = LoadSettings(model_path=str(demo_model), draft_model_path=str(tmp_path / "nope.gguf"))
    assert "the draft model" in (draft_problem(settings, MemoryBudget(host=16 * GiB)) or "")
