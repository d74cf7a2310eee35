"""``hotline-cti serve --ami``: the events process keeps the live queue state and the callbacks, the routing
process diverts from the snapshot it writes (two processes, one file, no AMI query per call)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from hotline_cti import channel_vars as cv
from hotline_cti.records.callback import CallbackStatus
from hotline_cti.storage.store import Store
from simulators.agi_peer import PeerChannel, run_fastagi
from simulators.ami_server import AmiServer
from tests.conftest import SMALL_YAML
from tests.serve.test_serve_cmd import free_port

RULES = """\
  - id: general
    name: 综合
    diversion:
      - {when: no_agents, to: release, prompt: divert-no-agents}
"""


async def _action(port: int, dialled: str) -> str:
    channel = PeerChannel({})
    await run_fastagi("127.0.0.1", port, "route", channel, args=[dialled, ""])
    return channel.variables.get(cv.ACTION, "")


async def _until(port: int, dialled: str, action: str) -> None:
    for _ in range(300):  # the processes may still be starting, the file a poll behind
        if await _action(port, dialled) == action:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{dialled} never routed to {action}")


async def test_serve_diverts_from_the_queue_state_its_events_process_keeps(tmp_path: Path) -> None:
    config = tmp_path / "small.yaml"
    config.write_text(
        SMALL_YAML.replace("  - {id: general, name: 综合}\n", RULES, 1) + "callback: {queues: [general]}\n",
        encoding="utf-8",
    )
    agi_port = free_port()
    db = tmp_path / "serve.db"
    state = tmp_path / "queue-state.json"
    async with AmiServer(username="ctl", secret="pw") as pbx:
        pbx.add_queue("gx-general")  # no member: nobody logged in
        env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        env |= {"HOTLINE_AMI_USER": "ctl", "HOTLINE_AMI_SECRET": "pw"}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "hotline_cti.cli.main", "serve",
            "--config", str(config),
            "--listen", f"127.0.0.1:{agi_port}",
            "--database", f"sqlite+aiosqlite:///{db}",
            "--spool-dir", str(tmp_path / "spool"),
            "--queue-state", str(state),
            "--ami", f"127.0.0.1:{pbx.port}",
            env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        try:
            await _until(agi_port, "12301", "release")  # QueueStatus at login: no member in gx-general
            pbx.emit(
                {
                    "Event": "QueueMemberAdded",
                    "Queue": "gx-general",
                    "Interface": "PJSIP/8001",
                    "MemberName": "坐席01",
                    "Status": "1",
                    "Paused": "0",
                }
            )
            await _until(agi_port, "12301", "queue")  # the event reached the routing process through the file
            pbx.emit(
                {
                    "Event": "UserEvent",
                    "UserEvent": "HotlineCallback",
                    "CallId": "1700000000.9",
                    "Step": "accepted",
                    "Queue": "gx-general",
                    "Number": "13800001111",
                    "Position": "2",
                    "Joined": "1700000000",
                    "Priority": "0",
                }
            )
            rows: list[object] = []
            for _ in range(100):
                store = await Store.open(f"sqlite+aiosqlite:///{db}")
                try:
                    rows = list(await store.open_callbacks("gx"))
                finally:
                    await store.close()
                if rows:
                    break
                await asyncio.sleep(0.1)
        finally:
            proc.send_signal(signal.SIGTERM)
            out, _ = await asyncio.wait_for(proc.communicate(), 30)
    log = out.decode()
    assert proc.returncode == 0, log
    (row,) = rows
    assert row.status is CallbackStatus.WAITING and row.position == 2  # type: ignore[attr-defined]
    assert "13800001111" not in log
