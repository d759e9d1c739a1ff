"""gguf's type tables (quant block sizes, tensor type names, file type names), without numpy.

`import gguf` (even `from gguf.constants import ...`) runs the package's __init__, which imports
its reader and writer, and those import numpy: about 0.35 s of `vramdeck fit`'s time on the GPU
machine, for three tables. gguf/constants.py itself imports only the standard library, so it is
loaded here on its own, under a private name. Its enums are IntEnums, so they index and compare
like the ones from `gguf` proper. Should the file ever move, the plain import is the fallback.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

_NAME = "tui.models._gguf_constants"


def _load() -> ModuleType:
    if _NAME in sys.modules:
        return sys.modules[_NAME]
    try:
        package = importlib.util.find_spec("gguf")  # finds the package without running it
        path = Path(package.origin).parent / "constants.py"  # type: ignore[union-attr, arg-type]
        spec = importlib.util.spec_from_file_location(_NAME, path)
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        sys.modules[_NAME] = module
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        return module
    except Exception:
        sys.modules.pop(_NAME, None)
        import gguf.constants

        return gguf.constants


_constants = _load()
GGML_QUANT_SIZES = _constants.GGML_QUANT_SIZES
GGMLQuantizationType = _constants.GGMLQuantizationType
LlamaFileType = _constants.LlamaFileType
