"""Several Asterisk nodes, one store: two real Asterisk 22 instances, each with its own ``hotline-cti serve``
(routing and events, ``--node``), writing to one database (issue 19).

Used by tests/asterisk/test_asterisk_nodes.py and benchmarks/nodes_bench.py. Each node renders the Guangxi dialplan
naming its own controller; calls are Local channels originated over AMI with ids the caller chooses, so the
two nodes can be given the very same Asterisk uniqueids (the collision the node key exists for).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import signal
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from hotline_cti.config.loader import load_config
from hotline_cti.dialplan.options import RenderOptions
from hotline_cti.dialplan.render import render_all, write_all
from hotline_cti.events import Event
from hotline_cti.records.model import split_key
from hotline_cti.storage.store import Store
from simulators.asterisk import REPO, Ami, AsteriskInstance, free_port, silent_prompts, start_asterisk
from simulators.asterisk_load import SERVE_AMI_USER, SERVE_MANAGER_CONF, Serve
from simulators.failover import HARNESS

CONFIG = REPO / "merger_config" / "guangxi.yaml"
AT = "2021-09-15T10:00:00+08:00"  # 12300 in its transition window: the call waits in a queue
NUMBER = "12300"


@dataclass
class Node:
    """One Asterisk node: the PBX, the rig's AMI session to it and the serve beside it."""

    name: str
    pbx: AsteriskInstance
    ami: Ami
    serve: Serve
    placed: list[str] = field(default_factory=list)  # caller-leg uniqueids of the calls placed here

    def place(self, ids: Sequence[str], number: str = NUMBER) -> None:
        """One call per id (its Local;1 leg's uniqueid, the call's id) into hotline-inbound, all at once."""
        for call_id in ids:
            self.ami.originate(
                f"Local/{number}@hotline-inbound",
                channel_id=call_id,
                other_channel_id=f"{call_id}-2",
                context="rig-caller",
                exten="listen",
            )
            self.placed.append(call_id)

    def wait_queued(self, ids: Sequence[str], timeout: float = 30.0) -> None:
        """Until each call joined its queue (routed by this node's serve)."""
        for call_id in ids:
            self.ami.wait_for(lambda e: e.get("Event") == "QueueCallerJoin", timeout, uniqueid=f"{call_id}-2")

    def hang_up_all(self) -> None:
        self.pbx.cli("channel request hangup all")

    def kill_events(self) -> int:
        """SIGKILL serve's events service (its supervisor starts a new one); the killed pid."""
        pid = self.serve.child_pid("events")
        os.kill(pid, signal.SIGKILL)
        return pid

    def wait_events_back(self, old: int, timeout: float = 30.0) -> None:
        """Until a new events service runs and is healthy."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(AssertionError, KeyError):
                if self.serve.child_pid("events") != old and self.serve.healthy():
                    return
            time.sleep(0.1)
        raise AssertionError(f"{self.name}: events service not back: {self.serve.log_text()[-2000:]}")


@dataclass
class Stored:
    """What the one store holds: calls by key, their node, and the calls/ended events per key."""

    nodes: dict[str, str]  # call id -> node column
    ended: dict[str, str]  # call id -> outcome
    ended_events: collections.Counter[str]  # call id -> calls/ended outbox events
    event_nodes: set[str]  # the envelopes' node names
    misplaced: list[str]  # outbox topics other than their event's (Event.topic of the payload)
    leases: dict[str, tuple[str, float]]  # link -> (holder, seconds left on the database's clock)
    queues: dict[str, dict[str, int]]  # node -> queue -> waiting

    def of(self, node: str) -> set[str]:
        """The uniqueids of ``node``'s finished calls (their keys checked to be '<node>:<uniqueid>')."""
        out = set()
        for key, owner in self.nodes.items():
            prefix, uid = split_key(key)
            if owner == node and key in self.ended:
                assert prefix == node, (key, owner)
                out.add(uid)
        return out


async def _read(url: str) -> Stored:
    store = Store.connect(url)
    try:
        async with store.engine.connect() as conn:
            calls = (await conn.execute(sa.text("SELECT call_id, node, outcome, ended FROM calls"))).all()
            outbox = (await conn.execute(sa.text("SELECT topic, payload FROM outbox"))).all()
            left = "expires - extract(epoch from clock_timestamp())"
            leases = (await conn.execute(sa.text(f"SELECT link, holder, {left} FROM leases"))).all()
            queues = (await conn.execute(sa.text("SELECT node, queue, waiting FROM node_queues"))).all()
    finally:
        await store.close()
    events: collections.Counter[str] = collections.Counter()
    event_nodes = set()
    misplaced = []
    for topic, payload in outbox:
        body = json.loads(payload)
        event_nodes.add(body.get("node", ""))
        if topic != Event.from_json(payload).topic:  # the scheme: an event stream's topic ends in its node
            misplaced.append(topic)
        if body["type"] == "calls/ended":
            events[body["data"]["call_id"]] += 1
    by_node: dict[str, dict[str, int]] = {}
    for node, queue, waiting in queues:
        by_node.setdefault(node, {})[queue] = waiting
    return Stored(
        {c: n for c, n, _, _ in calls},
        {c: o for c, _, o, e in calls if e is not None},
        events,
        event_nodes,
        misplaced,
        {link: (holder, float(remaining)) for link, holder, remaining in leases},
        by_node,
    )


def stored(url: str) -> Stored:
    """Read the store now (its own event loop: callers are synchronous)."""
    return asyncio.run(_read(url))


def wait_stored(url: str, want: dict[str, set[str]], timeout: float = 60.0) -> Stored:
    """Until every node's calls in ``want`` (node -> uniqueids) are stored finished; the last read.

    The default bound outlasts a writer lease (30 s) that a killed events service leaves to its successor.
    """
    deadline = time.monotonic() + timeout
    while True:
        got = stored(url)
        # stored, and its calls/ended event written (the writer may commit the two in separate batches)
        missing = {
            n: {uid for uid in ids if uid not in got.of(n) or not got.ended_events.get(f"{n}:{uid}")}
            for n, ids in want.items()
        }
        missing = {n: m for n, m in missing.items() if m}
        if not missing:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"not stored within {timeout} s: { ({n: sorted(m)[:5] for n, m in missing.items()}) }")
        time.sleep(0.3)


@contextlib.contextmanager
def two_nodes(
    root: Path,
    work: Path,
    database_url: str,
    names: Sequence[str] = ("nn-1", "nn-2"),
    lease_seconds: float = 30.0,
) -> Iterator[list[Node]]:
    """Two Asterisk nodes (Guangxi's dialplan, each naming its own controller) and a serve beside each, both
    writing to ``database_url`` (a PostgreSQL URL). A killed node's lease stays held ``lease_seconds``."""
    cfg = load_config(CONFIG).model
    sounds = silent_prompts(cfg)
    with contextlib.ExitStack() as stack:
        nodes = []
        for name in names:
            port = free_port()
            gen = work / f"generated-{name}"
            gen.mkdir(parents=True, exist_ok=True)
            write_all(render_all(cfg, RenderOptions(controllers=(f"127.0.0.1:{port}",))), gen)
            pbx = start_asterisk(
                root,
                name=name,
                generated_dir=gen,
                extra_extensions=HARNESS,
                sounds=sounds,
                manager_extra=SERVE_MANAGER_CONF,
                boot_timeout=60.0,
            )
            stack.callback(pbx.stop, keep_dir=bool(os.environ.get("HOTLINE_RIG_KEEP")))
            serve = Serve(
                CONFIG,
                port,
                pbx.ami_port,
                work / f"{name}.db",
                work,
                clock_start=AT,
                node=name,
                database_url=database_url,
                extra=("--spool-dir", str(work / f"spool-{name}"), "--lease-seconds", str(lease_seconds)),
            )
            stack.callback(serve.stop)
            ami = pbx.ami()
            stack.callback(ami.close)
            nodes.append(Node(name, pbx, ami, serve))
        for node in nodes:
            node.serve.start()
        for node in nodes:
            _wait_logged_in(node)
        yield nodes


def _wait_logged_in(node: Node, timeout: float = 30.0) -> None:
    """Until serve's events service is on AMI (its login resynced: calls placed now are recorded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        users = [line.split()[:1] for line in node.pbx.cli("manager show connected").splitlines()]
        if [SERVE_AMI_USER] in users and "AMI connected" in node.serve.log_text():
            return
        time.sleep(0.2)
    raise AssertionError(f"{node.name}: serve not on AMI: {node.serve.log_text()[-2000:]}")
