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
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hotline_cti import channel_vars as cv
from hotline_cti.adapters.agi.fastagi import FastAgiServer, Limits
from hotline_cti.adapters.agi.reload import ConfigHolder
from simulators.agi_peer import PeerChannel, run_fastagi

REPO = Path(__file__).resolve().parent.parent
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
