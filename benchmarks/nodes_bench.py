"""Two Asterisk nodes, two controllers, one PostgreSQL on this machine (issue 19's benchmark).

``python -m benchmarks.nodes_bench`` (root; the rig of scripts/asterisk-rig.sh; about 3 minutes). Two
Asterisk 22 nodes (``nn-1``, ``nn-2``) run the generated Guangxi dialplan, each naming its own controller
first and the other node's second (``--agi-timeout 2``), as docs/scale.md's topology does. Per node:

* a **controller**: ``hotline-cti serve`` routing only (FastAGI), the one the dialplan asks first;
* an **events service**: ``hotline-cti serve --ami ... --node nn-<i>`` writing the node's call records into
  the one PostgreSQL (its own routing process idles: no dialplan names it).

SIPp places calls to 12315 (after its cut-over: straight to the ``gx-l12315`` queue), ``--rate`` calls a
second into each node for ``--seconds``; each caller holds 1 s in the queue, then hangs up (a record each).
Three phases, in one run:

* **one node**: SIPp into nn-1 only (nn-2 idle): the single-node baseline of the same run;
* **two nodes**: SIPp into both at once;
* **two nodes, a controller killed**: as before, nn-1's controller SIGKILLed (its whole process group) half
  way: nn-1's calls fail over to nn-2's controller (a refused connection costs no wait).

Figures: calls SIPp completed and their rate over the placement window; routing p50 / p99 (the caller
channel's first dialplan step to its ``Queue()`` step, from Asterisk's full.log: this includes Answer()'s
500 ms wait for the caller's first media frame, which SIPp never sends, as benchmarks/asterisk_bench.py
explains); calls that fell back (no controller decided); records stored per node and records/s into
PostgreSQL (the rows of the phase over the time from its first INVITE to its last row committed, polled
every 0.25 s).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from hotline_cti.config.loader import load_config
from hotline_cti.dialplan.options import RenderOptions
from hotline_cti.dialplan.render import render_all, write_all
from hotline_cti.storage.store import Store
from simulators.asterisk import REPO, AsteriskInstance, free_port, rig_root, silent_prompts, start_asterisk
from simulators.asterisk_load import (
    ANONYMOUS_MODULE,
    SERVE_MANAGER_CONF,
    Serve,
    caller_legs,
    dialplan_to_queue,
    filter_events,
    percentile,
    pjsip_endpoints,
    sipp_uac,
    wait_idle,
)
from tests.pg_server import PgServer

CONFIG = REPO / "merger_config" / "guangxi.yaml"
CLOCK_START = "2021-12-15T10:00:00+08:00"
NUMBER, QUEUE = "12315", "gx-l12315"
NODES = ("nn-1", "nn-2")
AGI_TIMEOUT = 2.0


@dataclass
class NodeRig:
    name: str
    pbx: AsteriskInstance
    controller: Serve
    events: Serve


@dataclass
class NodeResult:
    node: str
    placed: int
    ok: int
    failed: int
    joined: int
    fallback: int
    second: int  # calls whose dialplan asked the other node's controller (the first refused or silent)
    p50: float
    p99: float
    records: int
    first_invite: float  # epoch seconds
    last_invite: float

    @property
    def calls_per_s(self) -> float:
        span = self.last_invite - self.first_invite
        return (self.joined - 1) / span if span > 0 else float("nan")


@dataclass
class Phase:
    name: str
    nodes: list[NodeResult] = field(default_factory=list)
    records_per_s: float = float("nan")
    stored_after: float = float("nan")  # seconds from the last INVITE to the last record committed


def count_rows(url: str) -> dict[str, int]:
    """Rows per node now (a private event loop: the store is asyncpg)."""

    async def read() -> dict[str, int]:
        store = Store.connect(url)
        try:
            async with store.engine.connect() as conn:
                rows = (await conn.execute(sa.text("SELECT node, count(*) FROM calls GROUP BY node"))).all()
        finally:
            await store.close()
        return {str(n): int(c) for n, c in rows}

    return asyncio.run(read())


class Poller:
    """Rows per node every ``every`` s, from a thread with its own event loop."""

    def __init__(self, url: str, every: float = 0.25) -> None:
        self.url, self.every = url, every
        self.samples: list[tuple[float, dict[str, int]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="rows")

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(Exception):
                self.samples.append((time.time(), count_rows(self.url)))
            self._stop.wait(self.every)

    def __enter__(self) -> Poller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def wait_rows(url: str, want: dict[str, int], timeout: float) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    while True:
        rows = count_rows(url)
        if all(rows.get(n, 0) >= c for n, c in want.items()) or time.monotonic() > deadline:
            return rows
        time.sleep(0.25)


def asked_second(full_log: str, channels: set[str], port: int) -> int:
    """How many of ``channels`` ran an ``AGI(agi://127.0.0.1:<port>/...)`` step (full.log)."""
    needle = f"agi://127.0.0.1:{port}/"
    asked = set()
    for line in full_log.splitlines():
        if needle in line and "Executing [" in line and "AGI(" in line:
            channel = line.partition('AGI("')[2].partition('"')[0]
            if channel in channels:
                asked.add(channel)
    return len(asked)


@contextlib.contextmanager
def rig(root: Path, work: Path, url: str) -> Iterator[list[NodeRig]]:
    cfg = load_config(CONFIG).model
    sounds = silent_prompts(cfg)
    ports = {name: free_port() for name in NODES}
    with contextlib.ExitStack() as stack:
        nodes = []
        for name in NODES:
            other = next(n for n in NODES if n != name)
            gen = work / f"generated-{name}"
            controllers = (f"127.0.0.1:{ports[name]}", f"127.0.0.1:{ports[other]}")
            write_all(render_all(cfg, RenderOptions(controllers=controllers, agi_timeout=AGI_TIMEOUT)), gen)
            pbx = start_asterisk(
                root,
                name=f"bench-{name}",
                generated_dir=gen,
                pjsip=pjsip_endpoints(free_port(socket.SOCK_DGRAM), [], []),
                sounds=sounds,
                modules=(ANONYMOUS_MODULE,),
                manager_extra=SERVE_MANAGER_CONF,
                boot_timeout=60.0,
            )
            stack.callback(pbx.stop)
            controller = Serve(
                CONFIG, ports[name], 0, work / f"{name}-ctl.db", work, clock_start=CLOCK_START, with_ami=False
            )
            events = Serve(
                CONFIG,
                free_port(),
                pbx.ami_port,
                work / f"{name}.db",
                work,
                clock_start=CLOCK_START,
                node=name,
                database_url=url,
                extra=("--spool-dir", str(work / f"spool-{name}")),
            )
            stack.callback(controller.stop)
            stack.callback(events.stop)
            nodes.append(NodeRig(name, pbx, controller, events))
        for node in nodes:
            node.controller.start()
            node.events.start()
        time.sleep(2.0)  # the events services log in to AMI and take their leases
        yield nodes


def run_phase(
    name: str,
    nodes: Sequence[NodeRig],
    all_nodes: Sequence[NodeRig],
    work: Path,
    url: str,
    rate: int,
    seconds: float,
    kill_after: float | None,
) -> Phase:
    calls = int(rate * seconds)
    before = count_rows(url)
    amis = [n.pbx.ami() for n in nodes]
    for ami in amis:
        filter_events(ami)
    phase = Phase(name)
    try:
        with Poller(url) as poller:
            runs = [
                sipp_uac(
                    work, "uac_line.xml", [f"{NUMBER};1000;13800138000"] * calls, rate, f"127.0.0.1:{n.pbx.sip_port}"
                )
                for n in nodes
            ]
            if kill_after is not None:
                time.sleep(kill_after)
                assert nodes[0].controller.proc is not None
                os.killpg(nodes[0].controller.proc.pid, signal.SIGKILL)
                print(f"  {name}: {nodes[0].name}'s controller killed after {kill_after:g} s", file=sys.stderr)
            for run in runs:
                run.wait(seconds + 180)
            for n in nodes:
                wait_idle(n.pbx, 60)
            time.sleep(0.5)
            legs_per_node = [caller_legs(list(ami.events)) for ami in amis]
            want = {n.name: before.get(n.name, 0) + len(legs) for n, legs in zip(nodes, legs_per_node, strict=True)}
            after = wait_rows(url, want, 60)
            time.sleep(0.5)
        first = min(min((leg.created for leg in legs.values()), default=time.time()) for legs in legs_per_node)
        last_invite = max(max((leg.created for leg in legs.values()), default=first) for legs in legs_per_node)
        done = next((t for t, rows in poller.samples if all(rows.get(k, 0) >= v for k, v in want.items())), None)
        stored = sum(after.get(n.name, 0) - before.get(n.name, 0) for n in nodes)
        if done is not None:
            phase.records_per_s = stored / (done - first)
            phase.stored_after = done - last_invite
        for n, legs, run in zip(nodes, legs_per_node, runs, strict=True):
            ok, failed = run.counts()
            joined = [leg for leg in legs.values() if leg.joins and leg.joins[0][0] == QUEUE]
            full = n.pbx.log_text("full.log")
            steps = list(dialplan_to_queue(full, [leg.channel for leg in joined], QUEUE).values())
            other = next(o for o in all_nodes if o is not n)
            created = [leg.created for leg in legs.values()]
            phase.nodes.append(
                NodeResult(
                    n.name,
                    calls,
                    ok,
                    failed,
                    len(joined),
                    sum(1 for leg in legs.values() if leg.fallback),
                    asked_second(full, {leg.channel for leg in legs.values()}, other.controller.port),
                    percentile(steps, 0.5),
                    percentile(steps, 0.99),
                    after.get(n.name, 0) - before.get(n.name, 0),
                    min(created, default=0.0),
                    max(created, default=0.0),
                )
            )
    finally:
        for ami in amis:
            ami.close()
    return phase


def report(phases: Sequence[Phase], rate: int, seconds: float) -> str:
    lines = [
        f"SIPp {rate} calls/s into each node for {seconds:g} s (12315 -> {QUEUE}, 1 s in the queue), two Asterisk 22",
        f"nodes, a controller each (the other node's second, --agi-timeout {AGI_TIMEOUT:g}), an events service each",
        "(--node) into one PostgreSQL, all on this machine (2 shared cores). Routing: first dialplan step to Queue()",
        "(full.log), Answer()'s 500 ms media wait included.",
        "",
        "| phase | node | SIPp ok / failed | joined | calls/s | routing p50 / p99 | decided by the other node's controller"
        " | fallback | records | records/s (all nodes) | last record after last INVITE |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for phase in phases:
        for i, r in enumerate(phase.nodes):
            shared = (f"{phase.records_per_s:.1f}", f"{phase.stored_after:.2f} s") if i == 0 else ("″", "″")
            lines.append(
                f"| {phase.name if i == 0 else ''} | {r.node} | {r.ok} / {r.failed} | {r.joined} | {r.calls_per_s:.1f}"
                f" | {r.p50 * 1000:.0f} / {r.p99 * 1000:.0f} ms | {r.second} | {r.fallback} | {r.records} | {shared[0]}"
                f" | {shared[1]} |"
            )
    base = phases[0].nodes[0]
    for phase in phases[1:]:
        p99 = max(r.p99 for r in phase.nodes)
        lines.append(
            f"\n{phase.name}: routing p99 {p99 * 1000:.0f} ms = {p99 / base.p99:.2f}x the one-node run's;"
            f" records/s {phase.records_per_s / phases[0].records_per_s:.2f}x"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.nodes_bench", description=__doc__.splitlines()[0])
    p.add_argument("--rate", type=int, default=25, help="calls per second into each node (default 25)")
    p.add_argument("--seconds", type=float, default=20.0, help="seconds of calls per phase (default 20)")
    args = p.parse_args(argv)
    root = rig_root()
    work = Path(tempfile.mkdtemp(prefix="nodes-bench-"))
    pg = PgServer()
    pg.init()
    pg.start()
    phases: list[Phase] = []
    try:
        url = pg.create_database()
        with rig(root, work, url) as nodes:
            for name, which, kill in (
                ("one node", nodes[:1], None),
                ("two nodes", nodes, None),
                ("two nodes, nn-1's controller killed", nodes, args.seconds / 2),
            ):
                phase = run_phase(name, which, nodes, work, url, args.rate, args.seconds, kill)
                phases.append(phase)
                for r in phase.nodes:
                    print(
                        f"  {name} {r.node}: {r.ok}/{r.failed} SIPp, {r.joined} joined, {r.calls_per_s:.1f} calls/s,"
                        f" p99 {r.p99 * 1000:.0f} ms, {r.second} by the other controller, {r.fallback} fallback,"
                        f" {r.records} records",
                        file=sys.stderr,
                    )
    finally:
        pg.cleanup()
    print(report(phases, args.rate, args.seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
