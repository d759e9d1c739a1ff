"""`vramdeck inspect MODEL`: what the GGUF header says, without touching tensor data."""

from __future__ import annotations

import argparse
import json
import sys

from tui.models.gguf_info import GgufError
from tui.models.model_info import load_model_info, split_parts
from tui.units import format_bytes, format_params


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="GGUF file")
    p.add_argument("--json", action="store_true", help="print the answer as JSON, for scripts")


def main(args: argparse.Namespace) -> int:
    try:
        info = load_model_info(args.model)  # refuses truncated files, naming what is missing
    except GgufError as exc:
        print(f"vramdeck inspect: {exc}", file=sys.stderr)
        return 1
    d = info.to_dict()
    d["parts"] = [str(p) for p in split_parts(args.model)]
    if args.json:
        print(json.dumps(d, indent=2))
        return 0
    blocks = info.block_bytes
    print(f"{info.name or info.path}  ({info.architecture}, {info.size_label or '?'})")
    parts = len(d["parts"])
    print(f"  file         {info.path}  {format_bytes(info.file_size)}"
          + (f"  ({parts} parts)" if parts > 1 else ""))
    print(f"  params       {format_params(info.n_params)}   quant {info.quant}   "
          f"{info.bits_per_weight:.2f} bits/weight")
    print(f"  layers       {info.n_layer}   embd {info.n_embd}   heads {info.n_head} "
          f"(KV {info.n_head_kv})   head dim K {info.head_dim_k} V {info.head_dim_v}")
    print(f"  context      trained {info.n_ctx_train:,}   vocab {info.n_vocab:,}   "
          f"experts {info.n_expert or '-'}   chat template {'yes' if info.has_chat_template else 'no'}")
    if blocks:
        print(f"  per block    {format_bytes(min(blocks))} .. {format_bytes(max(blocks))}   "
              f"all blocks {format_bytes(sum(blocks))}")
    print(f"  input        {format_bytes(info.input_bytes)} (stays on the CPU)   "
          f"output {format_bytes(info.output_bytes)} (offloaded first)")
    return 0
