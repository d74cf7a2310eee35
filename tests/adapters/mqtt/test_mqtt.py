"""MQTT against a real mosquitto: the outbox publisher (order, broker restart) and the command topic."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import unittest.mock
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
import sqlalchemy as sa

from hotline_cti.adapters.ami import AmiClient, AmiSettings
from hotline_cti.adapters.ami.transfer import TransferExecutor
from hotline_cti.adapters.mqtt.commands import CommandHandler, CommandListener
from hotline_cti.adapters.mqtt.publisher import OutboxPublisher
from hotline_cti.adapters.mqtt.settings import ENV_PASSWORD, ENV_USER, MqttSettings, parse_address
from hotline_cti.config.loader import load_config
from hotline_cti.core.model import TransferMode
from hotline_cti.core.transfer import TransferRequest
from hotline_cti.dialplan.transfer_policy import build_policy
from hotline_cti.events import Event
from hotline_cti.records.model import TransferRecord
from hotline_cti.storage.store import Store
from hotline_cti.storage.tables import outbox
from hotline_cti.storage.writer import BatchWriter
from simulators.ami_server import AmiServer
from tests.adapters.ami.test_transfer import AGENT, CALLER, SECRET
from tests.mqtt_broker import Broker, running_broker
from tests.sqlite_store import audited

TOKEN = "test-command-token"  # a dummy shared secret for these tests only
AT = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)


def event(n: int) -> Event:
    return Event("calls/started", "gx", AT, {"n": n, "call_id": f"1700000000.{n}"})


async def eventually(predicate: Callable[[], bool], limit: float = 20.0) -> None:
    """Wait until ``predicate()`` holds (a bounded wait, not a timing assertion)."""
    end = asyncio.get_running_loop().time() + limit
    while not predicate():
        if asyncio.get_running_loop().time() > end:
            raise AssertionError("condition never became true")
        await asyncio.sleep(0.01)


class Subscriber:
    """A persistent-session QoS 1 subscriber that reconnects, as the 12345 platform would."""

    def __init__(
        self, broker: Broker, *topic_filters: str, login: tuple[str, str] | None = None, identifier: str = ""
    ) -> None:
        self.broker = broker
        self.login = login
        # Client ids must differ between subscribers of one broker, or each connection kicks the other off.
        self.identifier = identifier or (f"{login[0]}-sub" if login else "platform-sub")
        self.topic_filters = topic_filters
        self.messages: list[tuple[str, dict[str, Any]]] = []
        self.ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Subscriber:
        self._task = asyncio.create_task(self._run())
        await asyncio.wait_for(self.ready.wait(), 10)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        while True:
            try:
                user, password = self.login or (None, None)
                async with aiomqtt.Client(
                    self.broker.host,
                    self.broker.port,
                    identifier=self.identifier,
                    clean_session=False,
                    username=user,
                    password=password,
                ) as client:
                    for topic_filter in self.topic_filters:
                        await client.subscribe(topic_filter, qos=1)
                    self.ready.set()
                    async for message in client.messages:
                        payload = message.payload
                        assert isinstance(payload, bytes)
                        self.messages.append((str(message.topic), json.loads(payload)))
            except aiomqtt.MqttError:
                await asyncio.sleep(0.1)

    def numbers(self) -> list[int]:
        return [int(body["data"]["n"]) for _, body in self.messages if "n" in body["data"]]


def settings(broker: Broker) -> MqttSettings:
    return MqttSettings(broker.host, broker.port, timeout=5.0)


@pytest.fixture
async def publisher(mqtt_broker: Broker, sqlite_store: Store) -> AsyncIterator[OutboxPublisher]:
    pub = OutboxPublisher(sqlite_store, settings(mqtt_broker), poll=0.02, window=50, backoff=(0.05, 2.0, 0.5))
    yield pub
    await pub.stop()


async def sent_seqs(store: Store) -> list[int]:
    async with store.engine.connect() as conn:
        result = await conn.execute(sa.select(outbox.c.seq).where(outbox.c.sent.is_not(None)).order_by(outbox.c.seq))
        return [int(seq) for seq in result.scalars()]


async def test_events_arrive_in_order_with_their_envelope(
    mqtt_broker: Broker, publisher: OutboxPublisher, sqlite_store: Store
) -> None:
    pub = publisher
    await sqlite_store.append_events([event(n) for n in range(300)])
    async with Subscriber(mqtt_broker, "hotline/gx/#") as sub:
        await pub.start()
        await eventually(lambda: len(sub.messages) >= 300)
    assert sub.numbers() == list(range(300))
    topic_name, body = sub.messages[0]
    assert topic_name == "hotline/gx/calls/started"
    assert body == {"v": 1, "type": "calls/started", "region": "gx", "at": AT.isoformat(), "data": event(0).data}
    await eventually(lambda: pub.published == 300)  # the last PUBACKs may come after the deliveries
    assert await sent_seqs(sqlite_store) == list(range(1, 301))
    assert await sqlite_store.pending_events() == []


async def test_event_streams_end_in_the_node_so_one_filter_is_the_platform_and_another_one_node(
    mqtt_broker: Broker, publisher: OutboxPublisher, sqlite_store: Store
) -> None:
    """Issue 19: topics carry the node as their last level; ``#`` also matches an unnamed node's parent level."""
    events = [
        Event("calls/ended", "gx", AT, {"n": 0}, node="nn-1"),
        Event("calls/ended", "gx", AT, {"n": 1}, node="nn-2"),
        Event("calls/ended", "gx", AT, {"n": 2}),  # an unnamed single node: the topic as before nodes
        Event("transfers", "gx", AT, {"n": 3}, node="nn-2"),
        Event("transfers", "gx", AT, {"n": 4}),
        Event("agents", "gx", AT, {"n": 5}, node="nn-1"),
        Event("errors", "gx", AT, {"n": 6}, node="nn-1"),  # an answer: the requester cannot know the node
    ]
    await sqlite_store.append_events(events)
    async with (
        Subscriber(mqtt_broker, "hotline/gx/calls/#", "hotline/gx/transfers/#", identifier="platform") as platform,
        Subscriber(mqtt_broker, "hotline/gx/+/+/nn-1", "hotline/gx/+/nn-1", identifier="nn1") as nn1,
        Subscriber(mqtt_broker, "hotline/gx/errors", identifier="errors") as errors,
    ):
        await publisher.start()
        await eventually(lambda: len(platform.messages) >= 5 and len(nn1.messages) >= 2 and len(errors.messages) >= 1)
        await asyncio.sleep(0.2)  # nothing more arrives
    assert [t for t, _ in platform.messages] == [
        "hotline/gx/calls/ended/nn-1",
        "hotline/gx/calls/ended/nn-2",
        "hotline/gx/calls/ended",
        "hotline/gx/transfers/nn-2",
        "hotline/gx/transfers",
    ]
    assert [(t, body["node"]) for t, body in nn1.messages] == [
        ("hotline/gx/calls/ended/nn-1", "nn-1"),
        ("hotline/gx/agents/nn-1", "nn-1"),
    ]
    assert [(t, body["node"]) for t, body in errors.messages] == [("hotline/gx/errors", "nn-1")]


def test_an_events_node_must_be_a_node_name_for_it_becomes_a_topic_level() -> None:
    body = json.loads(Event("transfers", "gx", AT, {}, node="nn-1").to_json())
    assert Event.from_json(json.dumps(body)).topic == "hotline/gx/transfers/nn-1"
    for bad in ("a/b", "#", "+", "", 7):
        body["node"] = bad
        if bad == "":
            assert Event.from_json(json.dumps(body)).topic == "hotline/gx/transfers"
            continue
        with pytest.raises(ValueError, match=r"^'node' is not a node name"):
            Event.from_json(json.dumps(body))


async def test_broker_restart_mid_run_loses_nothing_and_keeps_order(
    mqtt_broker: Broker, publisher: OutboxPublisher, sqlite_store: Store
) -> None:
    pub = publisher
    total = 600

    async def produce() -> None:
        for n in range(total):
            await sqlite_store.append_events([event(n)])
            pub.notify()
            await asyncio.sleep(0.002)

    async with Subscriber(mqtt_broker, "hotline/gx/#") as sub:
        await pub.start()
        producer = asyncio.create_task(produce())
        await eventually(lambda: len(sub.messages) >= 100)
        await asyncio.to_thread(mqtt_broker.restart)
        await producer
        await eventually(lambda: len(set(sub.numbers())) >= total, limit=60)
    got = sub.numbers()
    assert sorted(set(got)) == list(range(total))  # every event, QoS 1 may repeat a few
    firsts = list(dict.fromkeys(got))
    assert firsts == sorted(firsts)  # and in order
    assert pub.connections >= 2  # the restart really happened while publishing
    assert await pub.drain(20)  # and every row ends up marked sent (the last PUBACKs may trail the deliveries)


# ------------------------------------------------------------------ commands


def handler(transfer: Callable[[TransferRequest], Any] | None = None, token: str = TOKEN) -> CommandHandler:
    return CommandHandler("gx", token, transfer, clock=lambda: AT)


def command(**fields: Any) -> bytes:
    body = {"v": 1, "id": "r1", "token": TOKEN, "type": "transfer", "channel": AGENT, "to": "119", "mode": "blind"}
    body.update(fields)
    return json.dumps({k: v for k, v in body.items() if v is not None}).encode()


@pytest.mark.parametrize(
    ("payload", "error", "replied"),
    [
        (b"{not json", "not JSON", False),
        (b"[1, 2]", "not a JSON object", False),
        (command(v=2), "unsupported version 2", False),
        (command(id="a/b"), "'id' must be", False),
        (command(token="wrong"), "not authenticated", True),
        (command(token=None), "not authenticated", True),
        (command(type="reboot"), "unknown command type 'reboot'", True),
        (command(channel=""), "non-empty string 'channel'", True),
        (command(mode="sideways"), "unknown mode 'sideways'", True),
    ],
)
async def test_bad_commands_get_an_error_event_naming_the_topic(payload: bytes, error: str, replied: bool) -> None:
    calls: list[TransferRequest] = []

    async def transfer(req: TransferRequest) -> TransferRecord:
        calls.append(req)
        raise AssertionError("must not run")

    events = await handler(transfer).handle("hotline/gx/commands/transfer", payload)
    assert events[0].topic == "hotline/gx/errors"
    assert events[0].data["topic"] == "hotline/gx/commands/transfer"
    assert error in events[0].data["error"]
    assert [e.topic for e in events[1:]] == (["hotline/gx/replies/r1"] if replied else [])
    assert calls == []


async def test_without_a_configured_token_every_command_is_refused() -> None:
    events = await handler(token="").handle("hotline/gx/commands/transfer", command())
    assert "HOTLINE_MQTT_COMMAND_TOKEN is not set" in events[0].data["error"]


def test_parse_address() -> None:
    assert parse_address("broker.local:8883") == ("broker.local", 8883)
    assert parse_address("10.0.0.5") == ("10.0.0.5", 1883)
    with pytest.raises(ValueError, match="not HOST:PORT"):
        parse_address("host:port")


async def test_commands_over_a_real_broker_run_the_transfer_and_reply(
    mqtt_broker: Broker, small_config_path: Path, batch_writer: BatchWriter, sqlite_store: Store
) -> None:
    policy = build_policy(load_config(small_config_path).model)
    async with AmiServer(secret=SECRET) as ami:
        ami.add_channel(CALLER, caller_num="13812345678")
        ami.add_channel(AGENT, caller_num="1001")
        ami.bridge(CALLER, AGENT)
        ami_settings = AmiSettings(host="127.0.0.1", port=ami.port, username="hotline", secret=SECRET)
        async with AmiClient(ami_settings) as client:
            executor = TransferExecutor(client, lambda: policy, batch_writer)
            listener = CommandListener(settings(mqtt_broker), handler(executor.execute))
            await listener.start()
            try:
                await asyncio.wait_for(listener.subscribed.wait(), 10)
                async with (
                    Subscriber(mqtt_broker, "hotline/gx/replies/#", "hotline/gx/errors") as sub,
                    aiomqtt.Client(mqtt_broker.host, mqtt_broker.port) as requester,
                ):
                    topic_name = "hotline/gx/commands/transfer"
                    await requester.publish(topic_name, b"garbage", qos=1)
                    await requester.publish(topic_name, command(id="bad", token="guess"), qos=1)
                    await eventually(lambda: len(sub.messages) >= 3)
                    await requester.publish(topic_name, command(id="good", by="wallboard-3"), qos=1)
                    await eventually(lambda: any(t.endswith("replies/good") for t, _ in sub.messages))
            finally:
                await listener.stop()
    by_topic = {t: body for t, body in sub.messages}
    errors = [b["data"] for t, b in sub.messages if t == "hotline/gx/errors"]
    assert sorted(e["error"].split(":")[0] for e in errors) == ["not JSON", "not authenticated"]
    assert {e["topic"] for e in errors} == {topic_name}
    refused = by_topic["hotline/gx/replies/bad"]["data"]
    assert refused["ok"] is False and "not authenticated" in refused["error"]
    good = by_topic["hotline/gx/replies/good"]["data"]
    assert good["ok"] is True and good["transfer"]["target"] == "119"
    assert good["transfer"]["requested_by"] == "mqtt:wallboard-3"
    assert [a.get("Exten") for a in ami.actions_named("BlindTransfer")] == ["119"]  # only the good one ran
    rows, events = await audited(batch_writer, sqlite_store)
    assert [(t.result, t.mode, t.requested_by) for t in rows] == [("ok", TransferMode.BLIND, "mqtt:wallboard-3")]
    assert [topic for topic, _ in events] == ["hotline/gx/transfers"]


async def test_drain_waits_for_the_outbox_and_keeps_rows_while_the_broker_is_away(
    mqtt_broker: Broker, publisher: OutboxPublisher, sqlite_store: Store
) -> None:
    await sqlite_store.append_events([event(n) for n in range(20)])
    await publisher.start()
    assert await publisher.drain(20) is True
    assert await sqlite_store.pending_events() == []
    mqtt_broker.stop()
    await sqlite_store.append_events([event(99)])
    assert await publisher.drain(0.3) is False
    assert [json.loads(p)["data"]["n"] for _, _, p in await sqlite_store.pending_events()] == [99]
    mqtt_broker.start()
    assert await publisher.drain(20) is True


async def test_broker_login_comes_from_the_environment(sqlite_store: Store) -> None:
    password = "broker-test-password"  # a dummy credential for this throwaway broker
    with running_broker({"hotline-cti": password}) as broker:
        env = {ENV_USER: "hotline-cti", ENV_PASSWORD: password}
        good = MqttSettings.from_env(broker.host, broker.port, env, timeout=5.0)
        bad = MqttSettings.from_env(broker.host, broker.port, {ENV_USER: "hotline-cti", ENV_PASSWORD: "wrong"})
        assert good.username == "hotline-cti" and "broker-test-password" not in repr(good)
        await sqlite_store.append_events([event(1)])
        refused = OutboxPublisher(sqlite_store, bad, poll=0.02, backoff=(0.05, 2.0, 0.2))
        await refused.start()
        assert await refused.drain(0.5) is False  # not authorised: nothing published, nothing lost
        await refused.stop()
        assert refused.connections == 0
        async with Subscriber(broker, "hotline/gx/#", login=("hotline-cti", password)) as sub:
            accepted = OutboxPublisher(sqlite_store, good, poll=0.02)
            await accepted.start()
            try:
                await eventually(lambda: sub.numbers() == [1])
            finally:
                await accepted.stop()


async def test_transfer_command_without_ami_is_an_error() -> None:
    events = await handler(None).handle("hotline/gx/commands/transfer", command())
    assert [e.topic for e in events] == ["hotline/gx/errors", "hotline/gx/replies/r1"]
    assert "serve runs without --ami" in events[0].data["error"]


async def test_the_writer_tells_the_publisher_about_committed_rows(mqtt_broker: Broker, sqlite_store: Store) -> None:
    """Wired as the events service wires them, an event reaches the broker with the publisher's poll an hour long:
    the writer's commit wakes it (the poll is only a safety net)."""
    pub = OutboxPublisher(sqlite_store, settings(mqtt_broker), poll=3600.0)
    writer = BatchWriter(sqlite_store, max_delay=0.01)
    writer.on_outbox_commit(pub.notify)
    async with Subscriber(mqtt_broker, "hotline/gx/#") as sub:
        await pub.start()
        await writer.start()
        try:
            await eventually(lambda: pub.connections == 1)
            await asyncio.sleep(0.2)  # the publisher found the outbox empty and waits for a notify
            for n in range(3):
                writer.submit_event(event(n))
            await eventually(lambda: len(sub.messages) >= 3, limit=30)
            assert sub.numbers() == [0, 1, 2]
        finally:
            await writer.stop()
            await pub.stop()


async def test_stop_returns_even_when_the_publishing_task_will_not_end(sqlite_store: Store) -> None:
    """A client stuck in a broker's disconnect ignores the cancel: stop() still returns (serve's shutdown goes on)."""
    pub = OutboxPublisher(sqlite_store, MqttSettings("127.0.0.1", 1), poll=0.02)
    release = asyncio.Event()

    async def stubborn() -> None:
        while not release.is_set():
            with contextlib.suppress(asyncio.CancelledError):
                await release.wait()

    pub._task = asyncio.create_task(stubborn())
    loop = asyncio.get_running_loop()
    started = loop.time()
    with unittest.mock.patch("hotline_cti.adapters.mqtt.publisher.STOP_WAIT", 0.2):
        await pub.stop()
    assert pub._task is None and loop.time() - started < 5
    release.set()
