"""Schema migrations run programmatically (alembic), on the connection the store already holds.

One migrator at a time per database: serve's events service, a standby's, a report or the CLI may all open the
store at once, and two alembic runs side by side fail ("table calls already exists"; on SQLite its DDL is not
transactional). PostgreSQL serialises them with a transaction-scoped advisory lock (:data:`ADVISORY_LOCK_KEY`),
a SQLite file with an ``flock`` on ``<file>.migrate.lock`` (:func:`sqlite_migration_lock`). The one that waited
then finds the schema current and changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import AsyncIterator
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
ADVISORY_LOCK_KEY = 0x686F746C696E6543  # pg_advisory_xact_lock's key for every hotline-cti migrator ("hotlineC")
LOCK_POLL = 0.05  # seconds between tries of a SQLite migration lock another migrator holds


@contextlib.asynccontextmanager
async def sqlite_migration_lock(database: str, timeout: float) -> AsyncIterator[None]:
    """Hold ``<database>.migrate.lock`` exclusively (other processes, and other stores of this one), waiting
    without blocking the event loop; TimeoutError after ``timeout`` s of another migrator holding it."""
    fd = os.open(f"{database}.migrate.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if loop.time() >= deadline:
                    raise TimeoutError(f"{database}: another process has been migrating it for {timeout:g} s") from None
                await asyncio.sleep(LOCK_POLL)
        yield
    finally:
        os.close(fd)  # releases the lock


def alembic_config(connection: sa.Connection | None = None) -> Config:
    """An alembic ``Config`` pointing at ``storage/migrations`` (no alembic.ini needed)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade(connection: sa.Connection, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (sync; call through ``AsyncConnection.run_sync``)."""
    command.upgrade(alembic_config(connection), revision)


def current_revision(connection: sa.Connection) -> str | None:
    """The revision the database is at, or None before the first migration."""
    return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    """The newest revision shipped with this code."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()
