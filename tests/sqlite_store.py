"""pytest plugin: a migrated SQLite ``Store`` in the test's temp dir and a running ``BatchWriter`` on it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hotline_cti.records.model import TransferRecord
from hotline_cti.storage.store import Store
from hotline_cti.storage.writer import BatchWriter


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[Store]:
    """A fresh SQLite database (WAL, migrated), closed afterwards."""
    db = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'hotline.db'}")
    yield db
    await db.close()


@pytest.fixture
async def batch_writer(sqlite_store: Store) -> AsyncIterator[BatchWriter]:
    """A started BatchWriter on ``sqlite_store``; stopped (flushed) afterwards."""
    writer = BatchWriter(sqlite_store)
    await writer.start()
    yield writer
    await writer.stop()


async def audited(writer: BatchWriter, store: Store) -> tuple[list[TransferRecord], list[tuple[str, dict[str, Any]]]]:
    """Flush the writer; the transfer audit rows and the outbox events (topic, payload) as stored."""
    await writer.stop()
    rows = await store.transfers_between()
    events = [(topic, json.loads(payload)) for _, topic, payload in await store.pending_events()]
    await writer.start()
    return rows, events
