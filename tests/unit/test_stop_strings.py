from hypothesis import given
from hypothesis import strategies as st

from tui.engine.stop_strings import StopMatcher


def run(stops, pieces):
    m = StopMatcher(stops)
    out, stopped = [], False
    for p in pieces:
        text, stopped = m.feed(p)
        out.append(text)
        if stopped:
            break
    if not stopped:
        out.append(m.flush())
    return "".join(out), stopped


def test_stop_split_across_pieces_is_never_shown():
    text, stopped = run(["</answer>"], ["The answer is 4</an", "swer> and more"])
    assert (text, stopped) == ("The answer is 4", True)


def test_held_prefix_is_released_when_it_turns_out_not_to_be_a_stop():
    m = StopMatcher(["STOP"])
    assert m.feed("hello ST") == ("hello ", False)
    assert m.feed("ART") == ("START", False)


@given(st.text(max_size=40), st.lists(st.integers(1, 8), max_size=10),
       st.text(min_size=1, max_size=5))
def test_output_is_the_text_up_to_the_first_stop_whatever_the_chunking(text, cuts, stop):
    pieces, i = [], 0
    for c in cuts:
        pieces.append(text[i:i + c])
        i += c
    pieces.append(text[i:])
    shown, stopped = run([stop], pieces)
    if stop in text:
        assert stopped and shown == text[:text.index(stop)]
    else:
        assert not stopped and shown == text
