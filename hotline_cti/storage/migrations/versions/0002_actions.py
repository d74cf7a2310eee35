"""Audit of supervisor actions and MQTT commands (``actions``) and MQTT commands' first replies
(``command_replies``), issue 14.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

UtcDateTime = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create ``actions`` and ``command_replies`` and their indexes."""
    op.create_table(
        "actions",
        sa.Column("action_id", sa.String(40), nullable=False),
        sa.Column("at", UtcDateTime, nullable=False),
        sa.Column("actor", sa.String(80), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("detail", sa.String(400), nullable=False),
        sa.Column("result", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(400), nullable=False),
        sa.PrimaryKeyConstraint("action_id", name="pk_actions"),
    )
    op.create_index("ix_actions_at", "actions", ["at"])
    op.create_index("ix_actions_actor", "actions", ["actor"])

    op.create_table(
        "command_replies",
        sa.Column("sender", sa.String(64), nullable=False),
        sa.Column("command_id", sa.String(64), nullable=False),
        sa.Column("at", UtcDateTime, nullable=False),
        sa.Column("reply", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("sender", "command_id", name="pk_command_replies"),
    )
    op.create_index("ix_command_replies_at", "command_replies", ["at"])


def downgrade() -> None:
    """Drop both tables (their rows are lost)."""
    op.drop_table("command_replies")
    op.drop_table("actions")
