"""Alembic environment: runs on the connection ``Store.open`` hands over in ``config.attributes``."""

from __future__ import annotations

from alembic import context

from hotline_cti.storage.tables import metadata

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through hotline_cti.storage.migrate.upgrade(), which supplies the connection")

# render_as_batch: SQLite cannot ALTER most things; batch mode recreates tables when a later revision needs it.
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True, compare_type=True)
with context.begin_transaction():
    context.run_migrations()
