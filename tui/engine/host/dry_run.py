"""Ask llama.cpp what a load would allocate, without allocating it (a no-alloc dry run).

    python -m tui.engine.host.dry_run '[{"model_path": "...", "n_gpu_layers": 40, ...}, ...]'

prints a JSON list, one object per settings object: the buffer sizes llama.cpp logged, per kind
(model, kv, compute, ...) and device (CUDA0, CPU, ...), in bytes. With `no_alloc` llama.cpp reports
model buffers as 0, so the caller takes weight bytes from the GGUF tensor table; KV and compute
buffers are exact. It runs in its own process (it needs llama_cpp, and a bad file must not take
the caller down).

Most of its time on a GPU build is CUDA starting up, paid once per process: the GPU contexts are
created on a thread while llama_cpp is imported (`cuda_warmup`), and the settings are then tried
on one thread each, since each no-alloc load is mostly waiting on the driver. Each thread reads
its own log lines (llama.cpp's log is one stream for the process). Each result carries its start,
model-loaded and end times in seconds since the process began, for `benchmarks/fit_speed.py`.
VRAMDECK_DRY_RUN=serial runs them one after the other, and VRAMDECK_DRY_RUN=cold runs them as
this did before: one after the other, no warm-up, the whole llama_cpp package (the benchmark's
comparison).
"""
# pyright: reportArgumentType=false, reportAttributeAccessIssue=false, reportOptionalMemberAccess=false
# (C bindings through ctypes: handles travel as plain ints and the stubs do not say so)

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time

_STARTED = time.perf_counter()

MIB = 1024**2
_BUFFER = re.compile(r"(\S+) (model|KV|compute|RS|output) buffer size =\s*([0-9.]+) MiB")
_OFFLOADED = re.compile(r"offloaded (\d+)/(\d+) layers to GPU")
_KV_SIZE = re.compile(r"llama_kv_cache: size =\s*([0-9.]+) MiB \(\s*(\d+) cells,\s*(\d+) layers")
_KV_LAYER = re.compile(r"llama_kv_cache: layer\s+(\d+): dev = (\S+)")


def kv_per_device(lines: list[str]) -> dict[str, int]:
    """KV bytes per device: the logged total, shared by the layers each device holds.

    Under no_alloc the "KV buffer size" lines say 0; the size line and the per-layer
    device lines are still printed, and give the same figure a real load allocates."""
    total = n_layers = None
    devices: dict[int, str] = {}
    for line in lines:
        if m := _KV_SIZE.search(line):
            total, n_layers = float(m.group(1)) * MIB, int(m.group(3))
        elif m := _KV_LAYER.search(line):
            devices[int(m.group(1))] = m.group(2)
    if not total or not n_layers:
        return {}
    out: dict[str, int] = {}
    for dev in devices.values():
        out[dev] = out.get(dev, 0) + int(total / n_layers)
    return out


def parse_buffers(lines: list[str]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for line in lines:
        m = _BUFFER.search(line)
        if m:
            kind, device = m.group(2).lower(), m.group(1)
            out.setdefault(kind, {})
            out[kind][device] = out[kind].get(device, 0) + int(float(m.group(3)) * MIB)
    return out


_logs: dict[int, list[str]] = {}  # llama.cpp's log lines, per thread that asked for them
_partials: dict[int, str] = {}
_stray: list[str] = []  # lines from threads that did not ask (llama.cpp's own workers)


def _on_log(_level: int, text: bytes, _user) -> None:
    tid = threading.get_ident()
    buf = _partials.get(tid, "") + (text or b"").decode("utf-8", "replace")
    while "\n" in buf:
        line, buf = buf.split("\n", 1)
        _logs.get(tid, _stray).append(line)
    _partials[tid] = buf


def _since_start() -> float:
    return round(time.perf_counter() - _STARTED, 4)


def dry_run(settings: dict) -> dict:
    import llama_cpp as L

    from tui.engine.host.runtime import context_params, model_params
    from tui.engine.settings import LoadSettings

    lines = _logs.setdefault(threading.get_ident(), [])
    lines.clear()
    s = LoadSettings.from_dict(settings).validated()
    mp, keep = model_params(s)  # the very parameters a real load uses, then:
    mp.load_mode = L.LLAMA_LOAD_MODE_NONE  # read no tensor data
    mp.no_alloc = True  # and allocate nothing
    model = L.llama_model_load_from_file(s.model_path.encode(), mp)
    if not model:
        return {"ok": False, "error": "llama.cpp could not read the model", "log_tail": lines[-8:]}
    loaded = _since_start()
    ctx = L.llama_init_from_model(model, context_params(s))
    buffers = parse_buffers(lines)
    buffers["kv"] = kv_per_device(lines) or buffers.get("kv", {})
    result: dict = {"ok": bool(ctx), "buffers": buffers,
                    "gpu_offload": bool(L.llama_supports_gpu_offload()), "model_loaded_at": loaded}
    for line in reversed(lines):
        m = _OFFLOADED.search(line)
        if m:
            result["layers_offloaded"], result["layers_total"] = int(m.group(1)), int(m.group(2))
            break
    if ctx:
        result["n_ctx"] = int(L.llama_n_ctx(ctx))
        flash = [ln for ln in lines if "flash_attn" in ln and "=" in ln]
        result["flash_attn_line"] = flash[-1].strip() if flash else ""
        L.llama_free(ctx)
    else:
        result["log_tail"] = lines[-8:]
    L.llama_model_free(model)
    del keep
    return result


def _run_one(settings: dict) -> dict:
    started = _since_start()
    try:
        result = dry_run(settings)
    except Exception as exc:  # bad settings: say so for this one, carry on
        result = {"ok": False, "error": str(exc),
                  "log_tail": _logs.get(threading.get_ident(), [])[-8:]}
    result["timing"] = {"start": started, "model_loaded": result.pop("model_loaded_at", None),
                        "end": _since_start()}
    return result


def main() -> None:
    mode = os.environ.get("VRAMDECK_DRY_RUN", "parallel")
    if mode == "cold":  # as before: the whole package, CUDA started by llama.cpp
        import llama_cpp as L
    else:
        from tui.engine.host import cuda_warmup
        from tui.engine.host.llama_c import import_bindings

        cuda_warmup.start()  # the GPU contexts, on a thread, while the bindings load
        L = import_bindings()  # the C bindings alone: no numpy, no jinja2

    imported = _since_start()
    log_cb = L.llama_log_callback(_on_log)
    L.llama_log_set(log_cb, None)
    L.llama_backend_init()
    requests = json.loads(sys.argv[1])
    requests = requests if isinstance(requests, list) else [requests]
    if mode == "parallel" and len(requests) > 1:
        results: list[dict] = [{} for _ in requests]

        def run(i: int) -> None:
            results[i] = _run_one(requests[i])

        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(requests))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    else:
        results = [_run_one(r) for r in requests]
    for r in results:
        r["timing"]["imported"] = imported
    print(json.dumps(results), flush=True)


if __name__ == "__main__":
    main()
