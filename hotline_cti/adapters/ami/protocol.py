"""Sans-IO framing of the Asterisk Manager Interface (AMI) wire format.

An AMI stream starts with one banner line (``Asterisk Call Manager/9.0.0``),
then carries messages: ``Key: Value`` lines ending in CRLF, a blank line
ending the message. Bytes are buffered and decoded only once a whole message
has arrived, so a Chinese caller name split between two TCP reads (or in the
middle of one UTF-8 character) decodes correctly.

Nothing here does I/O: ``AmiParser.feed(bytes)`` returns what the bytes
completed, and ``encode_message`` turns fields into bytes. Garbage never
raises; it comes back as a ``Malformed`` item naming the reason and the
offending text, so the caller can log it and carry on. The one documented
error is ``AmiProtocolError``, raised when the first line of a stream is not
an AMI banner (the port is not an Asterisk manager at all).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Literal, overload

from hotline_cti.privacy import mask_numbers

__all__ = [
    "BANNER_PREFIX",
    "DEFAULT_MAX_MESSAGE_BYTES",
    "AmiParser",
    "AmiProtocolError",
    "Banner",
    "Malformed",
    "Message",
    "ParsedItem",
    "encode_message",
    "mask_numbers",
]

BANNER_PREFIX = "Asterisk Call Manager/"
# Real events stay well under 8 KiB; a QueueStatus item with many variables
# can reach a few KiB. Anything near this bound is garbage or an attack.
DEFAULT_MAX_MESSAGE_BYTES = 256 * 1024
EXCERPT_CHARS = 300

MessageKind = Literal["event", "response", "action"]


class AmiProtocolError(Exception):
    """The stream is not AMI at all (bad banner); the connection must be dropped."""


@dataclass(frozen=True, slots=True)
class Banner:
    """The greeting line Asterisk sends first, e.g. ``Asterisk Call Manager/9.0.0``."""

    version: str


@dataclass(frozen=True, slots=True)
class Malformed:
    """A message that could not be parsed; skipped by the caller, never fatal.

    ``text`` is the offending text (bounded, possibly truncated) for the log;
    ``fields`` holds the lines that did parse, so a caller can still find an
    ``ActionID`` and fail the matching action instead of letting it time out.
    """

    reason: str
    text: str
    fields: tuple[tuple[str, str], ...] = ()

    def get(self, key: str) -> str | None:
        """First value of ``key`` among the lines that parsed (case-insensitive)."""
        lowered = key.lower()
        for name, value in self.fields:
            if name.lower() == lowered:
                return value
        return None


class Message(Mapping[str, str]):
    """One AMI message: ordered ``(key, value)`` pairs, looked up case-insensitively.

    Asterisk compares header names case-insensitively and repeats some of
    them (``Variable``, ``ChanVariable``, ``Output``): ``msg[key]`` returns the
    first value, ``msg.get_all(key)`` every value in order.
    """

    __slots__ = ("_index", "fields")

    def __init__(self, fields: Iterable[tuple[str, str]]) -> None:
        self.fields: tuple[tuple[str, str], ...] = tuple((str(k), str(v)) for k, v in fields)
        # The first value of a repeated key wins: built from the end, earlier pairs overwrite later ones.
        self._index = {key.lower(): value for key, value in reversed(self.fields)}

    @classmethod
    def _of_parsed(cls, fields: list[tuple[str, str]]) -> Message:
        """A message of pairs the parser made (already ``str``): without ``__init__``'s per-field conversion."""
        message = cls.__new__(cls)
        message.fields = tuple(fields)
        message._index = {key.lower(): value for key, value in reversed(message.fields)}
        return message

    @classmethod
    def of(cls, **fields: str) -> Message:
        """Build a message from keyword arguments (handy in tests)."""
        return cls(fields.items())

    def __getitem__(self, key: str) -> str:
        return self._index[key.lower()]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._index

    def __iter__(self) -> Iterator[str]:
        seen: set[str] = set()
        for key, _ in self.fields:
            if key.lower() not in seen:
                seen.add(key.lower())
                yield key

    def __len__(self) -> int:
        return len(self._index)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Message):
            return self.fields == other.fields
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.fields)

    def __repr__(self) -> str:
        return f"Message({mask_numbers(repr(dict(self.fields)))})"

    def get_all(self, key: str) -> list[str]:
        """Every value of a repeated header, in wire order."""
        lowered = key.lower()
        return [value for name, value in self.fields if name.lower() == lowered]

    @property
    def kind(self) -> MessageKind:
        """``event`` if it has an Event header (OriginateResponse has both), else response / action."""
        if "event" in self._index:
            return "event"
        if "response" in self._index:
            return "response"
        return "action"

    @property
    def name(self) -> str:
        """Event name, response status (Success / Error / Goodbye) or action name."""
        for key in ("event", "response", "action"):
            if key in self._index:
                return self._index[key]
        return ""

    @property
    def action_id(self) -> str | None:
        """The ``ActionID`` header, if any."""
        return self._index.get("actionid")

    def to_text(self) -> str:
        """The message as AMI text (CRLF line ends, no trailing blank line)."""
        return "\r\n".join(f"{k}: {v}" for k, v in self.fields)


ParsedItem = Banner | Message | Malformed

# A header name: printable ASCII without spaces or the colon (Asterisk uses
# letters, digits and '-'; be a little more liberal than that).
_KEY_RE = re.compile(r"^[!-9;-~]+$")


def _split_field(line: str) -> tuple[str, str] | None:
    key, sep, value = line.partition(":")
    if not sep:
        return None
    key = key.strip()
    if not _KEY_RE.match(key):
        return None
    # Asterisk skips every blank after the colon (ast_skip_blanks).
    return key, value.lstrip(" \t")


# Every line of a message as _split_field reads it, in one pass: whitespace around a header name of _KEY_RE's
# characters (str.strip's set: re's \s for str is the same), the first ':' (no name character), then blanks and tabs.
_FIELD_LINE = re.compile(r"^[^\S\n]*([!-9;-~]+)[^\S\n]*:[ \t]*(.*)$", re.MULTILINE)


def _parse_text(text: str) -> Message | Malformed:
    fields = _FIELD_LINE.findall(text)
    if len(fields) != text.count("\n") + 1:  # a line is not a header: read line by line to name it
        return _parse_lines(text)
    return _message(fields, text)


def _parse_lines(text: str) -> Message | Malformed:
    fields: list[tuple[str, str]] = []
    bad: str | None = None
    for line in text.split("\n"):
        field = _split_field(line)
        if field is None:
            bad = bad if bad is not None else line
            continue
        fields.append(field)
    if bad is not None:
        return Malformed(f"line without 'Key: Value': {bad[:80]!r}", text[:EXCERPT_CHARS], tuple(fields))
    return _message(fields, text)


def _message(fields: list[tuple[str, str]], text: str) -> Message | Malformed:
    """The message of every header line of ``text``, unless it has no Event, Response or Action header."""
    message = Message._of_parsed(fields)
    if "event" in message._index or "response" in message._index or "action" in message._index:
        return message
    return Malformed("no Event, Response or Action header", text[:EXCERPT_CHARS], tuple(fields))


class AmiParser:
    """Incremental AMI parser: feed bytes as they arrive, get whole messages back.

    ``expect_banner`` is true on the client side (Asterisk greets first) and
    false on the server side. Memory stays bounded by ``max_message_bytes``:
    a longer message is dropped up to its terminating blank line and reported
    as one ``Malformed`` item.
    """

    def __init__(self, *, expect_banner: bool = True, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
        if max_message_bytes < 64:
            raise ValueError("max_message_bytes must be at least 64")
        self._expect_banner = expect_banner
        self._max = max_message_bytes
        self._buf = bytearray()
        self._lines: list[bytes] = []
        self._size = 0
        self._skipping = False
        self._skip_excerpt = b""
        self._partial_dropped = False  # the start of the current line was discarded (oversized)

    @property
    def buffered(self) -> int:
        """Bytes held for incomplete messages (bounded by about twice ``max_message_bytes``)."""
        return len(self._buf) + self._size

    def feed(self, data: bytes) -> list[ParsedItem]:
        """Consume ``data`` and return the banner/messages/malformed items it completed.

        Raises ``AmiProtocolError`` only when a banner is expected and the
        first line is not one.
        """
        self._buf += data
        out: list[ParsedItem] = []
        buf = self._buf
        pos = 0
        while True:
            nl = buf.find(b"\n", pos)
            if nl < 0:
                break
            if not (self._lines or self._skipping or self._expect_banner or self._partial_dropped):
                # At a message's start with a whole line ahead (a lone partial line is not searched again).
                pos = self._whole_messages(buf, pos, out)
                nl = buf.find(b"\n", pos)
                if nl < 0:
                    break
            line = bytes(buf[pos:nl])
            pos = nl + 1
            if line.endswith(b"\r"):
                line = line[:-1]
            nonempty = bool(line) or self._partial_dropped
            self._partial_dropped = False
            if self._expect_banner:
                self._expect_banner = False
                out.append(self._banner(line))
                continue
            if self._skipping:
                if not nonempty:
                    out.append(self._end_skip())
                continue
            if not nonempty:
                if self._lines:
                    out.append(self._finish())
                continue  # stray blank lines between messages are harmless
            if self._size + len(line) + 1 > self._max:
                self._start_skip(line)
                continue
            self._lines.append(line)
            self._size += len(line) + 1
        del buf[:pos]
        # A partial line longer than the bound: drop it now to keep memory
        # bounded; remember that the line was not empty.
        pending = len(buf) - (1 if buf.endswith(b"\r") else 0)
        if pending > 0 and self._size + pending > self._max:
            if not self._skipping:
                self._start_skip(bytes(buf[:EXCERPT_CHARS]))
            elif not self._skip_excerpt:
                self._skip_excerpt = bytes(buf[:EXCERPT_CHARS])
            keep_cr = buf.endswith(b"\r")
            buf.clear()
            if keep_cr:
                buf += b"\r"
            self._partial_dropped = True
        return out

    def _whole_messages(self, buf: bytearray, pos: int, out: list[ParsedItem]) -> int:
        """Parse the whole messages that start at ``pos`` at once; return where the line-by-line reading goes on.

        What the line-by-line loop would make of them, found with byte searches instead of a Python step a
        line. Only at a message's start with nothing pending, and only for a message that cannot reach the
        bound (its bytes with CRs are at least the lines the bound counts), skipping stray blank lines between
        them: anything else (a partial message, a longer message) is left to the loop.
        """
        limit = self._max
        # Where the next "\n\r\n" and "\n\n" are (-1: none in the rest of the buffer; below pos: to be found),
        # kept across messages so each byte is searched once per call whatever the input: an LF-only stream
        # searched afresh for a CRLF at every message would cost time quadratic in the read.
        crlf = lf = -2
        while True:
            if buf.startswith(b"\n", pos):  # a stray blank line between messages: skipped, as the loop does
                pos += 1
                continue
            if buf.startswith(b"\r\n", pos):
                pos += 2
                continue
            if -1 != crlf < pos:
                crlf = buf.find(b"\n\r\n", pos)
            if -1 != lf < pos:
                lf = buf.find(b"\n\n", pos)
            # The last header line's newline, a blank line after it (Asterisk ends every line in CRLF).
            end = crlf if lf < 0 or 0 <= crlf < lf else lf
            if end < 0 or end - pos + 1 > limit:
                return pos
            text = bytes(buf[pos:end]).replace(b"\r\n", b"\n")
            if text.endswith(b"\r"):
                text = text[:-1]
            out.append(_parse_text(text.decode("utf-8", errors="replace")))
            pos = end + (2 if end == lf else 3)

    def _banner(self, line: bytes) -> Banner:
        text = line.decode("utf-8", errors="replace").strip()
        if not text.startswith(BANNER_PREFIX):
            raise AmiProtocolError(f"expected an AMI banner {BANNER_PREFIX!r}..., got {text[:80]!r}")
        return Banner(text[len(BANNER_PREFIX) :])

    def _finish(self) -> Message | Malformed:
        raw = b"\n".join(self._lines)
        self._lines = []
        self._size = 0
        # Decoded once per whole message: no multi-byte character is ever cut.
        return _parse_text(raw.decode("utf-8", errors="replace"))

    def _start_skip(self, line: bytes) -> None:
        head = b"\n".join([*self._lines, line])
        self._skip_excerpt = head[:EXCERPT_CHARS]
        self._lines = []
        self._size = 0
        self._skipping = True

    def _end_skip(self) -> Malformed:
        self._skipping = False
        text = self._skip_excerpt.decode("utf-8", errors="replace")
        self._skip_excerpt = b""
        return Malformed(f"message longer than {self._max} bytes", text)


def _check(text: str, what: str) -> str:
    if "\r" in text or "\n" in text:
        # A CR/LF inside a value would end the line early and let caller data
        # (a name typed into an IVR, say) inject AMI headers or actions.
        raise ValueError(f"AMI {what} must not contain CR or LF: {mask_numbers(text[:60])!r}")
    return text


@overload
def encode_message(fields: Mapping[str, str]) -> bytes: ...
@overload
def encode_message(fields: Iterable[tuple[str, str]]) -> bytes: ...
def encode_message(fields: Mapping[str, str] | Iterable[tuple[str, str]]) -> bytes:
    """Serialise fields as one AMI message (CRLF lines plus the blank line).

    Raises ``ValueError`` if a key is not a valid header name or a key/value
    contains CR or LF.
    """
    pairs = fields.items() if isinstance(fields, Mapping) else fields
    parts: list[str] = []
    for key, value in pairs:
        _check(key, "header name")
        if not _KEY_RE.match(key):
            raise ValueError(f"invalid AMI header name: {key!r}")
        parts.append(f"{key}: {_check(str(value), 'value')}\r\n")
    if not parts:
        raise ValueError("an AMI message needs at least one field")
    parts.append("\r\n")
    return "".join(parts).encode("utf-8")
