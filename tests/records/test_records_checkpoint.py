"""Calls in progress survive a restart of the events service: the record builder's open calls are checkpointed in
the spool and taken back, so a call that ends while the service restarts is still recorded, with its route."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from hotline_cti.adapters.ami import AmiClient, AmiSettings
from hotline_cti.events import Event
from hotline_cti.records.builder import RecordBuilder
from hotline_cti.records.model import CallRecord, Outcome
from hotline_cti.serve.record_pipeline import RecordPipeline
from hotline_cti.storage.spool import Spool
from hotline_cti.storage.store import Store
from hotline_cti.storage.writer import BatchWriter
from tests.records.test_records_builder import CALLER, T0, answered_call, run

CONNECTED = 7  # answered_call()[:7] ends with AgentConnect


def test_open_calls_round_trip_and_resync_finishes_them_with_their_route() -> None:
    before = RecordBuilder("gx")
    run(before, answered_call()[:CONNECTED])
    saved = json.loads(json.dumps(before.open_calls()))  # through JSON, as in the spool

    after = RecordBuilder("gx")  # the restarted process
    assert after.restore(saved.values()) == 1 and after.restore(saved.values()) == 0
    assert after.snapshot() == before.snapshot()
    out = after.resync([], T0 + dt.timedelta(seconds=30))  # the caller hung up while no one listened
    (record,) = [o for o in out if isinstance(o, CallRecord)]
    assert (record.call_id, record.origin, record.queue, record.agent) == (CALLER, "12315", "l12315", "Agent 8001")
    assert record.outcome is Outcome.ANSWERED and record.ended is not None
    assert [o.type for o in out if isinstance(o, Event)] == ["calls/ended"]


def test_an_unreadable_checkpoint_entry_is_skipped() -> None:
    assert RecordBuilder("gx").restore([{"record": {}}, {"seen": "yesterday"}]) == 0


async def test_pipeline_checkpoints_and_a_finished_call_leaves_the_checkpoint_with_its_record(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db")
    store = Store.connect(f"sqlite+aiosqlite:///{tmp_path / 'never.db'}")  # never written: the writer is not started
    writer = BatchWriter(store, spool=spool)
    client = AmiClient(AmiSettings(host="127.0.0.1", port=1, username="u", secret="s"))
    pipeline = RecordPipeline(client, RecordBuilder("gx"), writer, checkpoint=spool, checkpoint_every=0.01)
    try:
        await pipeline.start()
        script = [message for _, message in answered_call()]
        for message in script[:CONNECTED]:
            pipeline.on_event(message)  # as the client would hand them over
        await pipeline.stop()  # a clean stop saves the checkpoint too
        assert [json.loads(b)["record"]["call_id"] for b in spool.load_open()] == [CALLER]
        assert spool.count("calls") == 0

        restarted = RecordPipeline(client, RecordBuilder("gx"), writer, checkpoint=spool)
        await restarted.start()
        assert restarted.builder.active == 1
        for message in script[CONNECTED:]:
            restarted.on_event(message)
        assert spool.load_open() == [] and spool.count("calls") >= 1  # record spooled, checkpoint entry gone
        await restarted.stop()
        assert spool.load_open() == []
    finally:
        spool.close()
        await store.close()
