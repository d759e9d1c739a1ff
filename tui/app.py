"""VramdeckApp: the panes as modes, the engine and the sampler, and the state they share.

Wiring only. State flows down: the app keeps `engine_status`, `sample` and `warning` as reactives
and the screens watch them. Engine events reach the app as messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from textual import events, work
from textual.app import App
from textual.binding import Binding
from textual.message import Message
from textual.reactive import var

from tui import __version__
from tui.chat.conversation import DEFAULT_SYSTEM_PROMPT
from tui.chat.generation import GenerationStatus
from tui.chat.store import ConversationStore
from tui.config import AppSettings, config_dir, save_settings, settings_path
from tui.engine.engine_like import EngineLike, EngineNews
from tui.engine.errors import load_notice
from tui.engine.load_service import LoadOutcome, LoadService
from tui.engine.protocol import EngineCrashed, Hello, Loaded, LoadFailed, LogLine, Unloaded
from tui.engine.settings import LoadSettings, SamplingSettings
from tui.engine.status import EngineStatus, cpu_only_warning
from tui.fit.overhead import OverheadStore
from tui.keymap import key_table, keymap_problems
from tui.models.discovery import Location, default_locations
from tui.monitor.history import History
from tui.monitor.sample import Sample
from tui.monitor.sampler import SamplerLike
from tui.monitor.sampling_loop import SamplingLoop
from tui.palette import PaneActions, ProfileCommands
from tui.profiles.store import ProfileStore
from tui.safe_text import terminal_safe
from tui.screens.chat import ChatScreen
from tui.screens.help import HelpScreen, help_dialogs
from tui.screens.log import LogScreen
from tui.screens.monitor import MonitorScreen
from tui.screens.profile_actions import ProfileActions
from tui.screens.settings import SettingsScreen
from tui.screens.too_small import MIN_HEIGHT, MIN_WIDTH, TooSmallScreen
from tui.screens.tuner import TunerScreen
from tui.themes import load_themes, theme_order


@dataclass
class EngineHeard(Message):
    """News from the engine (a subscriber callback), posted onto the app's message queue."""

    news: EngineNews


class VramdeckApp(App):
    TITLE = f"vramdeck {__version__}"
    CSS_PATH = "app.tcss"
    MODES = {"chat": ChatScreen, "monitor": MonitorScreen, "tuner": TunerScreen, "log": LogScreen}
    DEFAULT_MODE = "chat"
    COMMANDS = App.COMMANDS | {PaneActions, ProfileCommands}
    BINDINGS = [
        # the panes and help stay out of the footer: at 80 columns it was cut mid-word ("f2 C▏");
        # the chat's welcome text, F1 and the palette list them
        Binding("f2", "switch_mode('chat')", "Chat", show=False, id="app.chat"),
        Binding("f3", "switch_mode('monitor')", "Monitor", show=False, id="app.monitor"),
        Binding("f4", "switch_mode('tuner')", "Tuner", show=False, id="app.tuner"),
        Binding("f5", "switch_mode('log')", "Log", show=False, id="app.log"),
        Binding("ctrl+q", "quit", "Quit", id="app.quit", priority=True),
        Binding("f1,question_mark", "help", "Help", show=False, id="app.help"),
        Binding("f6", "settings", "Settings", show=False, id="app.settings", priority=True),
        Binding("f9", "next_theme", "Next theme", show=False, id="app.theme", priority=True),
    ]

    # App state is `var`, not `reactive`: screens watch it, and a reactive on the App would
    # repaint the whole screen on every sample, log line and streamed piece.
    engine_status: var[EngineStatus] = var(EngineStatus)
    sample: var[Sample | None] = var(None)
    warning: var[str] = var("")
    log_count: var[int] = var(0)
    generation: var[GenerationStatus] = var(GenerationStatus)
    """The reply under way and the last one: context used, live speeds, prompt progress."""
    current_settings: var[LoadSettings | None] = var(None)
    """The settings the engine has loaded, or is loading (the Tuner's draft follows it)."""
    load_outcome: var[LoadOutcome | None] = var(None)
    """What the last apply did (None while one is under way); the Tuner words it."""

    def __init__(self, engine: EngineLike, sampler: SamplerLike,
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
        self.loads = LoadService(engine, overhead_store, self._gpu_names)
        """The one load path: apply with rollback, the configurations tried, GPU overheads."""
        self.profiles = ProfileActions(self)
        """Save, open and relink profiles (the Tuner, the auto-tune and the palette use it)."""
        self.profile_store = profile_store or ProfileStore()
        self.conversation_store = conversation_store or ConversationStore()
        self.app_settings = app_settings or AppSettings(theme=theme)
        self.settings_file = settings_file
        """Where settings changes (theme, keys...) are saved; None keeps them for this run only."""
        self._settings_problems = list(settings_problems or [])
        self.model_locations = model_locations
        """Where the Tuner looks for models (None: the usual places, see models/discovery.py)."""
        self.sampling = SamplingSettings()
        self.system_prompt = DEFAULT_SYSTEM_PROMPT
        self.sample_interval = sample_interval
        self._notice = notice
        self._theme_name = theme
        self.use_dry_run = use_dry_run
        """Ask llama.cpp (dry runs) for KV/compute sizes; False keeps estimates to the formula."""
        self.history = History()
        self._first_mode = mode

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
        self.engine.subscribe(lambda news: self.post_message(EngineHeard(news)))
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
        self._sampling.stop()
        await self.engine.stop()

    # ------------------------------------------------------------------ settings, themes, help

    def action_next_theme(self) -> None:
        names = theme_order(self.available_themes)
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
        rows = key_table(type(self), self.app_settings.keys, help_dialogs())
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
        self.push_screen(SettingsScreen(self.app_settings, theme_order(self.available_themes),
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
        elif small and isinstance(self.screen, TooSmallScreen):
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

    def on_engine_heard(self, message: EngineHeard) -> None:
        event = message.news
        if isinstance(event, LogLine):
            self.log_count += 1
            return
        self.engine_status = self.engine_status.apply(event)
        if isinstance(event, (Loaded, LoadFailed, EngineCrashed, Unloaded)):
            self.generation = self.generation.context_reset()
            self.sample_now()
        if isinstance(event, Hello):
            self._update_warning()
        elif isinstance(event, EngineCrashed):
            self.notify(event.describe(), severity="error", timeout=15)

    def _gpu_names(self) -> tuple[str, ...]:
        return tuple(g.name for g in self.sample.gpus) if self.sample else ()

    @work(exclusive=True, group="load", exit_on_error=False)
    async def load_model(self, settings: LoadSettings, predicted: tuple[int, ...] = ()) -> None:
        """Reload with `settings` (the LoadService goes back to the last that worked if they
        fail). `predicted` is what the Tuner's estimate said each GPU would take."""
        self.current_settings = settings
        self.load_outcome = None
        self.engine_status = self.engine_status.loading()
        outcome = await self.loads.apply(settings, predicted)
        if outcome.failure is not None:
            self.notify(load_notice(outcome), severity="error", timeout=20)
        elif outcome.loaded is not None and outcome.loaded.facts.draft_problem:
            self.notify(terminal_safe(f"{outcome.loaded.facts.draft_problem}\nThe model runs without the draft."),
                        severity="warning", timeout=20)
        if outcome.rolled_back_to is not None:
            self.current_settings = outcome.rolled_back_to
        self.load_outcome = outcome

    # ------------------------------------------------------------------ sampler

    def _start_sampler(self) -> None:
        def target() -> tuple[int | None, str | None]:
            facts = self.engine_status.facts
            return self.engine.pid, facts.path if facts else None

        def deliver(sample: Sample | None) -> bool:
            try:
                self.call_from_thread(self._sample_taken, sample)
            except RuntimeError:  # the app is closing
                return False
            return True
        self._sampling = SamplingLoop(self.sampler, lambda: self.sample_interval, target, deliver)
        self._sampling.start()

    def sample_now(self) -> None:
        """Take the next sample at once (after a load, the engine's process has changed)."""
        self._sampling.now()

    def _sample_taken(self, sample: Sample | None) -> None:
        if sample is not None:
            self.history.add(sample, self.generation.tokens_per_s)
            self.sample = sample
            self._update_warning()

    def _update_warning(self) -> None:
        gpus = len(self.sample.gpus) if self.sample else 0
        self.warning = cpu_only_warning(self.engine_status.gpu_offload, gpus)
