"""Tuner: pick a model and its load settings by keyboard, see the memory they take, apply, benchmark,
and keep what worked as a profile."""

from __future__ import annotations

import asyncio
import statistics
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, OptionList, ProgressBar, Static

from tui.charts import depth_lines
from tui.engine.client import EngineError
from tui.engine.errors import load_report
from tui.engine.settings import ALL_LAYERS, KV_TYPES, LoadSettings
from tui.engine.status import EngineStatus, Phase
from tui.fit.badge import fit_badge
from tui.fit.budget import FIT_MARGIN_BYTES, MemoryBudget
from tui.fit.calibration import calibrate
from tui.fit.checks import this_machine
from tui.fit.overhead import DEFAULT_GPU_OVERHEAD
from tui.fit.planner import Plan, Planner, context_key
from tui.fit.search import fit_layers
from tui.models.demo import find_demo_model
from tui.models.discovery import DiscoveredModel, default_locations, scan
from tui.models.gguf_info import GgufError
from tui.models.model_info import ModelInfo, load_model_info
from tui.profiles.tried import Spread, TriedConfig
from tui.quality.errors import QualityError
from tui.quality.reference import pick_reference
from tui.safe_text import terminal_safe
from tui.screens.chat import recent_prompts
from tui.screens.open_model import OpenModelScreen
from tui.screens.plan import ask_and_plan
from tui.screens.profiles import ProfilesScreen
from tui.screens.result import ResultScreen
from tui.screens.status_binding import follow_app_status
from tui.screens.tried import TriedScreen
from tui.screens.tune import TuneScreen
from tui.screens.typed import VramdeckScreen
from tui.speed.machine_key import sample_identity
from tui.units import format_bytes, format_params, shorten_path
from tui.widgets.layer_map import LayerMap
from tui.widgets.memory_bars import MemoryBars
from tui.widgets.model_list import ModelEntry, ModelList
from tui.widgets.settings_steps import fields_for, step
from tui.widgets.settings_table import SettingsTable
from tui.widgets.status_bar import StatusBar

BENCH_RUNS, DEPTH_RUNS = 3, 3
"""Repetitions of the Tuner's benchmark (b) and of each depth of its depth benchmark (D)."""


def short_reason(error: str | None) -> str:
    """A model's problem in a few words, for the list (the full text shows when highlighted)."""
    text = (error or "").lower()
    for needle, words in (("not a gguf", "not GGUF"), ("truncat", "truncated"),
                          ("permission", "no permission"), ("version", "GGUF version")):
        if needle in text:
            return words
    return "unreadable"


def measured_vs_predicted(measured: tuple[int, ...], predicted: tuple[int, ...]) -> str:
    parts = []
    for i, m in enumerate(measured):
        text = f"GPU{i} {format_bytes(m)}"
        if i < len(predicted) and predicted[i]:
            delta = (m - predicted[i]) / predicted[i] * 100
            text += f" (predicted {format_bytes(predicted[i])}, {delta:+.0f}%)"
        parts.append(text)
    return ", ".join(parts)


class TunerScreen(VramdeckScreen):
    BINDINGS = [
        Binding("up", "select(-1)", "Previous setting", show=False, id="tuner.prev"),
        Binding("down", "select(1)", "Next setting", show=False, id="tuner.next"),
        Binding("right,plus,equals_sign", "change(1)", "Setting up", show=False, id="tuner.inc"),
        Binding("left,minus", "change(-1)", "Setting down", show=False, id="tuner.dec"),
        Binding("pageup", "layers_by(1)", "Layers +several", show=False, id="tuner.inc-big"),
        Binding("pagedown", "layers_by(-1)", "Layers −several", show=False, id="tuner.dec-big"),
        Binding("home", "layers(0)", "No layers on GPU", show=False, id="tuner.layers-none"),
        Binding("end", "layers(-1)", "All layers on GPU", show=False, id="tuner.layers-all"),
        Binding("a,enter", "apply", "Apply", id="tuner.apply"),
        Binding("f", "fit", "Fit", id="tuner.fit"),
        Binding("b", "bench", "Bench", id="tuner.bench"),
        Binding("s", "save_profile", "Save", id="tuner.save"),
        Binding("p", "profiles", "Profiles", id="tuner.profiles"),
        Binding("t", "tried", "Tried", id="tuner.tried"),
        Binding("T", "auto_tune", "Auto-tune", show=False, id="tuner.tune"),
        Binding("P", "plan", "Plan quants", show=False, id="tuner.plan"),
        Binding("D", "depth_bench", "Speed vs context", show=False, id="tuner.depth"),
        Binding("C", "calibrate_speed", "Calibrate speed", show=False, id="tuner.calibrate"),
        Binding("Q", "quality", "Quality (KL divergence)", show=False, id="tuner.quality"),
        Binding("l", "toggle_layer_map", "Layer map", show=False, id="tuner.layer-map"),
        Binding("k", "kv_type", "Cycle KV type", show=False, id="tuner.kv"),
        Binding("x", "flash_attn", "Flash attention", show=False, id="tuner.flash"),
        Binding("right_square_bracket", "context(1)", "Context ×2", show=False, id="tuner.ctx-up"),
        Binding("left_square_bracket", "context(-1)", "Context ÷2", show=False, id="tuner.ctx-down"),
        Binding("u", "undo", "Last working", show=False, id="tuner.undo"),
        Binding("m", "focus_models", "Models", show=False, id="tuner.models"),
        Binding("o", "open_model", "Open path", show=False, id="tuner.open"),
        Binding("d", "draft_model", "Draft model", show=False, id="tuner.draft"),
        Binding("r", "rescan", "Rescan models", show=False, id="tuner.rescan"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.draft: LoadSettings | None = None
        self.info: ModelInfo | None = None
        self.planner = Planner(lambda info, s: calibrate(info, s, use_dry_run=self.app.use_dry_run))
        self.plan: Plan | None = None
        """What the Tuner shows for the draft: estimate, checks, layer map and speed."""
        self.models: list[DiscoveredModel] = []
        self._badges_for: tuple | None = None
        self.last_draft_path = ""
        """The draft model file last chosen (d), for the speculative row to come back to."""
        self.draft_info: ModelInfo | None = None
        """The header of that draft model, for its memory in the estimate."""

    def compose(self) -> ComposeResult:
        # Not a scroll view: Home/End/PgUp/PgDn and the arrows belong to the settings.
        with Vertical(id="tuner"):
            with Horizontal(id="tuner-top"):
                yield ModelList(id="models")
                yield SettingsTable()
            yield MemoryBars()
            yield LayerMap(id="layer-map")
            # markup off: these show file names, tensor names and llama.cpp's words
            yield Static("", id="checks", markup=False)
            yield Static("", id="model-path", markup=False)
            yield ProgressBar(total=1.0, show_eta=False, id="load-progress")
            yield Static("", id="result", markup=False)
        yield StatusBar()
        yield Footer()

    def on_mount(self) -> None:
        self.watch(self.app, "engine_status", self._status_changed)
        self.watch(self.app, "current_settings", self._settings_changed, init=False)
        self.watch(self.app, "load_outcome", self._show_result, init=False)
        self.watch(self.app, "sample", self._sample_changed)
        follow_app_status(self)
        self.query_one("#load-progress").display = False
        current = self.app.current_settings
        if current is not None:
            self.set_draft(current)
        self.query_one(SettingsTable).focus()
        self.discover_models()

    def on_resize(self) -> None:
        self.set_class(self.size.width < 100, "narrow")
        self.set_class(self.size.height < 30, "short")  # the layer map shows on l only

    def action_toggle_layer_map(self) -> None:
        self.toggle_class("show-map")

    # ------------------------------------------------------------------ state

    def set_draft(self, settings: LoadSettings) -> None:
        path_changed = self.draft is None or self.draft.model_path != settings.model_path
        context_changed = self.draft is None or context_key(self.draft) != context_key(settings)
        self.draft = settings
        self.query_one(SettingsTable).settings = settings
        if settings.draft_model_path:
            if settings.draft_model_path != self.last_draft_path or self.draft_info is None:
                self.draft_info = None
                self.read_draft_model(settings.draft_model_path)
            self.last_draft_path = settings.draft_model_path
        self._refresh_fields()
        if path_changed:
            self.info = None
            self.plan = None
            self._path_line("", settings.model_path)
            self.read_model(settings.model_path)
        elif self.planner.calibrated(settings):
            self.show_plan()  # only layers changed: arithmetic, no new dry run
        else:
            self.show_plan()
            self.refine_estimate(settings)
        if path_changed or context_changed:
            self.update_badges()

    def _settings_changed(self, settings: LoadSettings | None) -> None:
        """The app loaded other settings (a profile, a rollback): the form follows."""
        if settings is not None and settings != self.draft:
            self.set_draft(settings)

    def _sample_changed(self, sample) -> None:
        gpus = len(sample.gpus) if sample else 0
        self._refresh_fields()
        if self._badges_for is None or self._badges_for[1] != gpus:
            self.update_badges()

    def _refresh_fields(self) -> None:
        sample = self.app.sample
        gpus = len(sample.gpus) if sample else 0
        # no GPU seen, or a llama.cpp build that cannot offload: the GPU rows do not apply
        cpu_only = (sample is not None and not sample.gpus) or self.app.engine_status.gpu_offload is False
        table = self.query_one(SettingsTable)
        fields = fields_for(gpus, moe=bool(self.info and self.info.n_expert),
                            speculative=self.draft.speculative if self.draft else "", cpu_only=cpu_only)
        if table.fields != fields:
            table.fields = fields
            table.selected = min(table.selected, len(fields) - 1)

    @work(thread=True, exclusive=True, group="header")
    def read_model(self, path: str) -> None:
        try:
            info = load_model_info(path)
        except GgufError as exc:
            self.app.call_from_thread(self._header_failed, str(exc))
            return
        except OSError as exc:
            self.app.call_from_thread(self._header_failed, f"{path}: cannot be read "
                                                           f"({exc.strerror or exc})")
            return
        self.app.call_from_thread(self._header_read, info)

    @work(thread=True, exclusive=True, group="draft-header")
    def read_draft_model(self, path: str) -> None:
        try:
            info = load_model_info(path)
        except (GgufError, OSError) as exc:
            message = str(exc) if isinstance(exc, GgufError) else f"{path}: cannot be read ({exc})"
            self.app.call_from_thread(self.notify, terminal_safe(f"The draft model: {message}"),
                                      severity="error")
            return
        self.app.call_from_thread(self._draft_header_read, info)

    def _draft_header_read(self, info: ModelInfo) -> None:
        if self.draft is not None and Path(self.draft.draft_model_path or "/") == Path(info.path):
            self.draft_info = info
            self.show_plan()

    def _header_read(self, info: ModelInfo) -> None:
        if self.draft is None or Path(self.draft.model_path) != Path(info.path):
            return
        self.info = info
        self.query_one(SettingsTable).n_layer = info.n_layer
        self._refresh_fields()
        self._path_line(f"{info.architecture}, {info.n_layer} blocks, {format_bytes(info.tensor_bytes)}: ",
                        info.path)
        self.show_plan()
        self.refine_estimate(self.draft)

    def _path_line(self, prefix: str, path: str) -> None:
        """The model line: `prefix` and the path, cut at its start so the file name shows."""
        width = max(20, (self.size.width or 80) - 2)
        room = max(16, width - len(prefix))
        self.query_one("#model-path", Static).update(terminal_safe(prefix + shorten_path(path, room)))

    def _header_failed(self, message: str) -> None:
        self.info = None
        self.query_one(SettingsTable).n_layer = None
        self.query_one(MemoryBars).estimate = None
        self.query_one("#model-path", Static).update(terminal_safe(message))

    # ------------------------------------------------------------------ models

    @work(thread=True, exclusive=True, group="discover")
    def discover_models(self) -> None:
        """The models on this machine, the one loaded now among them (wherever it lives), and the
        built-in demo model when nothing else is found: a new user's list is never empty."""
        locations = self.app.model_locations
        current = self.app.current_settings
        known = [(current.model_path, "loaded")] if current else []
        result = scan(locations if locations is not None else default_locations(), known=known)
        demo = find_demo_model()
        if demo is not None and not any(m.ok for m in result.models):
            result = scan(locations if locations is not None else default_locations(),
                          known=[*known, (demo, "demo")])
        self.app.call_from_thread(self._discovered, result.models)

    def _discovered(self, models: list[DiscoveredModel]) -> None:
        self.models = sorted(models, key=lambda m: (not m.ok, m.name.lower()))
        self._badges_for = None
        self.update_badges()

    def update_badges(self) -> None:
        """Each model's badge: how many of its layers fit with the draft's context settings."""
        base = self.draft or LoadSettings(model_path="")
        budget = self._budget()
        self._badges_for = (context_key(base.with_changes(model_path="")), len(budget.gpus))
        entries = []
        for m in self.models:
            info = m.info
            if not m.ok or info is None:
                entries.append(ModelEntry(m.path, m.name, short_reason(m.error or ""), "✗", "broken",
                                          usable=False))
                continue
            badge = fit_badge(info, base, budget)
            detail = f"{info.quant} {format_bytes(m.size_bytes, 0)}"
            entries.append(ModelEntry(m.path, m.name, detail, badge.text, badge.kind))
        current = self.draft.model_path if self.draft else None
        self.query_one(ModelList).show_entries(entries, current)

    @on(OptionList.OptionHighlighted, "#models")
    def model_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        """The model line shows the highlighted model in full (or why it cannot be used)."""
        model = next((m for m in self.models if m.path == event.option.id), None)
        if model is None or not self.query_one(ModelList).has_focus:
            return
        line = self.query_one("#model-path", Static)
        i = model.info
        if model.ok and i is not None:
            self._path_line(f"{i.architecture}, {format_params(i.n_params)} params, {i.n_layer} blocks, "
                            f"{i.quant}, {format_bytes(model.size_bytes)} ({model.source}): ", model.path)
        else:
            line.update(terminal_safe(f"✗ {model.error}"))

    def on_model_list_chosen(self, event: ModelList.Chosen) -> None:
        base = self.draft or LoadSettings(model_path=event.path)
        self.set_draft(base.with_changes(model_path=event.path))
        self.query_one(SettingsTable).focus()

    def action_focus_models(self) -> None:
        self.query_one(ModelList).focus()

    def action_rescan(self) -> None:
        self.notify("Looking for models…", timeout=2)
        self.discover_models()

    # ------------------------------------------------------------------ estimate

    def _budget(self) -> MemoryBudget:
        """What this engine may use: GPUs less what other processes hold, host RAM, margin."""
        store = self.app.loads.overhead_store
        return MemoryBudget.from_sample(
            self.app.sample, store.for_gpus if store else
            (lambda names: tuple(DEFAULT_GPU_OVERHEAD for _ in names)))

    def _plan(self) -> Plan | None:
        """The plan of the draft as it is now (made again if the draft or the machine changed)."""
        if self.info is None or self.draft is None:
            return None
        budget = self._budget()
        self.planner.use_machine(sample_identity(self.app.sample))
        machine = this_machine(self._n_gpus(), self.app.engine_status.gpu_offload)
        draft_info = self.draft_info if self.draft.draft_model_path else None
        return self.planner.plan(self.info, self.draft, budget, machine, self.app.loads.tried, draft_info,
                                 self._measured_acceptance())

    def _measured_acceptance(self) -> float | None:
        """The share of drafted tokens kept in the last reply that used this draft model, if any."""
        stats = self.app.generation.last_stats
        facts = self.app.engine_status.facts
        if (stats is None or stats.speculative != "model" or facts is None or self.draft is None
                or facts.draft_path != self.draft.draft_model_path):
            return None
        return stats.acceptance

    def show_plan(self) -> None:
        """Every widget its part of the draft's plan: checks, memory bars, layer map."""
        self.plan = plan = self._plan()
        checks = plan.checks if plan else ()
        widget = self.query_one("#checks", Static)
        widget.display = bool(checks)
        widget.update(terminal_safe("\n".join(("✗ " if c.level == "error" else "⚠ ") + c.message
                                               for c in checks), multiline=True))
        widget.set_class(any(c.level == "error" for c in checks), "error")
        if plan is None:
            return
        self.query_one(MemoryBars).estimate = plan.estimate
        layer_map = self.query_one(LayerMap)
        lp = plan.layers
        layer_map.devices, layer_map.experts_on_cpu = lp.devices, lp.experts_on_cpu
        layer_map.side_bytes, layer_map.predicted = lp.side_bytes, lp.predicted_tg
        layer_map.calibration, layer_map.measured = lp.calibration, lp.measured_tg
        layer_map.speculative = lp.speculative

    @work(thread=True, exclusive=True, group="calibrate")
    def refine_estimate(self, settings: LoadSettings) -> None:
        info = self.info
        if info is None:
            return
        self.app.call_from_thread(setattr, self.query_one(MemoryBars), "refining", True)
        self.planner.calibrate(info, settings)
        self.app.call_from_thread(self._refined, settings)

    def _refined(self, settings: LoadSettings) -> None:
        self.query_one(MemoryBars).refining = False
        if self.draft is not None and context_key(self.draft) == context_key(settings):
            self.show_plan()

    # ------------------------------------------------------------------ load results

    def _status_changed(self, status: EngineStatus) -> None:
        bar = self.query_one("#load-progress", ProgressBar)
        bar.display = status.phase is Phase.LOADING
        bar.update(progress=status.progress)
        self._show_result()

    def _show_result(self, *_) -> None:
        status = self.app.engine_status
        result = self.query_one("#result", Static)
        outcome = self.app.load_outcome
        tried = self.app.loads.tried
        report = load_report(outcome, tried[-1].n_layer if tried else None) if outcome else ""
        lines = []
        if status.phase is Phase.READY and status.facts and not report:
            f = status.facts
            predicted = self.app.loads.predicted_for(self.app.current_settings)
            vram = measured_vs_predicted(tuple(f.vram_bytes_per_gpu), predicted) or "n/a"
            lines.append(f"Loaded in {f.load_seconds:.2f} s: {f.layers_offloaded}/{f.layers_total} "
                         f"layers on GPU. VRAM measured {vram}; RSS {format_bytes(f.rss_bytes)}")
        elif status.phase in (Phase.FAILED, Phase.CRASHED) and not report:
            lines.append(status.message)
        if report:
            lines.insert(0, report)
        result.set_class(bool(report) or status.phase in (Phase.FAILED, Phase.CRASHED), "error")
        result.update(terminal_safe("\n".join(lines), multiline=True))

    # ------------------------------------------------------------------ actions

    def action_select(self, delta: int) -> None:
        table = self.query_one(SettingsTable)
        table.selected = (table.selected + delta) % len(table.fields)

    def _n_gpus(self) -> int:
        sample = self.app.sample
        return len(sample.gpus) if sample else 0

    def action_change(self, direction: int, big: bool = False) -> None:
        if self.draft is None:
            return
        table = self.query_one(SettingsTable)
        name = table.fields[table.selected].name
        if name == "speculative" and self.last_draft_path:  # off, prompt lookup, the draft model
            s = self.draft
            modes = [s.without_draft(), s.without_draft().with_changes(draft_lookup=True),
                     s.without_draft().with_changes(draft_model_path=self.last_draft_path)]
            now = {"": 0, "lookup": 1, "model": 2}[s.speculative]
            self.set_draft(modes[(now + direction) % 3])
            return
        self.set_draft(step(self.draft, name, direction, table.n_layer, big=big,
                            n_gpus=self._n_gpus()))

    def action_layers_by(self, direction: int) -> None:
        if self.draft is not None:
            self.set_draft(step(self.draft, "n_gpu_layers", direction,
                                self.query_one(SettingsTable).n_layer, big=True))

    def action_layers(self, value: int) -> None:
        if self.draft is not None:
            self.set_draft(self.draft.with_changes(n_gpu_layers=ALL_LAYERS if value < 0 else value))

    def action_kv_type(self) -> None:
        """K and V together: the next cache type."""
        if self.draft is not None:
            i = KV_TYPES.index(self.draft.type_k) if self.draft.type_k in KV_TYPES else 0
            kv = KV_TYPES[(i + 1) % len(KV_TYPES)]
            self.set_draft(self.draft.with_changes(type_k=kv, type_v=kv))

    def action_flash_attn(self) -> None:
        if self.draft is not None:
            self.set_draft(step(self.draft, "flash_attn", 1, None))

    def action_context(self, direction: int) -> None:
        if self.draft is not None:
            self.set_draft(step(self.draft, "n_ctx", direction, None))

    def action_fit(self) -> None:
        """The most layers that fit every GPU's budget, with FIT_MARGIN_BYTES to spare."""
        if self.info is None or self.draft is None:
            self.notify("Open a model first.", severity="warning")
            return
        calibration = self.planner.calibration(self.info, self.draft)
        budget = self._budget()  # its margin is FIT_MARGIN_BYTES
        if not budget.gpus:
            self.notify("No NVIDIA GPU to fit: every layer runs on the CPU.", severity="warning")
            return
        result = fit_layers(self.info, self.draft, calibration, budget)
        if not result.gpu_fits:
            self.notify("Not even 0 layers fit: the compute buffer and the CUDA context alone are "
                        "larger than the free VRAM. Shorten the context or lower n_ubatch.",
                        severity="error", timeout=10)
            return
        self.set_draft(result.settings)
        e = result.estimate
        used = ", ".join(f"{g.name} {format_bytes(g.total)} of {format_bytes(g.budget or 0)}"
                         for g in e.gpus)
        self.notify(f"{e.n_gpu_layers} of {self.info.n_layer + 1} layers fit ({used}, "
                    f"{format_bytes(FIT_MARGIN_BYTES)} spare each).")

    def _current_plan(self) -> Plan | None:
        if self.plan is not None and self.plan.settings == self.draft:
            return self.plan
        return self._plan()

    def action_apply(self) -> None:
        if self.draft is None:
            self.notify("Pick a model first (m, or o for a path).", severity="warning")
            return
        plan = self._current_plan()
        errors = [c.message for c in plan.checks if c.level == "error"] if plan else []
        if errors:  # llama.cpp would refuse: say why now instead of after a failed load
            self.notify("Not applied: " + " ".join(errors), severity="error", timeout=15)
            return
        self.app.load_model(self.draft, plan.predicted_vram if plan else ())

    def action_undo(self) -> None:
        last_working = self.app.loads.last_working
        if last_working is None:
            self.notify("Nothing has loaded yet in this session.", severity="warning")
            return
        self.set_draft(last_working)

    def action_draft_model(self) -> None:
        """d: the draft model file (Enter on an empty path turns the draft off)."""
        if self.draft is None:
            return

        def chosen(path: str | None) -> None:
            if path is None or self.draft is None:
                return
            if path:
                self.set_draft(self.draft.with_changes(draft_model_path=path, draft_lookup=False))
            else:
                self.set_draft(self.draft.without_draft())

        current = self.draft.draft_model_path or self.last_draft_path
        self.app.push_screen(OpenModelScreen(current, what="draft", allow_empty=True), chosen)

    def action_open_model(self) -> None:
        def chosen(path: str | None) -> None:
            if path:
                base = self.draft or LoadSettings(model_path=path)
                self.set_draft(base.with_changes(model_path=path))

        self.app.push_screen(OpenModelScreen(self.draft.model_path if self.draft else ""), chosen)

    @work(exclusive=True, group="bench", exit_on_error=False)
    async def action_bench(self) -> None:
        if self.app.engine_status.phase is not Phase.READY:
            self.notify("Load a model first (a applies the settings).", severity="warning")
            return
        result = self.query_one("#result", Static)
        result.update(f"Benchmarking: pp512 and tg128, {BENCH_RUNS} repetitions after a warm-up…")
        meter = self.app.sampler.contention(self.app.engine.pid).start()
        try:
            bench = await self.app.engine.bench(512, 128, BENCH_RUNS)
        except EngineError as exc:
            result.update(f"Benchmark failed: {exc}")
            return
        busy = meter.stop().warning
        if not bench.tg_tokens_per_s:
            result.update("Benchmark stopped before a run finished.")
            return
        pp = statistics.fmean(bench.pp_tokens_per_s) if bench.pp_tokens_per_s else 0.0
        tg = statistics.fmean(bench.tg_tokens_per_s)
        spread = Spread.of(bench.pp_tokens_per_s, bench.tg_tokens_per_s)
        self.app.loads.record_bench(self.app.current_settings, pp, tg, spread)
        self.show_plan()  # the speed model learnt from it
        summary = (f"pp{bench.n_prompt}: {pp:.1f} ± {spread.pp_stdev:.1f} tok/s   tg{bench.n_gen}: {tg:.1f} ± "
                   f"{spread.tg_stdev:.1f} tok/s")
        self._show_measurement("Benchmark", summary + (" ⚠ busy: see the box" if busy else ""),
                               f"{summary}\n(mean ± sd of {spread.runs} runs; t lists every "
                               "configuration tried)" + (f"\n\n⚠ {busy}" if busy else ""))

    @work(exclusive=True, group="bench", exit_on_error=False)
    async def action_depth_bench(self) -> None:
        """Generation speed with 0, 1/8, 1/4, 1/2 and 3/4 of the context filled."""
        status = self.app.engine_status
        if status.phase is not Phase.READY or status.facts is None:
            self.notify("Load a model first (a applies the settings).", severity="warning")
            return
        n_ctx = status.facts.n_ctx
        depths = tuple(sorted({0, n_ctx // 8, n_ctx // 4, n_ctx // 2, n_ctx * 3 // 4}))
        result = self.query_one("#result", Static)
        result.update(f"Speed against context: tg32 at depths {', '.join(f'{d:,}' for d in depths)}, "
                      f"{DEPTH_RUNS} runs each, interleaved…")
        meter = self.app.sampler.contention(self.app.engine.pid).start()
        try:
            bench = await self.app.engine.bench(0, 32, DEPTH_RUNS, depths)
        except EngineError as exc:
            result.update(f"Benchmark failed: {exc}")
            return
        busy = meter.stop().warning
        figures = bench.depth_figures()
        last = figures[-1] if figures else None
        summary = "tg against context depth" + (
            f": {figures[0][1]:.1f} tok/s at 0, {last[1]:.1f} at {last[0]:,}" if figures and last else "")
        self._show_measurement("Speed against context depth", summary + (" ⚠ busy" if busy else ""),
                               "tg32 against context depth:\n" + "\n".join(depth_lines(figures, 16))
                               + (f"\n\n⚠ {busy}" if busy else ""))

    @work(exclusive=True, group="quality", exit_on_error=False)
    async def action_quality(self) -> None:
        """KL divergence, same top token and perplexity of the chosen file against the
        highest-precision file of the same model on disk (Q); measured once per file."""
        if self.draft is None:
            self.notify("Pick a model first.", severity="warning")
            return
        path = self.draft.model_path
        result = self.query_one("#result", Static)
        result.update("Quality: looking for the highest-precision file of this model…")
        locations = self.app.model_locations
        reference = await asyncio.to_thread(
            pick_reference, [path], locations if locations is not None else default_locations())
        if reference is None:
            result.update(terminal_safe(f"Quality: {Path(path).name} cannot be read as a GGUF model."))
            return
        result.update(terminal_safe(f"Quality: {Path(path).name} against {reference.name} on the shipped "
                                    "text (the reference runs once, then every file is kept)…"))
        from tui.quality.measure import QualityMeter  # numpy: imported on first use, not at start-up

        meter = QualityMeter(reference, self.draft)  # out of GPU memory beside the loaded model: on the CPU
        try:
            figures = await meter.measure_file(path)
        except QualityError as exc:
            result.update(terminal_safe(f"Quality not measured: {exc}"))
            return
        self.app.loads.record_quality(path, figures, reference.name)
        alone = " (it is the reference itself: name a lower quant, or put a higher one beside it)" \
            if Path(path).resolve() == reference.resolve() else ""
        self._show_measurement(
            f"Quality of {Path(path).name}",
            f"Quality: KLD {figures.kld_text()} against {reference.name}",
            f"{Path(path).name} against {reference.name}{alone}, on the shipped text:\n\n"
            + figures.short().replace(" · ", "\n") + f"\nPPL {figures.ppl:.3f} ± {figures.ppl_se:.3f} over "
            f"{figures.tokens:,} tokens\n\nSaved profiles of this file keep these figures."
            + "".join(f"\n⚠ {w}" for w in meter.log.warnings))

    def _show_measurement(self, title: str, summary: str, full: str) -> None:
        """A finished measurement in the message area when it fits its two lines (at 80x24);
        otherwise its one-line summary there and everything in a box of its own."""
        result = self.query_one("#result", Static)
        if full.count("\n") < 2:
            result.update(terminal_safe(full, multiline=True))
            return
        result.update(terminal_safe(summary))
        self.app.push_screen(ResultScreen(title, full))

    # ------------------------------------------------------------------ profiles

    def _suggested_name(self, s: LoadSettings) -> str:
        stem = Path(s.model_path).name.removesuffix(".gguf")[:48]
        ngl = "all" if s.n_gpu_layers == ALL_LAYERS else str(s.n_gpu_layers)
        return f"{stem} ngl{ngl} ctx{s.n_ctx // 1024}k".replace("/", "-")

    def action_save_profile(self, settings: LoadSettings | None = None) -> None:
        settings = settings or self.draft
        if settings is None:
            self.notify("Nothing to save yet: pick a model.", severity="warning")
            return
        self.app.profiles.save_profile_asking(self._suggested_name(settings),
                                     lambda name: self.app.profiles.profile_from(name, settings))

    def action_profiles(self) -> None:
        def chosen(name: str | None) -> None:
            if name:
                self.app.profiles.open_profile(name)
        self.app.push_screen(ProfilesScreen(self.app.profile_store), chosen)

    def action_calibrate_speed(self) -> None:
        """Measure this machine's rate per tensor type (C); the layer map predicts from it after."""
        from tui.screens.calibrate import CalibrateScreen

        def closed(finished: bool | None) -> None:
            if finished:
                self.planner.use_machine(sample_identity(self.app.sample), fresh=True)
                if self.draft is not None:
                    self.set_draft(self.draft)

        self.app.push_screen(CalibrateScreen(), closed)

    def action_plan(self) -> None:
        """Every quant of a model before the download (P): the draft's model by default."""
        def opened(settings: LoadSettings | None) -> None:
            if settings is not None:
                self.set_draft(settings)
                self.discover_models()  # a fetched file joins the model list now, not after r

        store = self.app.loads.overhead_store
        ask_and_plan(self.app, self.draft or LoadSettings(model_path=""), self._budget(),
                     store.for_gpus if store else (lambda names: tuple(DEFAULT_GPU_OVERHEAD for _ in names)),
                     opened)

    def action_auto_tune(self) -> None:
        """Measure what fits (T): the app's engine loads each candidate, then the chosen one."""
        if self.info is None or self.draft is None:
            self.notify("Pick a model first.", severity="warning")
            return
        before = self.app.loads.last_working

        def chosen(settings: LoadSettings | None) -> None:
            target = settings or before
            if target is not None:
                self.set_draft(target)
                self.app.load_model(target)

        self.app.push_screen(TuneScreen(self.info, self.draft, self._budget(),
                                        use_dry_run=self.app.use_dry_run,
                                        text_prompt=recent_prompts(self.app)), chosen)

    def action_tried(self) -> None:
        def chosen(picked: tuple[str, TriedConfig] | None) -> None:
            if picked is None:
                return
            action, row = picked
            if action == "apply":
                self.set_draft(row.settings)
                self.app.load_model(row.settings, row.predicted_vram)
            else:
                self.action_save_profile(row.settings)
        self.app.push_screen(TriedScreen(self.app.loads.tried), chosen)
