"""Table definitions (SQLAlchemy Core): the one schema SQLite and PostgreSQL share.

Core tables rather than ORM classes: bulk ``insert()`` of a batch is ~15x
faster than ORM ``add_all`` on aiosqlite, and records are written in batches
off the call path. Alembic migrations in ``storage/migrations`` must match this
module (a test compares them).
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

UtcDateTime = sa.DateTime(timezone=True)

# One row per call (hotline_cti.records.model.CallRecord). Upserted by call_id (<node>:<Uniqueid>):
# a record may be written twice (e.g. the rating arrives after the hang-up).
calls = sa.Table(
    "calls",
    metadata,
    sa.Column("call_id", sa.String(64), primary_key=True),
    sa.Column("region", sa.String(32), nullable=False),
    sa.Column("started", UtcDateTime, nullable=False, index=True),
    sa.Column("ended", UtcDateTime),
    sa.Column("caller", sa.String(80), nullable=False, default=""),
    sa.Column("dialled", sa.String(40), nullable=False, default=""),
    sa.Column("form", sa.String(16), nullable=False, default=""),
    sa.Column("origin", sa.String(40), nullable=False, default="", index=True),
    sa.Column("mode", sa.String(16), nullable=False, default=""),
    sa.Column("phase", sa.String(16), nullable=False, default=""),
    sa.Column("action", sa.String(16), nullable=False, default=""),
    sa.Column("target", sa.String(80), nullable=False, default=""),
    sa.Column("centre", sa.String(40), nullable=False, default=""),
    sa.Column("city", sa.String(40), nullable=False, default=""),
    sa.Column("queue", sa.String(80), nullable=False, default="", index=True),
    sa.Column("expert", sa.String(40), nullable=False, default=""),
    sa.Column("caller_tag", sa.String(20), nullable=False, default="", server_default=""),
    sa.Column("fallback", sa.Boolean, nullable=False, default=False),
    sa.Column("overflowed", sa.Boolean, nullable=False, default=False),
    sa.Column("wait", sa.Float),
    sa.Column("agent", sa.String(80), nullable=False, default=""),
    sa.Column("talk", sa.Float),
    sa.Column("transfers", sa.String(400), nullable=False, default=""),  # ','-joined targets in order
    sa.Column("rating", sa.SmallInteger),
    sa.Column("outcome", sa.String(16), nullable=False, index=True),
    sa.Column("hangup_cause", sa.SmallInteger),
    sa.Column("recording_file", sa.String(120), nullable=False, server_default="", default=""),
    sa.Column("recording_path", sa.String(400), nullable=False, server_default="", default=""),
    # The Asterisk node of the call (serve --node; call_id is '<node>:<Uniqueid>'); '' for calls stored before
    # revision 0008, when one Asterisk wrote them under the bare Uniqueid.
    sa.Column("node", sa.String(32), nullable=False, server_default="", default="", index=True),
)

# Post-call ratings (满意/基本满意/不满意), written only through BatchWriter.submit_rating, which serve no longer
# calls: the survey runs in the dialplan and its HotlineRating event fills calls.rating. Kept for existing databases.
ratings = sa.Table(
    "ratings",
    metadata,
    sa.Column("call_id", sa.String(64), primary_key=True),
    sa.Column("rating", sa.SmallInteger, nullable=False),
    sa.Column("at", UtcDateTime, nullable=False),
)

# Audit of every transfer (hotline_cti.records.model.TransferRecord).
transfers = sa.Table(
    "transfers",
    metadata,
    sa.Column("transfer_id", sa.String(40), primary_key=True),
    sa.Column("call_id", sa.String(64), nullable=False, index=True),
    sa.Column("at", UtcDateTime, nullable=False, index=True),
    sa.Column("channel", sa.String(120), nullable=False),
    sa.Column("target", sa.String(80), nullable=False),
    sa.Column("mode", sa.String(16), nullable=False),
    sa.Column("requested_by", sa.String(80), nullable=False),
    sa.Column("result", sa.String(16), nullable=False),
    sa.Column("reason", sa.String(400), nullable=False, default=""),
)

# MQTT outbox: every event is written here first, in order; the publisher
# sends rows in seq order and deletes (or marks) them once the broker acked
# (QoS 1), so nothing is lost while the broker is down. event_id (given when the
# event was spooled) is unique: a replayed batch inserts nothing twice.
outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("topic", sa.String(200), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("created", UtcDateTime, nullable=False),
    sa.Column("sent", UtcDateTime, index=True),
    sa.Column("event_id", sa.String(32), index=True, unique=True),
)

# One writer per Asterisk link ('<node>@<host:port>'): the events service holding a link's row (until
# `expires`, seconds since the epoch on the database's own clock) is the only one
# writing that link's records and events (storage/lease.py).
leases = sa.Table(
    "leases",
    metadata,
    sa.Column("link", sa.String(200), primary_key=True),
    sa.Column("holder", sa.String(300), nullable=False),
    sa.Column("expires", sa.Float, nullable=False),
)

# Live queue state of each Asterisk node (issue 19), one row per (node, queue): each node's events service
# writes its own rows every few seconds (hotline_cti.serve.node_queues), so a wallboard beside any node, or at
# the region centre, shows every node's queues and their sum. ``at``: when the node wrote them (a row that
# stopped moving is a node, or its events service, that went away: shown stale, left out of the sums).
node_queues = sa.Table(
    "node_queues",
    metadata,
    sa.Column("node", sa.String(32), primary_key=True),
    sa.Column("queue", sa.String(80), primary_key=True),
    sa.Column("members", sa.Integer, nullable=False),
    sa.Column("available", sa.Integer, nullable=False),
    sa.Column("free", sa.Integer, nullable=False),
    sa.Column("waiting", sa.Integer, nullable=False),
    sa.Column("holdtime", sa.Integer, nullable=False),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("oldest", UtcDateTime, nullable=True),  # when its longest-waiting caller joined; NULL: none
)

# Audit of supervisor and operator actions other than transfers (hotline_cti.records.actions.ActionRecord):
# wallboard logins, acknowledgements and threshold changes, and every MQTT command as received (who sent it,
# its id, what became of it). Transfers keep their own table; an MQTT transfer has a row in both.
actions = sa.Table(
    "actions",
    metadata,
    sa.Column("action_id", sa.String(40), primary_key=True),
    sa.Column("at", UtcDateTime, nullable=False, index=True),
    sa.Column("actor", sa.String(80), nullable=False, index=True),
    sa.Column("action", sa.String(40), nullable=False),
    sa.Column("detail", sa.String(400), nullable=False, default=""),
    sa.Column("result", sa.String(16), nullable=False),
    sa.Column("reason", sa.String(400), nullable=False, default=""),
)

# First reply of every MQTT command, by (sender, id): a command id replayed after a restart of serve
# returns this reply and runs nothing (hotline_cti.adapters.mqtt.replay). Rows older than the replay TTL
# are ignored and purged.
command_replies = sa.Table(
    "command_replies",
    metadata,
    sa.Column("sender", sa.String(64), primary_key=True),
    sa.Column("command_id", sa.String(64), primary_key=True),
    sa.Column("at", UtcDateTime, nullable=False, index=True),
    sa.Column("reply", sa.Text, nullable=False),
)

# Agent state log (issue 18, hotline_cti.records.agent_states.AgentStateChange): every log-in, log-out, pause
# and end of pause of an agent in a queue, from AMI events and the QueueStatus read on every connection.
agent_states = sa.Table(
    "agent_states",
    metadata,
    sa.Column("change_id", sa.String(40), primary_key=True),
    sa.Column("at", UtcDateTime, nullable=False, index=True),
    sa.Column("agent", sa.String(80), nullable=False, index=True),
    sa.Column("queue", sa.String(80), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("reason", sa.String(80), nullable=False, default=""),
    sa.Column("penalty", sa.SmallInteger),
    sa.Column("source", sa.String(16), nullable=False),
)

# Supervisor listen / whisper / barge (ChanSpy), one row per request: who, which call and agent leg, and the
# spy leg's own start and end (Asterisk's ChanSpyStart / ChanSpyStop), so "how long" is Asterisk's word.
spies = sa.Table(
    "spies",
    metadata,
    sa.Column("spy_id", sa.String(40), primary_key=True),
    sa.Column("call_id", sa.String(64), nullable=False, index=True),
    sa.Column("at", UtcDateTime, nullable=False, index=True),
    sa.Column("requested_by", sa.String(80), nullable=False),
    sa.Column("mode", sa.String(16), nullable=False),
    sa.Column("channel", sa.String(120), nullable=False),
    sa.Column("supervisor_phone", sa.String(120), nullable=False, default=""),
    sa.Column("started", UtcDateTime),
    sa.Column("ended", UtcDateTime),
    sa.Column("result", sa.String(16), nullable=False),
    sa.Column("reason", sa.String(400), nullable=False, default=""),
)

# Managed caller lists (repeat and nuisance callers, docs/callers.md): numbers only as keyed hashes
# (HMAC-SHA256 with HOTLINE_NUMBER_KEY), never the number. Changed from the CLI and MQTT, each change
# audited in ``actions``; the routing service reads the hashes every few seconds.
caller_lists = sa.Table(
    "caller_lists",
    metadata,
    sa.Column("list", sa.String(40), primary_key=True),
    sa.Column("number_hash", sa.String(64), primary_key=True),
    sa.Column("added_at", UtcDateTime, nullable=False),
    sa.Column("added_by", sa.String(80), nullable=False, default=""),
    sa.Column("note", sa.String(200), nullable=False, default=""),
)

# Callbacks (回呼, hotline_cti.records.callback.CallbackRecord), by node and the original call's Asterisk id
# (the hold channel is named by it). The number is in clear only while the callback is open (it has to be
# dialled, also after a restart); closed, it is masked.
callbacks = sa.Table(
    "callbacks",
    metadata,
    sa.Column("node", sa.String(32), primary_key=True, server_default="", default=""),
    sa.Column("callback_id", sa.String(64), primary_key=True),
    sa.Column("region", sa.String(32), nullable=False),
    sa.Column("queue", sa.String(80), nullable=False, default=""),
    sa.Column("number", sa.String(40), nullable=False, default=""),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("offered", UtcDateTime, nullable=False, index=True),
    sa.Column("accepted", UtcDateTime),
    sa.Column("joined", UtcDateTime),
    sa.Column("position", sa.Integer),
    sa.Column("priority", sa.Integer, nullable=False, default=0),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_try", UtcDateTime),
    sa.Column("answered", UtcDateTime),
    sa.Column("reached", UtcDateTime),
    sa.Column("agent", sa.String(120), nullable=False, default=""),
    sa.Column("closed", UtcDateTime),
)
