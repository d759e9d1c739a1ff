"""One long-lived thread that reads the hardware, waits the interval, and reads again.

A slow read never overlaps the next, and nothing is created per sample (a worker per sample cost
~0.8% of a core at 1 s). `deliver` gets each sample (None when the sampler failed) on the
thread: the app passes one that hops onto its event loop, and returns False once it is closing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from tui.monitor.sample import Sample
from tui.monitor.sampler import SamplerLike

log = logging.getLogger(__name__)


class SamplingLoop:
    def __init__(self, sampler: SamplerLike, interval_s: Callable[[], float],
                 target: Callable[[], tuple[int | None, str | None]],
                 deliver: Callable[[Sample | None], bool]):
        """`target()` names the engine's pid and model file for each read."""
        self.sampler, self.interval_s, self.target, self.deliver = sampler, interval_s, target, deliver
        self._stop = threading.Event()
        self._wake = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self._run, name="sampler", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def now(self) -> None:
        """Take the next sample at once (after a load, the engine's process has changed)."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                sample = self.sampler.sample(*self.target())
            except Exception as exc:  # a sampler bug must not stop the monitor for good
                sample = None
                log.error("sampler failed: %r", exc)
            if not self.deliver(sample):
                return
            self._wake.wait(self.interval_s())
            self._wake.clear()
