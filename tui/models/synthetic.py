"""Write Llama-shaped GGUF files: tiny random ones that really generate, and sparse full-size ones.

A sparse file has a real tensor table (a Llama-3.1-70B's, say) whose data is a hole in the file:
41.9 GiB of model in a few MB of disk. llama.cpp loads it (all weights zero), so it shows real
memory use and real speed without the real weights. Used by the tests, the benchmarks and `docs/`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType as Q
from gguf import GGUFWriter
from gguf.constants import GGML_QUANT_SIZES

CHATML_TEMPLATE = (
    "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")


@dataclass(frozen=True)
class LlamaShape:
    name: str
    n_layer: int
    n_embd: int
    n_ff: int
    n_head: int
    n_head_kv: int
    n_vocab: int
    n_ctx_train: int = 8192
    rope_base: float = 500000.0
    n_expert: int = 0
    """Experts per block (0: a dense model); a MoE block has ffn_*_exps instead of ffn_*."""
    n_expert_used: int = 0

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head


TINY_MOE = LlamaShape("tiny-moe", n_layer=4, n_embd=256, n_ff=256, n_head=4, n_head_kv=2,
                      n_vocab=384, n_ctx_train=2048, rope_base=10000.0, n_expert=4, n_expert_used=2)
TINY = LlamaShape("tiny-llama", n_layer=2, n_embd=256, n_ff=512, n_head=4, n_head_kv=2,
                  n_vocab=384, n_ctx_train=2048, rope_base=10000.0)
LLAMA3_8B = LlamaShape("Llama-3-8B-shaped", n_layer=32, n_embd=4096, n_ff=14336, n_head=32,
                       n_head_kv=8, n_vocab=128256, n_ctx_train=131072)
LLAMA31_70B = LlamaShape("Llama-3.1-70B-shaped", n_layer=80, n_embd=8192, n_ff=28672, n_head=64,
                         n_head_kv=8, n_vocab=128256, n_ctx_train=131072)

# llama.cpp file-type ids (general.file_type)
FILE_TYPES = {"F32": 0, "F16": 1, "Q8_0": 7, "Q4_K_M": 15, "Q2_K": 10}


def _vocab(n_vocab: int) -> tuple[list[str], list[float], list[int]]:
    """An SPM vocabulary: a plain word, <s> </s>, the ChatML markers, <unk>, 256 byte tokens, words.

    Token 0 is a plain word on purpose: a sparse model's weights are all zero, so greedy decoding
    picks token 0 every time, and it should print text (" the the the") that benchmarks can time."""
    tokens = ["\u2581the", "<s>", "</s>", "<|im_start|>", "<|im_end|>", "<unk>"]
    types = [1, 3, 3, 3, 3, 2]  # NORMAL, CONTROL..., UNKNOWN
    tokens += [f"<0x{b:02X}>" for b in range(256)]  # ids 6..261
    types += [6] * 256  # BYTE
    letters = "abcdefghijklmnopqrstuvwxyz"
    i = 0
    while len(tokens) < n_vocab:
        word = "\u2581" + letters[i % 26] + (letters[(i // 26) % 26] if i >= 26 else "")
        if i >= 26 * 27:
            word += str(i)
        tokens.append(word)
        types.append(1)  # NORMAL
        i += 1
    scores = [0.0] * 6 + [-1000.0] * 256 + [-float(j) for j in range(len(tokens) - 262)]
    return tokens[:n_vocab], scores[:n_vocab], types[:n_vocab]


def _metadata(w: GGUFWriter, shape: LlamaShape, file_type: int, chat_template: str = CHATML_TEMPLATE) -> None:
    w.add_name(shape.name)
    w.add_block_count(shape.n_layer)
    w.add_context_length(shape.n_ctx_train)
    w.add_embedding_length(shape.n_embd)
    w.add_feed_forward_length(shape.n_ff)
    w.add_head_count(shape.n_head)
    w.add_head_count_kv(shape.n_head_kv)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(shape.rope_base)
    w.add_rope_dimension_count(shape.head_dim)
    w.add_file_type(file_type)
    if shape.n_expert:
        w.add_expert_count(shape.n_expert)
        w.add_expert_used_count(shape.n_expert_used)
    w.add_vocab_size(shape.n_vocab)
    tokens, scores, types = _vocab(shape.n_vocab)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_unk_token_id(5)
    w.add_bos_token_id(1)
    w.add_eos_token_id(4)  # <|im_end|> ends a ChatML turn
    w.add_add_bos_token(True)
    w.add_chat_template(chat_template)


def _tensor_shapes(s: LlamaShape) -> list[tuple[str, tuple[int, ...]]]:
    """Tensor names with numpy (row-major, [out, in]) shapes, in llama.cpp's order."""
    kv = s.n_head_kv * s.head_dim
    out = [("token_embd.weight", (s.n_vocab, s.n_embd))]
    for i in range(s.n_layer):
        b = f"blk.{i}."
        out += [(b + "attn_norm.weight", (s.n_embd,)),
                (b + "attn_q.weight", (s.n_embd, s.n_embd)),
                (b + "attn_k.weight", (kv, s.n_embd)),
                (b + "attn_v.weight", (kv, s.n_embd)),
                (b + "attn_output.weight", (s.n_embd, s.n_embd)),
                (b + "ffn_norm.weight", (s.n_embd,))]
        if s.n_expert:
            out += [(b + "ffn_gate_inp.weight", (s.n_expert, s.n_embd)),
                    (b + "ffn_gate_exps.weight", (s.n_expert, s.n_ff, s.n_embd)),
                    (b + "ffn_up_exps.weight", (s.n_expert, s.n_ff, s.n_embd)),
                    (b + "ffn_down_exps.weight", (s.n_expert, s.n_embd, s.n_ff))]
        else:
            out += [(b + "ffn_gate.weight", (s.n_ff, s.n_embd)),
                    (b + "ffn_up.weight", (s.n_ff, s.n_embd)),
                    (b + "ffn_down.weight", (s.n_embd, s.n_ff))]
    out += [("output_norm.weight", (s.n_embd,)), ("output.weight", (s.n_vocab, s.n_embd))]
    return out


def write_random_llama(path: str | Path, shape: LlamaShape = TINY, seed: int = 0,
                       chat_template: str = CHATML_TEMPLATE) -> Path:
    """A small F32 Llama with random weights: loads, tokenizes, generates (nonsense), quantizes.
    `chat_template` is written as the file's tokenizer.chat_template (a hostile one, for tests)."""
    rng = np.random.default_rng(seed)
    path = Path(path)
    w = GGUFWriter(str(path), "llama")
    _metadata(w, shape, FILE_TYPES["F32"], chat_template)
    for name, dims in _tensor_shapes(shape):
        if len(dims) == 1:
            data = np.ones(dims, dtype=np.float32)
        else:
            data = (rng.standard_normal(dims) * 0.02).astype(np.float32)
        w.add_tensor(name, data)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def q4_k_m_type(name: str, layer: int | None, n_layer: int) -> Q:
    """The tensor types llama.cpp's Q4_K_M recipe picks (Q6_K where it spends more bits)."""
    if name.endswith("norm.weight"):
        return Q.F32
    if name == "output.weight":
        return Q.Q6_K
    if name.endswith(("attn_v.weight", "ffn_down.weight")) and layer is not None:
        more_bits = layer < n_layer // 8 or layer >= 7 * n_layer // 8 or (layer - n_layer // 8) % 3 == 2
        return Q.Q6_K if more_bits else Q.Q4_K
    return Q.Q4_K


def _pad(n: int, align: int = 32) -> int:
    return -(-n // align) * align


def write_sparse_llama(path: str | Path, shape: LlamaShape, quant: str = "Q4_K_M",
                       tensor_type: str = "") -> Path:
    """A full-size tensor table with no data written: the file is one big hole. `tensor_type`
    (a ggml type name such as "IQ2_XXS"): every matrix in that one type instead of `quant`'s
    recipe (the speed calibration's probes)."""
    path = Path(path)
    w = GGUFWriter(str(path), "llama")
    _metadata(w, shape, FILE_TYPES.get(quant, 0) if not tensor_type else 0)
    data_bytes = 0
    for name, dims in _tensor_shapes(shape):
        layer = int(name.split(".")[1]) if name.startswith("blk.") else None
        if len(dims) == 1:
            qtype = Q.F32
        elif tensor_type:
            qtype = Q[tensor_type.upper()]
        elif quant == "Q4_K_M":
            qtype = q4_k_m_type(name, layer, shape.n_layer)
        else:
            qtype = {"Q8_0": Q.Q8_0, "F16": Q.F16, "Q2_K": Q.Q2_K, "F32": Q.F32}[quant]
        block, type_size = GGML_QUANT_SIZES[qtype]
        n_elements = int(np.prod(dims))
        nbytes = n_elements // block * type_size
        w.add_tensor_info(name, dims, np.dtype(np.float32), nbytes, raw_dtype=qtype)
        data_bytes += _pad(nbytes)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    w.close()
    with open(path, "r+b") as f:
        f.seek(0, 2)
        header_end = _pad(f.tell())
        f.truncate(header_end + data_bytes)
    return path
