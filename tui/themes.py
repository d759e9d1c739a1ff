"""Themes are TOML files: the ones shipped in `themes/`, then the user's own, which win by name."""

from __future__ import annotations

import tomllib
from pathlib import Path

from textual.theme import Theme

_FIELDS = ("primary", "secondary", "accent", "foreground", "background", "surface", "panel",
           "boost", "warning", "error", "success", "dark", "luminosity_spread", "text_alpha", "ansi")


def shipped_themes_dir() -> Path:
    here = Path(__file__).resolve().parent
    installed = here / "_themes"  # where the wheel puts them
    return installed if installed.is_dir() else here.parent / "themes"


def theme_from_toml(path: Path) -> Theme:
    """Raise ValueError naming the file when it is not a usable theme."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{path}: {exc}") from None
    if "name" not in data or "primary" not in data:
        raise ValueError(f"{path}: a theme needs at least 'name' and 'primary'")
    kwargs = {k: data[k] for k in _FIELDS if k in data}
    variables = dict(data.get("variables", {}))
    if kwargs.get("ansi"):  # Textual's CSS for ANSI themes refers to these two
        variables.setdefault("ansi-background", "ansi_black")
        variables.setdefault("ansi-foreground", "ansi_white")
    try:
        theme = Theme(name=str(data["name"]), variables=variables, **kwargs)
        theme.to_color_system()  # a colour Textual cannot read fails here, naming the file
    except Exception as exc:  # ColorParseError and friends
        raise ValueError(f"{path}: {exc}") from None
    return theme


def load_themes(user_dir: Path | None = None, problems: list[str] | None = None) -> list[Theme]:
    themes: dict[str, Theme] = {}
    for folder in (shipped_themes_dir(), user_dir):
        if folder is None or not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.toml")):
            try:
                theme = theme_from_toml(path)
            except ValueError as exc:
                if problems is not None:
                    problems.append(str(exc))
                continue
            themes[theme.name] = theme
    return list(themes.values())


def theme_order(available: dict[str, Theme]) -> list[str]:
    """The themes F9 cycles through and settings offer: vramdeck's, then the user's own (not
    Textual's built-in ones)."""
    from textual.theme import BUILTIN_THEMES

    return sorted(n for n in available if n.startswith("vramdeck")) + \
        sorted(n for n in available if not n.startswith("vramdeck") and n not in BUILTIN_THEMES)
