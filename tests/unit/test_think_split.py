"""The reasoning/answer splitter on token pieces, including tags cut across pieces."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from backends.base import ReasoningDelta, TextDelta
from backends.local.think_split import ThinkSplitter


def run(pieces: list[str], *, in_reasoning: bool = False) -> tuple[str, str, list[str]]:
    """(reasoning, text, kinds in order with repeats collapsed)."""
    splitter = ThinkSplitter(in_reasoning=in_reasoning)
    events = [e for piece in pieces for e in splitter.feed(piece)] + splitter.flush()
    assert all(e.text for e in events)  # never an empty delta
    kinds: list[str] = []
    for event in events:
        kind = "r" if isinstance(event, ReasoningDelta) else "t"
        if not kinds or kinds[-1] != kind:
            kinds.append(kind)
    reasoning = "".join(e.text for e in events if isinstance(e, ReasoningDelta))
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    return reasoning, text, kinds


def test_whole_tags() -> None:
    assert run(["<think>", "plan", "</think>", "answer"]) == ("plan", "answer", ["r", "t"])


def test_tags_cut_across_pieces() -> None:
    pieces = ["<", "thi", "nk>", "a ", "b</", "thin", "k>", "\n\nc"]
    assert run(pieces) == ("a b", "\n\nc", ["r", "t"])


def test_prompt_ending_inside_thinking_starts_as_reasoning() -> None:
    assert run(["weigh", " it", "</think>", "done"], in_reasoning=True) == (
        "weigh it",
        "done",
        ["r", "t"],
    )


def test_reasoning_never_closed_stays_reasoning() -> None:
    assert run(["still", " thinking </thi"], in_reasoning=True) == (
        "still thinking </thi",
        "",
        ["r"],
    )


def test_no_tags_is_all_text() -> None:
    assert run(["Hello", ", ", "world"]) == ("", "Hello, world", ["t"])


def test_leading_whitespace_before_the_opening_tag_is_dropped() -> None:
    assert run(["\n", " <think>", "x</think>y"]) == ("x", "y", ["r", "t"])


def test_leading_whitespace_then_text_is_kept() -> None:
    assert run(["\n", "Hi"]) == ("", "\nHi", ["t"])


def test_opening_tag_after_answer_text_is_text() -> None:
    assert run(["Use ", "<think>", " tags"]) == ("", "Use <think> tags", ["t"])


def test_tags_after_the_reasoning_closed_are_text() -> None:
    pieces = ["<think>a</think>", "b <think>c</think>"]
    assert run(pieces) == ("a", "b <think>c</think>", ["r", "t"])


def test_a_lookalike_of_the_opening_tag_is_released_as_text() -> None:
    assert run(["<thi", "s is it"]) == ("", "<this is it", ["t"])


def test_a_cut_opening_tag_at_the_very_end_is_flushed_as_text() -> None:
    assert run(["<thi"]) == ("", "<thi", ["t"])


def test_custom_tags() -> None:
    splitter = ThinkSplitter(open_tag="[[", close_tag="]]")
    events = splitter.feed("[[x]") + splitter.feed("]y") + splitter.flush()
    assert events == [ReasoningDelta("x"), TextDelta("y")]


@given(
    reasoning=st.text(alphabet="ab<>/thinkx \n", max_size=30).filter(lambda s: "</think>" not in s),
    answer=st.text(alphabet="ab<>/thinkx \n", max_size=30),
    cuts=st.lists(st.integers(min_value=0, max_value=80), max_size=10),
)
def test_any_cutting_gives_the_same_split(reasoning: str, answer: str, cuts: list[int]) -> None:
    whole = f"<think>{reasoning}</think>{answer}"
    points = sorted({min(c, len(whole)) for c in cuts})
    pieces = [whole[a:b] for a, b in zip([0, *points], [*points, len(whole)], strict=True)]
    got_reasoning, got_text, _ = run(pieces)
    assert (got_reasoning, got_text) == (reasoning, answer)
