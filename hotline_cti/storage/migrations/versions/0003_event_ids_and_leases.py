"""Outbox event ids (insert once) and the per-link writer lease (issue #13).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """outbox.event_id (unique; NULL for rows written before) and the leases table."""
    # A plain ADD COLUMN and a unique index: no table rebuild on SQLite, so the outbox's seq order is untouched.
    op.add_column("outbox", sa.Column("event_id", sa.String(32), nullable=True))
    op.create_index("ix_outbox_event_id", "outbox", ["event_id"], unique=True)
    op.create_table(
        "leases",
        sa.Column("link", sa.String(200), nullable=False),
        sa.Column("holder", sa.String(300), nullable=False),
        sa.Column("expires", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("link", name="pk_leases"),
    )


def downgrade() -> None:
    """Drop the lease table and the event ids."""
    op.drop_table("leases")
    op.drop_index("ix_outbox_event_id", table_name="outbox")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("event_id")
