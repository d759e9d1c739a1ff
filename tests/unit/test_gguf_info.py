"""Header reading against files whose byte counts we know."""


import pytest

from tui.models.gguf_info import GgufError, check_model_file, file_type_name, read_header
from tui.models.synthetic import LLAMA31_70B, TINY


def test_tiny_model_header_matches_what_was_written(tiny_llama):
    h = check_model_file(tiny_llama)
    md = h.metadata
    assert md["general.architecture"] == "llama"
    assert md["llama.block_count"] == TINY.n_layer
    assert md["llama.embedding_length"] == TINY.n_embd
    assert md["tokenizer.ggml.tokens"].length == TINY.n_vocab
    assert len(h.tensors) == 2 + 9 * TINY.n_layer + 1
    f32 = 4
    per_block = f32 * (2 * TINY.n_embd + 2 * TINY.n_embd**2
                       + 2 * TINY.n_embd * TINY.n_head_kv * TINY.head_dim + 3 * TINY.n_embd * TINY.n_ff)
    blocks = sum(t.n_bytes for t in h.tensors if t.name.startswith("blk."))
    assert blocks == TINY.n_layer * per_block
    assert h.expected_size == h.file_size == tiny_llama.stat().st_size


def test_sparse_70b_header_reads_fast_and_counts_the_full_model(sparse_70b):
    h = check_model_file(sparse_70b)
    assert h.metadata["llama.block_count"] == LLAMA31_70B.n_layer
    assert 39.0 < h.tensor_bytes / 1024**3 < 40.5, "a 70B Q4_K_M is about 39.6 GiB"
    assert sparse_70b.stat().st_blocks * 512 < 20 * 1024**2, "the data is a hole"
    assert file_type_name(h.metadata["general.file_type"]) == "Q4_K_M"


def test_truncation_is_detected(tmp_path, tiny_llama):
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(tiny_llama.read_bytes()[:-1000])
    assert read_header(cut).truncated
    with pytest.raises(GgufError, match="truncated") as err:
        check_model_file(cut)
    assert err.value.kind == "corrupt"


def test_header_cut_mid_metadata_is_corrupt(tmp_path, tiny_llama):
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(tiny_llama.read_bytes()[:300])
    with pytest.raises(GgufError) as err:
        read_header(cut)
    assert err.value.kind == "corrupt"
