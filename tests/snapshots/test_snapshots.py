"""What a user sees, pinned as SVG snapshots. Scripted engine and fake NVML: deterministic.

Review a changed SVG (pytest --snapshot-report) before accepting it with --snapshot-update.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import replace
from pathlib import Path

import pytest

from tests.fakes import FACTS, STATS, ScriptedEngine
from tui.app import VramdeckApp
from tui.chat.store import ConversationStore
from tui.engine.protocol import FailureKind, LoadFailed
from tui.engine.settings import LoadSettings
from tui.models.discovery import Location
from tui.models.synthetic import LLAMA3_8B, LLAMA31_70B, write_sparse_llama
from tui.monitor.fake import FakeGpu, FakeNvml, FakeSampler
from tui.profiles.store import ProfileStore

GiB = 1024**3
SETTINGS = LoadSettings(model_path=FACTS.path, n_ctx=8192)


def app_with(engine=None, nvml=None, settings=SETTINGS, models: list[Path] | None = None,
             profiles: Path | None = None, conversations: Path | None = None,
             theme: str = "vramdeck-dark") -> VramdeckApp:
    engine = engine or ScriptedEngine()
    nvml = nvml or FakeNvml([FakeGpu(used=int(7.1 * GiB), processes=[(4242, int(6.2 * GiB)),
                                                                      (1733, int(0.4 * GiB))])])
    locations = [Location(m, "folder") for m in models or []]
    store = ProfileStore(profiles or Path("/nonexistent/vramdeck-profiles"))
    return VramdeckApp(engine, FakeSampler(nvml), settings=settings, sample_interval=3600,
                       use_dry_run=False,  # formula estimates: the same on every build
                       model_locations=locations, profile_store=store,
                       conversation_store=ConversationStore(conversations) if conversations else None,
                       theme=theme)


SNAPSHOT_MODELS = Path("/tmp/vramdeck-snapshots")
SNAPSHOT_70B = SNAPSHOT_MODELS / "Llama-3.1-70B-Q4_K_M.gguf"


@pytest.fixture(scope="module")
def model_70b() -> Path:
    """A sparse 70B-shaped file at a fixed path, so the path shown in the SVG never changes;
    beside it an 8B-shaped file and a file that is not a model, for the Tuner's model list."""
    SNAPSHOT_MODELS.mkdir(parents=True, exist_ok=True)
    write_sparse_llama(SNAPSHOT_MODELS / "Llama-3-8B-Q4_K_M.gguf", LLAMA3_8B, "Q4_K_M")
    (SNAPSHOT_MODELS / "notes.gguf").write_text("not a model\n")
    return write_sparse_llama(SNAPSHOT_70B, LLAMA31_70B, "Q4_K_M")


def rtx3090_with_a_desktop() -> FakeNvml:
    """A 24 GB card where Xorg holds 400 MiB: 23.6 GiB left for the engine."""
    return FakeNvml([FakeGpu(used=int(0.4 * GiB), processes=[(1733, int(0.4 * GiB))])],
                    names={1733: "Xorg"})


async def settle(pilot) -> None:
    await pilot.pause()
    for _ in range(200):  # wait for the sample taken after the (scripted) load
        sample, engine = pilot.app.sample, pilot.app.engine
        if sample is not None and (engine.pid is None or not sample.gpus
                                   or any(p.is_engine for g in sample.gpus for p in g.processes)):
            break
        await pilot.pause(0.01)
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


def two_3090s() -> FakeNvml:
    """Two 24 GB cards, the engine on both (a 70B split 1:1), Xorg on the first."""
    return FakeNvml([FakeGpu(used=int(21.9 * GiB), util=64, processes=[(4242, int(21.5 * GiB)),
                                                                      (1733, int(0.4 * GiB))]),
                     FakeGpu(used=int(20.8 * GiB), util=58, temp=55, fan=38,
                             processes=[(4242, int(20.8 * GiB))])],
                    names={1733: "Xorg"})


MONITOR_CASES = {
    "no_gpu": lambda: FakeNvml(no_driver=True),
    "one_gpu_model_loaded": lambda: FakeNvml([FakeGpu(used=int(7.1 * GiB), processes=[
        (4242, int(6.2 * GiB)), (1733, int(0.4 * GiB))])], names={1733: "Xorg"}),
    "two_gpus": two_3090s,
}


async def open_monitor_with_history(pilot) -> None:
    """Open the Monitor with two minutes of made-up history (a reply streaming half the time)."""
    await settle(pilot)
    app = pilot.app
    sample = app.sample
    for i in range(120):
        wave = (i % 30) / 30
        app.history.add(sample, 95.0 * (wave > 0.5))
        for series in app.history.gpu_util.values():
            series[-1] = 20 + 70 * wave
        app.history.cpu[-1] = 10 + 30 * wave
    app.generation = replace(app.generation, last_stats=STATS, context_used=STATS.context_used)
    await pilot.press("f3")
    app.sample = sample  # redraw with the history
    await settle(pilot)


@pytest.mark.parametrize("size", [(80, 24), (160, 50)], ids=["80x24", "160x50"])
@pytest.mark.parametrize("case", list(MONITOR_CASES))
def test_monitor(snap_compare, case, size):
    """Monitor: per-GPU figures with the engine's memory marked (or 'no NVIDIA GPU' and host
    figures only), host card, model card with KV size, context use, page-cache share, last and
    history of tok/s; at 160x50 the GPUs and the host/model column sit side by side."""
    assert snap_compare(app_with(nvml=MONITOR_CASES[case]()), terminal_size=size,
                        run_before=open_monitor_with_history)


def test_tuner_settings_80x24(snap_compare):
    """Tuner: model line, the settings table with GPU layers selected, load result below."""
    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("f4")
        await settle(pilot)

    assert snap_compare(app_with(), terminal_size=(80, 24), run_before=run_before)


def test_tuner_depth_results_in_their_own_box_at_80x24(snap_compare):
    """D at 80x24: the five depths and their spread in a box over the Tuner (the message area
    below the settings holds two lines, and showed one depth of five); Esc closes it."""
    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("f4")
        await settle(pilot)
        await pilot.press("D")
        await settle(pilot)

    assert snap_compare(app_with(), terminal_size=(80, 24), run_before=run_before)


def test_tuner_without_a_gpu_shows_the_rows_that_apply(snap_compare):
    """No NVIDIA GPU: no "GPU layers all/31" or "KV on GPU on" rows (they read as if they
    applied while the status bar says 0 layers on the GPU); batch threads instead."""
    engine = ScriptedEngine(facts=FACTS.__class__(**{**FACTS.__dict__, "layers_offloaded": 0,
                                                     "vram_bytes_per_gpu": ()}), gpu_offload=False)

    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("f4")
        await settle(pilot)

    assert snap_compare(app_with(engine=engine, nvml=FakeNvml(no_driver=True)), terminal_size=(80, 24),
                        run_before=run_before)


def test_plan_prompt_wraps_at_80x24(snap_compare):
    """P in the Tuner at 80x24: the whole question ("…or a Hugging Face repo id:") on two lines,
    where it was cut at "…or a Hugging Face rep"."""
    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("f4")
        await settle(pilot)
        await pilot.press("P")
        await pilot.pause(0.3)

    assert snap_compare(app_with(), terminal_size=(80, 24), run_before=run_before)


def test_cpu_only_build_warning(snap_compare):
    """A GPU is present but llama.cpp is a CPU build: the warning with the reinstall command."""
    engine = ScriptedEngine(facts=FACTS.__class__(**{**FACTS.__dict__, "layers_offloaded": 0,
                                                     "vram_bytes_per_gpu": ()}), gpu_offload=False)
    assert snap_compare(app_with(engine=engine), terminal_size=(80, 24), run_before=settle)


def test_load_failure_message(snap_compare):
    """A load that ran out of GPU memory: the status line says what happened and what to try."""
    fail = LoadFailed(kind=FailureKind.OOM_DEVICE.value, detail="cudaMalloc failed: out of memory")
    assert snap_compare(app_with(engine=ScriptedEngine(fail=fail)), terminal_size=(80, 24),
                        run_before=settle)


FACTS_70B = FACTS.__class__(**{**FACTS.__dict__, "path": str(SNAPSHOT_70B),
                               "name": "Llama 3.1 70B Instruct", "n_layer": 80, "layers_total": 81,
                               "n_params": 70_553_706_496, "size_bytes": 42_520_395_776,
                               "vram_bytes_per_gpu": (int(45.1 * GiB),), "load_seconds": 14.2})


def _tuner_70b(model_70b: Path, n_gpu_layers: int, nvml=None, engine=None, **settings):
    engine = engine or ScriptedEngine(facts=FACTS_70B)
    settings = LoadSettings(model_path=str(model_70b), n_ctx=8192, n_gpu_layers=n_gpu_layers,
                            **settings)
    return app_with(engine=engine, nvml=nvml or rtx3090_with_a_desktop(), settings=settings,
                    models=[SNAPSHOT_MODELS])


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


def test_plan_70b_for_a_24gb_card(snap_compare, model_70b):
    """Plan screen at 80x24: every quant of the 70B for the 3090 (23.6 GiB usable), ctx 8k: sizes
    from llama.cpp's dry runs, layers that fit, speeds from the default rates, published
    quality, the on-disk mark (●) on Q4_K_M, and the verdicts."""
    from tui.screens.plan import PlanScreen
    from tui.speed.model import SpeedModel

    async def run_before(pilot):
        await _open_tuner(pilot)
        tuner = pilot.app.screen
        pilot.app.push_screen(PlanScreen(str(model_70b), tuner.draft, tuner._budget(),
                                         use_dry_run=False, speed=(SpeedModel(), "default rates")))
        for _ in range(600):
            await pilot.pause(0.05)
            if isinstance(pilot.app.screen, PlanScreen) and pilot.app.screen.plans:
                break
        await settle(pilot)

    assert snap_compare(_tuner_70b(model_70b, 40), terminal_size=(80, 24), run_before=run_before)


def test_terminal_too_small(snap_compare):
    """At 60x15 the app says the terminal is too small and what it needs, not a broken layout."""
    assert snap_compare(app_with(), terminal_size=(60, 15), run_before=settle)


def two_empty_3090s() -> FakeNvml:
    return FakeNvml([FakeGpu(used=int(0.4 * GiB), processes=[(1733, int(0.4 * GiB))]),
                     FakeGpu(used=0, temp=55, fan=38)], names={1733: "Xorg"})


def test_tuner_70b_split_across_two_gpus(snap_compare, model_70b):
    """Two 24 GB cards, 70B with every layer offloaded, split 1:1: a bar per GPU, and the tensor
    split and main GPU rows appear in the form."""
    engine = ScriptedEngine(facts=FACTS_70B.__class__(**{
        **FACTS_70B.__dict__, "vram_bytes_per_gpu": (int(22.7 * GiB), int(22.4 * GiB))}))
    app = _tuner_70b(model_70b, -1, nvml=two_empty_3090s(), engine=engine, tensor_split=(1.0, 1.0))
    assert snap_compare(app, terminal_size=(100, 30), run_before=_open_tuner)


def _fails_above_40_layers(settings: LoadSettings) -> bool:
    return settings.n_gpu_layers < 0 or settings.n_gpu_layers > 40


def test_tuner_rollback_message(snap_compare, model_70b):
    """40 layers loaded; End (all layers) and apply runs out of GPU memory: the Tuner says what
    happened, that it went back to 40 layers, and what to try."""
    async def run_before(pilot):
        await _open_tuner(pilot)
        await pilot.press("end", "a")
        await settle(pilot)
        pilot.app.clear_notifications()  # the toast says it too; show the Tuner's own words
        await pilot.pause(0.2)

    engine = ScriptedEngine(facts=FACTS_70B, fail_if=_fails_above_40_layers)
    assert snap_compare(_tuner_70b(model_70b, 40, engine=engine), terminal_size=(80, 24),
                        run_before=run_before)


def test_tuner_session_benchmark_table(snap_compare, model_70b):
    """Three configurations applied and benchmarked (40, 44 and 30 layers), the table sorted by
    generation speed, fastest first."""
    async def run_before(pilot):
        await _open_tuner(pilot)
        for keys in ((), ("plus",) * 4, ("minus",) * 14):
            await pilot.press(*keys, "a")
            await settle(pilot)
            await pilot.press("b")
            await settle(pilot)
        await pilot.press("t", "s")
        await pilot.pause(0.2)

    assert snap_compare(_tuner_70b(model_70b, 40), terminal_size=(120, 30), run_before=run_before)


PROFILE_TEXT = """schema = 1
notes = "{notes}"
[model]
path = "{path}"
[load]
n_gpu_layers = {ngl}
n_ctx = {ctx}
type_k = "{kv}"
type_v = "{kv}"
flash_attn = "on"
[results]
gpus = ["NVIDIA GeForce RTX 3090"]
date = "2026-11-20"
tg_tokens_per_s = {tg}
"""


def test_profile_list(snap_compare, model_70b):
    """The profiles screen: two profiles with their measured speed, one file that cannot be read
    (listed, not hidden), the llama-server command of the highlighted one."""
    folder = SNAPSHOT_MODELS / "profiles"  # a fixed path: the screen shows it
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    (folder / "70b-3090-8k.toml").write_text(PROFILE_TEXT.format(
        notes="fits with Xorg running", path=SNAPSHOT_70B, ngl=40, ctx=8192, kv="f16", tg=2.1))
    (folder / "70b-3090-32k-q8.toml").write_text(PROFILE_TEXT.format(
        notes="", path=SNAPSHOT_70B, ngl=36, ctx=32768, kv="q8_0", tg=1.8))
    (folder / "hand-edited.toml").write_text("schema = 1\n[model]\npath = 3\n")

    async def run_before(pilot):
        await _open_tuner(pilot)
        await pilot.press("p")
        await pilot.pause(0.2)

    app = _tuner_70b(model_70b, 40)
    app.profile_store = ProfileStore(folder)
    assert snap_compare(app, terminal_size=(100, 30), run_before=run_before)


def test_chat_reply_streaming(snap_compare):
    """A reply caught mid-stream: the code block half written, no figures yet."""
    async def run_before(pilot):
        await settle(pilot)
        await pilot.press(*"Write a Python function that adds two numbers.", "enter")
        for _ in range(20):
            await pilot.pause(0.02)

    engine = ScriptedEngine(hold_after=14)
    assert snap_compare(app_with(engine=engine), terminal_size=(80, 24), run_before=run_before)


def test_chat_reasoning_reply_is_collapsed(snap_compare):
    """A reasoning model's <think> part folds into a collapsed 'reasoning' line above the answer."""
    reply = ("<think>The user wants a greeting. Keep it short and friendly.</think>"
             "Hello! How can I help you today?")
    async def run_before(pilot):
        await settle(pilot)
        await pilot.press(*"Say hello.", "enter")
        await settle(pilot)

    assert snap_compare(app_with(engine=ScriptedEngine(reply=reply)), terminal_size=(80, 24),
                        run_before=run_before)


def test_chat_context_overflow_warning(snap_compare):
    """7,600 of 8,192 tokens used: a warning above the composer says what to do."""
    async def run_before(pilot):
        await settle(pilot)
        await pilot.press(*"Write a Python function that adds two numbers.", "enter")
        await settle(pilot)
        pilot.app.generation = replace(pilot.app.generation, context_used=7600)
        await pilot.pause(0.2)

    assert snap_compare(app_with(), terminal_size=(80, 24), run_before=run_before)


def test_chat_conversation_list(snap_compare, monkeypatch):
    """Ctrl+O: the saved conversations, newest first, with their turns and dates."""
    monkeypatch.setenv("TZ", "UTC")  # the dates shown are local time
    time.tzset()
    folder = SNAPSHOT_MODELS / "conversations"
    shutil.rmtree(folder, ignore_errors=True)
    store = ConversationStore(folder)
    for i, (title, turns) in enumerate((("Fix a segfault in my CUDA kernel", 6),
                                         ("Summarise the llama.cpp changelog", 2),
                                         ("Rust: borrow checker and closures", 4))):
        conv_id = f"2026112{i}-1200-abc{i}"
        lines = [{"t": "meta", "id": conv_id, "created": 1795000000 + i * 86400,
                  "system_prompt": "You are a helpful assistant."}]
        for n in range(turns // 2):
            lines += [{"t": "user", "text": title if n == 0 else "and then?"}, {"t": "reply"},
                      {"t": "text", "text": "Sure."}, {"t": "done", "stats": None}]
        path = store.path(conv_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(x) + "\n" for x in lines))
        os.utime(path, (1795000000 + i * 86400, 1795000000 + i * 86400))

    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("ctrl+o")
        await pilot.pause(0.3)

    assert snap_compare(app_with(conversations=folder), terminal_size=(80, 24),
                        run_before=run_before)


async def _exchange(pilot) -> None:
    await settle(pilot)
    await pilot.press(*"Write a Python function that adds two numbers.", "enter")
    await settle(pilot)


@pytest.mark.parametrize("theme", ["vramdeck-light", "vramdeck-high-contrast", "vramdeck-16"])
def test_themes_on_the_chat_pane(snap_compare, theme):
    """Each shipped theme on a finished exchange (vramdeck-dark is every other snapshot)."""
    assert snap_compare(app_with(theme=theme), terminal_size=(80, 24), run_before=_exchange)


def test_help_screen(snap_compare):
    """F1: the keys pane by pane, with their ids for overrides."""
    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("f1")
        await pilot.pause(0.2)

    assert snap_compare(app_with(), terminal_size=(100, 40), run_before=run_before)


def test_command_palette_finds_tuner_actions(snap_compare):
    """Ctrl+P, 'fit': the Tuner's actions and their keys."""
    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("ctrl+p", *"fit")
        from textual.command import CommandList
        for _ in range(100):  # the palette searches in the background: wait for its answer
            lists = pilot.app.screen.query(CommandList)
            if lists and lists.first().option_count:
                break
            await pilot.pause(0.05)
        await pilot.pause(0.3)

    assert snap_compare(app_with(), terminal_size=(80, 24), run_before=run_before)


def test_chat_160x50(snap_compare):
    assert snap_compare(app_with(), terminal_size=(160, 50), run_before=_exchange)


def test_tuner_160x50(snap_compare, model_70b):
    """The Tuner on a wide terminal: the model list, the form and the bars with room to spare."""
    assert snap_compare(_tuner_70b(model_70b, 40), terminal_size=(160, 50), run_before=_open_tuner)


@pytest.mark.parametrize("size", [(80, 24), (160, 50)], ids=["80x24", "160x50"])
def test_log_pane(snap_compare, size):
    """F5: llama.cpp's own log lines, as the engine captured them."""
    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("f5")
        await pilot.pause(0.3)

    assert snap_compare(app_with(), terminal_size=size, run_before=run_before)


def test_layer_map_70b_on_one_card(snap_compare, model_70b):
    """40 of 81 layers on a 24 GB card: the map shows the CPU blocks then the GPU ones, the bytes
    read per token on each side, and the default-bandwidth speed prediction."""
    assert snap_compare(_tuner_70b(model_70b, 40), terminal_size=(120, 40), run_before=_open_tuner)


def test_layer_map_on_two_gpus_by_keys(snap_compare, model_70b):
    """Two cards, split 2:1, 70 layers: at 80x24 l shows the map in place of the form; PgDn moves
    the GPU/CPU boundary down by several layers."""
    async def run_before(pilot):
        await _open_tuner(pilot)
        await pilot.press("l", "pagedown")
        await pilot.pause(0.2)

    app = _tuner_70b(model_70b, 70, nvml=two_empty_3090s(), tensor_split=(2.0, 1.0))
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_layer_map_moe_experts_on_cpu(snap_compare):
    """A mixture-of-experts model: the 'experts on CPU' row appears in the form, and the first
    three blocks show ▒ (on the GPU, their experts in RAM)."""
    from tui.models.synthetic import TINY_MOE, write_random_llama

    folder = Path("/tmp/vramdeck-snapshots-moe")
    folder.mkdir(parents=True, exist_ok=True)
    model = write_random_llama(folder / "tiny-moe-F32.gguf", TINY_MOE)
    engine = ScriptedEngine(facts=FACTS.__class__(**{**FACTS.__dict__, "path": str(model),
                                                     "n_layer": 4, "layers_total": 5}))
    settings = LoadSettings(model_path=str(model), n_ctx=2048, n_cpu_moe=3)
    app = app_with(engine=engine, nvml=rtx3090_with_a_desktop(), settings=settings, models=[folder])
    assert snap_compare(app, terminal_size=(100, 40), run_before=_open_tuner)


def test_tuner_70b_with_an_8b_draft(snap_compare, model_70b):
    """Tuner at 160x50, the 70B with the 8B-shaped file as its draft (speculative row, draft
    rows, the draft's share of the GPU bar, and the layer map's two options: with the draft at
    these layers, or no draft and the layers its VRAM would hold)."""
    draft = str(SNAPSHOT_MODELS / "Llama-3-8B-Q4_K_M.gguf")

    async def run_before(pilot):
        await _open_tuner(pilot)
        for _ in range(200):
            await pilot.pause(0.05)
            if pilot.app.screen.draft_info is not None:
                break
        await settle(pilot)

    assert snap_compare(_tuner_70b(model_70b, 30, draft_model_path=draft, type_k="q8_0", type_v="q8_0",
                                   flash_attn="on"), terminal_size=(160, 50), run_before=run_before)


def test_monitor_threads_fighting_other_load(snap_compare):
    """Monitor at 80x24 while other processes keep 1.3 of 4 cores busy and the engine runs 4
    threads: the warning under the title says so and suggests 2 threads; the host card shows
    the engine's and the other processes' cores."""
    from tui.monitor.sample import HostSample

    host = HostSample(cpu_percent=98.0, per_cpu_percent=(99.0, 97.0, 98.0, 98.0), ram_used_bytes=18 * GiB,
                      ram_total_bytes=64 * GiB, swap_used_bytes=0, swap_total_bytes=8 * GiB,
                      engine_rss_bytes=2 * GiB, engine_cpu_cores=2.6, other_cpu_cores=1.3)
    app = app_with(settings=SETTINGS.with_changes(n_threads=4))
    app.sampler.host = host  # type: ignore[attr-defined]  # the FakeSampler's fixed host figures

    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("f3")
        await settle(pilot)

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)
