"""One AGI session's protocol state as a sans-IO connection object, in the style of h11.

The caller moves the bytes; :class:`AgiConnection` says what they mean and what may be sent::

    conn.receive_data(data)               # what was read; b"" when the peer closed
    while (event := conn.next_event()) is not NEED_DATA:
        ...                               # Environment, AgiReply, Hangup or Closed
    out = conn.send(line)                 # the bytes to write for a command line (b"": nothing)

It owns the environment parse, the phase of the session (:class:`AgiPhase`) and the dead-channel rule:
after an inline ``HANGUP`` line, a ``511`` reply or :meth:`AgiConnection.hang_up` (classic AGI's SIGHUP),
res_agi still runs only :data:`DEAD_CHANNEL_COMMANDS` and answers ``511`` to the rest. So :meth:`send` of
another command writes nothing and the connection answers it the same ``511`` itself, and the script goes
on to the commands that still run (its variables and the ``HOTLINE_DECIDED`` sentinel, which the dialplan
branches on). A ``200 result=-1`` is a command that failed (a prompt missing on disk), not a dead
channel: the script goes on as after any reply.

No I/O, no asyncio, no clock: the FastAGI server (asyncio) and the classic AGI driver (pipes) run the
same object, and the deadlines stay with them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from hotline_cti.adapters.agi.protocol import (
    DEAD_CHANNEL_COMMANDS,
    KNOWN_REPLIES,
    AgiProtocolError,
    AgiReply,
    EnvironmentParser,
    Hangup,
    ReplyParser,
    opens_environment,
    plain_environment,
)

DEAD_REPLY = AgiReply(511, "Command Not Permitted on a dead channel or intercept routine", None, None, "511")
_DEAD_COMMANDS = tuple(c.encode() for c in DEAD_CHANNEL_COMMANDS)


class AgiPhase(Enum):
    """Where a session is."""

    ENVIRONMENT = "environment"  # reading the agi_* block Asterisk sends first
    IDLE = "idle"  # the environment is in and no command is in flight: ours to send one
    AWAITING_REPLY = "awaiting reply"  # a command is in flight
    DONE = "done"  # the peer closed, the input was not AGI, or the session was closed here


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs 4 times as much, once per session
class Environment:
    """The ``agi_*`` variables Asterisk sent before the first command."""

    env: dict[str, str]


@dataclass(frozen=True, slots=True)
class Closed:
    """The peer closed its side (:meth:`AgiConnection.receive_data` of ``b""``); nothing more will come."""


class NeedData:
    """:meth:`AgiConnection.next_event` has nothing more until more bytes are received."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA = NeedData()
CLOSED = Closed()
# The members as module names: an Enum attribute costs ~100 ns a look-up, and the phase is read on every event.
_ENVIRONMENT, _IDLE, _AWAITING, _DONE = AgiPhase.ENVIRONMENT, AgiPhase.IDLE, AgiPhase.AWAITING_REPLY, AgiPhase.DONE

Event = Environment | AgiReply | Hangup | Closed | NeedData


# An environment read in pieces is gathered as the bytes received while it can still open one, up to this
# many bytes (each piece rescans them), and parsed once; past it an EnvironmentParser takes the pieces.
PIECES_LIMIT = 2048


class AgiConnection:
    """One session: bytes in, events out, command lines checked against the phase and the dead channel.

    ``env``: the environment when something else has read it (classic AGI: pyst2); the connection then
    starts :attr:`AgiPhase.IDLE`. A reply that comes with no command in flight is kept for the next
    command; an inline ``HANGUP`` is an event at once. Input that is not AGI raises
    :class:`~hotline_cti.adapters.agi.protocol.AgiProtocolError` (quoting the line) from
    :meth:`next_event`, and the connection is then done.
    """

    __slots__ = ("_closed", "_data", "_envp", "_events", "_replies", "dead", "env", "phase")

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.phase = _ENVIRONMENT if env is None else _IDLE
        self.env: dict[str, str] = env if env is not None else {}
        self.dead = False  # the caller is gone: only DEAD_CHANNEL_COMMANDS still run
        self._data: bytes | None = None  # received, not yet parsed
        self._closed = False  # the peer sent EOF
        self._events: list[AgiReply | Hangup] = []  # parsed, not yet handed out (rarely more than one)
        # Parsers are made when a read needs them: the usual session is one environment read and one
        # whole "200 result=1" read, which the fast paths below take without either.
        self._envp: EnvironmentParser | None = None
        self._replies: ReplyParser | None = None

    # -- bytes in -------------------------------------------------------------------------------------
    def receive_data(self, data: bytes) -> None:
        """Bytes read from the peer; ``b""`` when it closed its side."""
        if not data:
            self._closed = True
        elif self._data is None:
            self._data = data
        else:
            self._data += data

    # -- events out -----------------------------------------------------------------------------------
    def next_event(self) -> Event:
        """The next event, or :data:`NEED_DATA`; raises :class:`AgiProtocolError` on input that is not AGI."""
        phase = self.phase
        if phase is _AWAITING and not self._events:
            data = self._data
            if data is None:  # a command was just sent: its reply is yet to come
                return self._closed_now() if self._closed else NEED_DATA
            if self._replies is None or not self._replies.pending:
                # The usual read: one whole known reply (a plain 200), nothing else buffered.
                known = KNOWN_REPLIES.get(data)
                if known is not None:
                    self._data = None
                    self.phase = _IDLE
                    return known
        elif phase is _ENVIRONMENT:
            return self._environment()
        elif phase is _DONE:
            return CLOSED
        try:
            self._parse_replies()
        except AgiProtocolError:
            self.phase = _DONE
            raise
        events = self._events
        if self._closed and (not events or (phase is _IDLE and isinstance(events[0], AgiReply))):
            return self._closed_now()  # what is left could only answer a command that will not be read
        if events and (phase is _AWAITING or isinstance(events[0], Hangup)):
            event = events.pop(0)
            if isinstance(event, Hangup):
                self.dead = True
                return event
            if event.code == 511:
                self.dead = True
            self.phase = _IDLE
            return event
        return NEED_DATA

    def _closed_now(self) -> Closed:
        self.phase = _DONE
        return CLOSED

    def _environment(self) -> Event:
        data = self._data
        if data is not None and self._envp is None:
            if data.endswith(b"\n\n"):
                env = plain_environment(data)  # the whole block is in: no parser made, the usual case
                if env is not None:
                    self._data = None
                    self.env = env
                    self.phase = _IDLE
                    return Environment(env)
            elif not self._closed and opens_environment(data, 0, PIECES_LIMIT):
                return NEED_DATA  # more of it to come: receive_data adds the next piece to these bytes
        self._data = None
        if data is not None:
            envp = self._envp
            if envp is None:
                envp = self._envp = EnvironmentParser()
            try:
                env = envp.feed(data)
            except AgiProtocolError:
                self.phase = _DONE
                raise
            if env is not None:
                if envp.after:  # Asterisk sends nothing between its environment and our first command
                    self.phase = _DONE
                    raise AgiProtocolError(f"data after the environment before any command: {envp.after[:80]!r}")
                self._envp = None
                self.env = env
                self.phase = _IDLE
                return Environment(env)
        if self._closed:  # closed before its environment: a health check, a port scan
            return self._closed_now()
        return NEED_DATA

    def _parse_replies(self) -> None:
        data, self._data = self._data, None
        if data is None:
            return
        replies = self._replies
        if replies is None:
            replies = self._replies = ReplyParser()
        self._events.extend(replies.feed(data))

    # -- command lines out ----------------------------------------------------------------------------
    def send(self, line: bytes) -> bytes:
        """The bytes to write for one command ``line`` (encoded, ending in a newline).

        On a dead channel a command res_agi would refuse is not written (``b""``): its ``511`` is the
        next event, as Asterisk would have answered. Only one command is in flight at a time, since
        res_agi reads the next line only after its reply (docs/fastagi.md).
        """
        if self.phase is not _IDLE:
            raise RuntimeError(f"AGI command sent while {self.phase.value}: {line[:80]!r}")
        self.phase = _AWAITING
        if self.dead and not line.upper().startswith(_DEAD_COMMANDS):
            self._events.insert(0, DEAD_REPLY)
            return b""
        return line

    def hang_up(self) -> None:
        """The caller is gone by other news than a reply (classic AGI's SIGHUP)."""
        self.dead = True

    def close(self) -> None:
        """The session is over here (its script finished, or a deadline passed)."""
        self.phase = _DONE
