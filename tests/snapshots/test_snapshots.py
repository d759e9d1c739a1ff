"""What a user sees, pinned as SVG snapshots. Scripted engine and fake NVML: deterministic.

Review a changed SVG (pytest --snapshot-report) before accepting it with --snapshot-update.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fakes import FACTS, ScriptedEngine
from tui.models.synthetic import LLAMA31_70B, write_sparse_llama
from tui.app import VramdeckApp
from tui.engine.errors import describe_failure
from tui.engine.protocol import FailureKind, LoadFailed
from tui.engine.settings import LoadSettings
from tui.monitor.fake import FakeGpu, FakeNvml, FakeSampler

GiB = 1024**3
SETTINGS = LoadSettings(model_path=FACTS.path, n_ctx=8192)


def app_with(engine=None, nvml=None, settings=SETTINGS) -> VramdeckApp:
    engine = engine or ScriptedEngine()
    nvml = nvml or FakeNvml([FakeGpu(used=int(7.1 * GiB), processes=[(4242, int(6.2 * GiB)),
                                                                      (1733, int(0.4 * GiB))])])
    return VramdeckApp(engine, FakeSampler(nvml), settings=settings, sample_interval=3600,
                       use_dry_run=False)  # formula estimates: the same on every build


SNAPSHOT_70B = Path("/tmp/vramdeck-snapshots/Llama-3.1-70B-Q4_K_M.gguf")


@pytest.fixture(scope="module")
def model_70b() -> Path:
    """A sparse 70B-shaped file at a fixed path, so the path shown in the SVG never changes."""
    SNAPSHOT_70B.parent.mkdir(parents=True, exist_ok=True)
    return write_sparse_llama(SNAPSHOT_70B, LLAMA31_70B, "Q4_K_M")


def rtx3090_with_a_desktop() -> FakeNvml:
    """A 24 GB card where Xorg holds 400 MiB: 23.6 GiB left for the engine."""
    return FakeNvml([FakeGpu(used=int(0.4 * GiB), processes=[(1733, int(0.4 * GiB))])],
                    names={1733: "Xorg"})


async def settle(pilot) -> None:
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause(0.2)


def test_chat_empty_with_model_loaded(snap_compare):
    """Chat with a model loaded and nothing said: the welcome text with the keys, status line."""
    assert snap_compare(app_with(), terminal_size=(80, 24), run_before=settle)


def test_chat_finished_exchange_with_code_block(snap_compare):
    """A question and a finished reply with a highlighted Python block and its figures below."""
    async def run_before(pilot):
        await settle(pilot)
        await pilot.press(*"Write a Python function that adds two numbers.", "enter")
        await settle(pilot)

    assert snap_compare(app_with(), terminal_size=(80, 24), run_before=run_before)


def test_monitor_one_gpu_with_engine_marked_80x24(snap_compare):
    """Monitor at 80x24: one RTX 3090, its figures, the engine's 6.2 GiB marked among processes."""
    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("f3")
        await settle(pilot)

    assert snap_compare(app_with(), terminal_size=(80, 24), run_before=run_before)


def test_monitor_no_gpu(snap_compare):
    """Monitor on a machine without the NVIDIA driver: says so, host figures still shown."""
    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("f3")
        await settle(pilot)

    assert snap_compare(app_with(nvml=FakeNvml(no_driver=True)), terminal_size=(80, 24),
                        run_before=run_before)


def test_tuner_settings_80x24(snap_compare):
    """Tuner: model line, the settings table with GPU layers selected, load result below."""
    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("f4")
        await settle(pilot)

    assert snap_compare(app_with(), terminal_size=(80, 24), run_before=run_before)


def test_cpu_only_build_warning(snap_compare):
    """A GPU is present but llama.cpp is a CPU build: the warning with the reinstall command."""
    engine = ScriptedEngine(facts=FACTS.__class__(**{**FACTS.__dict__, "layers_offloaded": 0,
                                                     "vram_bytes_per_gpu": ()}), gpu_offload=False)
    assert snap_compare(app_with(engine=engine), terminal_size=(80, 24), run_before=settle)


def test_load_failure_message(snap_compare):
    """A load that ran out of GPU memory: the status line says what happened and what to try."""
    fail = LoadFailed(kind=FailureKind.OOM_DEVICE.value,
                      message=describe_failure(FailureKind.OOM_DEVICE,
                                               "cudaMalloc failed: out of memory"))
    assert snap_compare(app_with(engine=ScriptedEngine(fail=fail)), terminal_size=(80, 24),
                        run_before=settle)


def _tuner_70b(model_70b: Path, n_gpu_layers: int):
    engine = ScriptedEngine(facts=FACTS.__class__(**{**FACTS.__dict__, "path": str(model_70b)}))
    settings = LoadSettings(model_path=str(model_70b), n_ctx=8192, n_gpu_layers=n_gpu_layers)
    return app_with(engine=engine, nvml=rtx3090_with_a_desktop(), settings=settings)


async def _open_tuner(pilot) -> None:
    await settle(pilot)
    await pilot.press("f4")
    await settle(pilot)


def test_tuner_70b_fits_a_24gb_card_at_40_layers(snap_compare, model_70b):
    """Tuner, 70B Q4_K_M on an RTX 3090 (Xorg holds 400 MiB): 40 layers, 8k context fit."""
    assert snap_compare(_tuner_70b(model_70b, 40), terminal_size=(80, 24), run_before=_open_tuner)


def test_tuner_70b_does_not_fit_with_all_layers(snap_compare, model_70b):
    """The same card with every layer on the GPU: the GPU bar says it does not fit."""
    assert snap_compare(_tuner_70b(model_70b, -1), terminal_size=(80, 24), run_before=_open_tuner)
