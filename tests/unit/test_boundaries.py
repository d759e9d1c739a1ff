"""The architecture, enforced: the UI never imports llama_cpp; headless packages never import textual."""

import subprocess
import sys

import pytest

HEADLESS = ["tui.engine.client", "tui.engine.settings", "tui.engine.protocol", "tui.engine.status",
            "tui.models.gguf_info", "tui.models.demo",
            "tui.monitor.sampler", "tui.monitor.fake", "tui.chat.conversation", "tui.units",
            "tui.quality.measure", "tui.commands.quality"]


def imported_after(module: str) -> set[str]:
    code = f"import sys, {module}; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_the_ui_never_imports_llama_cpp_or_pynvml_widgets():
    mods = imported_after("tui.app")
    assert "llama_cpp" not in mods
    assert "textual" in mods


@pytest.mark.parametrize("module", HEADLESS)
def test_headless_modules_do_not_import_textual(module):
    mods = imported_after(module)
    assert not any(m == "textual" or m.startswith("textual.") for m in mods), module
    assert "llama_cpp" not in mods


def test_no_widget_or_screen_talks_to_nvml_or_llama_directly():
    """Imports of either, however spelt (import-linter checks the import graph as well)."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "tui"
    importing = re.compile(r"^\s*(import|from)\s+(pynvml|llama_cpp)\b|import_module\(['\"](pynvml|llama_cpp)",
                           re.MULTILINE)
    for folder in ("widgets", "screens"):
        for path in (root / folder).glob("*.py"):
            assert not importing.search(path.read_text()), path
