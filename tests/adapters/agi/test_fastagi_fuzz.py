"""Server-level fuzz: whatever a peer sends, in whatever chunks, closing whenever, the server survives.

One FastAgiServer runs on its own event loop in a thread for the whole module; each example talks to it
over a plain TCP socket. After every example no session is left open and a good session still works.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hotline_cti import channel_vars as cv
from hotline_cti.adapters.agi import fastagi
from hotline_cti.adapters.agi.connection import AgiConnection
from hotline_cti.adapters.agi.fastagi import FastAgiServer, Limits
from hotline_cti.adapters.agi.protocol import AgiReply, Hangup, plain_environment
from hotline_cti.adapters.agi.reload import ConfigHolder
from hotline_cti.adapters.agi.scripts import FixedScript, route_script
from hotline_cti.adapters.agi.session import ScriptSession
from hotline_cti.core.routing import decide
from simulators.agi_peer import PeerChannel, run_fastagi
from tests.paths import REPO

ENV = b"agi_network: yes\nagi_network_script: route\nagi_callerid: 13812345678\nagi_arg_1: 12315\n\n"
TOKENS = [
    b"200 result=1\n",
    b"200 result=0 endpos=8000\n",
    b"200 result= (timeout)\n",
    b"200 result=1 (hangup)\n",
    b"200 result=-1 endpos=0\n",
    b"100 result=0 Trying...\n",
    b"HANGUP\n",
    b"510 Invalid or unknown command\n",
    b"511 Command Not Permitted on a dead channel or intercept routine\n",
    b"520-Invalid command syntax.  Proper usage follows:\n",
    b"520 End of proper usage.\n",
    "agi_calleridname: 张三\n".encode(),
    "张".encode()[:2],
    b"agi_network_script: ivr\n",
    b"agi_network_script: survey\n",
    b"\n",
    b"\r\n",
    b"\x00\xff",
    b"x" * 20000,
]


@dataclass
class Running:
    server: FastAgiServer
    port: int
    loop: asyncio.AbstractEventLoop
    errors: list[logging.LogRecord]


class _Collect(logging.Handler):
    def __init__(self, into: list[logging.LogRecord]) -> None:
        super().__init__(logging.ERROR)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(record)


@pytest.fixture(scope="module")
def running() -> Iterator[Running]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = FastAgiServer(
        ConfigHolder(REPO / "merger_config/guangxi.yaml"), limits=Limits(env=1.0, command=1.0, session=3.0)
    )
    port = asyncio.run_coroutine_threadsafe(server.start("127.0.0.1", 0), loop).result(10)
    errors: list[logging.LogRecord] = []
    handler = _Collect(errors)
    logger = logging.getLogger("hotline_cti.adapters.agi.fastagi")
    logger.addHandler(handler)
    try:
        yield Running(server, port, loop, errors)
    finally:
        logger.removeHandler(handler)
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def _settle(server: FastAgiServer) -> None:
    """Wait (bounded) for the server to finish every session the example opened."""
    deadline = time.monotonic() + 10
    while server.active and time.monotonic() < deadline:
        time.sleep(0.001)


def _good_session(r: Running) -> None:
    channel = PeerChannel({"agi_callerid": "13812345678"})
    coro = run_fastagi("127.0.0.1", r.port, "route", channel, args=["12315", ""])
    status = asyncio.run_coroutine_threadsafe(coro, r.loop).result(10)
    assert status == "SUCCESS" and channel.variables[cv.DECIDED] == "1"
    assert channel.variables[cv.TARGET] == "gx-l12315"


pieces = st.lists(st.one_of(st.sampled_from(TOKENS), st.binary(max_size=64)), max_size=12)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    with_env=st.booleans(),
    body=pieces,
    chunk=st.integers(min_value=1, max_value=64),
    read_first=st.booleans(),
    abort=st.booleans(),
)
def test_any_bytes_any_chunks_any_close(
    running: Running, with_env: bool, body: list[bytes], chunk: int, read_first: bool, abort: bool
) -> None:
    data = (ENV if with_env else b"") + b"".join(body)
    with socket.create_connection(("127.0.0.1", running.port), timeout=5) as sock:
        try:
            for i in range(0, len(data), chunk):
                sock.sendall(data[i : i + chunk])
            if read_first:  # take what the server says before leaving
                sock.settimeout(0.05)
                try:
                    while sock.recv(65536):
                        pass
                except TimeoutError:
                    pass
        except OSError:
            pass  # the server already dropped us: that is allowed
        if abort:  # RST instead of FIN
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    _settle(running.server)
    assert running.server.active == 0
    assert running.errors == [], [r.getMessage() for r in running.errors]
    _good_session(running)  # and the next caller is served as if nothing happened
    assert running.server.active == 0


# One final reply per command, in the shapes res_agi sends, each as the chunks the peer writes.
REPLIES: list[list[bytes]] = [
    [b"200 result=1\n"],
    [b"HANGUP\n", b"200 result=1\n"],
    [b"HANGUP\n200 result=1\n"],
    [b"100 result=0 Trying...\n", b"200 result=1\n"],
    [b"511 Command Not Permitted on a dead channel or intercept routine\n"],
    [b"200 result=-1 endpos=0\n"],
    [b"200 res", b"ult=1\n"],
    [b"520-Invalid command syntax.  Proper usage follows:\n", b"Usage: x\n", b"520 End of proper usage.\n"],
    ["200 result=1 (张)\n".encode()[:17], "200 result=1 (张)\n".encode()[17:]],  # split inside a character
]
reply = st.one_of(
    st.sampled_from(REPLIES),
    st.integers(min_value=0, max_value=10**6).map(lambda pos: [f"200 result=0 endpos={pos}\n".encode()]),
)


def _reference(lines: tuple[str, ...], replies: list[list[bytes]]) -> list[str]:
    """What the sans-IO connection and script send for these replies, each reply one whole read; the last
    command's reply is not waited for."""
    conn, session, sent = AgiConnection({}), ScriptSession(FixedScript.of(lines)), []
    line = session.first()
    while line is not None:
        if out := conn.send(line):  # b"": refused on a dead channel, answered 511 by the connection
            sent.append(out.decode().removesuffix("\n"))
            if session.final:
                break
            chunks = replies[len(sent) - 1] if len(sent) <= len(replies) else [b"200 result=1\n"]
            conn.receive_data(b"".join(chunks))
        event = conn.next_event()
        while isinstance(event, Hangup):
            event = conn.next_event()
        assert isinstance(event, AgiReply)  # each whole read answers the command in flight
        line = session.after(event)
    return sent


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    dialled=st.sampled_from(["12345", "12300", "12315"]),
    before=st.integers(min_value=0, max_value=3),
    replies=st.lists(reply, max_size=4),
)
def test_route_fast_path_sends_what_the_general_session_sends(
    running: Running, dialled: str, before: int, replies: list[list[bytes]]
) -> None:
    """The server over TCP, whatever the replies (HANGUP, 511, 100, 520 blocks, lines split across reads or
    reads coalesced), sends exactly the commands its connection and script send with each reply whole.

    ``before`` commands go ahead of the route's MSet (as SET VARIABLEs do for a value MSet cannot carry),
    so replies are read between commands; the last one's is not awaited and may meet a closed socket.
    """
    env = f"agi_network: yes\nagi_network_script: route\nagi_callerid: 13812345678\nagi_arg_1: {dialled}\n\n"
    parsed = plain_environment(env.encode())
    assert parsed is not None
    route = route_script(parsed, running.server.holder.table, running.server.clock(), decide)
    script = FixedScript.of(tuple(f"SET VARIABLE HOTLINE_NOTE_{i} a,{i}" for i in range(before)) + route.lines)
    sent: list[str] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fastagi, "select_script", lambda *args: script)
        with socket.create_connection(("127.0.0.1", running.port), timeout=5) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # each chunk its own segment
            sock.sendall(env.encode())
            lines = sock.makefile("rb")
            while line := _readline(lines):
                chunks = replies[len(sent)] if len(sent) < len(replies) else [b"200 result=1\n"]
                sent.append(line.decode().rstrip("\n"))
                try:
                    for piece in chunks:
                        sock.sendall(piece)
                        time.sleep(0.002)  # most pieces arrive as their own read; coalesced ones must give the same
                except OSError:
                    pass  # the server closed after its last command, as res_agi meets it after its reply
        _settle(running.server)
    assert sent == _reference(script.lines, replies)
    assert sent[-1] == route.lines[-1] and f"{cv.DECIDED}={cv.DECIDED_VALUE}" in sent[-1]
    assert running.errors == [], [r.getMessage() for r in running.errors]


def _readline(lines: BinaryIO) -> bytes:
    """The next line, or b"" once the server has closed (a reset after its close counts as closed)."""
    try:
        return lines.readline()
    except ConnectionResetError:
        return b""
