"""Alembic revisions, oldest first; each must keep ``hotline_cti.storage.tables`` and the database in step."""
