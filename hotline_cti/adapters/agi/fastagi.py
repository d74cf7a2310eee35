"""FastAGI server on asyncio protocols: Asterisk connects, runs a script, we answer within a deadline.

The protocol itself (the environment, the replies, the phase of a session, the dead-channel rule) is
:class:`~hotline_cti.adapters.agi.connection.AgiConnection`'s, without I/O; a session here only moves
its bytes and keeps its deadlines, and the script it runs is a
:class:`~hotline_cti.adapters.agi.session.ScriptSession`.

Every session has its own deadline and every awaited reply its own timeout (a
script's last command is written and the session closed without its reply), so
a stalled Asterisk peer never holds a caller in silence through us and never
holds the server. A peer that connects and closes before its environment (a
health check, a port scan) costs one closed socket.

Sessions are :class:`asyncio.Protocol` callbacks, not stream coroutines: no task,
future or timer per session or per command. Time limits are kept by one sweep over
the sessions in flight, and the descriptor table is grown before calls come (see
:func:`reserve_descriptors`). Measured against pyst2 and panoramisk in docs/fastagi.md.
"""

from __future__ import annotations

import asyncio
import fcntl
import ipaddress
import logging
import os
import resource
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import cast

from hotline_cti.adapters.agi.connection import NEED_DATA, AgiConnection, Environment
from hotline_cti.adapters.agi.protocol import AgiProtocolError, AgiReply, Hangup
from hotline_cti.adapters.agi.reload import ConfigHolder
from hotline_cti.adapters.agi.scripts import NO_QUEUES, Script, ScriptCache, select_script
from hotline_cti.adapters.agi.session import ScriptSession
from hotline_cti.callers.screen import CallerScreen
from hotline_cti.core.memo import DecisionCache
from hotline_cti.core.model import Instant
from hotline_cti.logthrottle import PeerWarnings
from hotline_cti.records.queue_live import QueueBoard

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    """Time limits in seconds."""

    env: float = 2.0  # environment block after connect
    # Scripts only set variables (Asterisk plays the prompts): a reply takes microseconds, so a
    # wait of seconds means Asterisk is in trouble and the dialplan's fallback is the better place.
    command: float = 3.0  # the reply to a command before a script's last (the last one's is not awaited)
    session: float = 10.0  # a whole session


class FastAgiServer:
    """Serves ``agi://host/route`` and ``/ivr``."""

    def __init__(
        self,
        holder: ConfigHolder,
        *,
        allow: Iterable[str] = ("127.0.0.0/8", "::1/128"),
        limits: Limits | None = None,
        clock: Callable[[], Instant] | None = None,
        screen: CallerScreen | None = None,
        queues: QueueBoard | None = None,
        own_sweep: bool = True,
    ) -> None:
        self.holder = holder
        self.screen = screen  # repeat and nuisance callers (hotline_cti.callers); None: decisions as they are
        self.queues = queues  # the live queue state diversion rules read (None: no rule ever holds)
        self.allow = [ipaddress.ip_network(a, strict=False) for a in allow]
        self._peers: dict[str, bool] = {}  # peer address -> allowed (an ipaddress check costs ~8 us)
        self.limits = limits or Limits()
        # POSIX seconds by default: a datetime made per call cost, run cold, about as much as the decision
        self.clock: Callable[[], Instant] = clock or time.time
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
        # as parsing the environment; a sweep costs a comparison per session. With own_sweep False
        # the owner calls sweep() every `tick` seconds from a timer it keeps anyway (serve's routing
        # service: its heartbeat), so the process wakes once for both.
        self._sessions: set[_Session] = set()
        self.tick = max(0.01, min(0.25, min(self.limits.env, self.limits.command, self.limits.session) / 4))
        self._own_sweep = own_sweep
        self._ticker: asyncio.TimerHandle | None = None
        # One receive buffer for all of this server's sessions on the stock loop (they share its one
        # event loop, which calls get_buffer, recv_into and buffer_updated back to back).
        self.recv_buffer = memoryview(bytearray(65536))

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

    # -- what a session asks of its server ----------------------------------------------------------
    def admit(self, session: _Session) -> bool:
        """Whether ``session``'s peer may be served; an admitted session is counted and its deadlines kept."""
        if not self._allowed(session.host):
            self.warnings.warning(
                session.host, "refused FastAGI connection from %s: not in the allow-list", session.host
            )
            return False
        self.active += 1
        self._sessions.add(session)
        if self._ticker is None and self._own_sweep and self._loop is not None:
            self._ticker = self._loop.call_later(self.tick, self._sweep)
        return True

    def script_for(self, env: dict[str, str], host: str) -> Script | None:
        """The script the environment asks for, on the table served now; None (and a warning) if unknown."""
        name = env.get("agi_network_script", "").strip("/").split("?")[0]
        # The table this session keeps to its end, even if a reload swaps the holder's.
        table = self.holder.table
        if table is not self._table:  # a reload swapped it: the old table's memos go with it
            self._table, self._decisions, self._scripts = table, DecisionCache(table), ScriptCache()
        board = self.queues
        states = board.states if board else NO_QUEUES
        script = select_script(name, env, table, self.clock(), self.screen, states, self._decisions, self._scripts)
        if script is None:
            self.warnings.warning(host, "unknown AGI script %r from %s", env.get("agi_network_script"), host)
        return script

    def session_ended(self, session: _Session, exc: BaseException | None, *, logged: bool = False) -> None:
        """Count an admitted session's end; ``exc`` (unless ``logged`` already) is warned about, throttled."""
        self._sessions.discard(session)
        self.active -= 1
        if exc is None:
            self.served += 1
            return
        self.failed += 1
        if not logged:
            # A protocol error quotes the peer's line, which may hold a caller number; the
            # throttle masks it and cuts it short, and keeps a hostile peer from flooding the log.
            text = str(exc) or type(exc).__name__
            self.warnings.warning(session.host, "FastAGI session from %s ended: %s", session.host, text)

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

    def sweep(self) -> None:
        """End every session past its deadline (the owner's call every :attr:`tick` s when not ``own_sweep``)."""
        if self._sessions and self._loop is not None:
            now = self._loop.time()
            for session in [s for s in self._sessions if now >= s.wait_until or now >= s.session_end]:
                session.expire(now)

    def _sweep(self) -> None:
        """Sweep; keep sweeping while any session is in flight."""
        assert self._loop is not None
        self.sweep()
        self._ticker = self._loop.call_later(self.tick, self._sweep) if self._sessions else None


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


class _Session(asyncio.Protocol):
    """One FastAGI connection's bytes and deadlines; what they mean is its :class:`AgiConnection`'s.

    Each read goes into the connection, and each event out of it is answered: the environment picks the
    script (the server's :meth:`FastAgiServer.script_for`), a reply gets the script's next command line, and
    the session ends when the script has none, the peer closed, or the input was not AGI. A fixed
    script's last line is written and the session ends without its reply (docs/fastagi.md).
    """

    __slots__ = ("conn", "host", "loop", "run", "server", "session_end", "transport", "wait_until")

    def __init__(self, server: FastAgiServer, loop: asyncio.AbstractEventLoop) -> None:
        self.server = server
        self.loop = loop
        self.conn = AgiConnection()
        self.run: ScriptSession | None = None
        self.transport: asyncio.Transport | None = None
        self.host = "?"
        self.wait_until = 0.0  # the environment's or the command's reply is due by then
        self.session_end = 0.0

    # -- asyncio callbacks --------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport by construction (start_server); uvloop's is not an asyncio.Transport subclass.
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.host = peer[0] if peer else "?"
        if not self.server.admit(self):
            self.transport = None  # refused: never counted, never ended
            self.conn.close()
            transport.close()
            return
        now = self.loop.time()
        limits = self.server.limits
        self.session_end = now + limits.session
        self.wait_until = now + limits.env

    def eof_received(self) -> bool:
        self.data_received(b"")  # closed before its environment, or the channel is gone
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._end(exc)

    def data_received(self, data: bytes) -> None:
        """Give the read to the connection, then take every event it makes, sending what the script says to."""
        conn, transport = self.conn, self.transport
        if transport is None:  # ended: what still comes is dropped
            return
        conn.receive_data(data)
        try:
            while True:
                event = conn.next_event()
                if isinstance(event, AgiReply):
                    run = self.run
                    assert run is not None  # a reply only comes after a command the script sent
                    line = run.after(event)
                elif event is NEED_DATA:
                    return
                elif isinstance(event, Environment):
                    script = self.server.script_for(event.env, self.host)
                    if script is None:
                        self._end(None)
                        return
                    run = self.run = ScriptSession(script)
                    line = run.first()
                elif isinstance(event, Hangup):
                    continue  # the connection keeps the dead-channel rule
                else:  # Closed: the peer went, nothing more to do
                    self._end(None)
                    return
                if line is None:  # the script is done
                    self._end(None)
                    return
                out = conn.send(line)
                if out:
                    transport.write(out)
                    if run.final:
                        # The last command sets the sentinel: res_agi runs a line it has read even when
                        # the peer then closes (it reads EOF after its reply), and the dialplan branches
                        # on the sentinel, not on us. Waiting for that reply only cost a wake-up a call.
                        self._end(None)
                        return
                    self.wait_until = self.loop.time() + self.server.limits.command
        except AgiProtocolError as exc:
            self._end(exc)
        except Exception as exc:  # a bug in one session must not take the server down
            log.exception("FastAGI session from %s failed", self.host)
            self._end(exc, logged=True)

    def expire(self, now: float) -> None:
        """The server's sweep found this session past a deadline."""
        self._end(TimeoutError("session deadline" if now >= self.session_end else "reply timeout"))

    def _end(self, exc: BaseException | None, *, logged: bool = False) -> None:
        transport = self.transport
        if transport is None:  # ended before, or refused
            return
        self.transport = None
        self.conn.close()
        self.server.session_ended(self, exc, logged=logged)
        transport.close()


class _BufferedSession(_Session, asyncio.BufferedProtocol):
    """A session reading into the server's shared buffer (the stock loop's cheaper read)."""

    __slots__ = ()

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.server.recv_buffer

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(bytes(self.server.recv_buffer[:nbytes]))
