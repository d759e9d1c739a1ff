"""The profile flows the screens and the palette share: save with the session's figures, open
(relinking a moved model), and what a profile records of this machine. The app holds one
ProfileActions; dialogs are pushed on the app."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from tui.engine.settings import LoadSettings
from tui.models.discovery import default_locations, scan
from tui.profiles.portable import machine_mismatch, machine_record, measured_results, quality_results
from tui.profiles.relink import find_moved_model
from tui.profiles.schema import Profile, ProfileError
from tui.profiles.store import ProfileExists
from tui.screens.ask import AskTextScreen, ConfirmScreen
from tui.screens.open_model import OpenModelScreen

if TYPE_CHECKING:
    from tui.app import VramdeckApp


class ProfileActions:
    def __init__(self, app: "VramdeckApp"):
        self.app = app

    def profile_from(self, name: str, settings: LoadSettings) -> Profile:
        """A profile of `settings` with the session's sampling and system prompt, and what was
        measured for exactly these settings (if they were loaded and benchmarked)."""
        profile = Profile(name=name, load=settings, sampling=self.app.sampling,
                          system_prompt=self.app.system_prompt)
        row = self.app.loads.measured(settings)
        quality, reference = self.app.loads.quality.get(settings.model_path, (None, ""))
        if row is not None:
            profile.results = measured_results(self.machine(), row.measured_vram,
                                               row.load_seconds, row.pp_tokens_per_s,
                                               row.tg_tokens_per_s, row.spread, quality, reference)
        elif quality is not None:  # measured with Q, never loaded with these settings
            profile.results = quality_results(quality, reference)
        return profile

    def save_profile_asking(self, suggested: str, make: Callable[[str], Profile]) -> None:
        """Ask for a name, confirm before overwriting, save `make(name)`, say where it went."""
        def save(name: str | None, overwrite: bool = False) -> None:
            if not name:
                return
            try:
                path = self.app.profile_store.save(make(name), overwrite=overwrite)
            except ProfileExists:
                self.app.push_screen(ConfirmScreen(f"A profile named '{name}' exists. Overwrite it?"),
                                 lambda yes: save(name, True) if yes else None)
                return
            except (OSError, ValueError) as exc:
                self.app.notify(f"Not saved: {exc}", severity="error", timeout=10)
                return
            self.app.notify(f"Saved profile '{name}' to {path}")

        self.app.push_screen(AskTextScreen("Save these settings as the profile:", suggested), save)

    def machine(self) -> dict:
        """What a profile records of this machine: GPUs, their memory, driver, llama.cpp build."""
        return machine_record(self.app.sample, self.app.engine_status.llama_cpp_version)

    def open_profile(self, name: str) -> None:
        """Load a saved profile: its settings, sampling and system prompt; relink a moved model."""
        try:
            profile = self.app.profile_store.load(name)
        except ProfileError as exc:
            self.app.notify(str(exc), severity="error", timeout=20)
            return
        for warning in profile.warnings:
            self.app.notify(warning, severity="warning", timeout=10)
        if Path(profile.load.model_path).is_file():
            self._use_profile(profile)
        else:
            self.relink_profile(profile)

    def _use_profile(self, profile: Profile) -> None:
        elsewhere = machine_mismatch(profile, self.app.sample)
        if elsewhere:
            self.app.notify(elsewhere, severity="warning", timeout=20)
        settings = self.app.app_settings
        if settings.last_profile != profile.name:
            settings.last_profile = profile.name
            self.app.save_app_settings()
        self.app.sampling = profile.sampling
        if profile.system_prompt:
            self.app.system_prompt = profile.system_prompt
        self.app.notify(f"Profile '{profile.name}': loading {Path(profile.load.model_path).name}")
        self.app.load_model(profile.load)

    def relink_profile(self, profile: Profile) -> None:
        """The model file is not where the profile says: look for the same file (size and
        fingerprint) among the discovered models, and offer it; else ask for the path."""
        app = self.app

        def look() -> None:
            locations = app.model_locations if app.model_locations is not None else default_locations()
            found = find_moved_model(profile, (m.path for m in scan(locations).models))
            app.call_from_thread(self._offer_relink, profile, found)
        app.run_worker(look, thread=True, exclusive=True, group="relink")

    def _offer_relink(self, profile: Profile, found: str | None) -> None:
        missing = profile.load.model_path

        def relink(path: str | None) -> None:
            if not path:
                self.app.notify(f"Profile '{profile.name}' not loaded: its model file is missing.",
                            severity="warning")
                return
            profile.load = profile.load.with_changes(model_path=path)
            profile.model_fingerprint = ""  # recomputed from the new file on save
            try:
                self.app.profile_store.save(profile, overwrite=True)
            except (OSError, ValueError) as exc:
                self.app.notify(f"Could not save the relinked profile: {exc}", severity="error")
            self._use_profile(profile)

        if found:
            self.app.push_screen(ConfirmScreen(f"The model of '{profile.name}' is missing:\n{missing}\n"
                                           f"The same file (size and fingerprint) is at:\n{found}\n"
                                           "Relink the profile to it?"),
                             lambda yes: relink(found if yes else None))
        else:
            self.app.notify(f"The model of '{profile.name}' is missing ({missing}) and no file with "
                        f"the same size and fingerprint was found: give its new path.",
                        severity="warning", timeout=15)
            self.app.push_screen(OpenModelScreen(missing), relink)
