"""Every documented AGI shape and refusal: reply lines, line ends, blank lines, 520 blocks, bounds,
environments in one read or in pieces (CRLF, data after the block, invalid UTF-8) and argument quoting."""

from __future__ import annotations

import pytest

from hotline_cti.adapters.agi.protocol import (
    DEAD_CHANNEL_COMMANDS,
    KNOWN_REPLIES,
    MAX_LINE,
    AgiProtocolError,
    AgiReply,
    EnvironmentParser,
    Hangup,
    ReplyParser,
    parse_reply_line,
    plain_environment,
    quote_arg,
)

ENV_PAIRS = {
    "agi_network": "yes",
    "agi_request": "agi://127.0.0.1/route",
    "agi_calleridname": "张三",
    "agi_arg_1": "12345",
    "agi_arg_2": "",
}
ENV_LF = "".join(f"{k}: {v}\n" for k, v in ENV_PAIRS.items()).encode() + b"\n"
ENV_CRLF = ENV_LF.replace(b"\n", b"\r\n")


# ---------------------------------------------------------------- reply lines


@pytest.mark.parametrize(
    ("line", "reply"),
    [
        ("200 result=", AgiReply(200, "", None, None, "200 result=")),
        ("200 result=1   ", AgiReply(200, "1", None, None, "200 result=1   ")),
        ("200 result=0 endpos=0", AgiReply(200, "0", None, 0, "200 result=0 endpos=0")),
        ("200 result=1 endpos=-5", AgiReply(200, "1", None, -5, "200 result=1 endpos=-5")),
        ("200 result=-1 (x)", AgiReply(200, "-1", "x", None, "200 result=-1 (x)")),
        ("200 result=1 ()", AgiReply(200, "1", "", None, "200 result=1 ()")),
        ("510", AgiReply(510, "", None, None, "510")),
        ("511 gone", AgiReply(511, "gone", None, None, "511 gone")),
        ("520 Invalid", AgiReply(520, "Invalid", None, None, "520 Invalid")),
    ],
)
def test_reply_line_shapes(line: str, reply: AgiReply) -> None:
    assert parse_reply_line(line) == reply


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("200 result=1 x", "malformed AGI reply: '200 result=1 x'"),
        ("200result=1", "malformed AGI reply: '200result=1'"),
        ("200 result=1 endpos=", "malformed AGI reply: '200 result=1 endpos='"),
        ("5101 x", "not an AGI reply: '5101 x'"),
        ("510x", "not an AGI reply: '510x'"),
        ("300 result=1", "not an AGI reply: '300 result=1'"),
        ("", "not an AGI reply: ''"),
        ("HANGUP now", "not an AGI reply: 'HANGUP now'"),
    ],
)
def test_reply_lines_that_are_refused(line: str, message: str) -> None:
    with pytest.raises(AgiProtocolError) as info:
        parse_reply_line(line)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("line", "ok", "dead"),
    [
        ("200 result=1", True, False),
        ("200 result=0", True, False),
        ("200 result=", True, False),
        ("200 result=-1", False, False),
        ("200 result=-2", False, False),
        ("200 result=-3", True, False),
        ("510 Invalid or unknown command", False, False),
        ("511 Command Not Permitted on a dead channel", False, True),
        ("520 Invalid command syntax.", False, False),
    ],
)
def test_ok_and_dead_channel(line: str, ok: bool, dead: bool) -> None:
    reply = parse_reply_line(line)
    assert (reply.ok, reply.dead_channel) == (ok, dead)


def test_the_commands_a_dead_channel_still_runs() -> None:
    assert set(DEAD_CHANNEL_COMMANDS) == {
        "GET VARIABLE",
        "GET FULL VARIABLE",
        "SET VARIABLE",
        "VERBOSE",
        "DATABASE",
        "EXEC",
        "NOOP",
    }


# ---------------------------------------------------------------- the reply stream


def test_crlf_replies_are_read_like_lf() -> None:
    assert ReplyParser().feed(b"200 result=1 (x)\r\n511 gone\r\r\n") == [
        AgiReply(200, "1", "x", None, "200 result=1 (x)"),
        AgiReply(511, "gone", None, None, "511 gone"),
    ]


def test_a_blank_line_between_replies_is_skipped() -> None:
    parser = ReplyParser()
    assert parser.feed(b"200 result=1\n\n\r\n200 result=0\n") == [
        AgiReply(200, "1", None, None, "200 result=1"),
        AgiReply(200, "0", None, None, "200 result=0"),
    ]
    assert parser.feed(b"\n") == []


@pytest.mark.usefixtures("caches_on")
def test_two_replies_in_one_read_are_both_returned() -> None:
    for _ in range(2):  # a second time, after either line may have been remembered
        assert ReplyParser().feed(b"200 result=1\n200 result=0\n") == [
            AgiReply(200, "1", None, None, "200 result=1"),
            AgiReply(200, "0", None, None, "200 result=0"),
        ]


@pytest.mark.usefixtures("caches_on")
def test_the_same_reply_twice_parses_the_same() -> None:
    parser = ReplyParser()
    first = parser.feed(b"200 result=1 endpos=80\n")
    assert parser.feed(b"200 result=1 endpos=80\n") == first == [AgiReply(200, "1", None, 80, "200 result=1 endpos=80")]
    assert ReplyParser().feed(b"510 Invalid or unknown command\n") == [
        AgiReply(510, "Invalid or unknown command", None, None, "510 Invalid or unknown command")
    ]


def test_a_partial_line_is_pending_until_its_newline() -> None:
    parser = ReplyParser()
    assert not parser.pending
    assert parser.feed(b"200 resu") == []
    assert parser.pending
    assert parser.feed(b"lt=1\n") == [AgiReply(200, "1", None, None, "200 result=1")]
    assert not parser.pending


@pytest.mark.usefixtures("caches_on")
def test_a_whole_reply_after_a_partial_one_completes_the_partial_one() -> None:
    assert ReplyParser().feed(b"200 result=1\n") == [AgiReply(200, "1", None, None, "200 result=1")]
    parser = ReplyParser()
    parser.feed(b"200 result=0 (a")
    with pytest.raises(AgiProtocolError, match=r"malformed AGI reply: '200 result=0 \(a200 result=1'"):
        parser.feed(b"200 result=1\n")


@pytest.mark.usefixtures("caches_on")
def test_a_remembered_reply_is_never_served_for_the_end_of_a_partial_line() -> None:
    first = ReplyParser()
    assert first.feed(b"200 res") == []
    assert first.feed(b"ult=1\n") == [AgiReply(200, "1", None, None, "200 result=1")]
    second = ReplyParser()
    assert second.feed(b"510 a") == []
    assert second.feed(b"ult=1\n") == [AgiReply(510, "ault=1", None, None, "510 ault=1")]


@pytest.mark.usefixtures("caches_on")
def test_a_read_that_leaves_a_partial_line_is_parsed_every_time() -> None:
    for _ in range(2):
        parser = ReplyParser()
        assert parser.feed(b"200 result=1\n200 re") == [AgiReply(200, "1", None, None, "200 result=1")]
        assert parser.feed(b"sult=0\n") == [AgiReply(200, "0", None, None, "200 result=0")]


@pytest.mark.usefixtures("caches_on")
def test_a_read_that_opens_a_520_block_is_parsed_every_time() -> None:
    for _ in range(2):
        parser = ReplyParser()
        assert parser.feed(b"200 result=1\n520-Invalid\n") == [AgiReply(200, "1", None, None, "200 result=1")]
        assert parser.feed(b"520 End of proper usage.\n") == [
            AgiReply(520, "Invalid", None, None, "520-Invalid\n520 End of proper usage.")
        ]


@pytest.mark.usefixtures("caches_on")
def test_only_whole_200_replies_are_remembered_for_the_fixed_script_path() -> None:
    """The FastAGI fixed-script path takes a read found in KNOWN_REPLIES for a successful reply."""
    KNOWN_REPLIES.clear()
    for data in (b"510 Invalid or unknown command\n", b"511 gone\n", b"520 x\n", b"HANGUP\n", b"200 result=7\n"):
        ReplyParser().feed(data)
    assert {b"200 result=7\n": AgiReply(200, "7", None, None, "200 result=7")} == KNOWN_REPLIES


@pytest.mark.usefixtures("caches_on")
def test_a_520_block_holds_every_line_until_its_end() -> None:
    parser = ReplyParser()
    assert parser.feed(b"200 result=1\n") == [AgiReply(200, "1", None, None, "200 result=1")]
    assert parser.feed(b"520-Invalid command syntax.  Proper usage follows:\n") == []
    assert parser.pending
    assert parser.feed(b"200 result=1\n") == []  # a line of the usage text, not a reply
    assert parser.feed(b"HANGUP\n520-more\n") == []
    assert parser.pending
    (reply,) = parser.feed(b"520 End of proper usage.\n")
    assert reply == AgiReply(
        520,
        "Invalid command syntax.  Proper usage follows:",
        None,
        None,
        "520-Invalid command syntax.  Proper usage follows:\n200 result=1\nHANGUP\n520-more\n520 End of proper usage.",
    )
    assert not parser.pending
    assert parser.feed(b"HANGUP\n") == [Hangup()]


def test_trying_lines_are_skipped_wherever_they_come() -> None:
    assert ReplyParser().feed(b"100 result=0 Trying...\n100 x\n200 result=1\n100\n") == [
        AgiReply(200, "1", None, None, "200 result=1")
    ]


def test_invalid_utf8_in_a_reply_is_replaced_not_fatal() -> None:
    assert ReplyParser().feed(b"200 result=1 (\xff\xfe)\n") == [
        AgiReply(200, "1", "\ufffd\ufffd", None, "200 result=1 (\ufffd\ufffd)")
    ]


def test_a_line_of_exactly_max_line_bytes_is_accepted() -> None:
    head = b"200 result=1 ("
    line = head + b"x" * (MAX_LINE - len(head) - 1) + b")"
    assert len(line) == MAX_LINE
    parser = ReplyParser()
    assert parser.feed(line[:-1]) == []  # a partial line of MAX_LINE - 1 bytes is kept
    (reply,) = parser.feed(line[-1:] + b"\r\n")
    assert isinstance(reply, AgiReply) and reply.data == "x" * (MAX_LINE - len(head) - 1)


def test_a_partial_line_of_exactly_max_line_bytes_is_kept() -> None:
    parser = ReplyParser()
    assert parser.feed(b"2" * MAX_LINE) == []
    with pytest.raises(AgiProtocolError, match=f"line longer than {MAX_LINE} bytes without a newline"):
        parser.feed(b"2")


def test_a_line_over_max_line_bytes_is_refused_even_with_its_newline() -> None:
    with pytest.raises(AgiProtocolError) as info:
        ReplyParser().feed(b"2" * (MAX_LINE + 1) + b"\n")
    assert str(info.value) == f"line longer than {MAX_LINE} bytes: {b'2' * 80!r}…"


def test_an_endless_line_is_refused_quoting_its_start() -> None:
    with pytest.raises(AgiProtocolError) as info:
        ReplyParser().feed(b"x" * (MAX_LINE + 1))
    assert str(info.value) == f"line longer than {MAX_LINE} bytes without a newline: {b'x' * 80!r}…"


# ---------------------------------------------------------------- the environment block


@pytest.mark.parametrize("block", [ENV_LF, ENV_CRLF], ids=["lf", "crlf"])
def test_an_environment_in_one_read(block: bytes) -> None:
    parser = EnvironmentParser()
    assert parser.done is False and parser.env == {}
    assert parser.feed(block) == ENV_PAIRS
    assert parser.done and parser.env == ENV_PAIRS


@pytest.mark.parametrize("block", [ENV_LF, ENV_CRLF], ids=["lf", "crlf"])
def test_an_environment_a_line_at_a_time(block: bytes) -> None:
    parser = EnvironmentParser()
    lines = block.splitlines(keepends=True)
    assert [parser.feed(line) for line in lines[:-1]] == [None] * (len(lines) - 1)
    assert not parser.done
    assert parser.feed(lines[-1]) == ENV_PAIRS
    assert parser.done


@pytest.mark.parametrize("block", [ENV_LF, ENV_CRLF], ids=["lf", "crlf"])
def test_an_environment_a_byte_at_a_time(block: bytes) -> None:
    parser = EnvironmentParser()
    results = [parser.feed(block[i : i + 1]) for i in range(len(block))]
    assert results[:-1] == [None] * (len(block) - 1)
    assert results[-1] == ENV_PAIRS


def test_an_empty_line_split_across_two_reads_ends_the_block() -> None:
    parser = EnvironmentParser()
    assert parser.feed(b"agi_network: yes\nagi_arg_1: 1\n") is None
    assert parser.feed(b"\n") == {"agi_network": "yes", "agi_arg_1": "1"}


def test_the_plain_fast_path_takes_only_a_whole_plain_block() -> None:
    assert plain_environment(ENV_LF) == ENV_PAIRS
    assert plain_environment(ENV_CRLF) is None
    assert plain_environment(ENV_LF[:-1]) is None  # no empty line yet
    assert plain_environment(b"agi_a: 1\nbad line\n\n") is None
    assert plain_environment(b"agi_a: 1\n\n\n") is None  # something after the empty line
    assert plain_environment(b"agi_\xc3\xa9: 1\n\n") is None  # a non-ASCII key is for the line path
    long = b"agi_x: " + b"y" * MAX_LINE + b"\n\n"
    assert plain_environment(long) is None


def test_a_cr_before_the_empty_line_is_stripped_not_kept_in_the_value() -> None:
    assert plain_environment(b"agi_a: 1\r\n\n") is None
    assert EnvironmentParser().feed(b"agi_a: 1\r\n\n") == {"agi_a": "1"}


def test_plain_fast_path_bound_is_max_line_inclusive() -> None:
    head = b"agi_x: "
    block = head + b"y" * (MAX_LINE - len(head) - 2) + b"\n\n"
    assert len(block) == MAX_LINE
    assert plain_environment(block) == {"agi_x": "y" * (MAX_LINE - len(head) - 2)}


def test_a_non_ascii_key_is_read_line_by_line() -> None:
    assert EnvironmentParser().feed("agi_é: 1\nagi_b: x: y\n\n".encode()) == {"agi_é": "1", "agi_b": "x: y"}


def test_invalid_utf8_in_a_one_read_environment_is_replaced() -> None:
    env = EnvironmentParser().feed(b"agi_calleridname: \xe5\xbc\n\n")
    assert env == {"agi_calleridname": "\ufffd"}
    env = EnvironmentParser().feed(b"agi_calleridname: \xff\r\n\r\n")
    assert env == {"agi_calleridname": "\ufffd"}


def test_an_empty_environment() -> None:
    parser = EnvironmentParser()
    assert parser.feed(b"\n") == {}
    assert parser.done


@pytest.mark.parametrize(
    ("data", "line"),
    [
        (b"agi_a: 1\n\nGET VARIABLE X\n", "GET VARIABLE X"),
        (b"agi_a: 1\r\n\r\nNOOP\r\n", "NOOP"),
        (b"agi_a: 1\n\n\n", ""),
    ],
)
def test_data_after_the_environment_in_the_same_read_is_refused(data: bytes, line: str) -> None:
    with pytest.raises(AgiProtocolError) as info:
        EnvironmentParser().feed(data)
    assert str(info.value) == f"data after the environment before any command: {line!r}"


def test_data_after_the_environment_in_a_later_read_is_refused() -> None:
    parser = EnvironmentParser()
    assert parser.feed(ENV_LF) == ENV_PAIRS
    assert parser.feed(b"NOOP") == ENV_PAIRS  # no whole line yet
    with pytest.raises(AgiProtocolError, match="data after the environment before any command: 'NOOP'"):
        parser.feed(b"\n")


def test_a_second_environment_block_is_refused() -> None:
    parser = EnvironmentParser()
    assert parser.feed(ENV_LF) == ENV_PAIRS
    with pytest.raises(AgiProtocolError, match="data after the environment before any command: 'agi_network: yes'"):
        parser.feed(ENV_LF)


@pytest.mark.parametrize(
    "line",
    [
        "agi_a:1",
        "agi_a 1",
        "AGI_A: 1",
        "agi-a: 1",
        "agi_a b: 1",
        "x_agi_a: 1",
        "agi_a.b: 1",
        ": 1",
    ],
)
def test_lines_that_are_not_environment_lines(line: str) -> None:
    for pieces in ([f"agi_ok: 1\n{line}\n\n".encode()], [b"agi_ok: 1\n", f"{line}\n".encode(), b"\n"]):
        parser = EnvironmentParser()
        with pytest.raises(AgiProtocolError) as info:
            for piece in pieces:
                parser.feed(piece)
        assert str(info.value) == f"not an AGI environment line: {line!r}"


def test_what_cannot_open_an_environment_is_refused_at_its_first_line() -> None:
    parser = EnvironmentParser()
    assert parser.feed(b"GET / HTTP/1.1") is None
    with pytest.raises(AgiProtocolError, match=r"not an AGI environment line: 'GET / HTTP/1.1'"):
        parser.feed(b"\r\nHost: x\r\n\r\n")


@pytest.mark.parametrize("first", [b"a", b"ag", b"agi", b"agi_"])
def test_a_block_may_open_with_a_piece_of_agi(first: bytes) -> None:
    parser = EnvironmentParser()
    assert parser.feed(first) is None
    assert parser.feed(ENV_LF[len(first) :]) == ENV_PAIRS


def test_a_first_piece_that_is_not_agi_is_refused_without_waiting_for_the_block() -> None:
    parser = EnvironmentParser()
    assert parser.feed(b"agx") is None
    with pytest.raises(AgiProtocolError, match="not an AGI environment line: 'agx_a: 1'"):
        parser.feed(b"_a: 1\n")


def test_a_cr_in_a_later_piece_switches_to_lines_and_keeps_what_came_before() -> None:
    parser = EnvironmentParser()
    assert parser.feed(b"agi_a: 1\n") is None
    assert parser.feed(b"agi_b: 2\r\n") is None
    assert parser.feed(b"\r\n") == {"agi_a": "1", "agi_b": "2"}


def test_pieces_are_kept_up_to_max_line_bytes_before_a_bad_line_is_named() -> None:
    parser = EnvironmentParser()
    head = b"agi_a: 1\nbad line\n"
    assert parser.feed(head) is None
    filler = b"agi_b: " + b"y" * (MAX_LINE - len(head) - 7)
    assert parser.feed(filler) is None  # exactly MAX_LINE bytes held: still waiting for the empty line
    with pytest.raises(AgiProtocolError, match="not an AGI environment line: 'bad line'"):
        parser.feed(b"y")


def test_a_long_block_in_pieces_is_still_read() -> None:
    values = {f"agi_v{i}": "x" * 100 for i in range(200)}  # about 21 KiB, over MAX_LINE
    block = "".join(f"{k}: {v}\n" for k, v in values.items()).encode() + b"\n"
    assert len(block) > MAX_LINE
    parser = EnvironmentParser()
    pieces = [block[i : i + 1000] for i in range(0, len(block), 1000)]
    results = [parser.feed(piece) for piece in pieces]
    assert results[:-1] == [None] * (len(pieces) - 1)
    assert results[-1] == values


# ---------------------------------------------------------------- argument quoting


@pytest.mark.parametrize(
    ("value", "quoted"),
    [
        ("", '""'),
        ("hello", '"hello"'),
        ("a b", '"a b"'),
        ("张三", '"张三"'),
        ("C:\\path", '"C:\\\\path"'),
        ('\\"', '"\\\\\\""'),
        ('say "hi"', '"say \\"hi\\""'),
    ],
)
def test_quote_arg(value: str, quoted: str) -> None:
    assert quote_arg(value) == quoted


@pytest.mark.parametrize("value", ["a\nb", "a\rb", "\r", "x\r\n"])
def test_quote_arg_refuses_line_breaks(value: str) -> None:
    with pytest.raises(ValueError, match=r"^an AGI argument cannot contain a line break$"):
        quote_arg(value)
