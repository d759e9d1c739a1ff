"""The style guide, enforced: lint (with import order), the import contracts and the type checker
run with the test suite, so `pytest` (the README's test command, and CI) fails on a breach."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(*command: str) -> subprocess.CompletedProcess:
    tool = shutil.which(command[0], path=str(Path(sys.executable).parent)) or shutil.which(command[0])
    if tool is None:
        pytest.fail(f"{command[0]} is not installed: pip install -e '.[test]' brings it")
    return subprocess.run([tool, *command[1:]], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_finds_nothing():
    out = _run("ruff", "check", "tui", "tests", "benchmarks", "--output-format", "concise")
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_import_contracts_hold():
    """Headless packages never import textual; only the engine process imports llama_cpp; the UI
    never reaches into the engine process or NVML (pyproject.toml, [tool.importlinter])."""
    out = _run("lint-imports")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-1000:]


def test_pyright_basic_finds_no_type_error():
    out = _run("pyright")
    assert out.returncode == 0, out.stdout[-5000:] + out.stderr[-1000:]
