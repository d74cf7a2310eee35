"""One migrator at a time: stores opened side by side on a new database (serve's events service, a standby, a
report) all come up on the newest schema, on SQLite (in this process and across processes) and on PostgreSQL."""

from __future__ import annotations

import asyncio
import fcntl
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hotline_cti.storage import migrate
from hotline_cti.storage.store import Store

MIGRATORS = 4


async def open_and_read_revision(url: str) -> str | None:
    store = await Store.open(url)
    try:
        return await store.schema_revision()
    finally:
        await store.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_stores_opened_side_by_side_on_a_new_database_all_migrate_it_once(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    for attempt in range(5):  # without the lock every attempt failed ("already exists", alembic's context)
        if backend == "sqlite":
            url = f"sqlite+aiosqlite:///{tmp_path / f'new{attempt}.db'}"
        else:
            url = request.getfixturevalue("pg_server").create_database()
        revisions = await asyncio.gather(*(open_and_read_revision(url) for _ in range(MIGRATORS)))
        assert revisions == [migrate.head_revision()] * MIGRATORS


def test_processes_opening_a_new_sqlite_file_at_once_all_come_up(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    code = (
        "import asyncio, sys; from tests.storage.test_storage_migrate_lock import open_and_read_revision as o; "
        "print(asyncio.run(o(sys.argv[1])))"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(MIGRATORS)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * MIGRATORS, [err[-500:] for _, err in results]
    assert [out.strip() for out, _ in results] == [migrate.head_revision()] * MIGRATORS


async def test_a_migrator_waits_for_the_lock_and_names_the_file_when_it_is_held_too_long(tmp_path: Path) -> None:
    db = tmp_path / "held.db"
    fd = os.open(f"{db}.migrate.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)  # another migrator, mid-way
    store = Store.connect(f"sqlite+aiosqlite:///{db}")
    try:
        try:
            with pytest.raises(TimeoutError, match=re.escape(f"{db}: another process has been migrating it for 0.3 s")):
                await store.migrate(lock_timeout=0.3)
            waiting = asyncio.ensure_future(store.migrate(lock_timeout=10))
            await asyncio.sleep(0.3)
            assert not waiting.done()  # it waits, without blocking this loop
        finally:
            os.close(fd)  # the other migrator is done
        await asyncio.wait_for(waiting, 10)
        assert await store.schema_revision() == migrate.head_revision()
    finally:
        await store.close()


async def test_a_lock_path_that_cannot_be_a_lock_is_an_error_naming_it_and_the_database_is_untouched(
    tmp_path: Path,
) -> None:
    db = tmp_path / "calls.db"
    url = f"sqlite+aiosqlite:///{db}"
    assert await open_and_read_revision(url) == migrate.head_revision()
    before = db.read_bytes()
    lock = Path(f"{db}.migrate.lock")
    lock.unlink()
    lock.mkdir()  # something else sits where the lock goes
    with pytest.raises(IsADirectoryError, match=re.escape(f"{db}.migrate.lock")):
        await Store.open(url)
    assert db.read_bytes() == before
