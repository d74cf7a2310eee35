"""Listen / whisper / barge audit rows: through the writer (and its spool) into ``spies``, updated when the leg ends."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from hotline_cti.config.errors import ConfigError
from hotline_cti.config.loader import load_config
from hotline_cti.records.model import CallRecord, Outcome
from hotline_cti.records.spy import SpyMode, SpyRecord
from hotline_cti.storage import migrate, spooled
from hotline_cti.storage.store import Store
from hotline_cti.storage.writer import BatchWriter
from tests.conftest import SMALL_YAML

T0 = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)


def _spy(**kw: object) -> SpyRecord:
    values: dict[str, object] = {
        "call_id": "1700000000.1",
        "at": T0,
        "requested_by": "wallboard:boss",
        "mode": SpyMode.WHISPER,
        "channel": "PJSIP/agent1001-0000000a",
        "supervisor_phone": "PJSIP/sup1",
        "result": "ok",
        "started": T0 + dt.timedelta(seconds=2),
    }
    values.update(kw)
    return SpyRecord(**values)  # type: ignore[arg-type]


async def test_a_spy_row_is_written_then_given_its_end(sqlite_store: Store, batch_writer: BatchWriter) -> None:
    row = _spy()
    batch_writer.submit_spy(row)
    await batch_writer.flush()
    assert await sqlite_store.spies_between() == [row]
    done = dataclasses.replace(row, ended=T0 + dt.timedelta(seconds=95))
    batch_writer.submit_spy(done)
    await batch_writer.flush()
    (stored,) = await sqlite_store.spies_between()
    assert stored == done and stored.seconds == 93.0
    assert await sqlite_store.spies_between(since=T0 + dt.timedelta(seconds=1)) == []


def test_the_spool_keeps_every_field_and_the_event_masks_numbers() -> None:
    row = _spy(channel="Local/13812345678@hotline-onekey-00000001;1", reason="caller 13812345678 gone", ended=T0)
    assert spooled.decode_spy(spooled.encode_spy(row)) == row
    event = row.event("gx")
    assert (event.type, event.topic) == ("spies", "hotline/gx/spies")
    text = json.dumps(event.data, ensure_ascii=False)
    assert "13812345678" not in text and "138****5678" in text
    assert event.data["seconds"] == -2.0 and event.data["mode"] == "whisper"


@pytest.mark.parametrize(
    ("phones", "message"),
    [
        ("{boss: 'PJSIP/sup1,qB'}", "is not a phone to call"),
        ("{boss: 'DAHDI/1'}", "is not a phone to call"),
        ("{'bo ss': PJSIP/sup1}", "is not a wallboard user name"),
    ],
)
def test_supervisors_phones_are_checked_with_their_line(tmp_path: Path, phones: str, message: str) -> None:
    path = tmp_path / "cfg.yaml"
    text = SMALL_YAML + f"supervision:\n  phones: {phones}\n"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    found = [str(p) for p in info.value.problems]
    assert any(message in p and f"cfg.yaml:{len(text.splitlines())}:" in p for p in found), found


def test_supervisors_phones_default_to_none(small_config_path: Path) -> None:
    assert load_config(small_config_path).model.supervision.phones == {}


async def test_spies_and_recordings_on_postgresql(fresh_pg_url: str) -> None:
    store = await Store.open(fresh_pg_url)
    try:
        row = _spy(mode=SpyMode.BARGE)
        await store.add_spies([row])
        done = dataclasses.replace(row, ended=T0 + dt.timedelta(seconds=30))
        await store.add_spies([done])
        assert await store.spies_between() == [done]
        record = CallRecord(
            "1700000000.1",
            "gx",
            T0,
            outcome=Outcome.ANSWERED,
            recording_file="1700000000.1-1772352000.wav",
            recording_path="hotline/20260301/1700000000.1-1772352000.wav",
        )
        await store.upsert_calls([record])
        assert await store.recording_path("1700000000.1") == "hotline/20260301/1700000000.1-1772352000.wav"
        assert await store.recording_path("1700000000.2") is None
        assert [c.recording_file for c in await store.calls_between()] == ["1700000000.1-1772352000.wav"]
    finally:
        await store.close()


def test_a_database_at_0003_upgrades_keeping_its_calls(tmp_path: Path) -> None:
    """0007 on a database in service: existing call rows get empty recording columns; 0007 downgrades cleanly."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        migrate.upgrade(conn, "0003")
        conn.execute(
            sa.text(
                "INSERT INTO calls (call_id, region, started, caller, dialled, form, origin, mode, phase, action,"
                " target, centre, city, queue, expert, fallback, overflowed, agent, transfers, outcome)"
                " VALUES ('1.1', 'gx', '2026-03-01 08:00:00', '', '', '', '', '', '', '', '', '', '', '', '', 0, 0,"
                " '', '', 'answered')"
            )
        )
    with engine.begin() as conn:
        migrate.upgrade(conn)
        assert migrate.current_revision(conn) == "0009_node_queue_oldest"
        row = conn.execute(sa.text("SELECT recording_file, recording_path FROM calls")).one()
        assert tuple(row) == ("", "")
        assert conn.execute(sa.text("SELECT count(*) FROM spies")).scalar() == 0
    with engine.begin() as conn:
        command.downgrade(migrate.alembic_config(conn), "0003")
        assert migrate.current_revision(conn) == "0003"
        assert "spies" not in sa.inspect(conn).get_table_names()
        assert conn.execute(sa.text("SELECT call_id FROM calls")).scalar() == "1.1"
    engine.dispose()
