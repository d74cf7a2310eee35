"""FastAGI server on asyncio streams: Asterisk connects, runs a script, we answer within a deadline.

Every session has its own deadline and every command its own timeout, so a
stalled Asterisk peer never holds a caller in silence through us and never
holds the server. A peer that connects and closes before its environment (a
health check, a port scan) costs one closed socket.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from hotline_cti.adapters.agi.protocol import AgiProtocolError, EnvironmentParser, ReplyParser
from hotline_cti.adapters.agi.reload import ConfigHolder
from hotline_cti.adapters.agi.scripts import RatingSink, Script, select_script
from hotline_cti.adapters.agi.session import ScriptSession
from hotline_cti.privacy import mask_numbers

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    """Time limits in seconds."""

    env: float = 2.0  # environment block after connect
    command: float = 10.0  # one command's reply (a prompt plays for seconds)
    session: float = 60.0  # a whole session, menus included


class FastAgiServer:
    """Serves ``agi://host/route``, ``/ivr`` and ``/survey``."""

    def __init__(
        self,
        holder: ConfigHolder,
        *,
        allow: Iterable[str] = ("127.0.0.0/8", "::1/128"),
        limits: Limits | None = None,
        record_rating: RatingSink | None = None,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self.holder = holder
        self.allow = [ipaddress.ip_network(a, strict=False) for a in allow]
        self.limits = limits or Limits()
        self.record_rating = record_rating or (lambda call_id, rating, at: None)
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self.active = 0
        self.served = 0
        self.failed = 0
        self._server: asyncio.Server | None = None

    async def start(self, host: str = "127.0.0.1", port: int = 4573) -> int:
        """Listen; return the bound port (useful with port 0)."""
        self._server = await asyncio.start_server(self._handle, host, port, limit=65536, backlog=1024)
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        """Stop listening and wait for the server to close."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def _allowed(self, peer: str) -> bool:
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(address in net for net in self.allow)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        host = peer[0] if peer else "?"
        if not self._allowed(host):
            log.warning("refused FastAGI connection from %s: not in the allow-list", host)
            writer.close()
            return
        self.active += 1
        try:
            async with asyncio.timeout(self.limits.session):
                await self._session(reader, writer)
            self.served += 1
        except (AgiProtocolError, TimeoutError, OSError) as exc:
            self.failed += 1
            # A protocol error quotes the peer's line, which may hold a caller number.
            log.warning("FastAGI session from %s ended: %s", host, mask_numbers(str(exc)) or type(exc).__name__)
        except Exception:  # a bug in one session must not take the server down
            self.failed += 1
            log.exception("FastAGI session from %s failed", host)
        finally:
            self.active -= 1
            writer.close()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        parser = EnvironmentParser()
        env = None
        async with asyncio.timeout(self.limits.env):
            while env is None:
                data = await reader.read(4096)
                if not data:
                    return  # closed before its environment: nothing to do
                env = parser.feed(data)
        script = self._script(env)
        if script is None:
            log.warning("unknown AGI script %r", env.get("agi_network_script"))
            return
        await self._run(script, reader, writer)

    def _script(self, env: dict[str, str]) -> Script | None:
        name = env.get("agi_network_script", "").strip("/").split("?")[0]
        # The table this session keeps to its end, even if a reload swaps the holder's.
        return select_script(name, env, self.holder.table, self.clock(), self.record_rating)

    async def _run(self, script: Script, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        replies = ReplyParser()
        session = ScriptSession(script)
        while (command := session.next_command()) is not None:
            writer.write(command.encode() + b"\n")
            await writer.drain()
            async with asyncio.timeout(self.limits.command):
                answered = session.feed(())  # a reply may already be queued
                while not answered:
                    data = await reader.read(4096)
                    if not data:
                        return  # channel gone
                    answered = session.feed(replies.feed(data))
