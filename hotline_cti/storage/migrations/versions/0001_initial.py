"""Initial schema: calls, ratings, transfers, outbox (as in hotline_cti.storage.tables at issue #4).

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

UtcDateTime = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the four tables and their indexes."""
    op.create_table(
        "calls",
        sa.Column("call_id", sa.String(64), nullable=False),
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("started", UtcDateTime, nullable=False),
        sa.Column("ended", UtcDateTime, nullable=True),
        sa.Column("caller", sa.String(80), nullable=False),
        sa.Column("dialled", sa.String(40), nullable=False),
        sa.Column("form", sa.String(16), nullable=False),
        sa.Column("origin", sa.String(40), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("phase", sa.String(16), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("target", sa.String(80), nullable=False),
        sa.Column("centre", sa.String(40), nullable=False),
        sa.Column("city", sa.String(40), nullable=False),
        sa.Column("queue", sa.String(80), nullable=False),
        sa.Column("expert", sa.String(40), nullable=False),
        sa.Column("fallback", sa.Boolean, nullable=False),
        sa.Column("overflowed", sa.Boolean, nullable=False),
        sa.Column("wait", sa.Float, nullable=True),
        sa.Column("agent", sa.String(80), nullable=False),
        sa.Column("talk", sa.Float, nullable=True),
        sa.Column("transfers", sa.String(400), nullable=False),
        sa.Column("rating", sa.SmallInteger, nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("hangup_cause", sa.SmallInteger, nullable=True),
        sa.PrimaryKeyConstraint("call_id", name="pk_calls"),
    )
    op.create_index("ix_calls_started", "calls", ["started"])
    op.create_index("ix_calls_origin", "calls", ["origin"])
    op.create_index("ix_calls_queue", "calls", ["queue"])
    op.create_index("ix_calls_outcome", "calls", ["outcome"])

    op.create_table(
        "ratings",
        sa.Column("call_id", sa.String(64), nullable=False),
        sa.Column("rating", sa.SmallInteger, nullable=False),
        sa.Column("at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("call_id", name="pk_ratings"),
    )

    op.create_table(
        "transfers",
        sa.Column("transfer_id", sa.String(40), nullable=False),
        sa.Column("call_id", sa.String(64), nullable=False),
        sa.Column("at", UtcDateTime, nullable=False),
        sa.Column("channel", sa.String(120), nullable=False),
        sa.Column("target", sa.String(80), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("requested_by", sa.String(80), nullable=False),
        sa.Column("result", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(400), nullable=False),
        sa.PrimaryKeyConstraint("transfer_id", name="pk_transfers"),
    )
    op.create_index("ix_transfers_call_id", "transfers", ["call_id"])
    op.create_index("ix_transfers_at", "transfers", ["at"])

    op.create_table(
        "outbox",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), autoincrement=True, nullable=False),
        sa.Column("topic", sa.String(200), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("created", UtcDateTime, nullable=False),
        sa.Column("sent", UtcDateTime, nullable=True),
        sa.PrimaryKeyConstraint("seq", name="pk_outbox"),
    )
    op.create_index("ix_outbox_sent", "outbox", ["sent"])


def downgrade() -> None:
    """Drop everything (development only: records are lost)."""
    for name in ("outbox", "transfers", "ratings", "calls"):
        op.drop_table(name)
