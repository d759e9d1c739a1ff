import pytest

from tui.engine.errors import classify_load_log, describe_failure
from tui.engine.protocol import ChatDone, ChatStats, FailureKind, Loaded, ModelFacts, decode


@pytest.mark.parametrize("line, kind", [
    ("llama_model_load: error loading model: error loading model architecture: unknown model "
     "architecture: 'zlama'", FailureKind.UNSUPPORTED_ARCH),
    ("ggml_backend_cuda_buffer_type_alloc_buffer: allocating 23456.00 MiB on device 0: "
     "cudaMalloc failed: out of memory", FailureKind.OOM_DEVICE),
    ("llama_model_load: error loading model: tensor 'blk.3.ffn_up.weight' data is not within "
     "the file bounds, model is corrupted or incomplete", FailureKind.CORRUPT),
    ("ggml_backend_cpu_buffer_type_alloc_buffer: failed to allocate CPU buffer of size 4000",
     FailureKind.OOM_HOST),
    ("something nobody expected", FailureKind.OTHER),
])
def test_llama_cpp_log_lines_map_to_failure_kinds(line, kind):
    got, detail = classify_load_log(["llama_model_loader: loaded meta data", line, ""])
    assert got is kind
    assert detail
    assert describe_failure(got, detail)


def test_the_detail_and_the_advice_are_separate_sentences():
    text = describe_failure(FailureKind.OOM_DEVICE, "cudaMalloc failed: out of memory")
    assert text == ("Out of GPU memory while loading. cudaMalloc failed: out of memory. "
                    "Try fewer GPU layers, a quantized KV cache (q8_0 or q4_0), or a shorter context.")
    assert describe_failure(FailureKind.OTHER, "It broke.") == (
        "llama.cpp could not load the model. It broke. The Log pane has llama.cpp's own words.")


def test_protocol_round_trips_nested_messages():
    facts = ModelFacts(name="m", vram_bytes_per_gpu=(1, 2), n_layer=3)
    assert decode(Loaded(facts=facts).to_wire()) == Loaded(facts=facts)
    done = ChatDone(request_id=7, stats=ChatStats(prompt_tokens=3, stop_reason="eos"))
    assert decode(done.to_wire()) == done


@pytest.mark.parametrize("raw", [b"", b"[]", b'{"type": "nope"}', b"not json"])
def test_garbage_on_the_wire_is_a_value_error(raw):
    with pytest.raises(ValueError):
        decode(raw)
