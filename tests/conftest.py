"""Shared fixtures: the real demo model, and GGUF files generated for the test session."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import pytest

from tui.models.demo import DEMO_MISSING, find_demo_model
from tui.models.synthetic import LLAMA31_70B, write_random_llama, write_sparse_llama

# The tests never read or write the user's own config, data or cache (profiles, conversations,
# header cache, measured overheads): everything under one throwaway folder, engine processes too.
_HOME = Path(tempfile.mkdtemp(prefix="vramdeck-tests-"))
for _name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
    os.environ[_name] = str(_HOME / _name.lower())


async def until(pilot, condition, timeout: float = 60.0) -> None:
    """Let the app run until `condition()` holds; fail, saying what the app was doing, if it
    does not within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            app = pilot.app
            raise AssertionError(f"timed out waiting for the app: {app.engine_status.phase} "
                                 f"{app.current_settings} {app.engine_status.message}")
        await pilot.pause(0.05)


@pytest.fixture(scope="session")
def demo_model() -> Path:
    path = find_demo_model()
    if path is None:
        pytest.fail(DEMO_MISSING)  # the README's test command installs it: never skip silently
    return path


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> Path:
    return write_random_llama(tmp_path_factory.mktemp("models") / "tiny-llama-F32.gguf")


@pytest.fixture(scope="session")
def quant_ladder(tiny_llama: Path) -> dict[str, Path]:
    """The tiny model quantized by llama.cpp itself to Q8_0, Q4_K_M and Q2_K."""
    import llama_cpp  # the test process may use llama.cpp directly; the UI process never does

    ladder = {}
    for name, ftype in (("Q8_0", 7), ("Q4_K_M", 15), ("Q2_K", 10)):
        out = tiny_llama.with_name(f"tiny-llama-{name}.gguf")
        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype = ftype
        rc = llama_cpp.llama_model_quantize(str(tiny_llama).encode(), str(out).encode(), params)
        assert rc == 0, f"quantizing to {name} failed with {rc}"
        ladder[name] = out
    return ladder


@pytest.fixture(scope="session")
def sparse_70b(tmp_path_factory) -> Path:
    return write_sparse_llama(tmp_path_factory.mktemp("sparse") / "llama-3.1-70b-Q4_K_M.gguf",
                              LLAMA31_70B, "Q4_K_M")


@pytest.fixture(scope="session")
def demo_ladder(demo_model, tmp_path_factory) -> dict[str, Path]:
    """The demo model requantized by llama.cpp to F16 (its Q4_1 weights in 16 bits: the natural
    KL-divergence reference), Q8_0, Q4_K_M and Q2_K, side by side: the same vocabulary, so also
    draft/target pairs."""
    import llama_cpp

    out = {}
    folder = tmp_path_factory.mktemp("ladder")
    for name, ftype in (("F16", 1), ("Q8_0", 7), ("Q4_K_M", 15), ("Q2_K", 10)):
        path = folder / f"SmolLM2-135M-{name}.gguf"
        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype = ftype
        params.allow_requantize = True
        assert llama_cpp.llama_model_quantize(str(demo_model).encode(), str(path).encode(), params) == 0
        out[name] = path
    return out
