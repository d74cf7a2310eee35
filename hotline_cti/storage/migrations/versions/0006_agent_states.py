"""The agent state log (``agent_states``): log-ins, log-outs and pauses per agent and queue (issue 18).

Revision ID: 0006_agent_states
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_agent_states"
down_revision = "0005_caller_lists"
branch_labels = None
depends_on = None

UtcDateTime = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create ``agent_states`` and its indexes."""
    op.create_table(
        "agent_states",
        sa.Column("change_id", sa.String(40), nullable=False),
        sa.Column("at", UtcDateTime, nullable=False),
        sa.Column("agent", sa.String(80), nullable=False),
        sa.Column("queue", sa.String(80), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(80), nullable=False),
        sa.Column("penalty", sa.SmallInteger, nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("change_id", name="pk_agent_states"),
    )
    op.create_index("ix_agent_states_at", "agent_states", ["at"])
    op.create_index("ix_agent_states_agent", "agent_states", ["agent"])


def downgrade() -> None:
    """Drop the agent state log (its rows are lost)."""
    op.drop_table("agent_states")
