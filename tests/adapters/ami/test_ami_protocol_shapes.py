"""Every documented AMI wire shape and refusal: the banner, header syntax, blank lines, the size bound
(exactly at it and one byte over, in one read or in pieces), the Message mapping and encoding."""

from __future__ import annotations

import pytest

from hotline_cti.adapters.ami.protocol import (
    BANNER_PREFIX,
    DEFAULT_MAX_MESSAGE_BYTES,
    EXCERPT_CHARS,
    AmiParser,
    AmiProtocolError,
    Banner,
    Malformed,
    Message,
    encode_message,
)

# ---------------------------------------------------------------- the banner


def test_the_banner_constants() -> None:
    assert (BANNER_PREFIX, DEFAULT_MAX_MESSAGE_BYTES, EXCERPT_CHARS) == ("Asterisk Call Manager/", 262144, 300)


@pytest.mark.parametrize(
    ("line", "version"),
    [
        (b"Asterisk Call Manager/9.0.0\r\n", "9.0.0"),
        (b"Asterisk Call Manager/2.10.4\n", "2.10.4"),
        (b"  Asterisk Call Manager/9.0.0  \r\n", "9.0.0"),
        (b"Asterisk Call Manager/\r\n", ""),
    ],
)
def test_banner_shapes(line: bytes, version: str) -> None:
    assert AmiParser().feed(line) == [Banner(version)]


def test_the_banner_may_come_in_pieces_and_with_a_message() -> None:
    parser = AmiParser()
    assert parser.feed(b"Asterisk Call") == []
    assert parser.feed(b" Manager/9.0.0\r\nResponse: Success\r\n\r\n") == [
        Banner("9.0.0"),
        Message([("Response", "Success")]),
    ]


def test_a_bad_banner_is_refused_quoting_it() -> None:
    with pytest.raises(AmiProtocolError) as info:
        AmiParser().feed(b"HTTP/1.1 400 Bad Request\r\n")
    assert str(info.value) == "expected an AMI banner 'Asterisk Call Manager/'..., got 'HTTP/1.1 400 Bad Request'"


def test_a_bad_banner_is_quoted_to_80_characters() -> None:
    with pytest.raises(AmiProtocolError) as info:
        AmiParser().feed(b"x" * 200 + b"\r\n")
    assert str(info.value) == f"expected an AMI banner 'Asterisk Call Manager/'..., got {'x' * 80!r}"


def test_only_the_first_line_is_the_banner() -> None:
    parser = AmiParser()
    parser.feed(b"Asterisk Call Manager/9.0.0\r\n")
    assert parser.feed(b"Asterisk Call Manager/9.0.0\r\n\r\n") == [
        Malformed(
            "line without 'Key: Value': 'Asterisk Call Manager/9.0.0'",
            "Asterisk Call Manager/9.0.0",
        )
    ]


def test_without_a_banner_expected_the_first_line_is_a_header() -> None:
    assert AmiParser(expect_banner=False).feed(b"Event: X\r\n\r\n") == [Message([("Event", "X")])]


# ---------------------------------------------------------------- headers


@pytest.mark.parametrize(
    ("line", "field"),
    [
        (b"Event: X", ("Event", "X")),
        (b"Event:X", ("Event", "X")),
        (b"Event: \t  X  ", ("Event", "X  ")),
        (b"  Event  : X", ("Event", "X")),
        (b"Event: a: b", ("Event", "a: b")),
        (b"Event:", ("Event", "")),
        (b"X-Extra;1: v", ("X-Extra;1", "v")),
    ],
)
def test_header_shapes(line: bytes, field: tuple[str, str]) -> None:
    (msg,) = AmiParser(expect_banner=False).feed(line + b"\r\nAction: Ping\r\n\r\n")
    assert isinstance(msg, Message)
    assert msg.fields == (field, ("Action", "Ping"))


@pytest.mark.parametrize("bad", ["no colon here", "Bad Key: v", ": v", "Clé: v"])
def test_a_line_that_is_not_a_header_makes_the_message_malformed(bad: str) -> None:
    text = f"Event: Hangup\nActionID: a-7\n{bad}\nOther: x"
    (item,) = AmiParser(expect_banner=False).feed(text.replace("\n", "\r\n").encode() + b"\r\n\r\n")
    assert item == Malformed(
        f"line without 'Key: Value': {bad!r}",
        text,
        (("Event", "Hangup"), ("ActionID", "a-7"), ("Other", "x")),
    )
    assert isinstance(item, Malformed) and item.get("actionid") == "a-7" and item.get("missing") is None


def test_the_first_bad_line_is_named_and_quoted_to_80_characters() -> None:
    bad = "x" * 100
    (item,) = AmiParser(expect_banner=False).feed(f"Event: A\r\n{bad}\r\nalso bad\r\n\r\n".encode())
    assert isinstance(item, Malformed)
    assert item.reason == f"line without 'Key: Value': {'x' * 80!r}"


def test_a_malformed_excerpt_is_bounded() -> None:
    text = "Event: A\nbad\nData: " + "y" * 400
    (item,) = AmiParser(expect_banner=False).feed(text.replace("\n", "\r\n").encode() + b"\r\n\r\n")
    assert isinstance(item, Malformed) and item.text == text[:EXCERPT_CHARS]


@pytest.mark.parametrize("header", ["Event", "Response", "Action", "event", "RESPONSE"])
def test_a_message_needs_event_response_or_action(header: str) -> None:
    (item,) = AmiParser(expect_banner=False).feed(f"{header}: X\r\nA: 1\r\n\r\n".encode())
    assert isinstance(item, Message)


def test_a_message_without_event_response_or_action_is_malformed() -> None:
    (item,) = AmiParser(expect_banner=False).feed(b"Foo: bar\r\nBaz: 1\r\n\r\n")
    assert item == Malformed("no Event, Response or Action header", "Foo: bar\nBaz: 1", (("Foo", "bar"), ("Baz", "1")))


def test_blank_lines_between_messages_are_skipped_and_lf_alone_works() -> None:
    parser = AmiParser(expect_banner=False)
    assert parser.feed(b"\r\n\r\nEvent: A\n\n\n\r\nEvent: B\r\nX: 1\r\n\r\n\r\n") == [
        Message([("Event", "A")]),
        Message([("Event", "B"), ("X", "1")]),
    ]
    assert parser.buffered == 0


def test_a_blank_line_read_on_its_own_ends_the_message() -> None:
    parser = AmiParser(expect_banner=False)
    assert parser.feed(b"Event: A\n") == []
    assert parser.feed(b"\n") == [Message([("Event", "A")])]
    assert parser.feed(b"\nEvent: B\n\n") == [Message([("Event", "B")])]


def test_only_blanks_and_tabs_after_the_colon_are_skipped() -> None:
    (msg,) = AmiParser(expect_banner=False).feed("Event: A\r\nName: \t\u3000张三\r\nX:\x0cy\r\n\r\n".encode())
    assert isinstance(msg, Message) and (msg["Name"], msg["X"]) == ("\u3000张三", "\x0cy")


def test_invalid_utf8_is_replaced() -> None:
    (msg,) = AmiParser(expect_banner=False).feed(b"Event: A\r\nName: \xff\r\n\r\n")
    assert isinstance(msg, Message) and msg["Name"] == "\ufffd"


def test_an_unfinished_message_is_buffered() -> None:
    parser = AmiParser(expect_banner=False)
    assert parser.feed(b"Event: A\r\nX: 1\r\n") == []
    assert parser.buffered == len(b"Event: A") + 1 + len(b"X: 1") + 1
    assert parser.feed(b"Y: 2") == []
    assert parser.buffered == 14 + 4
    assert parser.feed(b"\r\n\r\n") == [Message([("Event", "A"), ("X", "1"), ("Y", "2")])]
    assert parser.buffered == 0


# ---------------------------------------------------------------- the size bound


def test_the_bound_must_be_at_least_64_bytes() -> None:
    with pytest.raises(ValueError, match=r"^max_message_bytes must be at least 64$"):
        AmiParser(max_message_bytes=63)
    assert AmiParser(max_message_bytes=64).feed(b"Asterisk Call Manager/1\r\n") == [Banner("1")]


def _sized(total: int) -> bytes:
    """A message whose lines (each counted with one byte for its line end) add up to ``total`` bytes."""
    head = b"Event: X"
    data = b"Data: " + b"y" * (total - (len(head) + 1) - 7)
    return head + b"\r\n" + data + b"\r\n\r\n"


def test_a_message_of_exactly_the_bound_is_read() -> None:
    (msg,) = AmiParser(expect_banner=False, max_message_bytes=64).feed(_sized(64))
    assert isinstance(msg, Message) and len(msg["Data"]) == 64 - 9 - 7


def test_a_message_one_byte_over_the_bound_is_dropped_with_an_excerpt() -> None:
    parser = AmiParser(expect_banner=False, max_message_bytes=64)
    data = _sized(65)
    items = parser.feed(data + b"Event: Next\r\n\r\n")
    assert items == [
        Malformed("message longer than 64 bytes", data[:-4].replace(b"\r\n", b"\n").decode()),
        Message([("Event", "Next")]),
    ]
    assert parser.buffered == 0


def test_a_partial_line_of_exactly_the_bound_is_kept() -> None:
    parser = AmiParser(expect_banner=False, max_message_bytes=64)
    assert parser.feed(b"E" * 64) == []
    assert parser.buffered == 64
    assert parser.feed(b"\r") == []
    assert parser.buffered == 65  # a CR that may start the line end is not counted against the bound


def test_a_partial_line_one_byte_over_the_bound_is_dropped() -> None:
    parser = AmiParser(expect_banner=False, max_message_bytes=64)
    assert parser.feed(b"E" * 65) == []
    assert parser.buffered == 0


def test_a_cr_ending_a_dropped_partial_line_is_kept_for_its_lf() -> None:
    parser = AmiParser(expect_banner=False, max_message_bytes=64)
    assert parser.feed(b"E" * 65 + b"\r") == []
    assert parser.buffered == 1
    dropped, msg = parser.feed(b"\n\r\nEvent: B\r\n\r\n")
    assert isinstance(dropped, Malformed) and dropped.reason == "message longer than 64 bytes"
    assert msg == Message([("Event", "B")])


def test_a_partial_line_after_lines_filling_the_bound_is_dropped() -> None:
    parser = AmiParser(expect_banner=False, max_message_bytes=64)
    lines = _sized(64)[:-2]  # both lines, not the blank one
    assert parser.feed(lines) == []
    assert parser.buffered == 64
    assert parser.feed(b"Z") == []
    assert parser.buffered == 0
    assert parser.feed(b"\r\n\r\n") == [
        Malformed("message longer than 64 bytes", lines.replace(b"\r\n", b"\n").decode() + "Z")
    ]


def test_a_partial_line_over_the_bound_is_dropped_at_once_and_the_message_skipped() -> None:
    parser = AmiParser(expect_banner=False, max_message_bytes=64)
    assert parser.feed(b"Event: A\r\nData: " + b"x" * 100) == []
    assert parser.buffered == 0
    assert parser.feed(b"x" * 100) == []
    assert parser.buffered == 0
    # The rest of the long line ends; its next header and the blank line still belong to the dropped message.
    items = parser.feed(b"\r\nMore: 1\r\n\r\nEvent: B\r\n\r\n")
    assert items == [
        Malformed("message longer than 64 bytes", "Event: A\nData: " + "x" * 100),
        Message([("Event", "B")]),
    ]


def test_a_dropped_line_ending_in_cr_still_ends_with_its_lf() -> None:
    parser = AmiParser(expect_banner=False, max_message_bytes=64)
    parser.feed(b"Event: A\r\nData: " + b"x" * 100 + b"\r")
    dropped, msg = parser.feed(b"\n\r\nEvent: B\r\n\r\n")
    assert isinstance(dropped, Malformed) and dropped.reason == "message longer than 64 bytes"
    assert dropped.text.startswith("Event: A\nData: " + "x" * 100)
    assert msg == Message([("Event", "B")])


def test_an_oversized_excerpt_is_bounded() -> None:
    parser = AmiParser(expect_banner=False, max_message_bytes=64)
    (item, msg) = parser.feed(b"Event: A\r\nData: " + b"x" * 1000 + b"\r\n\r\nEvent: B\r\n\r\n")
    assert isinstance(item, Malformed) and item.text == ("Event: A\nData: " + "x" * 1000)[:EXCERPT_CHARS]
    assert msg == Message([("Event", "B")])


def test_an_oversized_excerpt_with_invalid_utf8_is_replaced() -> None:
    parser = AmiParser(expect_banner=False, max_message_bytes=64)
    (item,) = parser.feed(b"Event: A\r\nData: \xff" + b"x" * 100 + b"\r\n\r\n")
    assert item == Malformed("message longer than 64 bytes", "Event: A\nData: \ufffd" + "x" * 100)


def test_memory_stays_bounded_while_skipping() -> None:
    parser = AmiParser(expect_banner=False, max_message_bytes=64)
    for _ in range(50):
        parser.feed(b"Data: " + b"z" * 90 + b"\r\n")
        assert parser.buffered <= 2 * 64
    assert parser.feed(b"\r\n") == [Malformed("message longer than 64 bytes", "Data: " + "z" * 90)]


# ---------------------------------------------------------------- Message


def test_message_lookup_is_case_insensitive_and_keeps_the_first_value() -> None:
    msg = Message([("Event", "Hangup"), ("Variable", "A=1"), ("variable", "B=2"), ("ActionID", "x-1")])
    assert msg["EVENT"] == msg["event"] == "Hangup"
    assert msg["Variable"] == "A=1"
    assert msg.get_all("VARIABLE") == ["A=1", "B=2"]
    assert msg.get_all("missing") == []
    assert list(msg) == ["Event", "Variable", "ActionID"]
    assert len(msg) == 3
    assert "variable" in msg and "Missing" not in msg and 1 not in msg
    assert msg.get("missing") is None
    with pytest.raises(KeyError):
        msg["missing"]


@pytest.mark.parametrize(
    ("fields", "kind", "name"),
    [
        ([("Response", "Success"), ("Event", "OriginateResponse")], "event", "OriginateResponse"),
        ([("Action", "Ping"), ("Response", "Error")], "response", "Error"),
        ([("Action", "Ping")], "action", "Ping"),
        ([("Foo", "bar")], "action", ""),
    ],
)
def test_message_kind_and_name(fields: list[tuple[str, str]], kind: str, name: str) -> None:
    msg = Message(fields)
    assert (msg.kind, msg.name) == (kind, name)


def test_message_action_id_text_and_equality() -> None:
    msg = Message.of(Action="Ping", ActionID="p-1")
    assert msg.action_id == "p-1"
    assert Message.of(Action="Ping").action_id is None
    assert msg.to_text() == "Action: Ping\r\nActionID: p-1"
    assert msg == Message([("Action", "Ping"), ("ActionID", "p-1")])
    assert msg != Message([("ActionID", "p-1"), ("Action", "Ping")])
    assert msg != {"Action": "Ping", "ActionID": "p-1"}
    assert hash(msg) == hash(Message([("Action", "Ping"), ("ActionID", "p-1")]))
    assert Message([("N", 1)]).fields == (("N", "1"),)  # type: ignore[list-item]


def test_message_repr_masks_numbers() -> None:
    text = repr(Message.of(Event="Newchannel", CallerIDNum="13812345678"))
    assert text.startswith("Message(") and "138****5678" in text and "13812345678" not in text


# ---------------------------------------------------------------- encoding


def test_encode_a_mapping_and_repeated_pairs() -> None:
    assert encode_message({"Action": "Login", "Username": "张三"}) == "Action: Login\r\nUsername: 张三\r\n\r\n".encode()
    assert encode_message([("Action", "Setvar"), ("Variable", "A=1"), ("Variable", "B=2")]) == (
        b"Action: Setvar\r\nVariable: A=1\r\nVariable: B=2\r\n\r\n"
    )
    assert encode_message({"Action": 1}) == b"Action: 1\r\n\r\n"  # type: ignore[dict-item]


def test_encoded_messages_parse_back() -> None:
    fields = [("Action", "Originate"), ("Variable", "X=1"), ("Variable", "Y=2"), ("CallerID", "张三 <123>")]
    assert AmiParser(expect_banner=False).feed(encode_message(fields)) == [Message(fields)]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"Action": "x\r\nAction: Hangup"}, "AMI value must not contain CR or LF: 'x\\r\\nAction: Hangup'"),
        ({"Action": "a\nb"}, "AMI value must not contain CR or LF: 'a\\nb'"),
        ({"Action": "a\rb"}, "AMI value must not contain CR or LF: 'a\\rb'"),
        ({"Act\nion": "a"}, "AMI header name must not contain CR or LF: 'Act\\nion'"),
        ({"Bad Key": "1"}, "invalid AMI header name: 'Bad Key'"),
        ({"": "1"}, "invalid AMI header name: ''"),
        ({"Clé": "1"}, "invalid AMI header name: 'Clé'"),
        ({"Key:": "1"}, "invalid AMI header name: 'Key:'"),
        ({}, "an AMI message needs at least one field"),
    ],
)
def test_encode_refusals(fields: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError) as info:
        encode_message(fields)
    assert str(info.value) == message


def test_an_encoding_error_quotes_60_characters() -> None:
    with pytest.raises(ValueError) as info:
        encode_message({"Action": "y" * 100 + "\n"})
    assert str(info.value) == f"AMI value must not contain CR or LF: {'y' * 60!r}"


def test_an_encoding_error_masks_caller_numbers() -> None:
    with pytest.raises(ValueError) as info:
        encode_message({"CallerID": "13812345678\r\nAction: Hangup"})
    assert "13812345678" not in str(info.value) and "138****5678" in str(info.value)
