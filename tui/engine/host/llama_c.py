"""`llama_cpp` with only its C bindings, for a process that never makes a high-level `Llama`.

`import llama_cpp` also imports llama-cpp-python's high-level layer (`Llama`, chat formats),
which pulls in numpy, jinja2 and diskcache: about 0.3 s of a dry run's 1.5 s on the GPU machine,
and the dry run uses none of it. `import_bindings()` makes the `llama_cpp` package without running
its __init__, imports the C bindings (`llama_cpp.llama_cpp`) into it, and gives the package their
names, so `import llama_cpp as L; L.llama_backend_init()` works as usual afterwards. Only for a
process of its own (the dry run): `from llama_cpp import Llama` then fails. If the layout of the
package ever changes, the plain import is the fallback.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from types import ModuleType


def import_bindings() -> ModuleType:
    if "llama_cpp" in sys.modules:
        return sys.modules["llama_cpp"]
    try:
        spec = importlib.util.find_spec("llama_cpp")
        package = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]  # not executed
        sys.modules["llama_cpp"] = package
        bindings = importlib.import_module("llama_cpp.llama_cpp")
        package.__dict__.update({k: v for k, v in vars(bindings).items() if not k.startswith("__")})
        package.llama_cpp = bindings  # type: ignore[attr-defined]
        return package
    except Exception:
        for name in [n for n in sys.modules if n == "llama_cpp" or n.startswith("llama_cpp.")]:
            del sys.modules[name]
        import llama_cpp

        return llama_cpp
