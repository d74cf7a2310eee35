"""Every Asterisk node's live queues in one view (issue 19): the rows each node shares, and their sums.

Each node's events service writes its queue state to the store (``node_queues``,
:mod:`hotline_cti.serve.node_queues`); a wallboard beside any node reads the other nodes' rows and shows
each queue per node and in total (:func:`queue_totals`). A node whose rows stopped moving for ``stale_after``
seconds (its events service or the node itself went away) is shown as stale and left out of the sums: its
callers are not waiting any more, or nobody can say.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from hotline_cti.core.diversion import QueueState

STALE_AFTER = 15.0  # seconds without a write before a node's queues are left out (it writes every few seconds)


@dataclass(frozen=True, slots=True)
class NodeQueue:
    """One queue on one node, as that node's events service last wrote it."""

    node: str
    queue: str
    state: QueueState
    at: dt.datetime
    oldest: dt.datetime | None = None  # when its longest-waiting caller joined (None: nobody, or not written)

    def longest_wait(self, now: dt.datetime) -> int | None:
        """Seconds its longest-waiting caller has waited by ``now``: 0 with nobody waiting, None when callers wait
        but the row does not say since when (written by an events service from before the column)."""
        if self.state.waiting == 0:
            return 0
        if self.oldest is None:
            return None
        return max(0, int((now - self.oldest).total_seconds()))

    def counts(self) -> dict[str, int]:
        """The wall's figures of it: waiting, free, busy (available, not free), paused (logged in, not available)."""
        s = self.state
        return {
            "waiting": s.waiting,
            "free": s.free,
            "busy": max(0, s.available - s.free),
            "paused": max(0, s.members - s.available),
        }


def is_stale(row: NodeQueue, now: dt.datetime, stale_after: float = STALE_AFTER) -> bool:
    """Whether the row's node stopped writing."""
    return (now - row.at).total_seconds() > stale_after


FIGURES = ("waiting", "free", "busy", "paused")  # summed over nodes; the longest wait is their maximum


def longest(values: Iterable[int | None]) -> int | None:
    """The longest of the waits (0 of none); None when one is unknown: it may be the longest."""
    known = []
    for value in values:
        if value is None:
            return None
        known.append(value)
    return max(known, default=0)


def queue_totals(
    own_node: str | None,
    own: Mapping[str, Mapping[str, int | None]],
    peers: Iterable[NodeQueue],
    now: dt.datetime,
    stale_after: float = STALE_AFTER,
) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """Per queue: the sum over nodes and each node's figures; and per node: its sum over queues.

    ``own``: this wall's node, queue -> figures and ``longest_wait`` (from its own AMI link, live). Each queue,
    each node's entry of it and each node's sum carry ``longest_wait`` too: the longest known wait of the nodes
    summed (seconds; None when a node with callers does not say since when). ``peers``: the other nodes' rows
    (this node's own rows are skipped: the live figures win). Stale nodes are listed, not summed. A wall with no
    Asterisk link (the region centre's) passes ``own_node`` None and ``own`` empty: every node is a peer.
    """
    by_queue: dict[str, dict[str, Any]] = {}
    by_node: dict[str, dict[str, Any]] = {}

    def add(node: str, queue: str, figures: Mapping[str, int | None], at: dt.datetime | None, stale: bool) -> None:
        wait = figures.get("longest_wait")
        row = by_queue.setdefault(queue, {**dict.fromkeys(FIGURES, 0), "longest_wait": 0, "nodes": []})
        row["nodes"].append({"node": node, **{k: figures[k] for k in FIGURES}, "longest_wait": wait, "stale": stale})
        total = by_node.setdefault(
            node,
            {"node": node, **dict.fromkeys(FIGURES, 0), "longest_wait": 0, "queues": 0, "stale": stale, "at": None},
        )
        total["queues"] += 1
        if at is not None:
            total["at"] = at.astimezone(dt.UTC).isoformat()
        if not stale:
            for k in FIGURES:
                row[k] += figures[k]
                total[k] += figures[k]
            row["longest_wait"] = longest((row["longest_wait"], wait))
            total["longest_wait"] = longest((total["longest_wait"], wait))

    for queue, figures in own.items():
        add(own_node or "", queue, figures, None, False)
    for peer in peers:
        if peer.node != own_node:
            figures = {**peer.counts(), "longest_wait": peer.longest_wait(now)}
            add(peer.node, peer.queue, figures, peer.at, is_stale(peer, now, stale_after))
    for row in by_queue.values():
        row["nodes"].sort(key=lambda n: n["node"])
    return by_queue, sorted(by_node.values(), key=lambda n: n["node"])
