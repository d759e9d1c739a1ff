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
