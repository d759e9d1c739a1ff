"""What a user sees, pinned as SVG snapshots. Scripted engine and fake NVML: deterministic.

Review a changed SVG (pytest --snapshot-report) before accepting it with --snapshot-update.
"""

from __future__ import annotations

from tests.fakes import FACTS, ScriptedEngine
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
    return VramdeckApp(engine, FakeSampler(nvml), settings=settings, sample_interval=3600)


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
