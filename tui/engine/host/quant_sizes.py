"""Ask llama.cpp what quantizing a GGUF to each type would make, without writing a byte.

    python -m tui.engine.host.quant_sizes SOURCE.gguf '[15, 10, 19]' [THREADS]

prints one JSON object: for each llama.cpp file type id, the target type llama.cpp picks for every
tensor (its own rules: which tensors stay F32, which get a higher type, the fallbacks for rows
that do not divide into blocks), the total it reports, and whether it warned that the real
quantization needs an importance matrix. `llama_model_quantize` with `dry_run` and
`allow_requantize` reads only the header, so a sparse 70B-shaped file answers in ~0.1 s a type.
It runs in its own process: it needs llama_cpp, and a bad file must not take the caller down.
"""
# pyright: reportArgumentType=false, reportAttributeAccessIssue=false, reportOptionalMemberAccess=false
# (C bindings through ctypes: handles travel as plain ints and the stubs do not say so)

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import threading

# dry run: "[  12/ 723] blk.0.attn_k.weight - [ 8192, 1024, 1, 1], type = q4_K, size = 4.50 MiB -> 2.25 MiB (q2_K)"
# real:    "[  12/ 723] blk.0.attn_k.weight - [ 8192, 1024, 1, 1], type = f32, converting to q2_K .. size = ..."
_TENSOR = re.compile(r"^\[\s*\d+/\s*\d+\]\s+(\S+)\s+-\s+\[[^\]]*\],\s+type =\s+(\w+),\s+"
                     r"(?:converting to (\w+) \.\.\s+)?size =\s+[0-9.]+ MiB"
                     r"(?:\s+->\s+[0-9.]+ MiB \((\w+)\))?")
_TOTAL = re.compile(r"quant size\s*=\s*([0-9.]+) MiB")


def parse(log: str) -> dict:
    """The target type name of each tensor, the reported total, and the imatrix warning."""
    types: dict[str, str] = {}
    total = None
    for line in log.splitlines():
        if m := _TENSOR.match(line.strip()):
            types[m.group(1)] = m.group(4) or m.group(3) or m.group(2)
        elif m := _TOTAL.search(line):
            total = float(m.group(1))
    return {"types": types, "total_mib": total, "needs_imatrix": "require an imatrix" in log}


_logs: dict[int, list[bytes]] = {}  # llama.cpp's log, per thread that asked for it


def _on_log(_level: int, text: bytes, _user) -> None:
    chunks = _logs.get(threading.get_ident())
    if chunks is not None:
        chunks.append(text or b"")


def _sizes(L, source: str, ftypes: list[int], target: bytes, out: dict) -> None:
    chunks = _logs.setdefault(threading.get_ident(), [])
    for ftype in ftypes:
        params = L.llama_model_quantize_default_params()
        params.ftype = int(ftype)
        params.allow_requantize = True
        params.dry_run = True
        params.nthread = 1
        chunks.clear()
        rc = L.llama_model_quantize(source.encode(), target, params)
        log = b"".join(chunks).decode("utf-8", errors="replace")
        result = parse(log)
        result["ok"] = rc == 0
        if rc != 0:
            result["error"] = next((ln.strip() for ln in reversed(log.splitlines()) if ln.strip()),
                                   f"llama_model_quantize returned {rc}")
        out[str(ftype)] = result


def main() -> None:
    from tui.engine.host.llama_c import import_bindings

    L = import_bindings()
    source, ftypes = sys.argv[1], json.loads(sys.argv[2])
    threads = max(1, min(int(sys.argv[3]) if len(sys.argv) > 3 else 2, len(ftypes)))
    callback = L.llama_log_callback(_on_log)
    L.llama_log_set(callback, None)
    L.llama_backend_init()
    out: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="vramdeck-quant-") as scratch:
        target = os.path.join(scratch, "never-written.gguf").encode()
        # the types shared among threads (each dry run mostly re-reads the file's metadata); each
        # thread reads its own lines of llama.cpp's log, which is one stream for the process
        workers = [threading.Thread(target=_sizes, args=(L, source, ftypes[i::threads], target, out))
                   for i in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    sys.stdout.write(json.dumps(out))
    sys.stdout.flush()
    os._exit(0)  # skip llama.cpp's teardown


if __name__ == "__main__":
    main()
