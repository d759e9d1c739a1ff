"""Turn what llama.cpp says when a load fails into a FailureKind and a sentence a user can act on."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from tui.engine.protocol import FailureKind, LoadFailed
from tui.engine.settings import compact

if TYPE_CHECKING:
    from tui.engine.load_service import LoadOutcome

# Checked in order; the first pattern found in the log decides.
_PATTERNS: list[tuple[FailureKind, re.Pattern[str]]] = [
    (FailureKind.UNSUPPORTED_ARCH, re.compile(r"unknown model architecture: '([^']*)'")),
    (FailureKind.OOM_DEVICE, re.compile(
        r"(cudaMalloc failed|CUDA error: out of memory|out of memory.*(CUDA|GPU|device)|"
        r"ggml_backend_cuda_buffer_type_alloc_buffer: allocating .* failed|"
        r"failed to allocate (CUDA|Vulkan|Metal|ROCm)\w* buffer|ErrorOutOfDeviceMemory)",
        re.IGNORECASE)),
    (FailureKind.OOM_HOST, re.compile(
        r"(failed to allocate (CPU|host)\w* buffer|std::bad_alloc|"
        r"unable to allocate .* (CPU|host)|failed to mmap|mlock failed|Cannot allocate memory)",
        re.IGNORECASE)),
    (FailureKind.CORRUPT, re.compile(
        r"(tensor .* data is not within the file bounds|data is not within the file bounds|"
        r"failed to read (tensor|magic|header|key|value)|invalid magic|"
        r"wrong number of tensors|tensor '.*' has (wrong|invalid) shape|"
        r"missing tensor|gguf_init_from_file_impl: .*(failed|invalid)|file is truncated|"
        r"unexpectedly reached end of file)",
        re.IGNORECASE)),
]

_ADVICE = {
    FailureKind.MISSING: "Check the path, or pick another file in the Tuner.",
    FailureKind.NOT_GGUF: "vramdeck loads GGUF files (*.gguf). Convert the model with llama.cpp's "
                          "convert_hf_to_gguf.py or download a GGUF build of it.",
    FailureKind.CORRUPT: "The file is damaged or incomplete; download it again.",
    FailureKind.UNSUPPORTED_ARCH: "This llama.cpp build does not know this architecture; "
                                  "upgrade llama-cpp-python.",
    FailureKind.OOM_DEVICE: "Try fewer GPU layers, a quantized KV cache (q8_0 or q4_0), or a "
                            "shorter context.",
    FailureKind.OOM_HOST: "Close other programs, shorten the context, or use a smaller quant.",
    FailureKind.CRASHED: "Try fewer GPU layers or a shorter context; the Log pane has the details.",
    FailureKind.STALLED: "Restart the engine (it is ended and the model loaded again).",
    FailureKind.OTHER: "The Log pane has llama.cpp's own words.",
}


def advice(kind: FailureKind) -> str:
    return _ADVICE.get(kind, "")


def classify_load_log(lines: Sequence[str]) -> tuple[FailureKind, str]:
    """The failure kind a failed load's log points at, and the log line that says so."""
    text_lines = list(lines)
    for kind, pattern in _PATTERNS:
        for line in reversed(text_lines):
            m = pattern.search(line)
            if m:
                if kind is FailureKind.UNSUPPORTED_ARCH:
                    return kind, f"Unsupported model architecture '{m.group(1)}'."
                return kind, line.strip()
    last = next((ln.strip() for ln in reversed(text_lines) if ln.strip()), "")
    return FailureKind.OTHER, last


# What to press in the Tuner, by failure: the same advice as keys.
_TUNER_TIPS = {
    FailureKind.OOM_DEVICE: "f fits layers to free VRAM · k quantized KV · [ halves context",
    FailureKind.OOM_HOST: "[ halves context · m a smaller quant · close other programs",
    FailureKind.CRASHED: "- fewer layers · [ halves context · F5 llama.cpp's log",
}


def failure_kind(value: str) -> FailureKind:
    try:
        return FailureKind(value)
    except ValueError:
        return FailureKind.OTHER


def load_report(outcome: LoadOutcome, n_layer: int | None) -> str:
    """What the Tuner says after a failed apply: what failed with which settings, where vramdeck
    went back to (or that going back failed too), and which keys to try."""
    failed = outcome.failure
    if failed is None:
        return ""
    kind = failure_kind(failed.kind)
    tried = compact(outcome.settings, n_layer)
    lines = [f"✗ {headline(kind) if kind in _TUNER_TIPS else failure_text(failed)} [{tried}]"]
    tip = f"Try: {_TUNER_TIPS[kind]}" if kind in _TUNER_TIPS else ""
    back = outcome.rolled_back_to
    if back is not None and outcome.rollback_failure is None:
        lines.append(f"Back on the last that worked [{compact(back, n_layer)}]; chat kept. {tip}".rstrip())
    elif back is not None:
        again = outcome.rollback_failure
        lines.append(f"Going back to the last that worked [{compact(back, n_layer)}] failed too: "
                     f"{headline(failure_kind(again.kind)) if again else ''} No model is loaded. "
                     f"{tip}".rstrip())
    elif tip:
        lines.append(tip)
    return "\n".join(lines)


def load_notice(outcome: LoadOutcome) -> str:
    """The notification after a failed apply (the Tuner's line says the rest)."""
    failed = outcome.failure
    if failed is None:
        return ""
    if outcome.back_on_last_working:
        return failure_text(failed) + "\nGoing back to the last settings that worked."
    if outcome.rolled_back_to is not None:
        return failure_text(failed) + "\nThe last settings that worked did not load again either."
    return failure_text(failed)


def headline(kind: FailureKind) -> str:
    return {
        FailureKind.MISSING: "The model file could not be found.",
        FailureKind.NOT_GGUF: "The file is not a GGUF model.",
        FailureKind.CORRUPT: "The model file is damaged or truncated.",
        FailureKind.UNSUPPORTED_ARCH: "llama.cpp does not support this model's architecture.",
        FailureKind.OOM_DEVICE: "Out of GPU memory while loading.",
        FailureKind.OOM_HOST: "Out of host memory while loading.",
        FailureKind.BAD_SETTINGS: "The load settings are out of range.",
        FailureKind.CRASHED: "The engine crashed while loading.",
        FailureKind.STALLED: "The engine stopped answering while loading.",
        FailureKind.OTHER: "llama.cpp could not load the model.",
    }[kind]


def failure_text(failed: LoadFailed) -> str:
    """What a user reads of a failed load: what happened, the detail, what to try."""
    return describe_failure(failure_kind(failed.kind), failed.detail)


def describe_failure(kind: FailureKind, detail: str) -> str:
    """One paragraph for the user: what happened, then what to try."""
    first = headline(kind)
    parts = [first]
    if detail and detail not in first:
        # llama.cpp's log lines end without a full stop; the advice is a sentence of its own
        parts.append(detail if detail.endswith((".", "!", "?", ":")) else f"{detail}.")
    tip = advice(kind)
    if tip:
        parts.append(tip)
    return " ".join(parts)
