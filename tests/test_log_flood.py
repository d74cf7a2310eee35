"""Quiet under attack: warnings from one FastAGI or AMI peer are rate-limited, summarised and short."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

import pytest

from hotline_cti.adapters.agi.fastagi import FastAgiServer, Limits
from hotline_cti.adapters.agi.reload import ConfigHolder
from hotline_cti.adapters.ami.client import AmiClient, AmiSettings
from hotline_cti.adapters.ami.protocol import Malformed
from hotline_cti.logthrottle import OTHER_PEERS, PeerWarnings, shorten
from tests.conftest import SMALL_YAML

LOGGER = "test.flood"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def lines(caplog: pytest.LogCaptureFixture, name: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == name and r.levelno >= logging.WARNING]


def test_the_first_warnings_then_one_summary_per_window(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    warnings = PeerWarnings(logging.getLogger(LOGGER), burst=3, window=60, clock=clock)
    with caplog.at_level(logging.WARNING, LOGGER):
        for i in range(100):
            warnings.warning("10.0.0.9", "bad line %d", i)
        warnings.warning("10.0.0.8", "another peer has its own share")
        clock.now = 61
        warnings.warning("10.0.0.9", "bad line again")  # a new window: the summary comes first
    assert lines(caplog, LOGGER) == [
        "bad line 0",
        "bad line 1",
        "bad line 2",
        "another peer has its own share",
        "peer 10.0.0.9: 97 more warnings suppressed in the last 60 s",
        "bad line again",
    ]


def test_a_summary_comes_when_the_window_ends_without_more_warnings(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    scheduled: list[float] = []
    warnings = PeerWarnings(logging.getLogger(LOGGER), burst=1, window=60, clock=clock)
    warnings.schedule = lambda delay, fn: scheduled.append(delay)
    with caplog.at_level(logging.WARNING, LOGGER):
        clock.now = 5
        warnings.warning("p", "one")
        clock.now = 10
        warnings.warning("p", "two")
        warnings.warning("p", "three")
        assert scheduled == [55.0]  # asked once, for the end of the window
        clock.now = 65
        warnings.flush()
    assert lines(caplog, LOGGER) == ["one", "peer p: 2 more warnings suppressed in the last 60 s"]


def test_many_peers_share_one_budget(caplog: pytest.LogCaptureFixture) -> None:
    warnings = PeerWarnings(logging.getLogger(LOGGER), burst=2, window=60, max_peers=10, clock=Clock())
    with caplog.at_level(logging.WARNING, LOGGER):
        for i in range(1000):
            warnings.warning(f"10.0.{i // 256}.{i % 256}", "refused %d", i)
        warnings.flush(force=True)
    # 10 peers of their own, then the rest share one budget, each line naming its peer
    assert lines(caplog, LOGGER) == [
        *(f"refused {i}" for i in range(10)),
        "10.0.0.10: refused 10",
        "10.0.0.11: refused 11",
        f"peer {OTHER_PEERS}: 988 more warnings suppressed in the last 0 s",
    ]


def test_long_warnings_are_cut_and_never_cut_a_number_in_half() -> None:
    text = "x" * 290 + " caller 138-1234-5678 " + "y" * 3_000_000
    out = shorten(text, 300)
    assert len(out) < 360 and out.endswith("more characters)")
    assert "1234" not in out and "13812" not in out
    # a number right at the cut is dropped, not shown in part
    assert "1381" not in shorten("z" * 296 + "13812345678" + "z" * 1000, 300)


async def test_hostile_fastagi_connections_log_a_few_lines(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = tmp_path / "small.yaml"
    config.write_text(SMALL_YAML, encoding="utf-8")
    holder = ConfigHolder(config)
    server = FastAgiServer(holder, limits=Limits(env=0.5, command=0.5, session=1.0))
    port = await server.start("127.0.0.1", 0)

    async def hostile(i: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        # garbage of every kind: a bad environment line (with a caller number), a 64 KB line, random bytes
        payload = [
            f"agi_request: x\nnot an env line 138-1234-{i:04d} {'z' * 3000}\n\n".encode(),
            b"A" * 65536 + b"\n",
            bytes(range(256)) * 8 + b"\n\n",
        ][i % 3]
        writer.write(payload)
        await writer.drain()
        with contextlib.suppress(ConnectionResetError):  # closed with our garbage unread
            await reader.read()  # the server ends the session
        writer.close()

    with caplog.at_level(logging.WARNING, "hotline_cti.adapters.agi.fastagi"):
        await asyncio.gather(*(hostile(i) for i in range(300)))
        assert server.failed == 300
        await server.close()
    out = lines(caplog, "hotline_cti.adapters.agi.fastagi")
    assert len(out) == 6, out  # 5 warnings and one summary for the one peer, not 300 lines
    assert out[-1].startswith("peer 127.0.0.1: 295 more warnings suppressed in the last ")
    assert all(len(line) < 400 for line in out)
    assert not any("138-1234" in line for line in out)


def test_malformed_ami_messages_log_a_few_lines(caplog: pytest.LogCaptureFixture) -> None:
    client = AmiClient(AmiSettings(host="127.0.0.1", username="u", secret="s"))
    with caplog.at_level(logging.WARNING, "hotline_cti.adapters.ami.client"):
        huge = Malformed("header too long", "X-Junk: " + "9" * 5_000_000)  # 5 MB headers, as the fault run sent
        for _ in range(1000):
            client._handle_item(None, huge)  # type: ignore[arg-type]
        client._warnings.flush(force=True)
    out = lines(caplog, "hotline_cti.adapters.ami.client")
    assert len(out) == 6 and out[-1].startswith("peer AMI 127.0.0.1:5038: 995 more warnings suppressed")
    assert all(len(line) < 400 for line in out)
