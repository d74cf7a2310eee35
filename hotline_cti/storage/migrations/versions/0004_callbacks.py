"""Callbacks (回呼): one row per callback offered, kept across controller restarts (issue #17).

Revision ID: 0004_callbacks
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_callbacks"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """The callbacks table."""
    op.create_table(
        "callbacks",
        sa.Column("callback_id", sa.String(64), nullable=False),
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("queue", sa.String(80), nullable=False),
        sa.Column("number", sa.String(40), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("offered", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accepted", sa.DateTime(timezone=True), nullable=True),
        sa.Column("joined", sa.DateTime(timezone=True), nullable=True),
        sa.Column("position", sa.Integer, nullable=True),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_try", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reached", sa.DateTime(timezone=True), nullable=True),
        sa.Column("agent", sa.String(120), nullable=False),
        sa.Column("closed", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("callback_id", name="pk_callbacks"),
    )
    op.create_index("ix_callbacks_status", "callbacks", ["status"])
    op.create_index("ix_callbacks_offered", "callbacks", ["offered"])


def downgrade() -> None:
    """Drop the callbacks table."""
    op.drop_index("ix_callbacks_offered", table_name="callbacks")
    op.drop_index("ix_callbacks_status", table_name="callbacks")
    op.drop_table("callbacks")
