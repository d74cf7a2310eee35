"""AMI adapter: sans-IO framing (with hypothesis) and the asyncio client against the simulated server."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.ami_bench import LineByLineParser
from hotline_cti.adapters.ami import (
    ActionTimeout,
    ActionUnknownOutcome,
    AmiActionError,
    AmiClient,
    AmiParser,
    AmiProtocolError,
    AmiSettings,
    AuthenticationFailed,
    Banner,
    Malformed,
    Message,
    NotConnected,
    encode_message,
    mask_numbers,
    protocol,
)
from hotline_cti.adapters.ami.client import backoff_delays
from simulators.ami_server import AmiServer, SimMember

SECRET = "sim-secret"  # the simulator's dummy credential, not a real one


# ----------------------------------------------------------------- helpers


async def eventually(predicate: Callable[[], bool], limit: float = 30.0) -> None:
    """Wait until ``predicate()`` holds (bounded wait, not a timing assertion)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + limit
    while not predicate():
        if loop.time() > end:
            raise AssertionError("condition never became true")
        await asyncio.sleep(0.005)


def client_settings(server: AmiServer, **overrides: Any) -> AmiSettings:
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": server.port,
        "username": "hotline",
        "secret": SECRET,
        # Bounds on a hang (a loaded machine may take seconds); a test about a timeout passes its own.
        "action_timeout": 30.0,
        "connect_timeout": 30.0,
        "ping_interval": 30.0,
        "ping_timeout": 1.0,
        "fully_booted_timeout": 30.0,
        "backoff_initial": 0.01,
        "backoff_factor": 2.0,
        "backoff_max": 1.0,
        "backoff_jitter": 0.0,
    }
    values.update(overrides)
    return AmiSettings(**values)


@pytest.fixture
async def server() -> AsyncIterator[AmiServer]:
    srv = AmiServer(username="hotline", secret=SECRET)
    await srv.start()
    yield srv
    await srv.stop()


@pytest.fixture
async def client(server: AmiServer) -> AsyncIterator[AmiClient]:
    c = AmiClient(client_settings(server))
    await c.connect()
    yield c
    await c.close()


def client_tasks() -> list[asyncio.Task[Any]]:
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("ami-") and not t.done()]


# ------------------------------------------------------- sans-IO protocol


def test_parser_reads_banner_then_messages() -> None:
    parser = AmiParser()
    items = parser.feed(
        b"Asterisk Call Manager/9.0.0\r\nResponse: Success\r\nActionID: a-1\r\nMessage: Authentication accepted\r\n\r\n"
    )
    assert items[0] == Banner("9.0.0")
    msg = items[1]
    assert isinstance(msg, Message)
    assert msg.kind == "response"
    assert msg.action_id == "a-1"
    assert msg["message"] == "Authentication accepted"  # header names are case-insensitive


def test_parser_rejects_a_non_ami_banner() -> None:
    with pytest.raises(AmiProtocolError, match="banner"):
        AmiParser().feed(b"HTTP/1.1 400 Bad Request\r\n")


def test_event_with_response_header_is_an_event_and_repeated_headers_are_kept() -> None:
    parser = AmiParser(expect_banner=False)
    (msg,) = parser.feed(
        b"Event: OriginateResponse\r\nResponse: Success\r\nVariable: A=1\r\nVariable: B=2\r\nReason: 4\r\n\r\n"
    )
    assert isinstance(msg, Message)
    assert msg.kind == "event" and msg.name == "OriginateResponse"
    assert msg.get_all("Variable") == ["A=1", "B=2"]


def test_chinese_text_split_inside_a_character_decodes() -> None:
    data = encode_message({"Event": "Newchannel", "CallerIDName": "张三丰（市民）", "CallerIDNum": "13812345678"})
    for cut in range(1, len(data)):
        parser = AmiParser(expect_banner=False)
        items = parser.feed(data[:cut]) + parser.feed(data[cut:])
        assert len(items) == 1
        assert isinstance(items[0], Message)
        assert items[0]["CallerIDName"] == "张三丰（市民）"


def test_malformed_lines_and_oversized_messages_are_reported_not_raised() -> None:
    parser = AmiParser(expect_banner=False, max_message_bytes=256)
    items = parser.feed(b"Event: Broken\r\nthis line has no colon\r\n\r\n")
    items += parser.feed(b"Event: Huge\r\nData: " + b"x" * 2000)
    items += parser.feed(b"y" * 2000 + b"\r\n\r\nEvent: Fine\r\n\r\n")
    assert isinstance(items[0], Malformed) and "Key: Value" in items[0].reason
    assert items[0].get("Event") == "Broken"
    assert isinstance(items[1], Malformed) and "longer than 256" in items[1].reason
    assert isinstance(items[2], Message) and items[2].name == "Fine"
    assert parser.buffered == 0


def test_message_without_event_or_response_is_malformed() -> None:
    (item,) = AmiParser(expect_banner=False).feed(b"Foo: bar\r\n\r\n")
    assert isinstance(item, Malformed)


def test_encode_refuses_header_injection() -> None:
    with pytest.raises(ValueError, match="CR or LF"):
        encode_message({"Action": "Originate", "CallerID": "x\r\nAction: Hangup"})
    with pytest.raises(ValueError, match="header name"):
        encode_message({"Bad Key": "1"})


def test_mask_numbers() -> None:
    # One rule for the whole project (hotline_cti.privacy): a fixed mask that also hides the length.
    assert mask_numbers("from 13812345678 to +8613812345678") == "from 138****5678 to +861****5678"
    assert mask_numbers("land 01087654321, ext 8001") == "land 010****4321, ext 8001"
    assert mask_numbers("Uniqueid: 1700000000.42") == "Uniqueid: 1700000000.42"


_KEYS = st.sampled_from(["Event", "Channel", "CallerIDNum", "CallerIDName", "Queue", "Uniqueid", "X-Extra"])
_VALUES = st.text(alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\r\n"), max_size=40).map(
    str.strip
)
_MESSAGES = st.lists(
    st.lists(st.tuples(_KEYS, _VALUES), min_size=0, max_size=6).map(lambda rest: [("Event", "Test"), *rest]),
    min_size=1,
    max_size=5,
)


@settings(max_examples=150, deadline=None)
@given(messages=_MESSAGES, cuts=st.lists(st.integers(min_value=0, max_value=5000), max_size=30))
def test_any_chunking_of_valid_messages_gives_the_same_messages(
    messages: list[list[tuple[str, str]]], cuts: list[int]
) -> None:
    data = b"".join(encode_message(m) for m in messages)
    points = sorted({c % (len(data) + 1) for c in cuts})
    parser = AmiParser(expect_banner=False)
    items = []
    previous = 0
    for point in [*points, len(data)]:
        items += parser.feed(data[previous:point])
        previous = point
    assert items == [Message(m) for m in messages]


@settings(max_examples=200, deadline=None)
@given(chunks=st.lists(st.binary(max_size=300), max_size=20), banner=st.booleans())
def test_arbitrary_bytes_never_raise_except_the_banner_error(chunks: list[bytes], banner: bool) -> None:
    parser = AmiParser(expect_banner=banner, max_message_bytes=512)
    try:
        for chunk in chunks:
            parser.feed(chunk)
            assert parser.buffered <= 2 * 512 + 300
    except AmiProtocolError:
        assert banner  # only a bad banner may raise


# Pieces an AMI stream is made of, for streams that hit every branch of the parser: CRLF and LF line ends,
# blank lines of both kinds, a stray CR, blanks around names and colons, Unicode whitespace and text, a name
# character the parser refuses, lines long enough for a small bound.
_PIECES = st.sampled_from(
    [
        b"Event: Newchannel",
        b"Response: Success",
        b"Channel: PJSIP/a-00000001",
        b"  Key :  value",
        b"\tX-Name:\tv",
        b"Bad Key: v",
        b"NoColon",
        b":empty name",
        b"\xc2\xa0Uniqueid: 1.2",
        "CallerIDName: 张三".encode(),
        b"\xe5\xbc",
        b"A" * 70,
        b"\r\n",
        b"\n",
        b"\r",
        b"\r\n\r\n",
        b"\n\n",
        b"\n\r\n",
        b" ",
        b":",
    ]
)


@settings(max_examples=400, deadline=None)
@given(
    pieces=st.lists(_PIECES, max_size=40),
    cuts=st.lists(st.integers(min_value=0, max_value=3000), max_size=6),
    bound=st.sampled_from([64, 128, 4096]),
    banner=st.booleans(),
)
def test_whole_messages_read_at_once_parse_as_line_by_line(
    pieces: list[bytes], cuts: list[int], bound: int, banner: bool
) -> None:
    # The same reads into the parser and into one that reads line by line: the same items (malformed ones and
    # their excerpts included) and the same bytes held after each read.
    data = (b"Asterisk Call Manager/7.0.3\r\n" if banner else b"") + b"".join(pieces)
    points = [0, *sorted({c % (len(data) + 1) for c in cuts}), len(data)]
    parser = AmiParser(expect_banner=banner, max_message_bytes=bound)
    reference = LineByLineParser(expect_banner=banner, max_message_bytes=bound)
    for start, stop in itertools.pairwise(points):
        assert parser.feed(data[start:stop]) == reference.feed(data[start:stop])
        assert parser.buffered == reference.buffered


@settings(max_examples=400, deadline=None)
@given(
    text=st.lists(
        st.sampled_from(
            ["Event: X", " Key\t: v ", "K:", "Bad Key: v", "NoColon", "", "\x85A: b", "A:\x0bb", ":v", "Ä: 1"]
        ),
        min_size=1,
        max_size=8,
    ).map("\n".join)
)
def test_a_message_parsed_in_one_pass_equals_it_parsed_line_by_line(text: str) -> None:
    assert protocol._parse_text(text) == protocol._parse_lines(text)


def test_backoff_doubles_up_to_the_cap() -> None:
    delays = backoff_delays(0.5, 2.0, 4.0)
    assert [next(delays) for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


def test_settings_from_environment() -> None:
    env = {"HOTLINE_AMI_HOST": "pbx", "HOTLINE_AMI_PORT": "5039", "HOTLINE_AMI_USER": "u", "HOTLINE_AMI_SECRET": "s"}
    s = AmiSettings.from_env(env, action_timeout=3.0)
    assert (s.host, s.port, s.username, s.secret, s.action_timeout) == ("pbx", 5039, "u", "s", 3.0)
    assert "secret" not in repr(s) and "'s'" not in repr(s)  # never printed in logs
    with pytest.raises(ValueError, match="HOTLINE_AMI_SECRET"):
        AmiSettings.from_env({"HOTLINE_AMI_HOST": "pbx", "HOTLINE_AMI_USER": "u"})
    with pytest.raises(ValueError, match="HOTLINE_AMI_PORT"):
        AmiSettings.from_env({**env, "HOTLINE_AMI_PORT": "x"})


# ------------------------------------------------------------------ client


async def test_login_ok_waits_for_fully_booted_and_runs_resync(server: AmiServer) -> None:
    server.booted_delay = 0.05
    seen: list[int] = []

    async def hook(c: AmiClient) -> None:
        seen.append(server.fully_booted_sent)

    c = AmiClient(client_settings(server))
    c.add_resync_hook(hook)
    await c.connect()
    try:
        assert c.connected and c.version == "9.0.0"
        assert seen == [1]  # the hook ran only after FullyBooted arrived
        (login,) = server.actions_named("Login")
        assert login.get("Username") == "hotline"
        # the event classes records, transfers and the wallboard read; not dialplan (Newexten, VarSet)
        assert login.get("Events") == "call,agent,user,cdr,system"
    finally:
        await c.close()


async def test_login_failed(server: AmiServer) -> None:
    c = AmiClient(client_settings(server, secret="wrong"))
    with pytest.raises(AuthenticationFailed, match="refused"):
        await c.connect()
    assert not c.connected
    assert client_tasks() == []
    with pytest.raises(NotConnected):
        await c.action("Ping", timeout=0.05)


async def test_concurrent_actions_are_correlated(client: AmiClient, server: AmiServer) -> None:
    server.chunk_size = 7  # answers arrive in pieces while other answers are in flight
    results = await asyncio.gather(
        *(client.action("UserEvent", {"UserEvent": f"probe{i}", "Seq": str(i)}) for i in range(15)),
        *(client.action("Ping") for _ in range(5)),
    )
    sent = {a.get("ActionID") for a in server.actions if a.name in ("UserEvent", "Ping")}
    got = [r.response.action_id for r in results]
    assert len(set(got)) == 20 and set(got) == sent
    assert all(r["Message"] == "Event Sent" for r in results[:15])
    assert all(r["Ping"] == "Pong" for r in results[15:])


async def test_event_list_is_returned_and_also_published(client: AmiClient, server: AmiServer) -> None:
    server.add_queue("q-12345", [SimMember("坐席01", "PJSIP/8001"), SimMember("坐席02", "PJSIP/8002", paused=True)])
    caller = server.add_channel("PJSIP/trunk-00000001", caller_num="13812345678", caller_name="李四")
    server.queues["q-12345"].callers.append(caller.name)
    members: list[Message] = []
    client.on("QueueMember", members.append)

    result = await client.action("QueueStatus")

    assert result["EventList"] == "start"
    assert [e.name for e in result.events] == ["QueueParams", "QueueMember", "QueueMember", "QueueEntry"]
    assert result.complete is not None and result.complete["ListItems"] == "4"
    assert result.events[3]["CallerIDName"] == "李四"
    await eventually(lambda: len(members) == 2)
    assert [m["Name"] for m in members] == ["坐席01", "坐席02"]


async def test_core_show_channels_list(client: AmiClient, server: AmiServer) -> None:
    server.add_channel("PJSIP/trunk-00000001", caller_num="13812345678")
    server.add_channel("PJSIP/8001-00000002")
    result = await client.action("CoreShowChannels")
    assert [e["Channel"] for e in result.events] == ["PJSIP/trunk-00000001", "PJSIP/8001-00000002"]
    assert result.complete is not None and result.complete.name == "CoreShowChannelsComplete"


async def test_originate_response_reaches_subscribers(client: AmiClient, server: AmiServer) -> None:
    seen: list[Message] = []

    async def on_originate(msg: Message) -> None:
        seen.append(msg)

    client.on("OriginateResponse", on_originate)
    msg = await client.originate(
        "PJSIP/8001", context="hotline-agents", exten="12345", caller_id='"12345热线" <12345>', ring_timeout=1.0
    )
    assert msg["Response"] == "Success" and msg["Reason"] == "4"
    assert msg["CallerIDName"] == "12345热线"
    await eventually(lambda: len(seen) == 1)
    assert seen[0] == msg
    (sent,) = server.actions_named("Originate")
    assert sent.get("Async") == "true"


async def test_error_response_raises(client: AmiClient, server: AmiServer) -> None:
    with pytest.raises(AmiActionError, match="Invalid/unknown command"):
        await client.action("NoSuchAction")
    result = await client.action("NoSuchAction", check=False)
    assert not result.success


async def test_action_timeout(client: AmiClient, server: AmiServer) -> None:
    server.silent_actions = {"queuestatus"}
    with pytest.raises(ActionTimeout):
        await client.action("QueueStatus", timeout=0.2)
    server.silent_actions = set()
    assert (await client.action("Ping"))["Ping"] == "Pong"  # the connection is still fine


async def test_keepalive_failure_triggers_reconnect(server: AmiServer) -> None:
    server.answer_pings = False
    c = AmiClient(client_settings(server, ping_interval=0.05, ping_timeout=0.1))
    await c.connect()
    try:
        await eventually(lambda: server.connections >= 2)
        server.answer_pings = True
        await eventually(lambda: c.connected)
        assert (await c.action("Ping"))["Ping"] == "Pong"
    finally:
        await c.close()


async def test_late_pong_behind_arriving_events_keeps_the_connection(server: AmiServer) -> None:
    """Under load the Pong queues behind events: while events keep arriving the link is alive, and
    reconnecting would lose the events of every call that starts and ends before the resync."""
    server.answer_pings = False
    # A Ping's 1 s is far longer than the 15 ms between events, so a loaded machine's pause of the test's
    # loop (which also sends the events) cannot leave a whole Ping timeout without one.
    c = AmiClient(client_settings(server, ping_interval=0.05, ping_timeout=1.0))
    seen: list[str] = []
    c.on("Newchannel", lambda m: seen.append(m.get("Uniqueid") or ""))
    await c.connect()
    try:
        for i in range(200):  # 3 s: several unanswered Pings, events all along
            server.emit({"Event": "Newchannel", "Uniqueid": f"1.{i}", "Channel": f"PJSIP/x-{i}"})
            await asyncio.sleep(0.015)
        await eventually(lambda: "1.199" in seen)
        assert len(server.actions_named("Ping")) >= 3  # Pings went unanswered while the events came
        assert server.connections == 1
        assert [f"1.{i}" for i in range(200)] == [u for u in seen if u.startswith("1.")]
        # silence AND no Pong: a dead link, reconnected
        await eventually(lambda: server.connections >= 2)
    finally:
        await c.close()


async def test_drop_reconnects_with_backoff_then_resyncs(server: AmiServer) -> None:
    resyncs: list[int] = []

    async def resync(c: AmiClient) -> None:
        await c.action("CoreShowChannels")
        resyncs.append(server.fully_booted_sent)

    c = AmiClient(client_settings(server))
    c.add_resync_hook(resync)
    await c.connect()
    try:
        server.reject_connections = 2  # the first two reconnect attempts fail
        server.booted_delay = 0.05
        for i in range(5):
            server.emit({"Event": "Newchannel", "Channel": f"PJSIP/x-{i}"})
        server.drop_connections()
        await eventually(lambda: len(resyncs) == 2)
        assert resyncs == [1, 2]  # each resync ran after that session's FullyBooted
        assert c.reconnect_delays[:3] == [0.01, 0.02, 0.04]
        assert server.connections == 2
        assert len(server.actions_named("CoreShowChannels")) == 2
    finally:
        await c.close()


async def test_pending_action_at_drop_fails_and_is_not_resent(server: AmiServer) -> None:
    resynced = asyncio.Event()

    async def resync(c: AmiClient) -> None:
        resynced.set()

    c = AmiClient(client_settings(server))
    c.add_resync_hook(resync)
    await c.connect()
    try:
        resynced.clear()
        server.drop_on_action = {"originate"}
        with pytest.raises(ActionUnknownOutcome, match="not re-sent"):
            await c.action(
                "Originate",
                {"Channel": "PJSIP/8001", "Context": "hotline-agents", "Exten": "12345", "Priority": "1"},
            )
        server.drop_on_action = set()
        await asyncio.wait_for(resynced.wait(), timeout=5)
        assert c.connected
        await c.action("Ping")
        assert len(server.actions_named("Originate")) == 1  # seen once: never re-sent
    finally:
        await c.close()


async def test_malformed_events_are_logged_masked_and_skipped(
    server: AmiServer, caplog: pytest.LogCaptureFixture
) -> None:
    c = AmiClient(client_settings(server, max_message_bytes=4096))
    await c.connect()
    events: list[Message] = []
    c.on("*", events.append)
    try:
        with caplog.at_level(logging.WARNING, logger="hotline_cti.adapters.ami.client"):
            server.emit_raw(b"garbage without any colon\r\nmore junk\r\n\r\n")
            server.emit_raw(b"Event: Broken\r\nCaller 13812345678 has no colon\r\n\r\n")
            server.emit_raw(b"Event: Huge\r\nData: " + "很长".encode() * 5000 + b"\r\n\r\n")
            server.emit_raw(b"\xff\xfe\x00 binary noise\r\n\r\n")
            server.emit({"Event": "Newchannel", "Channel": "PJSIP/trunk-00000009", "CallerIDNum": "13812345678"})
            await eventually(lambda: any(e.name == "Newchannel" for e in events))
        assert [e.name for e in events] == ["Newchannel"]
        text = caplog.text
        assert text.count("skipped malformed message") == 4
        assert "138****5678" in text and "13812345678" not in text
        assert (await c.action("Ping"))["Ping"] == "Pong"
    finally:
        await c.close()


async def test_failing_subscriber_is_logged_not_fatal(client: AmiClient, server: AmiServer) -> None:
    good: list[str] = []

    def broken(msg: Message) -> None:
        raise RuntimeError("subscriber bug")

    client.on("Hangup", broken)
    client.on("Hangup", lambda m: good.append(m["Channel"]))
    server.emit({"Event": "Hangup", "Channel": "PJSIP/a-1", "Cause": "16"})
    server.emit({"Event": "Hangup", "Channel": "PJSIP/a-2", "Cause": "16"})
    await eventually(lambda: len(good) == 2)
    assert good == ["PJSIP/a-1", "PJSIP/a-2"]


async def test_chinese_caller_name_split_across_tcp_reads(client: AmiClient, server: AmiServer) -> None:
    server.chunk_size = 1
    got: list[Message] = []
    client.on("QueueCallerJoin", got.append)
    name = "王小明（政务热线来电）"
    server.emit({"Event": "QueueCallerJoin", "Queue": "q-12345", "CallerIDName": name, "Position": "1"})
    await eventually(lambda: len(got) == 1)
    assert got[0]["CallerIDName"] == name


async def test_clean_shutdown_logs_off_and_leaves_no_tasks(server: AmiServer) -> None:
    c = AmiClient(client_settings(server, ping_interval=0.05))
    await c.connect()
    await c.action("Ping")
    assert client_tasks() != []
    await c.close()
    assert client_tasks() == []
    assert len(server.actions_named("Logoff")) == 1
    assert not c.connected
    with pytest.raises(NotConnected):
        await c.action("Ping", timeout=0.05)
    await c.close()  # idempotent


# --------------------------------------------------------------- simulator


async def test_blind_transfer_invalid_and_success(client: AmiClient, server: AmiServer) -> None:
    transfers: list[Message] = []
    hangups: list[Message] = []
    client.on("BlindTransfer", transfers.append)
    client.on("Hangup", hangups.append)
    server.add_channel("PJSIP/8001-00000001", caller_num="8001")
    with pytest.raises(AmiActionError, match="Transfer invalid"):
        await client.action("BlindTransfer", {"Channel": "PJSIP/8001-00000001", "Exten": "12319"})

    server.add_channel("PJSIP/trunk-00000002", caller_num="13812345678")
    server.bridge("PJSIP/8001-00000001", "PJSIP/trunk-00000002")
    ok = await client.action(
        "BlindTransfer", {"Channel": "PJSIP/8001-00000001", "Exten": "12319", "Context": "departments"}
    )
    assert ok["Message"] == "Transfer succeeded"
    await eventually(lambda: len(transfers) == 2 and len(hangups) == 1)
    assert [t["Result"] for t in transfers] == ["Invalid", "Success"]
    assert transfers[1]["TransfereeChannel"] == "PJSIP/trunk-00000002"
    assert transfers[1]["Extension"] == "12319"
    assert hangups[0]["Channel"] == "PJSIP/8001-00000001"
    assert server.channels["PJSIP/trunk-00000002"].exten == "12319"


async def test_atxfer_says_nothing_then_attended_transfer_event(client: AmiClient, server: AmiServer) -> None:
    done: list[Message] = []
    client.on("AttendedTransfer", done.append)
    server.add_channel("PJSIP/8001-00000001", caller_num="8001")
    server.add_channel("PJSIP/trunk-00000002", caller_num="13812345678")
    server.bridge("PJSIP/8001-00000001", "PJSIP/trunk-00000002")
    result = await client.action("Atxfer", {"Channel": "PJSIP/8001-00000001", "Exten": "12320", "Context": "experts"})
    assert result["Message"] == "Atxfer successfully queued"
    assert result.events == ()
    await eventually(lambda: len(done) == 1)
    assert done[0]["Result"] == "Success"
    assert done[0]["OrigTransfererChannel"] == "PJSIP/8001-00000001"
    assert done[0]["TransfereeChannel"] == "PJSIP/trunk-00000002"


async def test_dual_redirect_and_user_event(client: AmiClient, server: AmiServer) -> None:
    server.add_channel("PJSIP/trunk-00000001")
    server.add_channel("PJSIP/8001-00000002")
    server.bridge("PJSIP/trunk-00000001", "PJSIP/8001-00000002")
    result = await client.action(
        "Redirect",
        {
            "Channel": "PJSIP/trunk-00000001",
            "ExtraChannel": "PJSIP/8001-00000002",
            "Context": "survey",
            "Exten": "s",
            "Priority": "1",
            "ExtraContext": "agent-wrapup",
            "ExtraExten": "s",
            "ExtraPriority": "1",
        },
    )
    assert result["Message"] == "Dual Redirect successful"
    assert server.channels["PJSIP/8001-00000002"].context == "agent-wrapup"
    with pytest.raises(AmiActionError, match="Channel does not exist"):
        await client.action("Redirect", {"Channel": "PJSIP/none", "Context": "c", "Exten": "s", "Priority": "1"})

    user_events: list[Message] = []
    client.on("UserEvent", user_events.append)
    await client.action("UserEvent", {"UserEvent": "HotlineRouted", "Target": "q-12345"})
    await eventually(lambda: len(user_events) == 1)
    assert user_events[0]["UserEvent"] == "HotlineRouted" and user_events[0]["Target"] == "q-12345"
    assert "Action" not in user_events[0]
