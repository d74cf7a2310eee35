"""``hotline-cti serve --wallboard``: the wall beside the controller, on the controller's own AMI link and store."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

import aiohttp

from hotline_cti.wallboard.auth import hash_password
from simulators.ami_server import AmiServer, SimMember
from tests.serve.test_serve_cmd import free_port, target_of
from tests.wallboard.test_wallboard_live import arrive

GENERAL = "gx-general"


def resynced(pbx: AmiServer, readers: int) -> bool:
    """Every QueueStatus of the login's resync has reached the simulator: ``readers`` of them (serve: the agent
    state feed's and the wall's; the wall alone: its own). The wall forgets its waiting callers just before it
    sends its QueueStatus, so an event emitted after this follows that on the socket and is kept."""
    return len(pbx.actions_named("QueueStatus")) >= readers


async def test_serve_runs_the_wallboard_on_its_ami_link(small_config_path: Path, tmp_path: Path) -> None:
    users = tmp_path / "users"
    users.write_text(f"sup:supervisor:{hash_password('sup-pw', iterations=1000)}\n", encoding="utf-8")
    agi_port, wall_port = free_port(), free_port()
    base = f"http://127.0.0.1:{wall_port}"
    async with AmiServer(username="ctl", secret="pw") as pbx:
        pbx.add_queue(GENERAL, [SimMember("坐席01", "PJSIP/8001"), SimMember("坐席02", "PJSIP/8002", status=2)])
        env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        env |= {"HOTLINE_AMI_USER": "ctl", "HOTLINE_AMI_SECRET": "pw", "HOTLINE_WALLBOARD_USERS": str(users)}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "hotline_cti.cli.main", "serve",
            "--config", str(small_config_path),
            "--listen", f"127.0.0.1:{agi_port}",
            "--database", f"sqlite+aiosqlite:///{tmp_path / 'serve.db'}",
            "--spool-dir", str(tmp_path / "spool"),
            "--ami", f"127.0.0.1:{pbx.port}",
            "--wallboard", f"127.0.0.1:{wall_port}",
            env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        try:
            assert await target_of(agi_port, "12345")  # FastAGI serves beside the wall
            async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
                anon = None
                for _ in range(300):  # the wall runs in serve's events process, which starts after FastAGI
                    try:
                        anon = await http.get(f"{base}/api/state")
                        break
                    except aiohttp.ClientConnectorError:
                        await asyncio.sleep(0.1)
                assert anon is not None and anon.status == 401  # nothing without a login
                # The caller must join after the wall's login resync: that resync forgets waiting callers and
                # re-reads QueueStatus, which in this simulator knows only the members.
                for _ in range(600):
                    if resynced(pbx, readers=2):
                        break
                    await asyncio.sleep(0.1)
                assert resynced(pbx, readers=2), [a.name for a in pbx.actions]
                resp = await http.post(f"{base}/login", data={"user": "sup", "password": "sup-pw"})
                assert resp.status == 200
                for event in arrive("7.1", "13800007777", queue=GENERAL):
                    pbx.emit(event)
                state: dict[str, Any] = {}
                for _ in range(400):
                    state = await (await http.get(f"{base}/api/state")).json()
                    if state["totals"]["waiting"] == 1 and state["totals"]["calls_today"] == 1:
                        break
                    await asyncio.sleep(0.05)
                assert state["totals"]["waiting"] == 1
                assert (state["totals"]["free"], state["totals"]["busy"]) == (1, 1)  # QueueStatus at login
                assert state["queues"][0]["longest_caller"] == "138****7777"
                # The call itself comes from the events service's record builder (the wall builds none of its own).
                assert state["totals"]["calls_today"] == 1
        finally:
            proc.send_signal(signal.SIGTERM)
            out, _ = await asyncio.wait_for(proc.communicate(), 30)
    log = out.decode()
    assert proc.returncode == 0, log
    assert f"wallboard on http://127.0.0.1:{wall_port}" in log
    assert "13800007777" not in log
