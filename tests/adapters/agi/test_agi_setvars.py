"""Variables set in as few round trips as Asterisk allows, and exactly as given.

The command lines from :func:`set_vars` are replayed on the simulated Asterisk
(:mod:`simulators.agi_peer`), whose EXEC MSet splits its argument the way
Asterisk's ``__ast_app_separate_args`` does: what the channel ends up holding
is the check, not the text of the commands.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline_cti import channel_vars as cv
from hotline_cti.adapters.agi.scripts import MSET_MAX_LINE, MSET_MAX_PAIRS, MSET_UNSAFE, set_vars
from simulators.agi_peer import PeerChannel, reply_to, separate_app_args


def replay(lines: list[str]) -> PeerChannel:
    channel = PeerChannel({})
    for line in lines:
        assert reply_to(channel, line, [False]).startswith("200 result=")
    return channel


def test_plain_values_go_in_one_mset_in_order() -> None:
    pairs = [(cv.ACTION, "queue"), (cv.TARGET, "gx-l12315"), (cv.EXPERT, ""), (cv.ORIGIN, "12315"), (cv.CITY, "桂林")]
    lines = set_vars(pairs)
    assert lines == [
        'EXEC MSet "HOTLINE_ACTION=queue,HOTLINE_TARGET=gx-l12315,HOTLINE_EXPERT=,HOTLINE_ORIGIN=12315,HOTLINE_CITY=桂林"'
    ]
    assert replay(lines).assigned == pairs


def test_a_value_mset_would_split_goes_on_its_own_set_variable() -> None:
    pairs = [("A", "1"), ("B", "PJSIP/12366@tax,30,tT"), ("C", 'say "hi"'), ("D", "x(y"), ("E", "2"), ("F", "3")]
    lines = set_vars(pairs)
    assert lines == [
        'SET VARIABLE A "1"',
        'SET VARIABLE B "PJSIP/12366@tax,30,tT"',
        'SET VARIABLE C "say \\"hi\\""',
        'SET VARIABLE D "x(y"',
        'EXEC MSet "E=2,F=3"',
    ]
    assert replay(lines).assigned == pairs


def test_a_long_list_is_split_into_several_msets() -> None:
    pairs = [(f"V{i}", "x" * 60) for i in range(40)]
    lines = set_vars(pairs)
    assert len(lines) > 1 and all(line.startswith("EXEC MSet ") for line in lines)
    assert all(len(line.encode()) <= MSET_MAX_LINE + 20 for line in lines)  # + 'EXEC MSet ""'
    assert all(line.count("=") <= MSET_MAX_PAIRS for line in lines)
    assert replay(lines).assigned == pairs


NAMES = st.from_regex(r"[A-Z][A-Z0-9_]{0,15}", fullmatch=True)
VALUES = st.text(
    alphabet=st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",))
    | st.sampled_from(sorted(MSET_UNSAFE - {"\r", "\n"})),
    max_size=30,
)


@settings(max_examples=300, deadline=None)
@given(pairs=st.lists(st.tuples(NAMES, VALUES), max_size=30))
def test_any_values_reach_the_channel_unchanged_and_in_order(pairs: list[tuple[str, str]]) -> None:
    assert replay(set_vars(pairs)).assigned == pairs


@pytest.mark.parametrize(
    ("text", "delim", "remove", "limit", "args"),
    [
        ("A=1,B=,C=x&y", ",", True, 99, ["A=1", "B=", "C=x&y"]),
        ("A=1,B=2,", ",", True, 99, ["A=1", "B=2", ""]),  # a trailing comma leaves one more, empty
        ('A=(1,2),B="x,y",C=a\\,b', ",", True, 99, ["A=(1,2)", "B=x,y", "C=a,b"]),  # nesting, quotes, escapes
        ("A=[1,2],B=3", ",", True, 99, ["A=[1,2]", "B=3"]),
        ("a,b,c,d", ",", True, 3, ["a", "b", "c,d"]),  # the last takes the unparsed rest
        ("NAME=", "=", False, 2, ["NAME", ""]),  # MSet's pair split: a name and an empty value
        ("NAME=a=b", "=", False, 2, ["NAME", "a=b"]),
        ("NAME", "=", False, 2, ["NAME"]),  # no '=': MSet ignores the entry
    ],
)
def test_app_arguments_split_as_asterisk_does(text: str, delim: str, remove: bool, limit: int, args: list[str]) -> None:
    assert separate_app_args(text, delim, remove_chars=remove, max_args=limit) == args
