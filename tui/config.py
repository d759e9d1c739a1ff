"""vramdeck's own settings: one TOML file in the user config dir, editable by hand or in the app.

    # ~/.config/vramdeck/settings.toml
    schema = 1
    models_dirs = ["~/models", "/data/gguf"]
    refresh_interval = 1.0
    theme = "vramdeck-dark"
    last_profile = ""
    [keys]                      # binding id = keys (see F1 for the ids)
    "tuner.apply" = "a,ctrl+enter"

A broken file never stops the app: what can be read is used, the rest falls back to the
defaults, and each problem is reported with the file, key and line.
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path

import tomli_w
from platformdirs import user_config_dir

from tui.files import read_regular_text, write_atomically
from tui.profiles.schema import key_line

SCHEMA_VERSION = 1


def config_dir() -> Path:
    return Path(user_config_dir("vramdeck"))


@dataclass
class AppSettings:
    models_dirs: list[str] = field(default_factory=list)
    """Folders searched for GGUF files, beside ~/models and the usual caches."""
    refresh_interval: float = 1.0
    theme: str = "vramdeck-dark"
    last_profile: str = ""
    keys: dict[str, str] = field(default_factory=dict)
    """Key overrides: binding id -> comma-separated keys."""


def settings_path() -> Path:
    return config_dir() / "settings.toml"


def load_settings(path: Path | None = None) -> tuple[AppSettings, list[str]]:
    """The settings, and the problems found (each naming file, key and line)."""
    path = path or settings_path()
    defaults = AppSettings()
    try:
        text = read_regular_text(path, 1 << 20)
    except FileNotFoundError:
        return defaults, []
    except (OSError, UnicodeError) as exc:
        return defaults, [f"{path}: cannot be read ({exc}); using the defaults"]
    try:
        data = tomllib.loads(text)
    except RecursionError:
        return defaults, [f"{path}: nested too deeply to read; using the defaults"]
    except tomllib.TOMLDecodeError as exc:
        return defaults, [f"{path}: not valid TOML ({exc}); using the defaults"]
    problems: list[str] = []

    def bad(key: str, why: str) -> None:
        problems.append(f"{path}:{key_line(text, key) or '?'} [{key}]: {why}; using the default")

    out = AppSettings()
    dirs = data.get("models_dirs", [])
    if isinstance(dirs, list) and all(isinstance(d, str) for d in dirs):
        out.models_dirs = dirs
    else:
        bad("models_dirs", "must be a list of folder paths")
    refresh = data.get("refresh_interval", defaults.refresh_interval)
    if isinstance(refresh, (int, float)) and not isinstance(refresh, bool) and 0.1 <= refresh <= 60:
        out.refresh_interval = float(refresh)
    else:
        bad("refresh_interval", f"must be a number of seconds from 0.1 to 60, not {refresh!r}")
    for key in ("theme", "last_profile"):
        value = data.get(key, getattr(defaults, key))
        if isinstance(value, str):
            setattr(out, key, value)
        else:
            bad(key, "must be a string")
    keys = data.get("keys", {})
    if isinstance(keys, dict):
        for binding_id, value in keys.items():
            if isinstance(value, str) and value.strip():
                out.keys[binding_id] = value
            else:
                bad(f"keys.{binding_id}", "must be keys like \"ctrl+s\" or \"a,enter\"")
    else:
        bad("keys", "must be a table of binding id = keys")
    for key in data:
        if key not in ("schema", *asdict(defaults)):
            problems.append(f"{path}:{key_line(text, key) or '?'} [{key}]: unknown setting, ignored")
    return out, problems


def save_settings(settings: AppSettings, path: Path | None = None) -> None:
    data = {"schema": SCHEMA_VERSION, **asdict(settings)}
    write_atomically(path or settings_path(), tomli_w.dumps(data))
