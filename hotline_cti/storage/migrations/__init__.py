"""Alembic environment for hotline-cti's schema; run programmatically by ``Store.open`` (see ``migrate.py``)."""
