"""Call recordings in the call record (recording_file, recording_path) and the supervisor spy audit (issue 18).

Revision ID: 0007_recordings_and_spies
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_recordings_and_spies"
down_revision = "0006_agent_states"
branch_labels = None
depends_on = None

UtcDateTime = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Two columns on calls (plain ADD COLUMN with a default: no table rebuild) and the spies table."""
    op.add_column("calls", sa.Column("recording_file", sa.String(120), nullable=False, server_default=""))
    op.add_column("calls", sa.Column("recording_path", sa.String(400), nullable=False, server_default=""))
    op.create_table(
        "spies",
        sa.Column("spy_id", sa.String(40), nullable=False),
        sa.Column("call_id", sa.String(64), nullable=False),
        sa.Column("at", UtcDateTime, nullable=False),
        sa.Column("requested_by", sa.String(80), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(120), nullable=False),
        sa.Column("supervisor_phone", sa.String(120), nullable=False),
        sa.Column("started", UtcDateTime),
        sa.Column("ended", UtcDateTime),
        sa.Column("result", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(400), nullable=False),
        sa.PrimaryKeyConstraint("spy_id", name="pk_spies"),
    )
    op.create_index("ix_spies_call_id", "spies", ["call_id"])
    op.create_index("ix_spies_at", "spies", ["at"])


def downgrade() -> None:
    """Drop the spies table and the recording columns."""
    op.drop_index("ix_spies_at", table_name="spies")
    op.drop_index("ix_spies_call_id", table_name="spies")
    op.drop_table("spies")
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("recording_path")
        batch.drop_column("recording_file")
