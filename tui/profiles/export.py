"""A profile as the command that runs the same set-up outside vramdeck."""

from __future__ import annotations

import shlex

from tui.engine.settings import ALL_LAYERS, GGML_TYPE_IDS
from tui.profiles.schema import Profile

FLASH = {"on": "on", "off": "off", "auto": "auto"}


def llama_args(p: Profile) -> list[str]:
    s = p.load
    args = ["-m", s.model_path, "-ngl", "999" if s.n_gpu_layers == ALL_LAYERS else str(s.n_gpu_layers),
            "-c", str(s.n_ctx), "-b", str(s.n_batch), "-ub", str(s.n_ubatch),
            "-ctk", s.type_k, "-ctv", s.type_v, "-fa", FLASH[s.flash_attn]]
    if s.n_threads:
        args += ["-t", str(s.n_threads)]
    if s.n_threads_batch:
        args += ["-tb", str(s.n_threads_batch)]
    if s.tensor_split:
        args += ["-ts", ",".join(f"{x:g}" for x in s.tensor_split)]
    if s.split_mode != "layer":
        args += ["-sm", s.split_mode]
    if s.main_gpu:
        args += ["-mg", str(s.main_gpu)]
    if not s.offload_kqv:
        args.append("-nkvo")
    if s.use_mlock:
        args.append("--mlock")
    if not s.use_mmap:
        args.append("--no-mmap")
    return args


def export(p: Profile, kind: str) -> str:
    if kind == "llama-server":
        return shlex.join(["llama-server", *llama_args(p), "--temp", f"{p.sampling.temperature:g}",
                           "--top-p", f"{p.sampling.top_p:g}", "--top-k", str(p.sampling.top_k),
                           "--min-p", f"{p.sampling.min_p:g}"])
    if kind == "llama-cli":
        args = ["llama-cli", *llama_args(p), "-cnv", "--temp", f"{p.sampling.temperature:g}"]
        if p.system_prompt:
            args += ["-sys", p.system_prompt]
        return shlex.join(args)
    if kind == "python":
        s = p.load
        ngl = -1 if s.n_gpu_layers == ALL_LAYERS else s.n_gpu_layers
        return (f"from llama_cpp import Llama\n\nllm = Llama(\n    model_path={s.model_path!r},\n"
                f"    n_gpu_layers={ngl},\n    n_ctx={s.n_ctx},\n    n_batch={s.n_batch},\n"
                f"    n_ubatch={s.n_ubatch},\n    flash_attn={s.flash_attn == 'on'},\n"
                f"    type_k={GGML_TYPE_IDS[s.type_k]},  # {s.type_k}\n"
                f"    type_v={GGML_TYPE_IDS[s.type_v]},  # {s.type_v}\n"
                f"    offload_kqv={s.offload_kqv},\n    use_mmap={s.use_mmap},\n"
                f"    use_mlock={s.use_mlock},\n)\n")
    raise ValueError(f"unknown export kind {kind!r} (llama-server, llama-cli or python)")
