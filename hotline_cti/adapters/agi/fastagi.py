"""FastAGI server on asyncio protocols: Asterisk connects, runs a script, we answer within a deadline.

Every session has its own deadline and every command its own timeout, so a
stalled Asterisk peer never holds a caller in silence through us and never
holds the server. A peer that connects and closes before its environment (a
health check, a port scan) costs one closed socket.

Sessions are :class:`asyncio.Protocol` callbacks, not stream coroutines: no task,
future or timer per session or per command. Time limits are kept by one sweep over
the sessions in flight, and the descriptor table is grown before calls come (see
:func:`reserve_descriptors`). Measured against pyst2 and panoramisk in docs/fastagi.md.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import fcntl
import ipaddress
import logging
import os
import resource
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import cast

from hotline_cti.adapters.agi.protocol import (
    KNOWN_REPLIES,
    AgiProtocolError,
    AgiReply,
    EnvironmentParser,
    ReplyParser,
)
from hotline_cti.adapters.agi.reload import ConfigHolder
from hotline_cti.adapters.agi.scripts import NO_QUEUES, FixedScript, Script, ScriptCache, replay, select_script
from hotline_cti.adapters.agi.session import ScriptSession
from hotline_cti.callers.screen import CallerScreen
from hotline_cti.core.memo import DecisionCache
from hotline_cti.logthrottle import PeerWarnings
from hotline_cti.records.queue_live import QueueBoard

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    """Time limits in seconds."""

    env: float = 2.0  # environment block after connect
    # Scripts only set variables (Asterisk plays the prompts): a reply takes microseconds, so a
    # wait of seconds means Asterisk is in trouble and the dialplan's fallback is the better place.
    command: float = 3.0  # one command's reply
    session: float = 10.0  # a whole session


class FastAgiServer:
    """Serves ``agi://host/route`` and ``/ivr``."""

    def __init__(
        self,
        holder: ConfigHolder,
        *,
        allow: Iterable[str] = ("127.0.0.0/8", "::1/128"),
        limits: Limits | None = None,
        clock: Callable[[], dt.datetime] | None = None,
        screen: CallerScreen | None = None,
        queues: QueueBoard | None = None,
    ) -> None:
        self.holder = holder
        self.screen = screen  # repeat and nuisance callers (hotline_cti.callers); None: decisions as they are
        self.queues = queues  # the live queue state diversion rules read (None: no rule ever holds)
        self.allow = [ipaddress.ip_network(a, strict=False) for a in allow]
        self._peers: dict[str, bool] = {}  # peer address -> allowed (an ipaddress check costs ~8 us)
        self.limits = limits or Limits()
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))
        # What the server remembers of the table it serves (decisions, their scripts), made anew when a
        # reload swaps the holder's table: the table is frozen and shared, its memos are this server's.
        self._table = holder.table
        self._decisions = DecisionCache(self._table)
        self._scripts = ScriptCache()
        self.warnings = PeerWarnings(log)  # per peer address: the first few a minute, then a summary
        self.active = 0
        self.served = 0
        self.failed = 0
        self._server: asyncio.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # Deadlines: one sweep over the sessions in flight every quarter of the shortest limit (at
        # most 0.25 s), not a timer per session. Arming and cancelling a timer cost about as much
        # as parsing the environment; a sweep costs a comparison per session.
        self._sessions: set[_Session] = set()
        self._tick = max(0.01, min(0.25, min(self.limits.env, self.limits.command, self.limits.session) / 4))
        self._ticker: asyncio.TimerHandle | None = None
        # One receive buffer for all of this server's sessions on the stock loop (they share its one
        # event loop, which calls get_buffer, recv_into and buffer_updated back to back).
        self._recv = memoryview(bytearray(65536))

    async def start(self, host: str = "127.0.0.1", port: int = 4573) -> int:
        """Listen; return the bound port (useful with port 0)."""
        reserve_descriptors(RESERVED_DESCRIPTORS)
        loop = self._loop = asyncio.get_running_loop()
        self.warnings.schedule = loop.call_later
        # The stock loop's plain-Protocol read allocates 256 KiB for every ~20-byte reply, so there a
        # session reads into the shared buffer; uvloop reads into its own and hands over the bytes,
        # and the buffered calls would only add two Python calls and a copy per read.
        session = _Session if type(loop).__module__.startswith("uvloop") else _BufferedSession
        self._server = await loop.create_server(lambda: session(self, loop), host, port, backlog=1024)
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        """Stop listening and wait for the server to close."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        self.warnings.schedule = None
        self.warnings.flush(force=True)  # what was suppressed is said before the server goes

    def _allowed(self, peer: str) -> bool:
        known = self._peers.get(peer)
        if known is None:
            try:
                address = ipaddress.ip_address(peer)
            except ValueError:
                known = False
            else:
                known = any(address in net for net in self.allow)
            if len(self._peers) >= 1024:  # bounded: a scan comes from many addresses
                self._peers.clear()
            self._peers[peer] = known
        return known

    def _track(self, session: _Session) -> None:
        self._sessions.add(session)
        if self._ticker is None and self._loop is not None:
            self._ticker = self._loop.call_later(self._tick, self._sweep)

    def _sweep(self) -> None:
        """End every session past its deadline; keep sweeping while any is in flight."""
        assert self._loop is not None
        now = self._loop.time()
        for session in [s for s in self._sessions if now >= s.wait_until or now >= s.session_end]:
            session._expire(now)
        self._ticker = self._loop.call_later(self._tick, self._sweep) if self._sessions else None

    def _script(self, env: dict[str, str]) -> Script | None:
        name = env.get("agi_network_script", "").strip("/").split("?")[0]
        # The table this session keeps to its end, even if a reload swaps the holder's.
        table = self.holder.table
        if table is not self._table:  # a reload swapped it: the old table's memos go with it
            self._table, self._decisions, self._scripts = table, DecisionCache(table), ScriptCache()
        board = self.queues
        states = board.states if board else NO_QUEUES
        return select_script(name, env, table, self.clock(), self.screen, states, self._decisions, self._scripts)


RESERVED_DESCRIPTORS = 4096  # sockets ready for ~4,000 sessions in flight (1,000 calls/s holding on prompts)


def reserve_descriptors(count: int) -> int:
    """Grow this process's descriptor table to ``count`` slots now, before calls come; return the size.

    Linux grows the table by doubling as sockets pass 256, 512, 1,024…, and in a process with
    threads each growth waits for an RCU grace period: under 1,000 new sessions/s that held the
    loop 5-20 ms at each step while sessions piled up (benchmarks/fastagi_bench.py, open loop).
    The table never shrinks, so taking one high slot and freeing it keeps the range ready.
    """
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    size = count if soft == resource.RLIM_INFINITY else min(count, soft)
    if size < count:
        log.warning("open-file limit %d caps the sessions in flight; raise it (ulimit -n, LimitNOFILE=)", soft)
    probe = os.open(os.devnull, os.O_RDONLY)
    try:
        # F_DUPFD takes the lowest free slot at or above the number: it never closes a descriptor in use.
        os.close(fcntl.fcntl(probe, fcntl.F_DUPFD, size - 1))
    except OSError:
        pass  # the limit is lower than it said: the table grows on demand, as without this
    finally:
        os.close(probe)
    return size


_ENV, _FIXED, _COMMANDS, _DONE = 0, 1, 2, 3


class _Session(asyncio.Protocol):
    """One FastAGI connection: environment, then one command per reply until the script ends.

    A fixed script (``route``) is walked by index while each read is one plain ``200`` reply, the
    usual case; anything else (HANGUP, 511, a split line) hands the rest of it to a
    :class:`ScriptSession`, which every other script uses from the start. Parsers are made only
    when a read needs them.
    """

    __slots__ = (
        "envp",
        "host",
        "index",
        "loop",
        "replies",
        "script",
        "server",
        "session",
        "session_end",
        "state",
        "transport",
        "wait_until",
    )

    def __init__(self, server: FastAgiServer, loop: asyncio.AbstractEventLoop) -> None:
        self.server = server
        self.loop = loop
        self.state = _ENV
        self.transport: asyncio.Transport | None = None
        self.host = "?"
        self.envp: EnvironmentParser | None = None
        self.replies: ReplyParser | None = None
        self.script: FixedScript | None = None
        self.index = 0  # the fixed script's command in flight
        self.session: ScriptSession | None = None
        self.wait_until = 0.0  # the environment's or the command's reply is due by then
        self.session_end = 0.0

    # -- asyncio callbacks --------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport by construction (start_server); uvloop's is not an asyncio.Transport subclass.
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.host = peer[0] if peer else "?"
        if not self.server._allowed(self.host):
            self.server.warnings.warning(
                self.host, "refused FastAGI connection from %s: not in the allow-list", self.host
            )
            self.state = _DONE
            transport.close()
            return
        self.server.active += 1
        now = self.loop.time()
        self.session_end = now + self.server.limits.session
        self.wait_until = now + self.server.limits.env
        self.server._track(self)

    def data_received(self, data: bytes) -> None:
        try:
            if self.state == _FIXED:
                if data in KNOWN_REPLIES:
                    self._send_fixed()
                else:
                    self._read_unusual(data)
            elif self.state == _COMMANDS:
                assert self.session is not None and self.replies is not None
                if self.session.feed(self.replies.feed(data)):
                    self._send_next()
            elif self.state == _ENV:
                if self.envp is None:
                    self.envp = EnvironmentParser()
                env = self.envp.feed(data)
                if env is not None:
                    self._begin(env)
        except AgiProtocolError as exc:
            self._end(exc)
        except Exception as exc:  # a bug in one session must not take the server down
            log.exception("FastAGI session from %s failed", self.host)
            self._end(exc, logged=True)

    def eof_received(self) -> bool:
        self._end(None)  # closed before its environment, or the channel is gone: nothing more to do
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._end(exc)

    # -- the session ---------------------------------------------------------
    def _begin(self, env: dict[str, str]) -> None:
        script = self.server._script(env)
        if script is None:
            self.server.warnings.warning(
                self.host, "unknown AGI script %r from %s", env.get("agi_network_script"), self.host
            )
            self._end(None)
            return
        if type(script) is FixedScript:
            if not script.wire:
                self._end(None)
                return
            self.script, self.state = script, _FIXED
            self._write(script.wire[0])
            return
        self.session = ScriptSession(script)
        self.replies = ReplyParser()
        self.state = _COMMANDS
        self._send_next()

    def _write(self, line: bytes) -> None:
        assert self.transport is not None
        self.transport.write(line)
        self.wait_until = self.loop.time() + self.server.limits.command

    def _read_unusual(self, data: bytes) -> None:
        """A read on the fixed path that is not a known reply: a new 200 line keeps to the path
        (and becomes known); anything else ends it."""
        if self.replies is None:
            self.replies = ReplyParser()
        events = self.replies.feed(data)
        if len(events) == 1 and type(events[0]) is AgiReply and events[0].code == 200 and not self.replies.pending:
            self._send_fixed()
            return
        self._leave_fixed()
        assert self.session is not None
        if self.session.feed(events):
            self._send_next()

    def _send_fixed(self) -> None:
        wire = self.script.wire  # type: ignore[union-attr]  # set with the _FIXED state
        index = self.index + 1
        if index < len(wire):
            self.index = index
            # _write inlined: this runs for every reply of every route session
            self.transport.write(wire[index])  # type: ignore[union-attr]
            self.wait_until = self.loop.time() + self.server.limits.command
        else:
            self._end(None)

    def _leave_fixed(self) -> None:
        """Run the rest of the fixed script, from the command in flight, as a general session."""
        assert self.script is not None
        self.session = ScriptSession(replay(self.script.lines[self.index :]))
        self.state = _COMMANDS

    def _send_next(self) -> None:
        assert self.session is not None
        while True:
            command = self.session.next_command()
            if command is None:
                self._end(None)
                return
            self._write(command.encode() + b"\n")
            if not self.session.feed(()):  # its reply may have come early
                return

    def _expire(self, now: float) -> None:
        """The server's sweep found this session past a deadline."""
        self._end(TimeoutError("session deadline" if now >= self.session_end else "reply timeout"))

    def _end(self, exc: BaseException | None, *, logged: bool = False) -> None:
        if self.state == _DONE:
            return
        self.state = _DONE
        self.server._sessions.discard(self)
        self.server.active -= 1
        if exc is None:
            self.server.served += 1
        else:
            self.server.failed += 1
            if not logged:
                # A protocol error quotes the peer's line, which may hold a caller number; the
                # throttle masks it and cuts it short, and keeps a hostile peer from flooding the log.
                text = str(exc) or type(exc).__name__
                self.server.warnings.warning(self.host, "FastAGI session from %s ended: %s", self.host, text)
        if self.transport is not None:
            self.transport.close()


class _BufferedSession(_Session, asyncio.BufferedProtocol):
    """A session reading into the server's shared buffer (the stock loop's cheaper read)."""

    __slots__ = ()

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.server._recv

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(bytes(self.server._recv[:nbytes]))
