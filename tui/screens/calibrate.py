"""The speed calibration in the app (`C` in the Tuner): what `vramdeck calibrate` does, step by
step with a progress bar; Esc stops after the step under way (what was measured is kept, and the
next calibration resumes), and closes the box once it has stopped."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Label, ProgressBar, Static

from tui.safe_text import terminal_safe
from tui.screens.typed import VramdeckModal
from tui.speed.calibrate import CalibrationStopped, Calibrator, Step, probe_folder
from tui.speed.machine_key import sample_identity


def this_machine_calibrator(folder: Path, gpu: str) -> Calibrator:
    """A calibration of this machine, with the GPU the app's sampler sees (`gpu`)."""
    return Calibrator(folder, gpu_name=gpu)


class CalibrateScreen(VramdeckModal[bool]):
    """Dismisses with True when the calibration finished (the speed figures then change)."""

    BINDINGS = [Binding("escape,q", "stop", "Stop / close", id="calibrate.stop")]

    def __init__(self, make: Callable[[Path, str], Calibrator] = this_machine_calibrator) -> None:
        super().__init__(classes="ask")
        self.make = make
        self.stopping = False
        self.running = False
        self.finished = False
        self.lines: list[str] = []

    def compose(self) -> ComposeResult:
        with Vertical(id="result-box"):
            yield Label("Measuring this machine's speed per tensor type", classes="result-title")
            yield ProgressBar(total=None, show_eta=False, id="calibrate-progress")
            yield Static("", id="calibrate-lines", markup=False)
            yield Label("Esc stops after this step (kept; the next calibration resumes)",
                        id="calibrate-status", classes="hint", markup=False)

    def on_mount(self) -> None:
        self.running = True
        self.calibrate()

    def _step(self, done: int, total: int, step: Step, result: str) -> None:
        self.query_one(ProgressBar).update(total=max(total, 1), progress=done)
        if result:
            self.lines.append(f"{step.label}: {result}")
            self.query_one("#calibrate-lines", Static).update(
                terminal_safe("\n".join(self.lines[-8:]), multiline=True))
        else:
            self._status(f"[{done + 1}/{total}] {step.label}…" + ("  (stopping after it)" if self.stopping else ""))

    def _status(self, text: str) -> None:
        self.query_one("#calibrate-status", Label).update(terminal_safe(text))

    @work(exclusive=True, group="calibrate", exit_on_error=False)
    async def calibrate(self) -> None:
        try:
            with probe_folder() as tmp:
                cal = self.make(Path(tmp), sample_identity(self.app.sample))
                if cal.message:
                    self.lines.append(cal.message)
                rates = await cal.run(self._step, stopped=lambda: self.stopping)
            self.finished = True
            done = "done" + (" (some steps measured while the machine was busy: C again when it is "
                             "quiet)" if rates.busy else "")
            self._status(f"{done} · the plan and the layer map predict from it now · Esc closes")
        except CalibrationStopped as exc:
            self._status(f"stopped: {exc} · Esc closes")
        except Exception as exc:  # noqa: BLE001 - the box says what went wrong, once
            self._status(f"the calibration failed: {exc} · Esc closes")
        finally:
            self.running = False

    def action_stop(self) -> None:
        if self.running and not self.stopping:
            self.stopping = True
            self._status("stopping after the step under way…")
            return
        if not self.running:
            self.dismiss(self.finished)
