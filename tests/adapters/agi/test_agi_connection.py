"""AgiConnection alone: bytes in, events out, command lines checked against the phase and the dead channel."""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline_cti.adapters.agi.connection import (
    CLOSED,
    DEAD_REPLY,
    NEED_DATA,
    PIECES_LIMIT,
    AgiConnection,
    AgiPhase,
    Closed,
    Environment,
    Event,
)
from hotline_cti.adapters.agi.protocol import MAX_LINE, AgiProtocolError, AgiReply, Hangup
from hotline_cti.adapters.agi.scripts import FixedScript
from hotline_cti.adapters.agi.session import ScriptSession

ENV = (
    "agi_network: yes\nagi_network_script: route\nagi_request: agi://127.0.0.1/route\n"
    "agi_callerid: 13812345678\nagi_calleridname: 张三丰\nagi_arg_1: 12315\nagi_arg_2: \n\n"
).encode()
ENV_DICT = {
    "agi_network": "yes",
    "agi_network_script": "route",
    "agi_request": "agi://127.0.0.1/route",
    "agi_callerid": "13812345678",
    "agi_calleridname": "张三丰",
    "agi_arg_1": "12315",
    "agi_arg_2": "",
}
OK = AgiReply(200, "1", None, None, "200 result=1")
SET = b'SET VARIABLE HOTLINE_DECIDED "1"\n'
EXEC = b'EXEC MSet "HOTLINE_ACTION=queue,HOTLINE_DECIDED=1"\n'
STREAM = b'STREAM FILE hotline/welcome ""\n'


def drain(conn: AgiConnection) -> list[Event]:
    """Every event the bytes so far make, up to NEED_DATA or CLOSED."""
    out: list[Event] = []
    while True:
        event = conn.next_event()
        if event is NEED_DATA:
            return out
        out.append(event)
        if isinstance(event, Closed):
            return out


def feed(conn: AgiConnection, pieces: list[bytes]) -> list[Event]:
    events: list[Event] = []
    for piece in pieces:
        conn.receive_data(piece)
        events += drain(conn)
    return events


def ready(env: dict[str, str] | None = None) -> AgiConnection:
    """A connection past its environment with one command in flight."""
    conn = AgiConnection(dict(ENV_DICT) if env is None else env)
    assert conn.send(EXEC) == EXEC
    return conn


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    """``data`` cut at ``cuts``, no piece empty (an empty read is the peer closing)."""
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in itertools.pairwise([0, *points, len(data)]) if b > a]


# -- the environment ----------------------------------------------------------------------------------


def test_the_environment_in_one_read() -> None:
    conn = AgiConnection()
    assert conn.phase is AgiPhase.ENVIRONMENT and conn.next_event() is NEED_DATA
    assert feed(conn, [ENV]) == [Environment(ENV_DICT)]
    assert conn.phase is AgiPhase.IDLE and conn.env == ENV_DICT


@pytest.mark.parametrize("size", [1, 2, 3, 7, 25])
def test_the_environment_in_pieces_of_any_size(size: int) -> None:
    conn = AgiConnection()
    pieces = [ENV[i : i + size] for i in range(0, len(ENV), size)]
    events = feed(conn, pieces)
    assert events == [Environment(ENV_DICT)]  # one event, when the empty line came, and not before
    assert conn.phase is AgiPhase.IDLE


_KEYS = st.from_regex(r"agi_[a-z0-9_]{1,20}", fullmatch=True)
_VALUES = st.text(st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=60)


@settings(max_examples=150, deadline=None)
@given(
    env=st.dictionaries(_KEYS, _VALUES, min_size=1, max_size=80),
    cuts=st.lists(st.integers(min_value=0, max_value=8000), max_size=40),
)
def test_an_environment_gathered_in_any_pieces_is_the_one_sent(env: dict[str, str], cuts: list[int]) -> None:
    """Pieces are gathered as bytes and parsed once; past PIECES_LIMIT a parser takes them, to the same result."""
    block = "".join(f"{k}: {v}\n" for k, v in env.items()).encode() + b"\n"
    conn = AgiConnection()
    assert feed(conn, split(block, cuts)) == [Environment(env)]
    assert conn.phase is AgiPhase.IDLE


def test_a_long_environment_in_one_byte_pieces_is_the_one_sent() -> None:
    """Longer than what is gathered as it comes (the rescans stay bounded): a parser takes over, same result."""
    env = {f"agi_arg_{i}": "x" * 40 for i in range(1, 80)}
    block = "".join(f"{k}: {v}\n" for k, v in env.items()).encode() + b"\n"
    assert len(block) > 2 * PIECES_LIMIT
    conn = AgiConnection()
    assert feed(conn, [block[i : i + 1] for i in range(len(block))]) == [Environment(env)]


@pytest.mark.parametrize(
    "bad", [b"agi_ok: 1\nnot agi\n\n", b"agi_ok: 1\r\nagi_x\r\n\r\n", b"agi_ok: 1\nGET / HTTP/1.1\n\n"]
)
def test_an_environment_that_goes_wrong_in_a_later_piece_is_refused(bad: bytes) -> None:
    for cut in range(1, len(bad)):
        conn = AgiConnection()
        with pytest.raises(AgiProtocolError):
            feed(conn, [bad[:cut], bad[cut:]])
        assert conn.phase is AgiPhase.DONE


def test_the_environment_with_crlf_line_ends() -> None:
    conn = AgiConnection()
    assert feed(conn, [ENV.replace(b"\n", b"\r\n")]) == [Environment(ENV_DICT)]


@pytest.mark.parametrize(
    "garbage",
    [
        b"GET / HTTP/1.1\r\n",
        b"\x16\x03\x01\x02\x00\n",
        b"SSH-2.0-OpenSSH_9.6\r\n",
        b"agi_x\n\n",
        b"agi_ok: 1\nnot agi\n\n",
    ],
)
def test_garbage_instead_of_an_environment_is_refused_and_the_connection_is_done(garbage: bytes) -> None:
    conn = AgiConnection()
    conn.receive_data(garbage)
    with pytest.raises(AgiProtocolError):
        conn.next_event()
    assert conn.phase is AgiPhase.DONE and conn.next_event() is CLOSED


def test_an_endless_environment_line_is_refused_quoting_its_start() -> None:
    conn = AgiConnection()
    with pytest.raises(AgiProtocolError, match=re.escape("agi_arg_1: xxxx")):
        feed(conn, [b"agi_arg_1: " + b"x" * (MAX_LINE + 10)])
    assert conn.phase is AgiPhase.DONE


@pytest.mark.parametrize("after", [b"200 result=1\n", b"200 res", b"HANGUP\n"])
def test_data_after_the_environment_in_the_same_read_is_refused(after: bytes) -> None:
    """Asterisk sends nothing between its environment and our first command."""
    for pieces in ([ENV + after], [ENV[:30], ENV[30:] + after]):
        conn = AgiConnection()
        with pytest.raises(AgiProtocolError, match="data after the environment"):
            feed(conn, pieces)
        assert conn.phase is AgiPhase.DONE


def test_closed_before_the_environment_is_one_closed_event() -> None:
    conn = AgiConnection()
    assert feed(conn, [b"agi_network: yes\n", b""]) == [CLOSED]
    assert conn.phase is AgiPhase.DONE and conn.next_event() is CLOSED


def test_closed_with_nothing_sent_at_all() -> None:
    conn = AgiConnection()
    assert feed(conn, [b""]) == [CLOSED]


def test_an_environment_read_elsewhere_starts_idle() -> None:
    """Classic AGI: pyst2 read the environment from stdin; the connection takes the replies."""
    conn = AgiConnection({"agi_arg_1": "12300"})
    assert conn.phase is AgiPhase.IDLE and conn.env == {"agi_arg_1": "12300"}
    assert conn.send(SET) == SET and conn.phase is AgiPhase.AWAITING_REPLY


# -- replies ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "reply"),
    [
        (b"200 result=1\n", OK),
        (b"200 result=1\r\n", OK),
        (b"200 result=-1 endpos=0\n", AgiReply(200, "-1", None, 0, "200 result=-1 endpos=0")),
        (b"200 result= (timeout)\n", AgiReply(200, "", "timeout", None, "200 result= (timeout)")),
        (b"200 result=1 (hangup)\n", AgiReply(200, "1", "hangup", None, "200 result=1 (hangup)")),
        (b"100 result=0 Trying...\n200 result=1\n", OK),
        (
            b"510 Invalid or unknown command\n",
            AgiReply(510, "Invalid or unknown command", None, None, "510 Invalid or unknown command"),
        ),
        (
            b"520-Invalid command syntax.  Proper usage follows:\nUsage: x\n520 End of proper usage.\n",
            AgiReply(
                520,
                "Invalid command syntax.  Proper usage follows:",
                None,
                None,
                "520-Invalid command syntax.  Proper usage follows:\nUsage: x\n520 End of proper usage.",
            ),
        ),
    ],
)
def test_each_reply_shape_is_one_reply_event(data: bytes, reply: AgiReply) -> None:
    for pieces in ([data], [data[i : i + 1] for i in range(len(data))]):  # whole, and a byte at a time
        conn = ready()
        assert feed(conn, pieces) == [reply]
        assert conn.phase is AgiPhase.IDLE and not conn.dead


def test_a_reply_split_inside_a_utf8_character_decodes_whole() -> None:
    data = "200 result=1 (张三)\n".encode()
    conn = ready()
    assert feed(conn, [data[:15], data[15:]]) == [AgiReply(200, "1", "张三", None, "200 result=1 (张三)")]


def test_a_failed_command_is_not_a_dead_channel() -> None:
    """result=-1 (a prompt missing on disk): the script goes on, and its sentinel is still sent."""
    conn = ready()
    (reply,) = feed(conn, [b"200 result=-1 endpos=0\n"])
    assert isinstance(reply, AgiReply) and not reply.ok and not conn.dead
    assert conn.send(STREAM) == STREAM  # anything may still be sent


def test_a_reply_that_comes_early_waits_for_its_command() -> None:
    conn = AgiConnection(dict(ENV_DICT))
    assert feed(conn, [b"200 result=1\n"]) == []  # no command in flight yet: kept
    assert conn.phase is AgiPhase.IDLE
    assert conn.send(EXEC) == EXEC
    assert drain(conn) == [OK]


def test_two_replies_in_one_read_answer_two_commands_in_turn() -> None:
    conn = ready()
    conn.receive_data(b"200 result=1\n200 result=0 endpos=5\n")
    assert conn.next_event() == OK
    assert conn.next_event() is NEED_DATA  # the second is for the next command
    conn.send(SET)
    assert conn.next_event() == AgiReply(200, "0", None, 5, "200 result=0 endpos=5")


@settings(max_examples=200, deadline=None)
@given(
    env_cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=12),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=12),
)
def test_any_chunking_gives_the_same_events(env_cuts: list[int], cuts: list[int]) -> None:
    replies = b"100 result=0 Trying...\nHANGUP\n200 result=1\n" + "200 result=1 (张)\n".encode()
    conn = AgiConnection()
    events: list[Event] = []
    for piece in split(ENV, env_cuts) + split(replies, cuts):  # the replies come after our first command
        conn.receive_data(piece)
        while (event := conn.next_event()) is not NEED_DATA:
            events.append(event)
            if isinstance(event, Environment | AgiReply):
                conn.send(SET)  # our turn: one command per reply, as a script sends
    assert events == [Environment(ENV_DICT), Hangup(), OK, AgiReply(200, "1", "张", None, "200 result=1 (张)")]


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=300), cuts=st.lists(st.integers(min_value=0, max_value=300), max_size=6))
def test_arbitrary_bytes_give_events_or_the_protocol_error_only(data: bytes, cuts: list[int]) -> None:
    for start in (AgiConnection(), ready()):
        conn = start
        try:
            for piece in split(data, cuts):
                conn.receive_data(piece)
                while (event := conn.next_event()) is not NEED_DATA:
                    if isinstance(event, Environment | AgiReply):
                        conn.send(SET)
                    elif isinstance(event, Closed):
                        break
        except AgiProtocolError as exc:
            assert conn.phase is AgiPhase.DONE and str(exc)
        else:
            assert conn.phase is not AgiPhase.DONE


def test_garbage_instead_of_a_reply_is_refused_naming_the_line() -> None:
    conn = ready()
    conn.receive_data(b"HTTP/1.1 200 OK\r\n")
    with pytest.raises(AgiProtocolError, match=re.escape("HTTP/1.1 200 OK")):
        conn.next_event()
    assert conn.phase is AgiPhase.DONE


def test_an_oversize_reply_line_is_refused() -> None:
    conn = ready()
    with pytest.raises(AgiProtocolError, match=f"longer than {MAX_LINE} bytes"):
        feed(conn, [b"200 result=1 (" + b"x" * MAX_LINE + b")\n"])
    conn = ready()
    with pytest.raises(AgiProtocolError, match="without a newline"):
        feed(conn, [b"200 " + b"x" * 4096] * 5)


def test_closed_while_a_reply_is_due() -> None:
    conn = ready()
    assert feed(conn, [b"200 res", b""]) == [CLOSED]  # a partial line is dropped with the connection
    assert conn.phase is AgiPhase.DONE


def test_closed_after_the_last_reply_is_the_event_after_it() -> None:
    conn = ready()
    conn.receive_data(b"200 result=1\n")
    conn.receive_data(b"")
    assert conn.next_event() == OK
    assert conn.next_event() is CLOSED


# -- the dead-channel rule ------------------------------------------------------------------------------


def test_the_commands_a_dead_channel_still_runs_are_sent() -> None:
    conn = ready()
    assert feed(conn, [b"HANGUP\n200 result=1\n"]) == [Hangup(), OK]
    assert conn.dead
    for line in (SET, EXEC, b"GET VARIABLE X\n", b"get full variable ${X}\n", b"VERBOSE x 1\n", b"NOOP\n"):
        assert conn.send(line) == line
        assert feed(conn, [b"200 result=1\n"]) == [OK]
    for line in (b"DATABASE PUT a b c\n",):
        assert conn.send(line) == line
        assert feed(conn, [b"200 result=1\n"]) == [OK]


@pytest.mark.parametrize("line", [STREAM, b"ANSWER\n", b"WAIT FOR DIGIT 1000\n", b"GET DATA x\n", b"HANGUP\n"])
def test_a_command_a_dead_channel_refuses_is_answered_511_here(line: bytes) -> None:
    conn = ready()
    feed(conn, [b"511 Command Not Permitted on a dead channel or intercept routine\n"])
    assert conn.dead and conn.phase is AgiPhase.IDLE
    assert conn.send(line) == b""  # not written: res_agi would refuse it
    assert conn.phase is AgiPhase.AWAITING_REPLY
    assert conn.next_event() is DEAD_REPLY and DEAD_REPLY.dead_channel
    assert conn.phase is AgiPhase.IDLE
    assert conn.send(SET) == SET  # the sentinel still goes


def test_a_hangup_before_the_environment_is_garbage() -> None:
    conn = AgiConnection()
    conn.receive_data(b"HANGUP\n")
    with pytest.raises(AgiProtocolError):
        conn.next_event()


def test_a_hangup_while_idle_is_an_event_at_once() -> None:
    conn = AgiConnection(dict(ENV_DICT))
    assert feed(conn, [b"HANGUP\n"]) == [Hangup()]
    assert conn.dead and conn.phase is AgiPhase.IDLE
    assert conn.send(STREAM) == b"" and conn.next_event() is DEAD_REPLY


def test_a_hangup_while_a_reply_is_due_comes_before_the_reply() -> None:
    conn = ready()
    assert feed(conn, [b"HANGUP\n"]) == [Hangup()]
    assert conn.dead and conn.phase is AgiPhase.AWAITING_REPLY  # the reply to the command is still due
    assert feed(conn, [b"200 result=1\n"]) == [OK]


def test_a_hangup_after_the_session_is_done_changes_nothing() -> None:
    conn = ready()
    feed(conn, [b"200 result=1\n"])
    conn.close()
    conn.receive_data(b"HANGUP\n")
    assert conn.next_event() is CLOSED and not conn.dead


def test_hang_up_from_outside_is_the_same_rule() -> None:
    """Classic AGI learns of the hangup from SIGHUP, not from a line."""
    conn = AgiConnection(dict(ENV_DICT))
    conn.hang_up()
    assert conn.send(STREAM) == b"" and conn.next_event() is DEAD_REPLY
    assert conn.send(SET) == SET


def test_a_script_run_on_a_dead_channel_still_sets_its_sentinel() -> None:
    """The prompt is skipped with the 511 the connection answers; the variables and the sentinel go."""
    lines = (
        'SET VARIABLE HOTLINE_ACTION "queue"',
        'STREAM FILE hotline/welcome ""',
        'SET VARIABLE HOTLINE_DECIDED "1"',
    )
    conn, run, written = AgiConnection(dict(ENV_DICT)), ScriptSession(FixedScript.of(lines)), []
    line = run.first()
    while line is not None:
        if out := conn.send(line):
            written.append(out)
            conn.receive_data(b"HANGUP\n200 result=1\n" if not written[:-1] else b"200 result=1\n")
        event = conn.next_event()
        while isinstance(event, Hangup):
            event = conn.next_event()
        assert isinstance(event, AgiReply)
        line = run.after(event)
    assert written == [b'SET VARIABLE HOTLINE_ACTION "queue"\n', b'SET VARIABLE HOTLINE_DECIDED "1"\n']


# -- what may be sent when -------------------------------------------------------------------------------


def test_no_command_before_the_environment_or_while_one_is_in_flight_or_after_the_end() -> None:
    conn = AgiConnection()
    with pytest.raises(RuntimeError, match="while environment"):
        conn.send(SET)
    feed(conn, [ENV])
    conn.send(SET)
    with pytest.raises(RuntimeError, match="while awaiting reply"):
        conn.send(SET)
    feed(conn, [b"200 result=1\n"])
    conn.close()
    with pytest.raises(RuntimeError, match="while done"):
        conn.send(SET)
