"""SIP load through a real Asterisk 22: SIPp callers into chan_pjsip, one SIPp answering as every agent and
trunk, and ``hotline-cti serve`` as a real process (routing and events children, records in SQLite).

Used by tests/asterisk/test_asterisk_load.py and benchmarks/asterisk_bench.py. Everything listens on free
loopback ports; every process started here is stopped by its PID (SIPp) or process group (serve).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hotline_cti.records.model import split_key
from simulators.asterisk import REPO, Ami, AsteriskInstance, Event, free_port
from simulators.host import PackageUnavailable, install_debian_packages

SIPP_DIR = REPO / "simulators" / "sipp"
# A BYE landing between two waits of a hold loop is resent by the PBX and taken then (see run.sh).
SIPP_BEHAVIOUR = ("-default_behaviors", "-abortunexp")
# SIP callers match no endpoint: chan_pjsip then takes the endpoint named "anonymous".
ANONYMOUS_MODULE = "res_pjsip_endpoint_identifier_anonymous"
CALLER_PREFIX = "PJSIP/anonymous-"

# What the load tests and the benchmark need to see; everything else (Newexten, VarSet ...) is filtered
# out by Asterisk before it reaches us.
EVENT_FILTER = (
    "Newchannel",
    "QueueCallerJoin",
    "QueueCallerLeave",
    "QueueCallerAbandon",
    "AgentConnect",
    "AgentComplete",
    "AgentCalled",
    "AgentRingNoAnswer",
    "DialBegin",
    "DialEnd",
    "UserEvent",
    "Hangup",
    "BridgeEnter",
    "BridgeLeave",
)


def sipp_binary() -> str:
    """SIPp (Debian's sip-tester), installed first when missing and we are root."""
    if shutil.which("sipp") is None:
        install_debian_packages("sip-tester")
    found = shutil.which("sipp")
    if found is None:
        raise PackageUnavailable("sip-tester is installed but sipp is not on PATH")
    return found


# ---------------------------------------------------------------- configuration text


def pjsip_endpoints(uas_port: int, agents: Iterable[str], trunks: Iterable[str]) -> str:
    """pjsip.conf text: the ``anonymous`` caller endpoint (into hotline-inbound, INFO DTMF), agent endpoints
    (context hotline-agents) and trunk endpoints (pstn, pstn-<city>, sub-centres, departments), every
    contact at the one SIPp UAS on ``uas_port``. direct_media off: SIPp scenarios take no re-INVITE."""
    out = [
        "[endpoint-common](!)",
        "type = endpoint",
        "disallow = all",
        "allow = alaw,ulaw",
        "dtmf_mode = info",
        "direct_media = no",
        "",
        "[anonymous](endpoint-common)",
        "context = hotline-inbound",
        "",
    ]
    for agent in agents:
        out += [f"[{agent}](endpoint-common)", "context = hotline-agents", f"aors = {agent}", ""]
        out += [f"[{agent}]", "type = aor", f"contact = sip:{agent}@127.0.0.1:{uas_port}", ""]
    for trunk in trunks:
        out += [f"[{trunk}](endpoint-common)", "context = hotline-inbound", f"aors = {trunk}", ""]
        out += [f"[{trunk}]", "type = aor", f"contact = sip:127.0.0.1:{uas_port}", ""]
    return "\n".join(out)


# The AMI user a site gives serve (docs/asterisk.md): read the event classes serve logs in for; write
# call (Redirect, Getvar, BlindTransfer, Atxfer), originate (Originate) and reporting (CoreShowChannels
# and QueueStatus for the resync after a reconnect).
SERVE_AMI_USER, SERVE_AMI_SECRET = "hotline", "hotline-secret"
SERVE_MANAGER_CONF = f"""
[{SERVE_AMI_USER}]
secret = {SERVE_AMI_SECRET}
deny = 0.0.0.0/0.0.0.0
permit = 127.0.0.1/255.255.255.255
read = call,agent,user,cdr,system
write = call,originate,reporting
"""


def queue_members(members: Mapping[str, Sequence[str]]) -> str:
    """queues.conf text: ``[queue](+)`` sections adding each agent as Local/<agent>@hotline-agents/n with
    state interface PJSIP/<agent>."""
    out: list[str] = []
    for queue, agents in sorted(members.items()):
        out.append(f"[{queue}](+)")
        out += [f"member => Local/{a}@hotline-agents/n,0,{a},PJSIP/{a}" for a in agents]
        out.append("")
    return "\n".join(out)


def trunks_of(dial_strings: Iterable[str]) -> set[str]:
    """The endpoints ``PJSIP/<number>@<endpoint>`` dial strings name."""
    found: set[str] = set()
    for dial in dial_strings:
        for m in re.finditer(r"PJSIP/[^@&,]+@([A-Za-z0-9_.-]+)", dial):
            found.add(m.group(1))
    return found


# ---------------------------------------------------------------- serve as a real process


@dataclass
class Serve:
    """``hotline-cti serve`` in its own process group (supervisor, routing and events children)."""

    config: Path
    port: int
    ami_port: int
    database: Path
    work: Path
    clock_start: str | None = None
    ami_user: str = SERVE_AMI_USER
    ami_secret: str = SERVE_AMI_SECRET
    extra: Sequence[str] = ()
    with_ami: bool = True  # False: routing only (no events child, no records)
    node: str = "pbx"  # serve --node: its records are keyed '<node>:<Uniqueid>'
    database_url: str | None = None  # another store than the SQLite file (PostgreSQL: several nodes, one store)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def status_file(self) -> Path:
        return self.work / f"serve-{self.port}.status.json"

    def start(self, timeout: float = 60.0) -> None:
        argv = [sys.executable, "-m", "hotline_cti.cli.main", "serve", "--config", str(self.config)]
        url = self.database_url or f"sqlite+aiosqlite:///{self.database}"
        argv += ["--listen", f"127.0.0.1:{self.port}", "--database", url]
        argv += ["--status-file", str(self.status_file), "--node", self.node]
        if self.with_ami:
            argv += ["--ami", f"127.0.0.1:{self.ami_port}"]
        if self.clock_start:
            argv += ["--clock-start", self.clock_start]
        argv += list(self.extra)
        env = {**os.environ, "HOTLINE_AMI_USER": self.ami_user, "HOTLINE_AMI_SECRET": self.ami_secret}
        self.status_file.unlink(missing_ok=True)
        log = (self.work / f"serve-{self.port}.log").open("ab")
        self.proc = subprocess.Popen(
            argv,
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve exited {self.proc.returncode}: {self.log_text()[-2000:]}")
            if self.healthy() and _accepts(self.port):
                return
            time.sleep(0.1)
        raise RuntimeError(f"serve not healthy in {timeout} s: {self.log_text()[-2000:]}")

    def log_text(self) -> str:
        path = self.work / f"serve-{self.port}.log"
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    def status(self) -> dict[str, object]:
        try:
            data = json.loads(self.status_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def healthy(self) -> bool:
        return self.status().get("healthy") is True

    def child_pid(self, name: str) -> int:
        services = self.status().get("services")
        assert isinstance(services, dict), self.status()
        pid = services[name]["pid"]
        assert isinstance(pid, int)
        return pid

    def kill_group(self) -> None:
        """SIGKILL the whole process group at once: supervisor and children die together."""
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.kill_group()

    def records(self) -> dict[str, dict[str, object]]:
        """The call records serve wrote (SQLite), by Asterisk uniqueid: each one's call id is checked to be
        ``<node>:<uniqueid>`` and its ``node`` this serve's."""
        with contextlib.closing(sqlite3.connect(self.database)) as db:
            db.row_factory = sqlite3.Row
            rows = [dict(row) for row in db.execute("SELECT * FROM calls")]
        out: dict[str, dict[str, object]] = {}
        for row in rows:
            node, uniqueid = split_key(str(row["call_id"]))
            assert node == row["node"] == self.node, (self.node, row["call_id"], row["node"])
            out[uniqueid] = row
        return out


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` from /proc/<pid>/stat, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    ticks = int(fields[11]) + int(fields[12])  # fields 14 and 15 of stat(5), counted after the comm
    return ticks / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- SIPp


@dataclass
class SippRun:
    """One SIPp process and its report."""

    proc: subprocess.Popen[str]
    name: str
    output: str = ""

    def wait(self, timeout: float) -> str:
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate(timeout=5)
        self.output = out or ""
        return self.output

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.kill()
        return self.wait(10)

    def counts(self) -> tuple[int, int]:
        """(successful, failed) calls from SIPp's final report."""
        ok = re.findall(r"Successful call\s*\|\s*\d+\s*\|\s*(\d+)", self.output)
        failed = re.findall(r"Failed call\s*\|\s*\d+\s*\|\s*(\d+)", self.output)
        if not ok or not failed:
            raise AssertionError(f"no SIPp report from {self.name}:\n{self.output[-3000:]}")
        return int(ok[-1]), int(failed[-1])


def sipp_uas(work: Path, port: int, talk_ms: int) -> SippRun:
    """uas_agent.xml on ``port``: answers every call offered, talks ``talk_ms``, hangs up."""
    talk = work / f"talk-{port}.csv"
    talk.write_text(f"SEQUENTIAL\n{talk_ms}\n", encoding="ascii")
    argv = [sipp_binary(), "-sf", str(SIPP_DIR / "uas_agent.xml"), "-inf", str(talk), "-i", "127.0.0.1"]
    argv += ["-p", str(port), "-mp", str(free_port(socket.SOCK_DGRAM)), "-nostdin", *SIPP_BEHAVIOUR]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return SippRun(proc, "uas")


def sipp_uac(
    work: Path, scenario: str, rows: Sequence[str], rate: int, target: str, *, period_ms: int = 1000
) -> SippRun:
    """``scenario`` (uac_line.xml / uac_12345_menu.xml) placing one call per injection row, ``rate`` calls
    per ``period_ms``."""
    port = free_port(socket.SOCK_DGRAM)
    inf = work / f"{scenario}-{port}.csv"
    inf.write_text("SEQUENTIAL\n" + "\n".join(rows) + "\n", encoding="ascii")
    argv = [sipp_binary(), "-sf", str(SIPP_DIR / scenario), "-inf", str(inf), "-i", "127.0.0.1", "-p", str(port)]
    argv += ["-mp", str(free_port(socket.SOCK_DGRAM)), "-m", str(len(rows)), "-r", str(rate), "-rp", str(period_ms)]
    argv += ["-l", "100000", "-nostdin", "-timeout", "300s", *SIPP_BEHAVIOUR, target]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return SippRun(proc, scenario)


# ---------------------------------------------------------------- what Asterisk reported


def filter_events(ami: Ami) -> None:
    """Ask Asterisk to send this AMI session only the events of :data:`EVENT_FILTER`."""
    ami.action("Filter", Operation="Add", Filter=f"Event: ({'|'.join(EVENT_FILTER)})[[:space:]]")


@dataclass
class CallerLeg:
    """One SIP caller's channel, from its own AMI events."""

    uid: str
    channel: str
    number: str  # the dialled digits (Exten)
    caller: str  # CallerIDNum (the From user)
    created: float  # Newchannel Timestamp
    joins: list[tuple[str, float]] = field(default_factory=list)  # (queue, Timestamp)
    dials: list[str] = field(default_factory=list)  # DialBegin DialString
    routes: list[dict[str, str]] = field(default_factory=list)  # HotlineRoute user events
    hung_up: float | None = None

    @property
    def route_actions(self) -> list[str]:
        return [r.get("Action", "") for r in self.routes]

    @property
    def released(self) -> bool:
        """Hung up by the dialplan after a retired / guidance decision (its prompts played)."""
        return (
            self.hung_up is not None and bool(self.routes) and self.routes[-1].get("Action") in ("retired", "guidance")
        )

    @property
    def reached(self) -> str:
        """queue / dial / release, or '' when the call reached none of them (lost)."""
        if self.joins:
            return "queue"
        if self.dials:
            return "dial"
        if self.released:
            return "release"
        return ""

    @property
    def fallback(self) -> bool:
        return "fallback" in self.route_actions

    def first_join_after(self) -> float | None:
        """Seconds from the channel's creation (the INVITE) to its first queue join."""
        return self.joins[0][1] - self.created if self.joins else None


def caller_legs(events: Iterable[Event], prefix: str = CALLER_PREFIX) -> dict[str, CallerLeg]:
    """Every SIP caller channel (``PJSIP/anonymous-*``, its own Linkedid) and what it reached."""
    legs: dict[str, CallerLeg] = {}
    for e in events:
        kind = e.get("Event")
        uid = e.get("Uniqueid", "")
        if kind == "Newchannel":
            if e.get("Channel", "").startswith(prefix) and e.get("Linkedid") == uid:
                legs[uid] = CallerLeg(
                    uid, e["Channel"], e.get("Exten", ""), e.get("CallerIDNum", ""), float(e["Timestamp"])
                )
            continue
        leg = legs.get(uid)
        if leg is None:
            if kind == "UserEvent" and e.get("UserEvent") == "HotlineRoute" and e.get("CallId") in legs:
                legs[e["CallId"]].routes.append(e)
            continue
        if kind == "QueueCallerJoin":
            leg.joins.append((e.get("Queue", ""), float(e["Timestamp"])))
        elif kind == "DialBegin":
            leg.dials.append(e.get("DialString", ""))
        elif kind == "UserEvent" and e.get("UserEvent") == "HotlineRoute":
            leg.routes.append(e)
        elif kind == "Hangup":
            leg.hung_up = float(e["Timestamp"])
    return legs


_EXECUTING = re.compile(
    r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3})\] VERBOSE\[\d+\](?:\[C-[0-9a-f]+\])? pbx\.c: "
    r'Executing \[[^\]]*\] (\w+)\("([^"]+)", "([^"]*)"'
)


def _steps(full_log: str, channels: Iterable[str]) -> Iterator[tuple[str, str, str, float]]:
    """(channel, application, its arguments, when) of each "Executing" line of ``channels`` in full.log, in order
    (stamped by the logger when the step runs, to the millisecond)."""
    wanted = set(channels)
    for line in full_log.splitlines():
        m = _EXECUTING.match(line)
        if m is not None and m.group(3) in wanted:
            when = dt.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f").timestamp()
            yield m.group(3), m.group(2), m.group(4), when


def dialplan_to_queue(full_log: str, channels: Iterable[str], queue: str) -> dict[str, float]:
    """Seconds from each channel's first dialplan step to its ``Queue(queue...)`` step, from Asterisk's
    full.log "Executing" lines. AMI event Timestamps are taken when the manager formats the event, behind
    every Newexten/VarSet queued before it."""
    first: dict[str, float] = {}
    out: dict[str, float] = {}
    for channel, app, args, when in _steps(full_log, channels):
        first.setdefault(channel, when)
        if app == "Queue" and channel not in out and args.split(",")[0] == queue:
            out[channel] = when - first[channel]
    return out


def agi_steps(full_log: str, channels: Iterable[str]) -> dict[str, float]:
    """Seconds each channel spent in its first ``AGI()`` step: from that step to the channel's next one, from
    full.log's "Executing" lines. That is the controller's own share of a call's routing (connect, environment,
    decision, its command, the close), as Asterisk saw it; the rest of the dialplan's steps are Asterisk's."""
    started: dict[str, float] = {}
    out: dict[str, float] = {}
    for channel, app, _, when in _steps(full_log, channels):
        if channel in out:
            continue
        if channel in started:
            out[channel] = when - started[channel]
        elif app == "AGI":
            started[channel] = when
    return out


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) by nearest rank."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return ordered[k]


def wait_idle(pbx: AsteriskInstance, timeout: float) -> int:
    """Until Asterisk has no channel left (or ``timeout``); the channels still up."""
    deadline = time.monotonic() + timeout
    count = -1
    while time.monotonic() < deadline:
        out = pbx.cli("core show channels count")
        m = re.search(r"(\d+) active channel", out)
        count = int(m.group(1)) if m else -1
        if count == 0:
            return 0
        time.sleep(0.5)
    return count
