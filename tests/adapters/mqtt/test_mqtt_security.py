"""MQTT commands only the right people can send, once (issue 14, item 2), on a real mosquitto run with
the password file and ACL of docs/mqtt.md: observers neither read nor send commands, a replayed id runs
once, a burst beyond the queue is told ``busy``, a hand-over of a call not on the claimed line is refused."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from hotline_cti.adapters.ami import AmiClient, AmiSettings
from hotline_cti.adapters.ami.transfer import TransferExecutor, TransferTimeouts
from hotline_cti.adapters.mqtt.command_settings import CommandSettings
from hotline_cti.adapters.mqtt.commands import CommandHandler, CommandListener
from hotline_cti.adapters.mqtt.publisher import OutboxPublisher
from hotline_cti.adapters.mqtt.settings import MqttSettings
from hotline_cti.config.loader import load_config
from hotline_cti.core.transfer import TransferPolicy, TransferRequest
from hotline_cti.dialplan.transfer_policy import build_policy
from hotline_cti.events import Event
from hotline_cti.records.model import TransferRecord
from hotline_cti.storage.store import Store
from hotline_cti.storage.writer import BatchWriter
from simulators.ami_server import AmiServer
from tests.adapters.ami.test_transfer import SECRET
from tests.adapters.mqtt.test_mqtt import Subscriber, eventually
from tests.mqtt_broker import Broker, running_broker
from tests.paths import REPO

DOCS = REPO / "docs" / "mqtt.md"
CONTROLLER, PLATFORM, SUP, OTHER_SUP = "hotline-controller", "platform", "sup-nanning-1", "sup-guilin-1"
ON_110 = {"HOTLINE_ACTION": "emergency", "HOTLINE_TARGET": "110", "HOTLINE_ORIGIN": "110"}
ON_12345 = {"HOTLINE_ACTION": "queue", "HOTLINE_TARGET": "gx-general"}


def documented_block(marker: str) -> str:
    """The fenced block right after ``<!-- marker: ...-->`` in docs/mqtt.md: the tested config is the documented one."""
    text = DOCS.read_text(encoding="utf-8")
    found = re.search(rf"<!-- {re.escape(marker)}:[^>]*-->\n```text\n(.*?)```", text, re.S)
    assert found, f"no {marker} block in {DOCS}"
    return found.group(1)


@dataclass
class SecureBroker:
    broker: Broker
    passwords: dict[str, str]

    def login(self, user: str) -> tuple[str, str]:
        return user, self.passwords[user]

    def settings(self, user: str) -> MqttSettings:
        return MqttSettings(self.broker.host, self.broker.port, user, self.passwords[user], timeout=5.0)

    def client(self, user: str) -> aiomqtt.Client:
        return aiomqtt.Client(self.broker.host, self.broker.port, username=user, password=self.passwords[user])


@pytest.fixture
def secure_broker() -> Iterator[SecureBroker]:
    conf = documented_block("mosquitto.conf")
    assert "allow_anonymous false" in conf and "password_file" in conf and "acl_file" in conf
    # Throwaway passwords for this broker only; the file and ACL paths are the fixture's own.
    passwords = {user: secrets.token_hex(12) for user in (CONTROLLER, PLATFORM, SUP, OTHER_SUP)}
    with running_broker(passwords, acl=documented_block("acl_file")) as broker:
        yield SecureBroker(broker, passwords)


def command(ident: str, channel: str, to: str = "119", **fields: Any) -> bytes:
    body = {"v": 1, "id": ident, "type": "transfer", "channel": channel, "to": to, "mode": "blind", **fields}
    return json.dumps(body).encode()


def calls(ami: AmiServer, n: int, variables: dict[str, str] | None = None) -> list[str]:
    """``n`` live calls, each a caller bridged to an agent; the agent channels (what a command names)."""
    agents = []
    for i in range(n):
        caller, agent = f"PJSIP/trunk-{i:08x}", f"Local/{1000 + i}@hotline-agents-{i:08x};1"
        ami.add_channel(caller, caller_num="13812345678", variables=dict(variables or ON_12345))
        ami.add_channel(agent, caller_num=str(1000 + i))
        ami.bridge(caller, agent)
        agents.append(agent)
    return agents


@contextlib.asynccontextmanager
async def controller(
    sb: SecureBroker,
    transfer: Callable[[TransferRequest], Awaitable[TransferRecord]],
    writer: BatchWriter | None = None,
    **settings: Any,
) -> AsyncIterator[CommandListener]:
    handler = CommandHandler("gx", CommandSettings(**settings), transfer, audit=writer)
    listener = CommandListener(sb.settings(CONTROLLER), handler)
    await listener.start()
    try:
        await asyncio.wait_for(listener.subscribed.wait(), 10)
        yield listener
    finally:
        await listener.stop()


@contextlib.asynccontextmanager
async def simulated_ami(
    policy: TransferPolicy, writer: BatchWriter
) -> AsyncIterator[tuple[AmiServer, TransferExecutor]]:
    async with AmiServer(secret=SECRET) as ami:
        settings = AmiSettings(host="127.0.0.1", port=ami.port, username="hotline", secret=SECRET, action_timeout=5)
        async with AmiClient(settings) as client:
            yield ami, TransferExecutor(client, lambda: policy, writer, timeouts=TransferTimeouts(action=5, event=5))


@pytest.fixture
def policy(small_config_path: Path) -> TransferPolicy:
    return build_policy(load_config(small_config_path).model)


def done(request: TransferRequest) -> TransferRecord:
    """The audit row of a transfer that worked (for the fake transfers below)."""
    at = dt.datetime.now(dt.UTC)
    return TransferRecord("c", at, request.channel, request.target, request.mode, request.requested_by, "ok")


def data_of(sub: Subscriber, prefix: str) -> list[dict[str, Any]]:
    return [body["data"] for t, body in sub.messages if t.startswith(prefix)]


async def test_observers_neither_read_nor_send_commands_and_users_only_their_own(
    secure_broker: SecureBroker, policy: TransferPolicy, batch_writer: BatchWriter, sqlite_store: Store
) -> None:
    sb = secure_broker
    async with simulated_ami(policy, batch_writer) as (ami, executor):
        agents = calls(ami, 4)
        async with (
            controller(sb, executor.execute, batch_writer),
            Subscriber(sb.broker, "hotline/#", "hotline/gx/commands/#", login=sb.login(PLATFORM)) as observer,
            Subscriber(sb.broker, "hotline/gx/replies/#", login=sb.login(SUP)) as sup_replies,
            sb.client(PLATFORM) as platform,
            sb.client(SUP) as sup,
            sb.client(OTHER_SUP) as other_sup,
        ):
            # Refused by the broker's ACL, silently (MQTT 3.1.1): none of these may reach the controller.
            await platform.publish(f"hotline/gx/commands/{PLATFORM}/transfer", command("p1", agents[0]), qos=1)
            await platform.publish(f"hotline/gx/commands/{SUP}/transfer", command("p2", agents[1]), qos=1)
            await other_sup.publish(f"hotline/gx/commands/{SUP}/transfer", command("o1", agents[2]), qos=1)
            # The supervisor's own command, and one malformed (an error event, which observers may read).
            await sup.publish(f"hotline/gx/commands/{SUP}/transfer", b"{oops", qos=1)
            await sup.publish(f"hotline/gx/commands/{SUP}/transfer", command("s1", agents[3], by="wall-3"), qos=1)
            await eventually(lambda: any(t.endswith("/replies/sup-nanning-1/s1") for t, _ in sup_replies.messages))
            await eventually(lambda: any(t == "hotline/gx/errors" for t, _ in observer.messages))
            await asyncio.sleep(0.3)  # anything the ACL let through would have been answered by now
    seen = [t for t, _ in observer.messages]
    assert seen and all("/commands/" not in t and "/replies/" not in t for t in seen)  # never a command or reply
    (reply,) = data_of(sup_replies, "hotline/gx/replies/")
    assert reply["id"] == "s1" and reply["ok"] is True
    assert reply["transfer"]["requested_by"] == f"mqtt:{SUP}/wall-3"  # the sender is the broker user
    assert [a.get("Channel") for a in ami.actions_named("BlindTransfer")] == [agents[3]]  # only the supervisor's
    assert all(b"token" not in json.dumps(body).encode() for _, body in observer.messages)
    await batch_writer.stop()
    audited = [(a.actor, a.action, a.result) for a in await sqlite_store.actions_between()]
    assert audited == [(f"mqtt:{SUP}/wall-3", "command:transfer", "ok")]  # the malformed one had no usable id
    await batch_writer.start()


async def test_the_documented_acl_carries_every_event_stream_of_a_named_node_to_the_platform(
    secure_broker: SecureBroker, sqlite_store: Store
) -> None:
    """Each stream's topic ends in the node (hotline/gx/agents/nn-1): the ACL's rules must admit all of them."""
    sb = secure_broker
    at = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)
    streams = ("calls/ended", "transfers", "actions", "agents", "spies")
    await sqlite_store.append_events([Event(kind, "gx", at, {"n": n}, node="nn-1") for n, kind in enumerate(streams)])
    publisher = OutboxPublisher(sqlite_store, sb.settings(CONTROLLER), poll=0.02)
    async with Subscriber(sb.broker, "hotline/gx/#", login=sb.login(PLATFORM)) as platform:
        await publisher.start()
        try:
            await eventually(lambda: publisher.published == len(streams))
            await eventually(lambda: len(platform.messages) == len(streams))
        finally:
            await publisher.stop()
    assert [t for t, _ in platform.messages] == [f"hotline/gx/{kind}/nn-1" for kind in streams]


async def test_a_refused_command_with_a_usable_id_is_audited(batch_writer: BatchWriter, sqlite_store: Store) -> None:
    async def transfer(request: TransferRequest) -> TransferRecord:
        raise AssertionError("must not run")

    handler = CommandHandler("gx", CommandSettings(), transfer, audit=batch_writer)
    await handler.handle(f"hotline/gx/commands/{SUP}/reboot", command("r1", "PJSIP/a", type="reboot"))
    await batch_writer.stop()
    (row,) = await sqlite_store.actions_between()
    assert (row.actor, row.action, row.result, row.detail) == (f"mqtt:{SUP}", "command:reboot", "refused", "id=r1")
    assert "unknown command type 'reboot'" in row.reason
    await batch_writer.start()


async def test_a_replayed_command_id_returns_the_first_result_and_executes_nothing(
    secure_broker: SecureBroker, policy: TransferPolicy, batch_writer: BatchWriter, sqlite_store: Store
) -> None:
    sb = secure_broker
    async with simulated_ami(policy, batch_writer) as (ami, executor):
        agents = calls(ami, 2)
        async with (
            controller(sb, executor.execute, batch_writer),
            Subscriber(sb.broker, "hotline/gx/replies/#", login=sb.login(SUP)) as replies,
            Subscriber(sb.broker, "hotline/gx/replies/#", login=sb.login(OTHER_SUP)) as other_replies,
            sb.client(SUP) as sup,
            sb.client(OTHER_SUP) as other_sup,
        ):
            topic = f"hotline/gx/commands/{SUP}/transfer"
            await sup.publish(topic, command("once", agents[0]), qos=1)
            await sup.publish(topic, command("once", agents[0]), qos=1)  # at once: waits for the first answer
            await eventually(lambda: len(replies.messages) >= 2)
            await sup.publish(topic, command("once", agents[1], to="120"), qos=1)  # later, even with other fields
            await eventually(lambda: len(replies.messages) >= 3)
            # Another user's id space is its own: the same id from them is a new command.
            await other_sup.publish(f"hotline/gx/commands/{OTHER_SUP}/transfer", command("once", agents[1]), qos=1)
            await eventually(lambda: len(other_replies.messages) >= 1)
    first, *again = data_of(replies, "hotline/gx/replies/sup-nanning-1/once")
    assert first["ok"] is True and "replayed" not in first
    assert len(again) == 2 and all(r["replayed"] is True for r in again)
    assert all(r["transfer"] == first["transfer"] for r in again)  # the first result, same transfer_id
    (theirs,) = data_of(other_replies, "hotline/gx/replies/sup-guilin-1/once")
    assert theirs["ok"] is True and "replayed" not in theirs
    assert [a.get("Channel") for a in ami.actions_named("BlindTransfer")] == [agents[0], agents[1]]
    await batch_writer.stop()
    assert len(await sqlite_store.transfers_between()) == 2  # one audit row per execution, none per replay
    actions = await sqlite_store.actions_between()
    assert sorted((a.actor, a.result) for a in actions) == [
        (f"mqtt:{OTHER_SUP}", "ok"),
        (f"mqtt:{SUP}", "ok"),
        (f"mqtt:{SUP}", "replayed"),
        (f"mqtt:{SUP}", "replayed"),
    ]
    assert all(a.action == "command:transfer" and "id=once" in a.detail for a in actions)
    await batch_writer.start()


async def test_a_burst_beyond_the_queue_is_told_busy_and_the_rest_run(
    secure_broker: SecureBroker, batch_writer: BatchWriter, sqlite_store: Store
) -> None:
    sb = secure_broker
    release = asyncio.Event()
    ran: list[str] = []

    async def held_transfer(request: TransferRequest) -> TransferRecord:
        ran.append(request.channel)
        await release.wait()  # a slow AMI: the workers cannot drain the queue while the burst arrives
        return done(request)

    async with (
        controller(sb, held_transfer, batch_writer, queue=5, workers=2),
        Subscriber(sb.broker, "hotline/gx/replies/#", login=sb.login(SUP)) as replies,
        sb.client(SUP) as sup,
    ):
        for n in range(40):
            await sup.publish(f"hotline/gx/commands/{SUP}/transfer", command(f"b{n}", f"PJSIP/a-{n:04d}"), qos=1)
        await eventually(lambda: len(replies.messages) >= 40 - 7)  # 2 running + 5 waiting; the rest answered now
        busy = data_of(replies, "hotline/gx/replies/")
        assert len(busy) == 33 and all(r["result"] == "busy" and r["ok"] is False for r in busy)
        assert "nothing was done" in busy[0]["error"] and len(ran) == 2
        release.set()
        await eventually(lambda: len(replies.messages) >= 40)
        # A busy command may be sent again under the same id: it was not remembered.
        retried = busy[0]["id"]
        await sup.publish(f"hotline/gx/commands/{SUP}/transfer", command(retried, "PJSIP/a-retry"), qos=1)
        await eventually(lambda: len(replies.messages) >= 41)
    finished = data_of(replies, "hotline/gx/replies/")[33:]
    assert sorted(r["result"] for r in finished) == ["ok"] * 8 and all("replayed" not in r for r in finished)
    assert len(ran) == 8 and ran[-1] == "PJSIP/a-retry"
    await batch_writer.stop()
    results = [a.result for a in await sqlite_store.actions_between()]
    assert results.count("busy") == 33 and results.count("ok") == 8
    await batch_writer.start()


async def test_500_commands_at_once_run_or_are_busy_never_an_ami_timeout(
    secure_broker: SecureBroker, policy: TransferPolicy, batch_writer: BatchWriter
) -> None:
    sb = secure_broker
    defaults = CommandSettings()
    async with simulated_ami(policy, batch_writer) as (ami, executor):
        agents = calls(ami, 500)
        async with (
            controller(sb, executor.execute, batch_writer),
            Subscriber(sb.broker, "hotline/gx/replies/#", login=sb.login(SUP)) as replies,
            sb.client(SUP) as sup,
        ):
            await asyncio.gather(
                *(
                    sup.publish(f"hotline/gx/commands/{SUP}/transfer", command(f"m{n}", agent), qos=1)
                    for n, agent in enumerate(agents)
                )
            )
            await eventually(lambda: len(replies.messages) >= 500, limit=120)
    got = data_of(replies, "hotline/gx/replies/")
    results = [r["result"] for r in got]
    assert set(results) <= {"ok", "busy"}, sorted(set(results))  # never failed / unknown (AMI timeouts)
    ok = results.count("ok")
    # At least a full queue ran; most of the burst was refused at once (the workers drain a little of the
    # queue while the burst is still arriving, hence the slack).
    assert ok >= defaults.queue and results.count("busy") >= 500 - defaults.queue - defaults.workers - 50
    assert len(ami.actions_named("BlindTransfer")) == ok
    print(f"500 commands at once: {ok} ok, {results.count('busy')} busy")


async def test_a_handover_of_a_call_not_on_the_claimed_line_is_refused(
    secure_broker: SecureBroker, policy: TransferPolicy, batch_writer: BatchWriter
) -> None:
    sb = secure_broker
    async with simulated_ami(policy, batch_writer) as (ami, executor):
        (citizen_12345,) = calls(ami, 1, ON_12345)
        ami.add_channel("PJSIP/trunk-110", caller_num="13912345678", variables=dict(ON_110))
        ami.add_channel("PJSIP/pstn-110", caller_num="110")
        ami.bridge("PJSIP/trunk-110", "PJSIP/pstn-110")
        async with (
            controller(sb, executor.execute, batch_writer),
            Subscriber(sb.broker, "hotline/gx/replies/#", login=sb.login(SUP)) as replies,
            sb.client(SUP) as sup,
        ):
            topic = f"hotline/gx/commands/{SUP}/transfer"
            wrong = command("h1", citizen_12345, to="12345", mode="handover", **{"from": "110"})
            right = command("h2", "PJSIP/pstn-110", to="12345", mode="handover", **{"from": "110"})
            await sup.publish(topic, wrong, qos=1)
            await eventually(lambda: len(replies.messages) >= 1)
            await sup.publish(topic, right, qos=1)
            await eventually(lambda: len(replies.messages) >= 2)
    refused, moved = data_of(replies, "hotline/gx/replies/")
    assert refused["id"] == "h1" and refused["ok"] is False and refused["result"] == "refused"
    assert "is on line 12345" in refused["transfer"]["reason"] and "not on 110" in refused["transfer"]["reason"]
    assert moved["id"] == "h2" and moved["ok"] is True
    (redirect,) = ami.actions_named("Redirect")  # only the 110 call moved
    assert (redirect.get("Channel"), redirect.get("Context")) == ("PJSIP/trunk-110", "hotline-handover")


async def test_broker_mode_needs_the_sender_level_and_ignores_a_token() -> None:
    async def transfer(request: TransferRequest) -> TransferRecord:
        return done(request)

    handler = CommandHandler("gx", CommandSettings(), transfer)
    (error, reply) = await handler.handle("hotline/gx/commands/transfer", command("x1", "PJSIP/a"))
    assert "commands/<your broker user>/<type>" in error.data["error"] and reply.topic == "hotline/gx/replies/x1"
    (ok,) = await handler.handle("hotline/gx/commands/sup-1/transfer", command("x1", "PJSIP/a", token="stale"))
    assert ok.topic == "hotline/gx/replies/sup-1/x1" and ok.data["ok"] is True
    assert ok.data["transfer"]["requested_by"] == "mqtt:sup-1"


async def test_token_mode_never_publishes_the_token() -> None:
    token = secrets.token_hex(16)

    async def transfer(request: TransferRequest) -> TransferRecord:
        return done(request)

    handler = CommandHandler("gx", token, transfer)
    events = [
        *await handler.handle("hotline/gx/commands/transfer", command("t1", "PJSIP/a", token=token)),
        *await handler.handle("hotline/gx/commands/transfer", command("t1", "PJSIP/a", token=token)),
        *await handler.handle("hotline/gx/commands/transfer", command("t2", "PJSIP/a", token="wrong")),
    ]
    assert [e.topic for e in events] == [
        "hotline/gx/replies/t1",
        "hotline/gx/replies/t1",
        "hotline/gx/errors",
        "hotline/gx/replies/t2",
    ]
    assert events[1].data["replayed"] is True
    assert all(token not in e.to_json() for e in events)


def test_command_settings_come_from_the_environment() -> None:
    assert CommandSettings.from_env({}) == CommandSettings()  # broker auth by default
    assert CommandSettings.from_env({}).auth == "broker"
    env = {"HOTLINE_MQTT_COMMAND_QUEUE": "7", "HOTLINE_MQTT_COMMAND_AUTH": "token"}
    got = CommandSettings.from_env(env)
    assert (got.queue, got.auth) == (7, "token")
    with pytest.raises(ValueError, match="HOTLINE_MQTT_COMMAND_QUEUE"):
        CommandSettings.from_env({"HOTLINE_MQTT_COMMAND_QUEUE": "0"})
    with pytest.raises(ValueError, match="HOTLINE_MQTT_COMMAND_AUTH"):
        CommandSettings.from_env({"HOTLINE_MQTT_COMMAND_AUTH": "none"})
    secret = CommandSettings.from_env({"HOTLINE_MQTT_COMMAND_TOKEN": "do-not-print"})
    assert "do-not-print" not in repr(secret)


async def test_a_command_replayed_after_a_restart_runs_nothing(sqlite_store: Store) -> None:
    runs: list[TransferRequest] = []
    now = [dt.datetime(2026, 12, 6, 4, 0, tzinfo=dt.UTC)]

    async def transfer(request: TransferRequest) -> TransferRecord:
        runs.append(request)
        return done(request)

    def serve(**settings: Any) -> CommandHandler:  # a fresh process: nothing in memory, the same database
        return CommandHandler("gx", CommandSettings(**settings), transfer, lambda: now[0], replies=sqlite_store)

    topic = f"hotline/gx/commands/{SUP}/transfer"
    (first,) = await serve().handle(topic, command("k1", "PJSIP/a"))
    (again,) = await serve().handle(topic, command("k1", "PJSIP/a"))
    assert again.data["replayed"] is True and again.data["transfer"] == first.data["transfer"]
    assert len(runs) == 1
    (theirs,) = await serve().handle(f"hotline/gx/commands/{OTHER_SUP}/transfer", command("k1", "PJSIP/b"))
    assert "replayed" not in theirs.data and len(runs) == 2  # another sender's id is its own
    now[0] += dt.timedelta(seconds=61)
    (late,) = await serve(replay_ttl=60).handle(topic, command("k1", "PJSIP/a"))
    assert "replayed" not in late.data and len(runs) == 3  # remembered for the TTL only
    (again_late,) = await serve(replay_ttl=60).handle(topic, command("k1", "PJSIP/a"))
    assert again_late.data["replayed"] is True and len(runs) == 3  # and the new run is remembered in turn
