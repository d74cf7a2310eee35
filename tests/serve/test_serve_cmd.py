"""``hotline-cti serve`` as a real process: sessions, reload on file change and SIGHUP, clean exit."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import aiomqtt

from hotline_cti import channel_vars as cv
from hotline_cti.adapters.agi.reload import ConfigHolder
from hotline_cti.serve.events import PolicySource
from simulators.agi_peer import PeerChannel, run_fastagi
from simulators.ami_server import AmiServer
from simulators.host import free_port
from tests.adapters.ami.test_transfer import AGENT, CALLER, SECRET
from tests.adapters.mqtt.test_mqtt import Subscriber, command, eventually
from tests.conftest import SMALL_YAML
from tests.mqtt_broker import Broker
from tests.records.test_records_builder import CALLER as CALL_ID
from tests.records.test_records_builder import answered_call


async def target_of(port: int, dialled: str) -> str:
    for _ in range(300):  # the process may still be starting (imports, migrations) on a busy machine
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
    log = tmp_path / "serve.log"  # a file, not a pipe: the test reads it while serve runs
    with log.open("w", encoding="utf-8") as out:
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
                "--database",
                f"sqlite+aiosqlite:///{tmp_path / 'serve.db'}",
                "--spool-dir",
                str(tmp_path / "spool"),
            ],
            stdout=out,
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
        for _ in range(300):  # the reload compiles in an idle-priority worker: slow on a busy machine (30 s: a hang)
            if await target_of(port, "12313") == "tax":
                break
            await asyncio.sleep(0.1)
        assert await target_of(port, "12313") == "tax"
        config.write_text(SMALL_YAML.replace("queue: l12315,", "queue: nosuch,"), encoding="utf-8")
        proc.send_signal(signal.SIGHUP)
        for _ in range(300):  # until the refusal is logged, so that it is in the log at SIGTERM
            if "config reload refused" in log.read_text(encoding="utf-8"):
                break
            await asyncio.sleep(0.1)
        assert await target_of(port, "12313") == "tax"  # the bad file was refused
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    text = log.read_text(encoding="utf-8")
    assert proc.returncode == 0, text
    assert "config reload refused" in text and "unknown queue 'nosuch'" in text and "small.yaml:" in text


async def test_serve_with_ami_and_mqtt_stores_publishes_and_transfers(
    tmp_path: Path, mqtt_broker: Broker, small_config_path: Path
) -> None:
    """AMI events of a call (its survey rating included) → record in SQLite → events on MQTT;
    MQTT command → AMI BlindTransfer → audit row → outbox → event on MQTT; SIGTERM flushes."""
    port = free_port()
    db = tmp_path / "serve.db"
    async with AmiServer(secret=SECRET) as ami:
        ami.add_channel(CALLER, caller_num="13812345678")
        ami.add_channel(AGENT, caller_num="1001")
        ami.bridge(CALLER, AGENT)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HOTLINE_", "DATABASE_URL"))}
        env.update(HOTLINE_AMI_USER="hotline", HOTLINE_AMI_SECRET=SECRET)  # broker auth
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "hotline_cti.cli.main",
            "serve",
            "--config",
            str(small_config_path),
            "--listen",
            f"127.0.0.1:{port}",
            "--database",
            f"sqlite+aiosqlite:///{db}",
            "--spool-dir",
            str(db.parent / "spool"),
            "--ami",
            f"127.0.0.1:{ami.port}",
            "--mqtt",
            f"{mqtt_broker.host}:{mqtt_broker.port}",
            "--node",
            "nn-1",
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            assert await target_of(port, "12313") == "gx-general"  # FastAGI is up
            async with (
                Subscriber(mqtt_broker, "hotline/gx/transfers/#", "hotline/gx/replies/#", "hotline/gx/calls/#") as sub,
                aiomqtt.Client(mqtt_broker.host, mqtt_broker.port) as requester,
            ):

                def topics() -> list[str]:
                    return [t for t, _ in sub.messages]

                for attempt in range(100):  # serve may still be subscribing: ask again under a new id
                    await requester.publish(
                        "hotline/gx/commands/wallboard/transfer",  # broker mode: the topic names the sender
                        command(id=f"t{attempt}", to="tax", token=None),
                        qos=1,
                    )
                    with contextlib.suppress(AssertionError):
                        await eventually(lambda: any("/replies/" in t for t in topics()), limit=0.5)
                        break
                await eventually(lambda: "hotline/gx/transfers/nn-1" in topics())  # the node is the last level
                # A reload sent to every serve process (pkill -HUP) reloads the events service, not ends it.
                children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
                (events,) = [
                    c for c in children if b"hotline_cti.serve.events" in Path(f"/proc/{c}/cmdline").read_bytes()
                ]
                os.kill(int(events), signal.SIGHUP)
                await asyncio.sleep(0.3)
                for _, message in answered_call():  # serve's AMI client is logged in: the transfer ran
                    ami.emit(message)
                await eventually(lambda: "hotline/gx/calls/ended/nn-1" in topics())
        finally:
            proc.send_signal(signal.SIGTERM)
            out, _ = await proc.communicate()
    log = out.decode()
    assert proc.returncode == 0, log
    assert "service exited" not in log and "stalled" not in log and "config reloaded" in log
    # A command sent before serve subscribed may still arrive late; its twin is then refused (the call moved).
    (reply,) = [body["data"] for t, body in sub.messages if "/replies/" in t and body["data"]["ok"]]
    assert reply["transfer"]["target"] == "tax"
    audits = [body["data"] for t, body in sub.messages if t == "hotline/gx/transfers/nn-1"]
    assert [a["transfer_id"] for a in audits if a["result"] == "ok"] == [reply["transfer"]["transfer_id"]]
    assert [a.get("Exten") for a in ami.actions_named("BlindTransfer")] == ["8001"]
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT target, mode, requested_by, result FROM transfers WHERE result = 'ok'").fetchall()
        assert rows == [("tax", "blind", "mqtt:wallboard", "ok")]
        (call,) = conn.execute(
            "SELECT caller, dialled, origin, queue, agent, outcome, rating, node FROM calls WHERE call_id = ?",
            (f"nn-1:{CALL_ID}",),  # the node (serve --node) keys the call: nodes' uniqueids never collide
        ).fetchall()
    assert call == ("138****5678", "12315", "12315", "l12315", "Agent 8001", "answered", 1, "nn-1")
    ended = [body for t, body in sub.messages if t == "hotline/gx/calls/ended/nn-1"]
    assert ended[0]["data"]["call_id"] == f"nn-1:{CALL_ID}" and ended[0]["data"]["outcome"] == "answered"
    assert ended[0]["data"]["node"] == ended[0]["node"] == "nn-1"
    assert all(
        body["node"] == "nn-1" for t, body in sub.messages if t.startswith("hotline/gx/transfers") or "/replies/" in t
    )
    assert all(t.endswith("/nn-1") for t, _ in sub.messages if "/replies/" not in t)
    assert "13812345678" not in log and all("13812345678" not in json.dumps(body) for _, body in sub.messages)


def test_transfer_targets_follow_config_reloads(tmp_path: Path) -> None:
    config = tmp_path / "small.yaml"
    config.write_text(SMALL_YAML, encoding="utf-8")
    holder = ConfigHolder(config)
    policy = PolicySource(holder)
    assert "tax" in policy().targets and "customs" not in policy().targets
    config.write_text(
        SMALL_YAML.replace(
            "  - {id: tax,", "  - {id: customs, name: 海关, scope: province, dial: PJSIP/12360@c}\n  - {id: tax,"
        ),
        encoding="utf-8",
    )
    assert holder.reload()
    assert policy().targets["customs"].code == "8001" and policy().targets["tax"].code == "8002"
    config.write_text("region: {id: gx}\n", encoding="utf-8")  # invalid: the holder and the targets stay
    assert not holder.reload()
    assert policy().targets["customs"].code == "8001"
