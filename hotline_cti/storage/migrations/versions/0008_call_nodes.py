"""The Asterisk node of every call, and every node's live queues (issue 19: several nodes, one store, one view).

``calls.node`` (indexed: reports pick one node) beside the call id, which a node's events service now keys
``<node>:<Uniqueid>``. Rows stored before this revision came from one Asterisk under its bare Uniqueid: they
keep that id (transfers, spies, callbacks and recording files name it) and get ``node = ''``; an operator who
knows the node can name it afterwards (``UPDATE calls SET node = 'nn-1' WHERE node = ''``, docs/scale.md).
``node_queues``: each node's live queue state, for wallboards that show every node. ``callbacks`` are keyed by
node and call (each node's keeper keeps its own; two nodes' equal uniqueids are two callbacks): existing ones
get ``node = ''``, the key a serve with no node name used.

Revision ID: 0008_call_nodes
Revises: 0007_recordings_and_spies
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_call_nodes"
down_revision = "0007_recordings_and_spies"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """A plain ADD COLUMN with a default (existing rows get '' at once, no table rebuild) and its index."""
    op.add_column("calls", sa.Column("node", sa.String(32), nullable=False, server_default=""))
    op.create_index("ix_calls_node", "calls", ["node"])
    op.create_table(
        "node_queues",
        sa.Column("node", sa.String(32), nullable=False),
        sa.Column("queue", sa.String(80), nullable=False),
        sa.Column("members", sa.Integer, nullable=False),
        sa.Column("available", sa.Integer, nullable=False),
        sa.Column("free", sa.Integer, nullable=False),
        sa.Column("waiting", sa.Integer, nullable=False),
        sa.Column("holdtime", sa.Integer, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("node", "queue", name="pk_node_queues"),
    )
    # SQLite cannot change a primary key in place: batch mode copies the table (callbacks are few).
    with op.batch_alter_table("callbacks", recreate="always") as batch:
        batch.add_column(
            sa.Column("node", sa.String(32), nullable=False, server_default=""), insert_before="callback_id"
        )
        batch.drop_constraint("pk_callbacks", type_="primary")
        batch.create_primary_key("pk_callbacks", ["node", "callback_id"])


def downgrade() -> None:
    """Drop the node_queues table, the index and the column."""
    with op.batch_alter_table("callbacks", recreate="always") as batch:
        batch.drop_constraint("pk_callbacks", type_="primary")
        batch.drop_column("node")
        batch.create_primary_key("pk_callbacks", ["callback_id"])
    op.drop_table("node_queues")
    op.drop_index("ix_calls_node", table_name="calls")
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("node")
