"""The wallboard wired to a simulated Asterisk over TCP: resync after a dropped AMI link, bad events, the CLI."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hotline_cti.adapters.ami import AmiClient, AmiSettings
from hotline_cti.cli.main import main
from hotline_cti.core.table import RoutingTable
from hotline_cti.records.builder import RecordBuilder
from hotline_cti.serve.record_pipeline import RecordPipeline
from hotline_cti.wallboard.auth import check_password, hash_password, parse_users
from hotline_cti.wallboard.hub import Hub
from hotline_cti.wallboard.service import start_wallboard
from simulators.ami_server import AmiServer, SimMember
from simulators.host import free_port
from tests.paths import REPO
from tests.serve.test_serve_wallboard import resynced
from tests.wallboard.test_wallboard_live import answer, arrive

GENERAL = "gx-general"
ROOT = REPO


async def _until(check: Callable[[], bool], what: str, limit: float = 30.0) -> None:
    """Wait for ``check()``; fail naming ``what`` after ``limit`` seconds (a bound, not a measurement)."""

    async def poll() -> None:
        while not check():
            await asyncio.sleep(0.02)

    try:
        await asyncio.wait_for(poll(), limit)
    except TimeoutError:
        pytest.fail(f"never happened: {what}")


def _settings(pbx: AmiServer) -> AmiSettings:
    return AmiSettings(
        host="127.0.0.1", port=pbx.port, username="wall", secret="pw", backoff_initial=0.05, backoff_max=0.2
    )


async def _records(client: AmiClient, table: RoutingTable) -> RecordPipeline:
    """The link's one record builder, storing nothing (as ``hotline-cti wallboard`` runs it), subscribed first."""
    pipeline = RecordPipeline(client, RecordBuilder(table.region), None)
    await pipeline.start()
    return pipeline


def _waiting(hub: Hub) -> dict[str, int]:
    return {q["queue"]: q["waiting"] for q in json.loads(hub.snapshot_json())["queues"]}


async def test_a_dropped_ami_link_is_followed_by_a_fresh_queue_status(small_table: RoutingTable) -> None:
    async with AmiServer(username="wall", secret="pw") as pbx:
        pbx.add_queue(GENERAL, [SimMember("坐席01", "PJSIP/8001"), SimMember("坐席02", "PJSIP/8002", status=2)])
        client = AmiClient(_settings(pbx))
        pipeline = await _records(client, small_table)
        runner = await start_wallboard(small_table, port=0, ami=client, records=pipeline.records, users={}, secret=b"k")
        hub = runner.hub
        try:
            await client.connect()
            totals = json.loads(hub.snapshot_json())["totals"]
            assert (totals["free"], totals["busy"]) == (1, 1)  # read by the resync hook at login
            for event in arrive("1.1", "13800001111", queue=GENERAL):
                pbx.emit(event)
            await _until(lambda: _waiting(hub).get(GENERAL) == 1, "the emitted caller waits")

            # Asterisk goes away; meanwhile that caller was answered and another one queued.
            pbx.drop_connections()
            await _until(lambda: not client.connected, "the client notices the drop")
            pbx.queues[GENERAL].members[0].paused = True
            waiting = pbx.add_channel("PJSIP/trunk-00000009", caller_num="13922223333")
            pbx.queues[GENERAL].callers.append(waiting.name)
            await _until(lambda: waiting.uniqueid in _waiting_ids(hub), "the resync after the reconnect")
            snap = json.loads(hub.snapshot_json())
            (queue,) = snap["queues"]
            assert (queue["waiting"], queue["longest_caller"]) == (1, "139****3333")
            assert (snap["totals"]["free"], snap["totals"]["busy"], snap["totals"]["paused"]) == (0, 1, 1)
            # The caller of before the drop is no channel any more: the call ended while we were away.
            ended = hub.state.calls["1.1"]
            assert ended.ended is not None and ended.outcome.value == "failed"
        finally:
            await runner.close()
            await pipeline.stop()
            await client.close()


def _waiting_ids(hub: Hub) -> set[str]:
    queue = hub.state.queues.get(GENERAL)
    return set(queue.waiting) if queue else set()


async def test_malformed_events_and_garbage_over_tcp_are_skipped(
    small_table: RoutingTable, caplog: pytest.LogCaptureFixture
) -> None:
    async with AmiServer(username="wall", secret="pw") as pbx:
        client = AmiClient(_settings(pbx))
        pipeline = await _records(client, small_table)
        runner = await start_wallboard(small_table, port=0, ami=client, records=pipeline.records, users={}, secret=b"k")
        try:
            await client.connect()
            pbx.emit({"Event": "UserEvent", "UserEvent": "HotlineRating", "CallId": "1.1", "Rating": "13800001111"})
            pbx.emit_raw(b"this is not AMI\r\n\r\n")
            pbx.emit({"Event": "QueueCallerJoin", "Uniqueid": "1.2"})
            for event in arrive("1.3", "13800001111", queue=GENERAL) + answer("1.3", GENERAL):
                pbx.emit(event)
            hub = runner.hub
            await _until(
                lambda: json.loads(hub.snapshot_json())["totals"]["answered"] == 1, "the good call after the bad ones"
            )
            assert runner.hub.skipped == 2
            assert "rating '138****1111' is not 1, 2 or 3" in caplog.text  # the record builder refused it
            assert "skipped a malformed AMI event: QueueCallerJoin without Queue" in caplog.text
            assert "13800001111" not in caplog.text
            assert json.loads(runner.hub.snapshot_json())["totals"]["answered"] == 1
        finally:
            await runner.close()
            await pipeline.stop()
            await client.close()


def test_hash_password_prints_a_users_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("s3cret 密码\n"))
    assert main(["wallboard", "hash-password", "--user", "boss", "--role", "supervisor", "--stdin"]) == 0
    line = capsys.readouterr().out.strip()
    user = parse_users(line)["boss"]
    assert user.is_supervisor and check_password("s3cret 密码", user.password_hash)
    assert main(["wallboard", "hash-password", "--user", "a:b", "--stdin"]) == 2
    assert "without ':'" in capsys.readouterr().err


def test_cli_refuses_missing_and_bad_arguments(
    small_config_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    for argv, said in (
        ([], "--config FILE is required"),
        (["--ami", "127.0.0.1:5038"], "--config FILE is required"),
        # neither an Asterisk link nor a database: nothing to show, and the error names both flags
        (["--config", str(small_config_path)], "--ami HOST:PORT or --database URL (or $DATABASE_URL) is required"),
        (["--config", str(small_config_path), "--database", "sqlite+aiosqlite://", "--node", "nn-1"], "--node names"),
        (
            ["--config", str(small_config_path), "--database", "bogus://x"],
            "--database: DATABASE_URL: unsupported database 'bogus'",
        ),
    ):
        with pytest.raises(SystemExit) as exit_:
            main(["wallboard", *argv])
        assert exit_.value.code == 2 and said in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["wallboard", "--ami", "nowhere", "--config", str(small_config_path)])
    assert "'nowhere' is not HOST:PORT" in capsys.readouterr().err

    for var in ("HOTLINE_AMI_USER", "HOTLINE_AMI_SECRET", "HOTLINE_WALLBOARD_USERS"):
        monkeypatch.delenv(var, raising=False)
    args = ["wallboard", "--ami", "127.0.0.1:5038", "--config", str(small_config_path)]
    assert main(args) == 1 and "HOTLINE_AMI_USER is not set" in capsys.readouterr().err
    monkeypatch.setenv("HOTLINE_AMI_USER", "wall")
    monkeypatch.setenv("HOTLINE_AMI_SECRET", "pw")
    users = tmp_path / "users"
    users.write_text("boss:root:x\n", encoding="utf-8")
    assert main([*args, "--users", str(users)]) == 1
    assert f"{users}:1: role 'root' is not one of supervisor, viewer" in capsys.readouterr().err
    bad_config = tmp_path / "bad.yaml"
    bad_config.write_text("region: {id: gx}\nhotlines: 3\n", encoding="utf-8")
    assert main(["wallboard", "--ami", "127.0.0.1:5038", "--config", str(bad_config)]) == 1
    assert "bad.yaml:" in capsys.readouterr().err


async def _spawn_wallboard(ami_port: int, config: Path, listen_port: int, **env: str) -> asyncio.subprocess.Process:
    """``hotline-cti wallboard`` as a child process; ``env`` is laid over (and without DATABASE_URL unless given)."""
    environ = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    return await asyncio.create_subprocess_exec(
        str(ROOT / ".venv" / "bin" / "hotline-cti"),
        "wallboard",
        "--ami", f"127.0.0.1:{ami_port}",
        "--config", str(config),
        "--listen", f"127.0.0.1:{listen_port}",
        env={**environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip


async def test_hotline_cti_wallboard_runs_alone_against_ami(small_config_path: Path, tmp_path: Path) -> None:
    users = tmp_path / "users"
    users.write_text(f"eve:viewer:{hash_password('eve-pw', iterations=1000)}\n", encoding="utf-8")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    async with AmiServer(username="wall", secret="pw") as pbx:
        pbx.add_queue(GENERAL, [SimMember("坐席01", "PJSIP/8001")])
        proc = await _spawn_wallboard(
            pbx.port,
            small_config_path,
            port,
            HOTLINE_AMI_USER="wall",
            HOTLINE_AMI_SECRET="pw",
            HOTLINE_WALLBOARD_USERS=str(users),
            DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}",
        )
        try:
            # after the wall's login resync, which forgets waiting callers (test_serve_wallboard.resynced)
            await _until(lambda: resynced(pbx, readers=1), "hotline-cti wallboard logs in to AMI and resyncs", 60)
            async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
                resp = await http.post(f"{base}/login", data={"user": "eve", "password": "eve-pw"})
                assert resp.status == 200 and "total-waiting" in await resp.text()
                for event in arrive("1.1", "13800001111", queue=GENERAL):
                    pbx.emit(event)
                state: dict[str, Any] = {}
                for _ in range(400):  # the event crosses two TCP hops; give it up to 20 s
                    state = await (await http.get(f"{base}/api/state")).json()
                    if state["totals"]["waiting"] == 1:
                        break
                    await asyncio.sleep(0.05)
                assert state["totals"]["waiting"] == 1 and state["totals"]["free"] == 1
                assert state["queues"][0]["longest_caller"] == "138****1111"
        finally:
            proc.send_signal(signal.SIGTERM)
            out, _ = await asyncio.wait_for(proc.communicate(), 20)
        assert proc.returncode == 0, out.decode()
        log = out.decode()
        assert "13800001111" not in log
        assert "seeded 0 stored call(s)" in log


async def test_a_refused_ami_login_stops_the_wallboard_with_exit_1(small_config_path: Path) -> None:
    async with AmiServer(username="wall", secret="right") as pbx:
        proc = await _spawn_wallboard(
            pbx.port,
            small_config_path,
            free_port(),
            HOTLINE_AMI_USER="wall",
            HOTLINE_AMI_SECRET="wr0ng-s3cret",
            HOTLINE_WALLBOARD_USERS="",
        )
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), 20)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    assert proc.returncode == 1
    assert "AMI login refused: check HOTLINE_AMI_USER / HOTLINE_AMI_SECRET" in out.decode()
    assert "wr0ng-s3cret" not in out.decode()  # the secret is never logged
