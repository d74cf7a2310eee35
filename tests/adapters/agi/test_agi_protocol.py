"""The sans-IO AGI parsers against the reply shapes real Asterisk sends, in any chunking."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline_cti.adapters.agi.protocol import (
    MAX_LINE,
    AgiProtocolError,
    AgiReply,
    EnvironmentParser,
    Hangup,
    ReplyParser,
    parse_reply_line,
    quote_arg,
)

ENV = (
    "agi_network: yes\nagi_network_script: route\nagi_request: agi://127.0.0.1/route\n"
    "agi_channel: PJSIP/trunk-0000001\nagi_uniqueid: 1700000000.42\nagi_callerid: 13812345678\n"
    "agi_calleridname: 张三丰\nagi_extension: 12315\nagi_arg_1: 12315\nagi_arg_2: \n\n"
).encode()


def chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


def test_environment_block_with_chinese_name_split_inside_a_character() -> None:
    split = ENV.index("张".encode()) + 1  # in the middle of the 3-byte character
    parser = EnvironmentParser()
    assert parser.feed(ENV[:split]) is None
    env = parser.feed(ENV[split:])
    assert env is not None
    assert env["agi_calleridname"] == "张三丰" and env["agi_arg_2"] == "" and env["agi_extension"] == "12315"


def test_garbage_environment_is_refused_naming_the_line() -> None:
    with pytest.raises(AgiProtocolError, match=re.escape("GET / HTTP/1.1")):
        EnvironmentParser().feed(b"GET / HTTP/1.1\r\n")


@pytest.mark.parametrize(
    ("line", "code", "result", "data", "endpos", "ok"),
    [
        ("200 result=1", 200, "1", None, None, True),
        ("200 result=0 endpos=12800", 200, "0", None, 12800, True),
        ("200 result=1 (某个值 with (parens))", 200, "1", "某个值 with (parens)", None, True),
        ("200 result= (timeout)", 200, "", "timeout", None, True),
        ("200 result=1 (hangup)", 200, "1", "hangup", None, True),
        ("200 result=-1", 200, "-1", None, None, False),
        ("200 result=-2", 200, "-2", None, None, False),
        ("200 result=49 (dtmf) endpos=4000", 200, "49", "dtmf", 4000, True),
        ("510 Invalid or unknown command", 510, "Invalid or unknown command", None, None, False),
        (
            "511 Command Not Permitted on a dead channel or intercept routine",
            511,
            "Command Not Permitted on a dead channel or intercept routine",
            None,
            None,
            False,
        ),
        (
            "520 Invalid command syntax.  Proper usage not available.",
            520,
            "Invalid command syntax.  Proper usage not available.",
            None,
            None,
            False,
        ),
    ],
)
def test_reply_lines(line: str, code: int, result: str, data: str | None, endpos: int | None, ok: bool) -> None:
    reply = parse_reply_line(line)
    assert (reply.code, reply.result, reply.data, reply.endpos, reply.ok) == (code, result, data, endpos, ok)


def test_dead_channel_flag() -> None:
    assert parse_reply_line("511 Command Not Permitted on a dead channel or intercept routine").dead_channel


def test_trying_is_skipped_and_inline_hangup_comes_first() -> None:
    parser = ReplyParser()
    events = parser.feed(b"100 result=0 Trying...\nHANGUP\n200 result=0 endpos=0\n")
    assert events == [Hangup(), AgiReply(200, "0", None, 0, "200 result=0 endpos=0")]


def test_520_usage_block_is_one_reply() -> None:
    block = b"520-Invalid command syntax.  Proper usage follows:\n Usage: STREAM FILE <filename> <escape_digits>\n520 End of proper usage.\n"
    parser = ReplyParser()
    assert parser.feed(block[:30]) == []
    (reply,) = parser.feed(block[30:])
    assert isinstance(reply, AgiReply) and reply.code == 520 and "Usage: STREAM FILE" in reply.raw
    assert parser.feed(b"200 result=1\n") == [AgiReply(200, "1", None, None, "200 result=1")]


def test_endless_line_is_bounded() -> None:
    parser = ReplyParser()
    with pytest.raises(AgiProtocolError, match="without a newline"):
        parser.feed(b"2" * (MAX_LINE + 1))


def test_malformed_reply_names_the_line() -> None:
    with pytest.raises(AgiProtocolError, match=re.escape("'200 result=abc'")):
        ReplyParser().feed(b"200 result=abc\n")


def test_quote_arg() -> None:
    assert quote_arg('say "hi"') == '"say \\"hi\\""'
    with pytest.raises(ValueError, match="line break"):
        quote_arg("a\nSET VARIABLE X 1")


REPLIES = st.sampled_from(
    [
        b"200 result=1 (\xe5\xbc\xa0\xe4\xb8\x89) endpos=7\n",
        b"200 result= (timeout)\n",
        b"100 result=0 Trying...\n",
        b"HANGUP\n",
        b"510 Invalid or unknown command\n",
        b"520-Invalid command syntax.  Proper usage follows:\nUsage: X\n520 End of proper usage.\n",
        b"200 result=-2\r\n",
    ]
)


@settings(max_examples=300, deadline=None)
@given(stream=st.lists(REPLIES, min_size=1, max_size=12), cuts=st.lists(st.integers(min_value=0), max_size=20))
def test_any_chunking_gives_the_same_events(stream: list[bytes], cuts: list[int]) -> None:
    data = b"".join(stream)
    whole = ReplyParser().feed(data)
    parser = ReplyParser()
    pieces = [event for chunk in chunks(data, cuts) for event in parser.feed(chunk)]
    assert pieces == whole
    assert len(whole) == sum(1 for s in stream if not s.startswith(b"100"))


def fed(feed: Callable[[bytes], object], pieces: list[bytes]) -> list[object] | str:
    """What a parser returns for each piece, or the message of the protocol error it raised.

    Any other exception fails the test.
    """
    out: list[object] = []
    try:
        for piece in pieces:
            out.append(feed(piece))
    except AgiProtocolError as exc:
        return str(exc)
    return out


@settings(max_examples=500, deadline=None)
@given(data=st.binary(max_size=300), cuts=st.lists(st.integers(min_value=0), max_size=10))
def test_arbitrary_bytes_raise_only_the_protocol_error(data: bytes, cuts: list[int]) -> None:
    """Any bytes in any chunking: the same replies or the same protocol error as in one read."""
    pieces = chunks(data, cuts)
    whole = fed(ReplyParser().feed, [data])
    chunked = fed(ReplyParser().feed, pieces)
    if isinstance(whole, str):
        assert chunked == whole
    else:
        assert isinstance(chunked, list)
        assert [event for events in chunked for event in events] == whole[0]  # type: ignore[attr-defined]
    env_whole = fed(EnvironmentParser().feed, [data])
    env_chunked = fed(EnvironmentParser().feed, pieces)
    if isinstance(env_whole, str):
        assert env_chunked == env_whole
    else:
        assert isinstance(env_chunked, list)
        assert env_chunked[-1] == env_whole[0]


ENV_KEYS = st.from_regex(r"agi_[a-z0-9_]{1,12}", fullmatch=True)
ENV_VALUES = st.text(alphabet=st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=20)


@settings(max_examples=300, deadline=None)
@given(
    pairs=st.lists(st.tuples(ENV_KEYS | st.text(max_size=8), ENV_VALUES), max_size=8),
    junk=st.sampled_from(["", "\r", "\n", "agi_x:y\n", "x: 1\n"]),
)
def test_whole_block_in_one_read_parses_as_line_by_line(pairs: list[tuple[str, str]], junk: str) -> None:
    """One read and a byte at a time both give what the block says line by line, or the same error."""
    block = ("".join(f"{k}: {v}\n" for k, v in pairs) + junk + "\n").encode()

    def outcome(pieces: list[bytes]) -> object:
        parser = EnvironmentParser()
        try:
            result = None
            for piece in pieces:
                result = parser.feed(piece)
            return result
        except AgiProtocolError as exc:
            return str(exc)

    assert outcome([block]) == outcome([block[i : i + 1] for i in range(len(block))]) == by_the_book(block)


def by_the_book(block: bytes) -> object:
    """The environment as documented: ``agi_name: value`` lines (CR before LF ignored) up to an empty line,
    nothing after it; the offending line is named otherwise."""
    env: dict[str, str] = {}
    done = False
    for raw in block.decode().split("\n")[:-1]:
        line = raw.rstrip("\r")
        if done:
            return f"data after the environment before any command: {line!r}"
        if line == "":
            done = True
            continue
        key, sep, value = line.partition(": ")
        if not sep or not key.startswith("agi_") or not key.replace("_", "").isalnum():
            return f"not an AGI environment line: {line!r}"
        env[key] = value
    return env if done else None


def test_a_whole_environment_block_in_one_read() -> None:
    env = EnvironmentParser().feed(ENV)
    assert env is not None and env["agi_calleridname"] == "张三丰" and env["agi_arg_2"] == ""


ASTERISK_ENV = (
    "agi_network: yes\nagi_network_script: route\nagi_request: agi://127.0.0.1/route\n"
    "agi_channel: PJSIP/trunk-00000001\nagi_language: zh\nagi_type: PJSIP\nagi_uniqueid: 1700000000.1\n"
    "agi_version: 20.5.0\nagi_callerid: 13812345678\nagi_calleridname: 张三\nagi_callingpres: 0\n"
    "agi_callingani2: 0\nagi_callington: 0\nagi_callingtns: 0\nagi_dnid: 12345\nagi_rdnis: unknown\n"
    "agi_context: from-trunk\nagi_extension: 12345\nagi_priority: 2\nagi_enhanced: 0.0\nagi_accountcode: \n"
    "agi_threadid: 140234567890123\nagi_arg_1: 12345\nagi_arg_2: \n\n"
).encode()


def test_an_environment_written_a_line_at_a_time_is_parsed_when_its_empty_line_comes() -> None:
    """res_agi writes each variable on its own; on loopback each is a read of its own."""
    parser = EnvironmentParser()
    lines = ASTERISK_ENV.splitlines(keepends=True)
    assert [parser.feed(line) for line in lines[:-1]] == [None] * (len(lines) - 1)
    env = parser.feed(lines[-1])
    assert env == EnvironmentParser().feed(ASTERISK_ENV)
    assert env is not None and len(env) == 24 and env["agi_calleridname"] == "张三" and env["agi_accountcode"] == ""


def test_a_bad_line_inside_a_piecewise_block_is_named_when_the_block_ends() -> None:
    parser = EnvironmentParser()
    assert parser.feed(b"agi_network: yes\n") is None
    assert parser.feed(b"agi_request no colon\n") is None
    with pytest.raises(AgiProtocolError, match="agi_request no colon"):
        parser.feed(b"agi_arg_1: 12345\n\n")


def test_an_endless_block_is_refused_once_it_outgrows_a_line() -> None:
    """Pieces are kept only up to MAX_LINE bytes; past that, line by line, and a long line is refused."""
    parser = EnvironmentParser()
    assert parser.feed(b"agi_network: yes\n") is None
    with pytest.raises(AgiProtocolError, match="line longer than"):
        for _ in range(2000):
            parser.feed(b"agi_x: " + b"y" * 30)
