"""RecordPipeline over real TCP: simulated Asterisk AMI -> AmiClient -> RecordBuilder -> BatchWriter -> SQLite."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from hotline_cti.adapters.ami import AmiClient, AmiSettings
from hotline_cti.core.model import TransferMode
from hotline_cti.records.builder import RecordBuilder
from hotline_cti.records.model import CallRecord, Outcome
from hotline_cti.serve.record_pipeline import RecordPipeline
from hotline_cti.storage.store import Store
from hotline_cti.storage.writer import BatchWriter
from simulators.ami_server import AmiServer
from tests.records.test_records_builder import CALLER, NUMBER, agent_key, answered_call

SECRET = "pipeline-secret"


@dataclass
class Rig:
    server: AmiServer
    client: AmiClient
    store: Store
    writer: BatchWriter
    builder: RecordBuilder
    pipeline: RecordPipeline


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    server = AmiServer(username="hotline", secret=SECRET)
    await server.start()
    server.add_channel("PJSIP/trunk-00000001", uniqueid=CALLER, linkedid=CALLER, caller_num=NUMBER, exten="12315")
    settings = AmiSettings(
        host="127.0.0.1",
        port=server.port,
        username="hotline",
        secret=SECRET,
        action_timeout=30.0,  # bounds a hang: no test here is about an action's timeout
        backoff_initial=0.01,
        backoff_max=0.2,
        backoff_jitter=0.0,
    )
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'records.db'}")
    writer = BatchWriter(store, max_delay=0.01)
    await writer.start()
    client = AmiClient(settings)
    builder = RecordBuilder("gx")
    pipeline = RecordPipeline(client, builder, writer)  # before connect: the first login resyncs too
    await pipeline.start()
    await client.connect()
    try:
        yield Rig(server, client, store, writer, builder, pipeline)
    finally:
        await pipeline.stop()
        await client.close()
        await writer.stop()
        await store.close()
        await server.stop()


async def until(check: Callable[[], bool | Awaitable[bool]], limit: float = 30.0) -> None:
    """Wait for a condition (a bound on a hang, not a timing assertion)."""
    deadline = asyncio.get_running_loop().time() + limit
    while True:
        outcome = check()
        if not isinstance(outcome, bool):
            outcome = await outcome
        if outcome:
            return
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


async def stored(rig: Rig) -> list[CallRecord]:
    await rig.writer.flush()
    return await rig.store.calls_between()


async def outbox_types(rig: Rig) -> list[str]:
    await rig.writer.flush()
    return [json.loads(p)["type"] for _, _, p in await rig.store.pending_events(limit=1000)]


SCRIPT = [message for _, message in answered_call()]
CONNECTED = 7  # SCRIPT[:7] ends with AgentConnect


async def test_full_call_becomes_one_complete_record(rig: Rig) -> None:
    await until(lambda: rig.pipeline.resyncs == 1)
    for message in SCRIPT:
        rig.server.emit(message)

    async def ended() -> bool:
        return any(r.outcome is not Outcome.ACTIVE for r in await stored(rig))

    await until(ended)
    (rec,) = await stored(rig)
    assert (rec.call_id, rec.caller, rec.dialled, rec.origin, rec.mode) == (
        CALLER,
        "138****5678",
        "12315",
        "12315",
        "parallel",
    )
    assert (rec.queue, rec.agent, rec.wait, rec.rating, rec.hangup_cause) == ("l12315", "Agent 8001", 12.0, 1, 16)
    assert rec.outcome is Outcome.ANSWERED and rec.talk is not None and rec.ended is not None
    assert await outbox_types(rig) == [
        f"calls/{e}" for e in ("started", "routed", "queued", "answered", "rated", "ended")
    ]


async def test_dropped_ami_connection_mid_call_still_gives_a_complete_record(rig: Rig) -> None:
    await until(lambda: rig.pipeline.resyncs == 1)
    for message in SCRIPT[:CONNECTED]:
        rig.server.emit(message)
    await until(lambda: bool(rig.builder.snapshot()) and rig.builder.snapshot()[0].agent == "Agent 8001")

    rig.server.drop_connections()  # Asterisk crashes/restarts its manager; the caller's channel lives on
    await until(lambda: rig.client.connections == 2 and rig.pipeline.resyncs == 2)
    assert [r.call_id for r in rig.builder.snapshot()] == [CALLER]  # still alive per CoreShowChannels

    for message in SCRIPT[CONNECTED:]:
        rig.server.emit(message)

    async def ended() -> bool:
        return any(r.outcome is Outcome.ANSWERED for r in await stored(rig))

    await until(ended)
    (rec,) = await stored(rig)
    assert (rec.queue, rec.agent, rec.wait, rec.rating, rec.hangup_cause) == ("l12315", "Agent 8001", 12.0, 1, 16)
    assert rec.origin == "12315" and rec.caller == "138****5678" and rec.talk is not None


async def test_call_that_ended_while_disconnected_is_finished_at_resync(rig: Rig) -> None:
    await until(lambda: rig.pipeline.resyncs == 1)
    for message in SCRIPT[:CONNECTED]:
        rig.server.emit(message)
    await until(lambda: bool(rig.builder.snapshot()) and rig.builder.snapshot()[0].agent == "Agent 8001")

    rig.server.drop_connections()
    del rig.server.channels["PJSIP/trunk-00000001"]  # the caller hung up while nobody listened

    async def finished() -> bool:
        return any(r.outcome is Outcome.ANSWERED and r.ended is not None for r in await stored(rig))

    await until(finished)
    assert rig.builder.active == 0
    (rec,) = await stored(rig)
    assert rec.hangup_cause is None and rec.agent == "Agent 8001"


async def test_malformed_event_on_the_wire_does_not_stop_records(rig: Rig) -> None:
    await until(lambda: rig.pipeline.resyncs == 1)
    rig.server.emit_raw(b"Event: Hangup\r\nthis line is garbage 13812345678\r\n\r\n")
    rig.server.emit({"Event": "Newchannel", "CallerIDNum": NUMBER})  # no Uniqueid
    for message in SCRIPT:
        rig.server.emit(message)

    async def ended() -> bool:
        return any(r.outcome is Outcome.ANSWERED for r in await stored(rig))

    await until(ended)
    assert rig.builder.skipped == 1


async def test_events_with_asterisk_timestamps_are_recorded_at_pbx_time(rig: Rig) -> None:
    """With timestampevents=yes the record says when the call happened on the PBX, not when we heard of it."""
    await until(lambda: rig.pipeline.resyncs == 1)
    t0 = dt.datetime(2021, 12, 1, 2, 0, tzinfo=dt.UTC)  # 10:00 in Guangxi, long before this test runs
    fresh = "1638324000.1"  # not one of the channels the login's resync adopted at the wall clock
    for offset, message in answered_call():
        stamped = {k: v.replace(CALLER, fresh) for k, v in message.items()}
        rig.server.emit({**stamped, "Timestamp": f"{t0.timestamp() + offset:.6f}"})

    async def ended() -> bool:
        return any(r.call_id == fresh and r.outcome is not Outcome.ACTIVE for r in await stored(rig))

    await until(ended)
    (rec,) = [r for r in await stored(rig) if r.call_id == fresh]
    assert (rec.started, rec.ended) == (t0, t0 + dt.timedelta(seconds=81))
    assert rec.wait == 12.0 and rec.talk == 60.0
    # The pipeline's clock follows the PBX from then on, so expiry does not treat 2021 calls as stale at once.
    assert t0 + dt.timedelta(seconds=81) <= rig.pipeline.now() < t0 + dt.timedelta(minutes=10)


async def test_an_agents_one_key_transfer_reaches_the_transfers_audit(rig: Rig) -> None:
    """hotline-xfer's HotlineTransfer event, read off AMI, is a row in the transfers table and an MQTT event."""
    await until(lambda: rig.pipeline.resyncs == 1)
    for message in [*SCRIPT[:CONNECTED], agent_key("110")]:
        rig.server.emit(message)

    async def audited() -> bool:
        await rig.writer.flush()
        return bool(await rig.store.transfers_between())

    await until(audited)
    (row,) = await rig.store.transfers_between()
    assert (row.call_id, row.target, row.mode, row.requested_by, row.result) == (
        CALLER,
        "110",
        TransferMode.BLIND,
        "agent:8001",
        "ok",
    )
    assert "transfers" in await outbox_types(rig)
