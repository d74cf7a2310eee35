"""One masker for every way a caller number is written: separators, brackets, +86/0086, area codes."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline_cti.privacy import mask_number, mask_numbers

MOBILES = st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True)
LANDLINES = st.builds(
    lambda area, local: area + local,
    st.from_regex(r"0[1-9][0-9]{1,2}", fullmatch=True),
    st.from_regex(r"[2-9][0-9]{6,7}", fullmatch=True),
)
SEPARATORS = st.sampled_from(["", " ", "-", " - ", "  ", "\t"])
PREFIXES = st.sampled_from(["", "+86", "+86 ", "0086", "0086 ", "0086-", "+86-"])
# Words around a number: letters, CJK and punctuation, never digits, so every digit out is the number's.
WORDS = st.text(alphabet=st.sampled_from(list("abcxyz 来电号码请回拨，。:;=/")), max_size=12)


@st.composite
def written(draw: st.DrawFn) -> tuple[str, str]:
    """(a number's digits, the number as someone wrote it): groups split anywhere, any separators."""
    digits = draw(st.one_of(MOBILES, LANDLINES))
    cuts = sorted(draw(st.sets(st.integers(1, len(digits) - 1), max_size=4)))
    groups = [digits[a:b] for a, b in zip([0, *cuts], [*cuts, len(digits)], strict=True)]
    if digits.startswith("0") and draw(st.booleans()) and len(groups) > 1:
        groups[0] = f"({groups[0]})"  # (0771) 555-1234
    text = groups[0]
    for group in groups[1:]:
        text += draw(SEPARATORS) + group
    return digits, draw(PREFIXES) + text


def head_tail(digits: str) -> tuple[str, str]:
    head, tail = (3, 4) if len(digits) >= 11 else (2, 2)
    return digits[:head], digits[-tail:]


@settings(max_examples=400, deadline=None)
@given(written(), WORDS, WORDS)
def test_the_middle_digits_never_come_out(number: tuple[str, str], before: str, after: str) -> None:
    digits, text = number
    line = f"{before} {text} {after}"
    out = mask_numbers(line)
    full = re.sub(r"[^0-9]", "", text)  # a +86 or 0086 prefix counts as digits of the number
    head, tail = head_tail(full)
    # every digit left in the line is of the head or the tail: none of the middle
    assert re.sub(r"[^0-9]", "", out) == head + tail, (line, out)
    assert digits.endswith(tail) and len(head) + len(tail) <= 7
    assert mask_number(text) == ("+" if text.startswith("+") else "") + f"{head}****{tail}"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("138-1234-5678", "138****5678"),
        ("138 1234 5678", "138****5678"),
        ("+86 138 1234 5678", "+861****5678"),
        ("0086 13812345678", "008****5678"),
        ("+86 (0771) 555-1234", "+860****1234"),
        ("(0771) 555-1234", "077****1234"),
        ("0771-5551234", "077****1234"),
        ("来电138-1234-5678，请回拨", "来电138****5678，请回拨"),
        ("(tel 138 1234 5678)", "(tel 138****5678)"),
        ("cid13812345678", "cid138****5678"),
    ],
)
def test_the_ways_of_writing_a_number_from_issue_13(text: str, masked: str) -> None:
    assert mask_numbers(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "uid 1700000000.42 at 2026-11-23 08:00:00 from 127.0.0.1:4573",
        "waited 30 s, 12 calls, queue 12315 at 10",
        "2026-11-23T08:00 to 2026-11-24",
        "PJSIP/agent1001-",
    ],
)
def test_what_is_no_caller_number_is_left_alone(text: str) -> None:
    assert mask_numbers(text) == text


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("x 2587066 y", "x 25****66 y"),  # 7 digits: the shortest number that is masked
        ("x 258706 y", "x 258706 y"),  # 6 digits: a count or an extension, left alone
        ("(tel 138 1234 5678)", "(tel 138****5678)"),  # the closing bracket belongs to the text
        ("(13812345678 ", "(138****5678 "),  # an opening bracket that pairs with nothing is kept
        ("a (0771-5551234) b", "a 077****1234 b"),  # brackets around the whole number go with it
        ("call (0771)5551234 now", "call 077****1234 now"),
    ],
)
def test_boundaries_and_brackets(text: str, masked: str) -> None:
    assert mask_numbers(text) == masked


def test_one_number_short_and_at_the_boundary() -> None:
    assert mask_number("123456") == "******"  # too short to keep any digit
    assert mask_number("2587066") == "25****66"
    assert mask_number("+8613812345678") == "+861****5678"
