"""Versioned real-time events (实时归集数据): the one envelope for MQTT, the outbox and the wallboard.

Topics (all under ``hotline/<region>/``), QoS 1:

* ``calls/<event>/<node>`` — ``<event>`` is one of :data:`CALL_EVENTS`; payload ``data`` is a CallRecord dict
* ``transfers/<node>``, ``actions/<node>``, ``agents/<node>``, ``spies/<node>`` — audit rows and agent states
* ``commands/<user>/<type>`` — inbound commands (authenticated); replies on ``replies/<user>/<request id>``
* ``errors``               — malformed commands answered with an error event

The node (the Asterisk node whose events service made the event) is the last level of every event stream, so
``hotline/<region>/calls/#`` is the whole platform and ``hotline/<region>/calls/+/nn-1`` one node; an event of
an unnamed node has no node level (``#`` matches the parent level too). Replies and errors keep their topics: a
requester does not know which node will answer; their envelope names it. The envelope carries ``"node"`` too,
and a call record's ``data`` its ``call_id`` ``<node>:<Uniqueid>``.

JSON schema: docs/mqtt.md.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from typing import Any

SCHEMA_VERSION = 1
TOPIC_ROOT = "hotline"
CALL_EVENTS = ("started", "routed", "queued", "answered", "transferred", "ended", "rated")
NODE_STREAMS = frozenset({"calls", "transfers", "actions", "agents", "spies"})  # topics ending in the node
NODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")  # a topic level and a key prefix: no ':', '/', '@', '+', '#'


def topic(region: str, *parts: str) -> str:
    """``hotline/<region>/<parts...>``."""
    return "/".join((TOPIC_ROOT, region, *parts))


def load_versioned(text: str | bytes) -> dict[str, Any]:
    """A JSON object with ``"v": SCHEMA_VERSION`` (events and MQTT commands); ValueError naming what is wrong."""
    try:
        body = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ValueError("not a JSON object")
    if body.get("v") != SCHEMA_VERSION:
        raise ValueError(f"unsupported version {body.get('v')!r} (want {SCHEMA_VERSION})")
    return body


@dataclass(frozen=True, slots=True)
class Event:
    """One real-time event: ``{"v": 1, "type": ..., "region": ..., "at": ISO-8601 UTC, "data": {...}}``, plus
    ``"node"`` when the Asterisk node it comes from is named."""

    type: str  # e.g. 'calls/answered', 'transfers', 'agents'
    region: str
    at: dt.datetime
    data: dict[str, Any] = field(default_factory=dict)
    node: str = ""  # the Asterisk node whose events service made it ('' on an unnamed single node)

    @property
    def topic(self) -> str:
        """The MQTT topic this event is published on: an event stream's ends in the node, when it is named."""
        if self.node and self.type.partition("/")[0] in NODE_STREAMS:
            return topic(self.region, self.type, self.node)
        return topic(self.region, self.type)

    def to_json(self) -> str:
        """The payload: compact JSON, Chinese kept as UTF-8."""
        body: dict[str, Any] = {
            "v": SCHEMA_VERSION,
            "type": self.type,
            "region": self.region,
            "at": self.at.isoformat(),
            "data": self.data,
        }
        if self.node:
            body["node"] = self.node
        return json.dumps(body, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> Event:
        """Parse a payload; raises ValueError naming what is wrong."""
        body = load_versioned(text)
        for key in ("type", "region", "at"):
            if not isinstance(body.get(key), str):
                raise ValueError(f"missing or non-string {key!r}")
        data = body.get("data", {})
        if not isinstance(data, dict):
            raise ValueError("'data' is not an object")
        try:
            at = dt.datetime.fromisoformat(body["at"])
        except ValueError:
            raise ValueError(f"'at' is not ISO 8601: {body['at']!r}") from None
        node = body.get("node", "")
        if node != "" and not (isinstance(node, str) and NODE_RE.match(node)):
            raise ValueError(f"'node' is not a node name: {node!r}")
        return cls(body["type"], body["region"], at, data, node)
