"""A profile whose model file moved: find the same file elsewhere by its size and fingerprint."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tui.profiles.schema import Profile
from tui.profiles.store import fingerprint


def find_moved_model(profile: Profile, candidates: Iterable[str]) -> str | None:
    """The first candidate path that is the profile's model file: same size, and the same
    fingerprint when the profile recorded one (size alone when it did not, and the same name)."""
    want_size, want_print = profile.model_size_bytes, profile.model_fingerprint
    old_name = Path(profile.load.model_path).name
    for path in candidates:
        p = Path(path)
        try:
            size = p.stat().st_size
        except OSError:
            continue
        if want_size is not None and size != want_size:
            continue
        if want_print:
            try:
                if fingerprint(p) == want_print:
                    return str(p)
            except OSError:
                continue
        elif want_size is not None and p.name == old_name:
            return str(p)
    return None
