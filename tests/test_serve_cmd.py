"""``hotline-cti serve`` as a real process: sessions, reload on file change and SIGHUP, clean exit."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from conftest import SMALL_YAML

from hotline_cti import channel_vars as cv
from simulators.agi_peer import PeerChannel, run_fastagi


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def target_of(port: int, dialled: str) -> str:
    for _ in range(100):  # the process may still be starting
        channel = PeerChannel({})
        await run_fastagi("127.0.0.1", port, "route", channel, args=[dialled, ""])
        if cv.TARGET in channel.variables:
            return channel.variables[cv.TARGET]
        await asyncio.sleep(0.1)
    raise AssertionError("controller never answered")


async def test_serve_reloads_and_exits_cleanly(tmp_path: Path) -> None:
    config = tmp_path / "small.yaml"
    config.write_text(SMALL_YAML, encoding="utf-8")
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hotline_cti.cli.main",
            "serve",
            "--config",
            str(config),
            "--listen",
            f"127.0.0.1:{port}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert await target_of(port, "12313") == "gx-general"
        config.write_text(
            SMALL_YAML.replace(
                "{id: tax, name: 税务, scope: province, dial: PJSIP/12366@tax}",
                "{id: tax, name: 税务, scope: province, dial: PJSIP/12366@tax2}",
            ).replace("mode: subcentre, subcentre: tobacco", "mode: subcentre, subcentre: tax"),
            encoding="utf-8",
        )
        os.utime(config, (time.time() + 5, time.time() + 5))
        for _ in range(40):
            if await target_of(port, "12313") == "tax":
                break
            await asyncio.sleep(0.1)
        assert await target_of(port, "12313") == "tax"
        config.write_text(SMALL_YAML.replace("queue: l12315,", "queue: nosuch,"), encoding="utf-8")
        proc.send_signal(signal.SIGHUP)
        await asyncio.sleep(0.5)
        assert await target_of(port, "12313") == "tax"  # the bad file was refused
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert "config reload refused" in out and "unknown queue 'nosuch'" in out and "small.yaml:" in out
