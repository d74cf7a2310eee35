"""Controller failover on a real Asterisk: two controllers, the first refused, stalled or frozen.

Used by tests/asterisk/test_asterisk_failover.py and benchmarks/failover_bench.py. Asterisk runs the Guangxi
dialplan rendered with two controllers (``first``, ``second``) and ``--agi-timeout``; what a call did
is read from Asterisk's own AMI events: which controller's ``AGI()`` ran when ``HOTLINE_DECIDED=1``
was set, and the time from the first ``AGI()`` to the ``HotlineRoute`` event (Asterisk's timestamps).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import socket
import statistics
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from hotline_cti import channel_vars as cv
from hotline_cti.config.compile import compile_config
from hotline_cti.config.loader import load_config
from hotline_cti.config.schema import MergerConfig
from hotline_cti.core.model import Call, Decision
from hotline_cti.core.routing import decide
from hotline_cti.core.table import RoutingTable
from hotline_cti.dialplan.options import RenderOptions
from hotline_cti.dialplan.render import render_all, write_all
from simulators.asterisk import (
    REPO,
    Ami,
    AsteriskInstance,
    ControllerThread,
    Event,
    free_port,
    silent_prompts,
)
from simulators.asterisk import start_asterisk as _start_asterisk
from simulators.asterisk_load import Serve

CONFIG = REPO / "merger_config" / "guangxi.yaml"
AT = "2021-09-15T10:00:00+08:00"  # 12300 in its transition window: a queue decision
AGI_TIMEOUT = 2.0  # --agi-timeout of the rendered dialplan: the bound on a stalled first controller

# The caller's side of a Local call: it sends audio as a real caller does (Answer() waits up to 500 ms
# for the first media frame otherwise), then holds until the test hangs up.
HARNESS = """
[rig-caller]
exten => listen,1,Playtones(0)
 same => n,Wait(30)
 same => n,Hangup()
"""


class StalledController:
    """A TCP listener that accepts FastAGI connections and never answers (a hung host or process)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(128)
        self.held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, name=f"stalled-{port}", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        self.sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.held.append(conn)  # held open, never read, never written

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for conn in self.held:
            conn.close()
        self.sock.close()


@dataclass
class Outcome:
    """What Asterisk reported for one call."""

    leg: str
    decided_by: int | None  # port of the controller whose AGI() set the sentinel (first decision)
    deciders: list[int]  # the same for every decision (the 12345 menu's ivr question decides again)
    agi_ports: list[int]  # every controller asked, in order
    action: str  # HotlineRoute's Action (``fallback`` when no controller decided)
    target: str
    seconds: float  # first AGI() to HotlineRoute, Asterisk's own timestamps
    queue: str | None  # the queue the call joined


@dataclass
class Scenario:
    name: str
    outcomes: list[Outcome] = field(default_factory=list)

    def median(self) -> float:
        return statistics.median(o.seconds for o in self.outcomes)

    def worst(self) -> float:
        return max(o.seconds for o in self.outcomes)


def _port_of(agi_data: str) -> int:
    """The port of ``agi://127.0.0.1:<port>/route,...``."""
    return int(agi_data.split("/")[2].rsplit(":", 1)[1])


@dataclass
class FailoverRig:
    pbx: AsteriskInstance
    ami: Ami
    cfg: MergerConfig
    table: RoutingTable
    at: dt.datetime
    first: int  # port of the first controller (what listens there is up to each scenario)
    second: ControllerThread
    work: Path

    def expected(self, number: str) -> Decision:
        return decide(Call(number), self.table, self.at)

    def place(self, number: str, count: int, timeout: float = 60.0) -> list[Outcome]:
        """``count`` calls to ``number`` at once; wait until each joined a queue; their outcomes."""
        legs = []
        for _ in range(count):
            call_id = f"fo{uuid.uuid4().hex[:12]}"
            self.ami.originate(
                f"Local/{number}@hotline-inbound",
                channel_id=call_id,
                other_channel_id=f"{call_id}-2",
                context="rig-caller",
                exten="listen",
            )
            legs.append(f"{call_id}-2")
        outcomes = []
        for leg in legs:
            self.ami.wait_for(lambda e: e.get("Event") == "QueueCallerJoin", timeout, uniqueid=leg)
            outcomes.append(self.outcome(leg))
        self.pbx.cli("channel request hangup all")
        return outcomes

    def place_menu(self, key: str, timeout: float = 60.0) -> Outcome:
        """One call to 12345 whose caller presses ``key`` once the menu's Read() runs; its outcome."""
        call_id = f"fo{uuid.uuid4().hex[:12]}"
        leg = f"{call_id}-2"
        self.ami.originate(
            "Local/12345@hotline-inbound",
            channel_id=call_id,
            other_channel_id=leg,
            context="rig-caller",
            exten="listen",
        )
        self.ami.wait_for(lambda e: e.get("Event") == "Newexten" and e.get("Application") == "Read", timeout, leg)
        caller = self.ami.wait_for(lambda e: e.get("Event") == "Newchannel", timeout, call_id)["Channel"]
        self.ami.send_dtmf(caller, key)
        self.ami.wait_for(lambda e: e.get("Event") == "QueueCallerJoin", timeout, uniqueid=leg)
        outcome = self.outcome(leg)
        self.pbx.cli("channel request hangup all")
        return outcome

    def outcome(self, leg: str) -> Outcome:
        events = self.ami.channel_events(leg)
        agi_ports: list[int] = []
        agi_at: float | None = None
        deciders: list[int] = []
        route: Event | None = None
        queue = None
        for e in events:
            kind = e.get("Event")
            if kind == "Newexten" and e.get("Application") == "AGI":
                agi_ports.append(_port_of(e["AppData"]))
                agi_at = agi_at if agi_at is not None else float(e["Timestamp"])
            elif kind == "VarSet" and e.get("Variable") == cv.DECIDED and e.get("Value") == cv.DECIDED_VALUE:
                deciders += agi_ports[-1:]
            elif kind == "UserEvent" and e.get("UserEvent") == cv.EVENT_ROUTE and route is None:
                route = e
            elif kind == "QueueCallerJoin" and queue is None:
                queue = e.get("Queue")
        assert route is not None and agi_at is not None, f"{leg}: no AGI() or HotlineRoute in {len(events)} events"
        return Outcome(
            leg,
            deciders[0] if deciders else None,
            deciders,
            agi_ports,
            route.get("Action", ""),
            route.get("Target", ""),
            float(route["Timestamp"]) - agi_at,
            queue,
        )


@contextlib.contextmanager
def failover_rig(
    root: Path, work: Path, name: str = "failover", agi_timeout: float = AGI_TIMEOUT
) -> Iterator[FailoverRig]:
    """Asterisk with Guangxi's dialplan asking ``127.0.0.1:<first>`` then the in-process second controller."""
    cfg = load_config(CONFIG).model
    table = compile_config(cfg)
    at = dt.datetime.fromisoformat(AT)
    second = ControllerThread(CONFIG, at)
    with contextlib.ExitStack() as stack:
        stack.callback(second.shutdown)
        first = free_port()
        port = second.listen()
        out = work / "generated"
        out.mkdir(parents=True, exist_ok=True)
        opts = RenderOptions(controllers=(f"127.0.0.1:{first}", f"127.0.0.1:{port}"), agi_timeout=agi_timeout)
        write_all(render_all(cfg, opts), out)
        sounds = silent_prompts(cfg)
        pbx = _start_asterisk(root, name=name, generated_dir=out, extra_extensions=HARNESS, sounds=sounds)
        stack.callback(pbx.stop, keep_dir=bool(os.environ.get("HOTLINE_RIG_KEEP")))
        ami = pbx.ami()
        stack.callback(ami.close)
        yield FailoverRig(pbx, ami, cfg, table, at, first, second, work)


@contextlib.contextmanager
def first_controller(rig: FailoverRig) -> Iterator[ControllerThread]:
    """A healthy first controller (the no-failure run)."""
    ctl = ControllerThread(CONFIG, rig.at)
    try:
        ctl.listen(rig.first)
        yield ctl
    finally:
        ctl.shutdown()


@contextlib.contextmanager
def stalled_first(rig: FailoverRig) -> Iterator[StalledController]:
    stalled = StalledController(rig.first)
    try:
        yield stalled
    finally:
        stalled.close()


@contextlib.contextmanager
def frozen_serve_first(rig: FailoverRig) -> Iterator[Serve]:
    """``hotline-cti serve`` (routing only) on the first port, its whole process group SIGSTOPped:
    the kernel still accepts connections on its socket, and its supervisor cannot kill anything."""
    serve = Serve(CONFIG, rig.first, 0, rig.work / "serve.db", rig.work, clock_start=AT, with_ami=False)
    serve.start()
    assert serve.proc is not None
    try:
        os.killpg(serve.proc.pid, signal.SIGSTOP)
        yield serve
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(serve.proc.pid, signal.SIGCONT)
        serve.stop()


@contextlib.contextmanager
def stalled_routing_child(rig: FailoverRig) -> Iterator[Serve]:
    """``hotline-cti serve`` on the first port with only its routing child SIGSTOPped: the supervisor
    kills it after ``--stall-limit`` (1 s), which closes the calls' sessions (docs/reliability.md)."""
    serve = Serve(CONFIG, rig.first, 0, rig.work / "serve.db", rig.work, clock_start=AT, with_ami=False)
    serve.start()
    routing = serve.child_pid("routing")
    try:
        os.kill(routing, signal.SIGSTOP)
        yield serve
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(routing, signal.SIGCONT)
        serve.stop()


def wait_refused(port: int, timeout: float = 10.0) -> None:
    """Until nothing accepts on ``port`` (the first controller is down)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                pass
        except OSError:
            return
        time.sleep(0.05)
    raise RuntimeError(f"something still accepts on {port}")
