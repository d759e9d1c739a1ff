"""VramdeckApp: the panes as modes, the engine and the sampler, and the state they share.

Wiring only. State flows down: the app keeps `engine_status`, `sample` and `warning` as reactives
and the screens watch them. Engine events reach the app as messages.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from textual import events, work
from textual.app import App
from textual.binding import Binding
from textual.message import Message
from textual.reactive import var

from tui import __version__
from tui.chat.conversation import DEFAULT_SYSTEM_PROMPT
from tui.chat.store import ConversationStore
from tui.engine.client import EngineClient
from tui.safe_text import terminal_safe
from tui.engine.protocol import (ChatStats, EngineCrashed, Hello, Loaded, LoadFailed, LogLine,
                                 Unloaded)
from tui.engine.settings import LoadSettings, SamplingSettings
from tui.engine.errors import failure_kind, rollback_report
from tui.engine.settings_steps import compact
from tui.engine.status import EngineStatus, cpu_only_warning
from tui.fit.overhead import OverheadStore, remember_from_load
from tui.monitor.history import History
from tui.monitor.sample import Sample
from tui.monitor.sampler import SamplerLike
from tui.models.discovery import Location, default_locations, scan
from tui.palette import PaneActions, ProfileCommands
from tui.profiles.portable import machine_mismatch, machine_record, measured_results
from tui.profiles.relink import find_moved_model
from tui.profiles.schema import Profile, ProfileError
from tui.profiles.store import ProfileExists, ProfileStore
from tui.profiles.tried import TriedConfig
from tui.screens.ask import AskTextScreen, ConfirmScreen
from tui.screens.open_model import OpenModelScreen
from tui.screens.chat import ChatScreen
from tui.screens.log import LogScreen
from tui.screens.too_small import MIN_HEIGHT, MIN_WIDTH, TooSmallScreen
from tui.screens.monitor import MonitorScreen
from tui.screens.tuner import TunerScreen
from tui.themes import load_themes
from tui.config import AppSettings, config_dir, save_settings, settings_path
from tui.keymap import key_table, keymap_problems
from tui.screens.help import HelpScreen
from tui.screens.settings import SettingsScreen
from textual.theme import BUILTIN_THEMES


@dataclass
class EngineEvent(Message):
    event: object


class VramdeckApp(App):
    TITLE = f"vramdeck {__version__}"
    CSS_PATH = "app.tcss"
    MODES = {"chat": ChatScreen, "monitor": MonitorScreen, "tuner": TunerScreen, "log": LogScreen}
    DEFAULT_MODE = "chat"
    COMMANDS = App.COMMANDS | {PaneActions, ProfileCommands}
    BINDINGS = [
        Binding("f2", "switch_mode('chat')", "Chat", id="app.chat"),
        Binding("f3", "switch_mode('monitor')", "Monitor", id="app.monitor"),
        Binding("f4", "switch_mode('tuner')", "Tuner", id="app.tuner"),
        Binding("f5", "switch_mode('log')", "Log", id="app.log"),
        Binding("ctrl+q", "quit", "Quit", id="app.quit", priority=True),
        Binding("f1,question_mark", "help", "Help", id="app.help"),
        Binding("f6", "settings", "Settings", show=False, id="app.settings", priority=True),
        Binding("f9", "next_theme", "Next theme", show=False, id="app.theme", priority=True),
    ]

    # App state is `var`, not `reactive`: screens watch it, and a reactive on the App would
    # repaint the whole screen on every sample, log line and streamed piece.
    engine_status: var[EngineStatus] = var(EngineStatus)
    sample: var[Sample | None] = var(None)
    warning: var[str] = var("")
    log_count: var[int] = var(0)
    context_used: var[int] = var(0)
    """Tokens in the KV cache after the last reply."""
    live_prompt_tokens_per_s: var[float] = var(0.0)
    """Prompt speed of the request being answered now (0 when none is)."""
    live_tokens_per_s: var[float] = var(0.0)
    """Generation speed of the reply streaming now (0 when none is)."""
    prompt_progress: var[tuple[int, int, float] | None] = var(None)
    """(tokens done, tokens in all, tok/s) while a long prompt is read; None otherwise."""
    last_stats: var[ChatStats | None] = var(None)
    """Figures of the last finished reply."""
    current_settings: var[LoadSettings | None] = var(None)
    """The settings the engine has loaded, or is loading (the Tuner's draft follows it)."""
    load_report: var[str] = var("")
    """What the last apply did when it did not simply work (a failure and the rollback)."""
    tried_count: var[int] = var(0)
    """Rows in `tried` (a var so screens can follow it)."""

    def __init__(self, engine: EngineClient, sampler: SamplerLike,
                 settings: LoadSettings | None = None, notice: str = "",
                 sample_interval: float = 1.0, theme: str = "vramdeck-dark",
                 overhead_store: OverheadStore | None = None, use_dry_run: bool = True,
                 mode: str = "chat", profile_store: ProfileStore | None = None,
                 model_locations: list[Location] | None = None,
                 conversation_store: ConversationStore | None = None,
                 app_settings: AppSettings | None = None, settings_file: Path | None = None,
                 settings_problems: list[str] | None = None):
        super().__init__()
        self.engine = engine
        self.sampler = sampler
        self.current_settings = settings
        self.last_working: LoadSettings | None = None
        self.profile_store = profile_store or ProfileStore()
        self.conversation_store = conversation_store or ConversationStore()
        self.app_settings = app_settings or AppSettings(theme=theme)
        self.settings_file = settings_file
        """Where settings changes (theme, keys...) are saved; None keeps them for this run only."""
        self._settings_problems = list(settings_problems or [])
        self.model_locations = model_locations
        """Where the Tuner looks for models (None: the usual places, see models/discovery.py)."""
        self.depth_results: list[tuple[int, float]] = []
        """The last speed-against-context benchmark: (depth, tg tok/s)."""
        self.tried: list[TriedConfig] = []
        """Configurations applied (and benchmarked) this session, for the Tuner's table."""
        self.last_prediction: tuple[LoadSettings, tuple[int, ...]] | None = None
        """Predicted bytes per GPU for the settings applied last."""
        self.sampling = SamplingSettings()
        self.system_prompt = DEFAULT_SYSTEM_PROMPT
        self.sample_interval = sample_interval
        self._notice = notice
        self._theme_name = theme
        self.use_dry_run = use_dry_run
        self.history = History()
        self._first_mode = mode
        """Ask llama.cpp (dry runs) for KV/compute sizes; False keeps estimates to the formula."""
        self.overhead_store = overhead_store
        """Where measured GPU overheads are remembered for `fit`; None in tests."""

    def on_mount(self) -> None:
        theme_problems: list[str] = []
        for theme in load_themes(config_dir() / "themes", theme_problems):
            self.register_theme(theme)
        wanted = self.app_settings.theme or self._theme_name
        self.theme = wanted if wanted in self.available_themes else self._theme_name
        self.watch(self, "theme", self._theme_changed, init=False)
        problems = self._settings_problems + theme_problems
        if self.app_settings.keys:
            problems += keymap_problems(type(self), self.app_settings.keys)
            self.set_keymap(self.app_settings.keys)
        for problem in problems:
            self.notify(problem, severity="warning", timeout=20)
        self.engine.subscribe(lambda event: self.post_message(EngineEvent(event)))
        if self._notice:
            self.engine_status = EngineStatus(message=self._notice)
            self.notify(self._notice, severity="warning", timeout=30)
        if self._first_mode != self.DEFAULT_MODE:
            self.switch_mode(self._first_mode)
        self._check_size(self.size.width, self.size.height)
        self._start_sampler()
        if self.current_settings is not None:
            self.load_model(self.current_settings)

    async def on_unmount(self) -> None:
        self._sampler_stop.set()
        self._sampler_wake.set()
        await self.engine.close()

    # ------------------------------------------------------------------ settings, themes, help

    def vramdeck_themes(self) -> list[str]:
        return sorted(name for name in self.available_themes if name.startswith("vramdeck")) + \
            sorted(n for n, t in self.available_themes.items()
                   if not n.startswith("vramdeck") and n not in BUILTIN_THEMES)

    def action_next_theme(self) -> None:
        names = self.vramdeck_themes()
        i = names.index(self.theme) if self.theme in names else -1
        self.theme = names[(i + 1) % len(names)]
        self.notify(f"Theme: {self.theme}", timeout=2)

    def _theme_changed(self, theme: str) -> None:
        if self.app_settings.theme != theme:
            self.app_settings.theme = theme
            self.save_app_settings()

    def notify(self, message: str, *, title: str = "", severity="information",
               timeout: float | None = None, markup: bool = True) -> None:
        """Every notification is plain text: they carry file names, profile errors and
        llama.cpp's words, whose brackets are not markup and whose escapes are not for the
        terminal (`markup` is accepted and ignored)."""
        kwargs = {} if timeout is None else {"timeout": timeout}
        super().notify(terminal_safe(message, multiline=True), title=terminal_safe(title),
                       severity=severity, markup=False, **kwargs)

    def save_app_settings(self) -> None:
        if self.settings_file is None:
            return
        try:
            save_settings(self.app_settings, self.settings_file)
        except OSError as exc:
            self.notify(f"Settings not saved: {exc}", severity="error")

    def action_help(self) -> None:
        from tui.screens.conversations import ConversationsScreen
        from tui.screens.profiles import ProfilesScreen
        from tui.screens.tried import TriedScreen

        dialogs = {"Profiles (p in the Tuner)": ProfilesScreen,
                   "Configurations tried (t in the Tuner)": TriedScreen,
                   "Saved chats (Ctrl+O in Chat)": ConversationsScreen}
        rows = key_table(type(self), self.app_settings.keys, dialogs)
        self.push_screen(HelpScreen(rows, str(self.settings_file or settings_path())))

    def action_settings(self) -> None:
        def saved(new: AppSettings | None) -> None:
            if new is None:
                return
            dirs_changed = new.models_dirs != self.app_settings.models_dirs
            self.app_settings = new
            self.set_keymap(new.keys)
            self.sample_interval = new.refresh_interval
            if dirs_changed and self.model_locations is not None:
                self.model_locations = default_locations(new.models_dirs)
            self.theme = new.theme
            self.save_app_settings()
            self.notify("Settings saved.")
        self.push_screen(SettingsScreen(self.app_settings, self.vramdeck_themes(),
                                        str(self.settings_file or settings_path()), type(self)), saved)

    # ------------------------------------------------------------------ terminal size

    def on_resize(self, event: events.Resize) -> None:
        self._check_size(event.size.width, event.size.height)

    def _check_size(self, width: int, height: int) -> None:
        small = width < MIN_WIDTH or height < MIN_HEIGHT
        shown = isinstance(self.screen, TooSmallScreen)
        if small and not shown:
            self.push_screen(TooSmallScreen())
            self.call_after_refresh(lambda: self._show_size(width, height))
        elif small:
            self.screen.show_size(width, height)
        elif shown:
            self.pop_screen()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """While the too-small notice is up, only quitting works: a pane switch, help or the
        palette would open a layout the terminal cannot hold, under a notice that says so."""
        if isinstance(self.screen, TooSmallScreen) and action != "quit":
            return False
        return True

    def _show_size(self, width: int, height: int) -> None:
        if isinstance(self.screen, TooSmallScreen):
            self.screen.show_size(width, height)

    # ------------------------------------------------------------------ engine

    def on_engine_event(self, message: EngineEvent) -> None:
        event = message.event
        if isinstance(event, LogLine):
            self.log_count += 1
            return
        self.engine_status = self.engine_status.apply(event)
        if isinstance(event, (Loaded, LoadFailed, EngineCrashed, Unloaded)):
            self.context_used = 0
            self.sample_now()
        if isinstance(event, Hello):
            self._update_warning()
        elif isinstance(event, Loaded) and self.overhead_store and self.sample and self.sample.gpus:
            remember_from_load(event.facts.vram_bytes_per_gpu, event.facts.buffers,
                               [g.name for g in self.sample.gpus], self.overhead_store)
        elif isinstance(event, EngineCrashed):
            self.notify(event.describe(), severity="error", timeout=15)

    @work(exclusive=True, group="load", exit_on_error=False)
    async def load_model(self, settings: LoadSettings, predicted: tuple[int, ...] = ()) -> None:
        """Reload with `settings`; if that fails, go back to the last settings that worked.

        `predicted` is what the Tuner's estimate said each GPU would take, kept to be shown
        beside what was measured."""
        self.current_settings = settings
        self.last_prediction = (settings, predicted) if predicted else None
        self.load_report = ""
        self.engine_status = self.engine_status.loading()
        result = await self.engine.load(settings)
        if isinstance(result, Loaded):
            self.last_working = settings
            self._record_tried(settings, result)
            return
        assert isinstance(result, LoadFailed)
        previous = self.last_working
        n_layer = self.tried[-1].n_layer if self.tried else None
        rollback = previous is not None and previous != settings
        self.load_report = rollback_report(failure_kind(result.kind), result.message,
                                           compact(settings, n_layer),
                                           compact(previous, n_layer) if rollback else None)
        self.notify(result.message + ("\nGoing back to the last settings that worked." if rollback
                                      else ""), severity="error", timeout=20)
        if rollback:
            self.current_settings = previous
            self.last_prediction = None
            self.engine_status = self.engine_status.loading()
            await self.engine.load(previous)

    def _record_tried(self, settings: LoadSettings, loaded: Loaded) -> None:
        f = loaded.facts
        predicted = self.last_prediction[1] if self.last_prediction else ()
        names = tuple(g.name for g in self.sample.gpus) if self.sample else ()
        self.tried.append(TriedConfig(settings=settings, n_layer=f.n_layer, predicted_vram=predicted,
                                      measured_vram=tuple(f.vram_bytes_per_gpu),
                                      load_seconds=f.load_seconds, gpu_names=names))
        self.tried_count = len(self.tried)

    def record_bench(self, pp: float, tg: float) -> None:
        """Benchmark figures of the loaded settings: fill their row, or add one."""
        settings = self.current_settings
        for i in range(len(self.tried) - 1, -1, -1):
            row = self.tried[i]
            if row.settings == settings:
                if row.tg_tokens_per_s is None:
                    self.tried[i] = replace(row, pp_tokens_per_s=pp, tg_tokens_per_s=tg)
                else:
                    self.tried.append(replace(row, pp_tokens_per_s=pp, tg_tokens_per_s=tg))
                break
        self.tried_count = len(self.tried)

    # ------------------------------------------------------------------ profiles

    def profile_from(self, name: str, settings: LoadSettings) -> Profile:
        """A profile of `settings` with the session's sampling and system prompt, and what was
        measured for exactly these settings (if they were loaded and benchmarked)."""
        profile = Profile(name=name, load=settings, sampling=self.sampling,
                          system_prompt=self.system_prompt)
        rows = [r for r in self.tried if r.settings == settings]
        if rows:
            row = next((r for r in reversed(rows) if r.tg_tokens_per_s is not None), rows[-1])
            profile.results = measured_results(self.machine(), row.measured_vram,
                                               row.load_seconds, row.pp_tokens_per_s,
                                               row.tg_tokens_per_s)
        return profile

    def save_profile_asking(self, suggested: str, make: Callable[[str], Profile]) -> None:
        """Ask for a name, confirm before overwriting, save `make(name)`, say where it went."""
        def save(name: str | None, overwrite: bool = False) -> None:
            if not name:
                return
            try:
                path = self.profile_store.save(make(name), overwrite=overwrite)
            except ProfileExists:
                self.push_screen(ConfirmScreen(f"A profile named '{name}' exists. Overwrite it?"),
                                 lambda yes: save(name, True) if yes else None)
                return
            except (OSError, ValueError) as exc:
                self.notify(f"Not saved: {exc}", severity="error", timeout=10)
                return
            self.notify(f"Saved profile '{name}' to {path}")

        self.push_screen(AskTextScreen("Save these settings as the profile:", suggested), save)

    def machine(self) -> dict:
        """What a profile records of this machine: GPUs, their memory, driver, llama.cpp build."""
        return machine_record(self.sample, self.engine_status.llama_cpp_version)

    def open_profile(self, name: str) -> None:
        """Load a saved profile: its settings, sampling and system prompt; relink a moved model."""
        try:
            profile = self.profile_store.load(name)
        except ProfileError as exc:
            self.notify(str(exc), severity="error", timeout=20)
            return
        for warning in profile.warnings:
            self.notify(warning, severity="warning", timeout=10)
        if Path(profile.load.model_path).is_file():
            self._use_profile(profile)
        else:
            self.relink_profile(profile)

    def _use_profile(self, profile: Profile) -> None:
        elsewhere = machine_mismatch(profile, self.sample)
        if elsewhere:
            self.notify(elsewhere, severity="warning", timeout=20)
        if self.app_settings.last_profile != profile.name:
            self.app_settings.last_profile = profile.name
            self.save_app_settings()
        self.sampling = profile.sampling
        if profile.system_prompt:
            self.system_prompt = profile.system_prompt
        self.notify(f"Profile '{profile.name}': loading {Path(profile.load.model_path).name}")
        self.load_model(profile.load)

    @work(thread=True, exclusive=True, group="relink")
    def relink_profile(self, profile: Profile) -> None:
        """The model file is not where the profile says: look for the same file (size and
        fingerprint) among the discovered models, and offer it; else ask for the path."""
        locations = self.model_locations if self.model_locations is not None else default_locations()
        found = find_moved_model(profile, (m.path for m in scan(locations).models))
        self.call_from_thread(self._offer_relink, profile, found)

    def _offer_relink(self, profile: Profile, found: str | None) -> None:
        missing = profile.load.model_path

        def relink(path: str | None) -> None:
            if not path:
                self.notify(f"Profile '{profile.name}' not loaded: its model file is missing.",
                            severity="warning")
                return
            profile.load = profile.load.with_changes(model_path=path)
            profile.model_fingerprint = ""  # recomputed from the new file on save
            try:
                self.profile_store.save(profile, overwrite=True)
            except (OSError, ValueError) as exc:
                self.notify(f"Could not save the relinked profile: {exc}", severity="error")
            self._use_profile(profile)

        if found:
            self.push_screen(ConfirmScreen(f"The model of '{profile.name}' is missing:\n{missing}\n"
                                           f"The same file (size and fingerprint) is at:\n{found}\n"
                                           "Relink the profile to it?"),
                             lambda yes: relink(found if yes else None))
        else:
            self.notify(f"The model of '{profile.name}' is missing ({missing}) and no file with "
                        f"the same size and fingerprint was found: give its new path.",
                        severity="warning", timeout=15)
            self.push_screen(OpenModelScreen(missing), relink)

    # ------------------------------------------------------------------ sampler

    def _start_sampler(self) -> None:
        """One long-lived thread reads the hardware, waits the interval, and reads again: a slow
        read never overlaps the next, and nothing is created per sample (a worker per sample
        cost ~0.8% of a core at 1 s)."""
        self._sampler_stop = threading.Event()
        self._sampler_wake = threading.Event()
        threading.Thread(target=self._sampler_loop, name="sampler", daemon=True).start()

    def _sampler_loop(self) -> None:
        stop = self._sampler_stop
        while not stop.is_set():
            try:
                facts = self.engine_status.facts
                sample = self.sampler.sample(self.engine.pid, facts.path if facts else None)
            except Exception as exc:  # a sampler bug must not stop the monitor for good
                sample = None
                self.log.error(f"sampler failed: {exc!r}")
            try:
                self.call_from_thread(self._sample_taken, sample)
            except RuntimeError:  # the app is closing
                return
            self._sampler_wake.wait(self.sample_interval)
            self._sampler_wake.clear()

    def sample_now(self) -> None:
        """Take the next sample at once (after a load, the engine's process has changed)."""
        self._sampler_wake.set()

    def _sample_taken(self, sample: Sample | None) -> None:
        if sample is not None:
            self.history.add(sample, self.live_tokens_per_s)
            self.sample = sample
            self._update_warning()

    def _update_warning(self) -> None:
        gpus = len(self.sample.gpus) if self.sample else 0
        self.warning = cpu_only_warning(self.engine_status.gpu_offload, gpus)
