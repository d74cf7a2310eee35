"""Managed caller lists (``caller_lists``, numbers as keyed hashes only) and the agent's caller tag on each
call (``calls.caller_tag``), issue 17 item 5.

Revision ID: 0005_caller_lists
Revises: 0003 (0003_event_ids_and_leases.py; the integrator re-chains it after 0004)
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_caller_lists"
down_revision = "0003"
branch_labels = None
depends_on = None

UtcDateTime = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create ``caller_lists``; add ``calls.caller_tag`` (empty for the calls before)."""
    op.create_table(
        "caller_lists",
        sa.Column("list", sa.String(40), nullable=False),
        sa.Column("number_hash", sa.String(64), nullable=False),
        sa.Column("added_at", UtcDateTime, nullable=False),
        sa.Column("added_by", sa.String(80), nullable=False),
        sa.Column("note", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("list", "number_hash", name="pk_caller_lists"),
    )
    op.add_column("calls", sa.Column("caller_tag", sa.String(20), nullable=False, server_default=""))


def downgrade() -> None:
    """Drop both (the lists and the tags are lost)."""
    op.drop_column("calls", "caller_tag")
    op.drop_table("caller_lists")
