"""Sans-IO AGI protocol: the environment block and command replies, parsed from bytes.

Bytes are buffered and decoded one whole line at a time, so a reply split across
TCP reads, even inside a UTF-8 Chinese caller name, decodes correctly. Parsers
never block and never do I/O; the FastAGI server and the classic AGI driver
feed them whatever they read.

Reply shapes handled (from Asterisk's res_agi and its users' reports):
``200 result=1 (value) endpos=1234``; ``200 result= (timeout)`` with an empty
value; ``(hangup)`` as a real variable value; ``200 result=-2`` from EXEC (no
such application); ``100 result=0 Trying...`` before the real reply; ``510``
unknown command; ``511`` dead channel; ``520`` single-line or as a ``520-``
block ending ``520 End of proper usage.``; an inline ``HANGUP`` line before the
real reply.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Commands res_agi still runs on a dead channel (after 511 or HANGUP); it answers 511 to the rest.
DEAD_CHANNEL_COMMANDS = ("GET VARIABLE", "GET FULL VARIABLE", "SET VARIABLE", "VERBOSE", "DATABASE", "EXEC", "NOOP")
MAX_LINE = 16384  # bytes; Asterisk's own AGI buffer is 2 KiB, anything longer is a broken peer


class AgiProtocolError(ValueError):
    """The peer sent something that is not AGI; the message quotes the offending line."""


@dataclass(frozen=True, slots=True)
class AgiReply:
    """One final reply to a command."""

    code: int  # 200, 510, 511 or 520
    result: str  # the text after result= ('' for a timeout), or the status text for 5xx
    data: str | None  # the text in parentheses, if any
    endpos: int | None
    raw: str

    @property
    def ok(self) -> bool:
        """200 with a result that is not -1/-2 (failure / no such application)."""
        return self.code == 200 and self.result not in ("-1", "-2")

    @property
    def dead_channel(self) -> bool:
        """511: the channel is gone; only GET/SET VARIABLE, VERBOSE, DATABASE, EXEC and NOOP still work."""
        return self.code == 511


@dataclass(frozen=True, slots=True)
class Hangup:
    """Asterisk's inline notice that the caller hung up (sent before the real reply)."""


_REPLY = re.compile(r"^200 result=(-?\d*)(?: \((.*)\))?(?: endpos=(-?\d+))?\s*$")


def parse_reply_line(line: str) -> AgiReply:
    """Parse one complete ``200``/``510``/``511``/``520`` line; raise :class:`AgiProtocolError` otherwise."""
    if line.startswith("200"):
        match = _REPLY.match(line)
        if match is None:
            raise AgiProtocolError(f"malformed AGI reply: {line!r}")
        endpos = match.group(3)
        return AgiReply(200, match.group(1), match.group(2), int(endpos) if endpos else None, line)
    if line[:3] in ("510", "511", "520") and line[3:4] in (" ", ""):
        return AgiReply(int(line[:3]), line[4:], None, None, line)
    raise AgiProtocolError(f"not an AGI reply: {line!r}")


class _LineBuffer:
    """Whole lines out of arbitrary chunks, with a bound on line length."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf: bytearray | None = None  # made on first use: the one-read fast paths never need it

    @property
    def pending(self) -> bool:
        """Bytes of an unfinished line are buffered."""
        return bool(self._buf)

    def lines(self, data: bytes) -> list[str]:
        if self._buf is None:
            self._buf = bytearray()
        self._buf += data
        out = []
        while True:
            cut = self._buf.find(b"\n")
            if cut < 0:
                break
            raw = bytes(self._buf[:cut]).rstrip(b"\r")
            del self._buf[: cut + 1]
            if len(raw) > MAX_LINE:
                raise AgiProtocolError(f"line longer than {MAX_LINE} bytes: {raw[:80]!r}…")
            out.append(raw.decode("utf-8", errors="replace"))
        if len(self._buf) > MAX_LINE:
            raise AgiProtocolError(f"line longer than {MAX_LINE} bytes without a newline: {bytes(self._buf[:80])!r}…")
        return out


_ENV_LINE = re.compile(r"^(agi_\w+): (.*)\n", re.ASCII | re.MULTILINE)


def plain_environment(data: bytes) -> dict[str, str] | None:
    """The environment from one read holding the whole block as plain ``agi_name: value`` lines.

    None for anything else (a partial block, CR, odd keys): :class:`EnvironmentParser` then takes
    it line by line, which gives the same result or names the offending line. This is its fast path.
    """
    if not data.endswith(b"\n\n") or len(data) > MAX_LINE or b"\r" in data:
        return None
    text = data.decode("utf-8", errors="replace")
    pairs = _ENV_LINE.findall(text)
    # every line but the closing empty one matched: ASCII keys are a subset of what the line path accepts
    return dict(pairs) if len(pairs) == text.count("\n") - 1 else None


def opens_environment(raw: bytes | bytearray, seen: int = 0, limit: int = MAX_LINE) -> bool:
    """Whether ``raw`` can still be the start of a plain environment block, not yet ended.

    ``agi_`` first, no CR (Asterisk sends none; the line path strips it), no empty line yet, at most ``limit``
    bytes. ``seen``: how many of its bytes were looked at before (the search resumes there, so pieces cost
    their own length). Whatever fails goes line by line, which gives the same result or names the line.
    """
    return (
        len(raw) <= limit
        and raw.find(b"\n\n", seen - 1 if seen else 0) < 0  # the last piece may end one begun before
        and raw.find(b"\r", seen) < 0
        and (seen >= 4 or raw[:4] == b"agi_"[: len(raw)])
    )


class EnvironmentParser:
    """The ``agi_*`` block Asterisk sends first, ended by an empty line.

    Asterisk writes the block a line at a time (``ast_agi_send`` per variable), and on loopback each
    write is its own segment, so a controller beside it reads the block in up to one piece per line.
    The pieces are kept as bytes until the empty line arrives and the block is parsed once (parsing
    each piece as it came cost 1.7 times as much). What cannot open a block (a port scan, HTTP),
    CR line ends and blocks over 16 KiB go line by line at once, which gives the same result or
    names the offending line.
    """

    __slots__ = ("_lines", "_raw", "done", "env")

    def __init__(self) -> None:
        self._raw: bytearray | None = None  # the pieces so far, from the second one
        self._lines: _LineBuffer | None = None  # set once parsing line by line
        self.env: dict[str, str] = {}
        self.done = False

    @property
    def after(self) -> bytes:
        """The start of a line after the block's empty line, not yet ended (whole lines there are refused)."""
        lines = self._lines
        return bytes(lines._buf) if lines is not None and lines._buf else b""

    def feed(self, data: bytes) -> dict[str, str] | None:
        """Feed bytes; return the environment once its empty line has arrived."""
        if self.done or self._lines is not None:
            return self._feed_lines(data)
        raw = self._raw
        if raw is None:
            env = plain_environment(data)  # the whole block in one read, the usual case
            if env is not None:
                self.env, self.done = env, True
                return env
            raw = self._raw = bytearray()
        seen = len(raw)
        raw += data
        if opens_environment(raw, seen):
            return None
        self._raw = None
        block = bytes(raw)
        env = plain_environment(block)  # the block and nothing after it, plain
        if env is not None:
            self.env, self.done = env, True
            return env
        return self._feed_lines(block)

    def _feed_lines(self, data: bytes) -> dict[str, str] | None:
        if self._lines is None:
            self._lines = _LineBuffer()
        for line in self._lines.lines(data):
            if self.done:
                raise AgiProtocolError(f"data after the environment before any command: {line!r}")
            if line == "":
                self.done = True
                continue
            key, sep, value = line.partition(": ")
            if not sep or not key.startswith("agi_") or not key.replace("_", "").isalnum():
                raise AgiProtocolError(f"not an AGI environment line: {line!r}")
            self.env[key] = value
        return self.env if self.done else None


# A read holding exactly one whole 200 line -> its parse, shared by every session (and read by the
# FastAGI server's fixed-script path). Most replies repeat ("200 result=1"); AgiReply is frozen.
KNOWN_REPLIES: dict[bytes, AgiReply] = {}
_KNOWN_MAX = 1024  # bounded: endpos and DTMF values vary


class ReplyParser:
    """Replies to commands: yields :class:`AgiReply` and :class:`Hangup` events in order."""

    __slots__ = ("_lines", "_usage")

    def __init__(self) -> None:
        self._lines = _LineBuffer()
        self._usage: list[str] | None = None  # inside a 520- block

    @property
    def pending(self) -> bool:
        """Part of a reply is buffered: an unfinished line or an open ``520-`` block."""
        return self._usage is not None or self._lines.pending

    def feed(self, data: bytes) -> list[AgiReply | Hangup]:
        """Feed bytes; return the complete events they finish."""
        # Fast path: one whole line and nothing buffered, the usual read.
        if self._usage is None and not self._lines.pending:
            known = KNOWN_REPLIES.get(data)
            if known is not None:
                return [known]
            if data.endswith(b"\n") and data.count(b"\n") == 1:
                events = self._feed(data)
                if len(events) == 1 and len(KNOWN_REPLIES) < _KNOWN_MAX:
                    event = events[0]
                    if isinstance(event, AgiReply) and event.code == 200:
                        KNOWN_REPLIES[data] = event
                return events
        return self._feed(data)

    def _feed(self, data: bytes) -> list[AgiReply | Hangup]:
        events: list[AgiReply | Hangup] = []
        for line in self._lines.lines(data):
            if self._usage is not None:
                self._usage.append(line)
                if line.startswith("520 "):
                    raw = "\n".join(self._usage)
                    self._usage = None
                    events.append(AgiReply(520, raw.partition("\n")[0][4:], None, None, raw))
                continue
            if line == "HANGUP":
                events.append(Hangup())
            elif line.startswith("520-"):
                self._usage = [line]
            elif line.startswith("100"):
                continue  # "100 result=0 Trying..." precedes the real reply
            elif line == "":
                continue
            else:
                events.append(parse_reply_line(line))
        return events


def quote_arg(value: str) -> str:
    """Quote one AGI command argument; newlines are refused since they would end the command."""
    if "\n" in value or "\r" in value:
        raise ValueError("an AGI argument cannot contain a line break")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
