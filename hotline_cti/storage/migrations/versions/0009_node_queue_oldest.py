"""When each node's longest-waiting caller joined each queue (issue 19: the longest wait of every node).

``node_queues.oldest``: NULL where nobody waits, or where a node's events service from before this revision
wrote the row (the walls then show that node's wait as unknown, not 0).

Revision ID: 0009_node_queue_oldest
Revises: 0008_call_nodes
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_node_queue_oldest"
down_revision = "0008_call_nodes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """One nullable column (plain ADD COLUMN: no table rebuild)."""
    op.add_column("node_queues", sa.Column("oldest", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    """Drop the column."""
    with op.batch_alter_table("node_queues") as batch:
        batch.drop_column("oldest")
