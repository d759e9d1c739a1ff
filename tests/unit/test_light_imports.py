"""`vramdeck fit` and its dry-run child import only what they use (each import is start-up time:
numpy alone was ~0.35 s of fit's 2.8 s on the GPU machine), and the CUDA warm-up is silent."""

from __future__ import annotations

import subprocess
import sys

import gguf.constants

from tui.engine.client import engine_env
from tui.models import gguf_tables


def python(code: str, env: dict[str, str] | None = None) -> str:
    out = subprocess.run([sys.executable, "-c", code], env=env or engine_env(), capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_fit_and_the_gguf_reader_import_no_numpy():
    # everything `vramdeck fit` imports before its dry-run child starts: every command's parser
    assert python("import sys; import tui.__main__ as m; m.build_parser(); import tui.models.model_info; "
                  "print('numpy' in sys.modules, 'gguf' in sys.modules)") == "False False"


def test_the_app_starts_without_numpy():
    """The quality meter (numpy) is imported when Q is pressed, not when the app starts: the
    Tuner's module-level import of it had put ~80 ms of numpy into every start-up."""
    assert python("import sys; import tui.app; print('numpy' in sys.modules)") == "False"


def test_the_gguf_tables_are_gguf_s_own():
    assert gguf_tables.GGML_QUANT_SIZES == gguf.constants.GGML_QUANT_SIZES
    assert ({t.name: int(t) for t in gguf_tables.GGMLQuantizationType}
            == {t.name: int(t) for t in gguf.constants.GGMLQuantizationType})
    assert ({t.name: int(t) for t in gguf_tables.LlamaFileType}
            == {t.name: int(t) for t in gguf.constants.LlamaFileType})


def test_the_dry_run_child_gets_llama_cpp_s_c_bindings_without_numpy_or_jinja2():
    # runtime.py (the load parameters) is what the child imports next: it must not pull numpy in
    out = python("import sys; from tui.engine.host.llama_c import import_bindings; L = import_bindings(); "
                 "import llama_cpp, tui.engine.host.runtime; L.llama_backend_init(); "
                 "print(llama_cpp is L, hasattr(L, 'llama_model_load_from_file'), hasattr(L.llama_cpp, '_lib'), "
                 "'numpy' in sys.modules, 'jinja2' in sys.modules, hasattr(L, 'Llama'))")
    assert out.split() == ["True", "True", "True", "False", "False", "False"]


def test_the_bindings_are_the_whole_package_where_it_is_already_imported():
    assert python("import llama_cpp; from tui.engine.host.llama_c import import_bindings; "
                  "print(hasattr(import_bindings(), 'Llama'))") == "True"


def test_cuda_warmup_only_for_a_cuda_build_and_silent_without_a_driver(tmp_path):
    package = tmp_path / "llama_cpp"
    (package / "lib").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    env = engine_env()
    env["PYTHONPATH"] = f"{tmp_path}:{env['PYTHONPATH']}"
    check = ("from tui.engine.host import cuda_warmup as w; t = w.start(); "
             "t and t.join(20); print(w.llama_has_cuda(), t is not None, bool(t and t.is_alive()))")
    assert python(check, env) == "False False False"  # a CPU build: nothing started
    (package / "lib" / "libggml-cuda.so").write_bytes(b"")
    # a CUDA build: the thread runs and ends, whether or not this machine has a driver
    assert python(check, env) == "True True False"
