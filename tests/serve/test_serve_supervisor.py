"""``hotline-cti serve`` as a supervisor: a stalled routing service is killed and restarted, so callers
waiting on it are let go at once; dead services come back; no service outlives the supervisor."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import SMALL_YAML
from tests.serve.test_serve_cmd import free_port, target_of


def children_of(pid: int) -> dict[str, int]:
    """The supervisor's services by name: {"routing": pid, "events": pid}."""
    out: dict[str, int] = {}
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except FileNotFoundError:
        return out
    for kid in kids:
        try:
            cmdline = Path(f"/proc/{kid}/cmdline").read_bytes()
        except FileNotFoundError:
            continue
        for name in ("routing", "events"):
            if f"hotline_cti.serve.{name}".encode() in cmdline:
                out[name] = int(kid)
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except (FileNotFoundError, ProcessLookupError):  # gone, or reaped between open() and read()
        return False
    return state != "Z"


def wait_for(check: object, limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"not within {limit} s")


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int, Path]]:
    config = tmp_path / "small.yaml"
    config.write_text(SMALL_YAML, encoding="utf-8")
    port = free_port()
    status = tmp_path / "status.json"
    cmd = [sys.executable, "-m", "hotline_cti.cli.main", "serve", "--config", str(config)]
    cmd += ["--listen", f"127.0.0.1:{port}", "--status-file", str(status), "--stall-limit", "0.5"]
    # --mqtt starts the events service too; nothing listens on that port, which it survives (it retries)
    cmd += ["--mqtt", f"127.0.0.1:{free_port()}", "--database", f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"]
    cmd += ["--spool-dir", str(tmp_path / "spool")]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        yield proc, port, status
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)


async def test_a_stalled_routing_service_is_killed_so_waiting_sessions_end_and_routing_returns(
    serve: tuple[subprocess.Popen[str], int, Path],
) -> None:
    proc, port, status = serve
    assert await target_of(port, "12313") == "gx-general"
    wait_for(lambda: status.exists() and json.loads(status.read_text())["healthy"])
    routing = children_of(proc.pid)["routing"]
    os.kill(routing, signal.SIGSTOP)
    # Asterisk connects and sends its environment to the stalled controller, as a call would
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"agi_network_script: route\nagi_arg_1: 12315\nagi_arg_2: \n\n")
    await writer.drain()
    started = time.monotonic()
    # killed by the supervisor: the socket closes (or is reset, with our environment unread), so AGI()
    # returns and the dialplan falls back
    with contextlib.suppress(ConnectionResetError):
        assert await asyncio.wait_for(reader.read(), 20.0) == b""
    let_go = time.monotonic() - started
    writer.close()
    wait_for(lambda: not alive(routing))  # its sockets closed as it exited; the zombie is reaped next
    wait_for(lambda: children_of(proc.pid).get("routing") not in (None, routing))
    assert await target_of(port, "12313") == "gx-general"  # a new routing service took over
    wait_for(lambda: json.loads(status.read_text())["services"]["routing"]["stalls"] == 1)
    health = json.loads(status.read_text())["services"]["routing"]
    assert health["restarts"] == 1 and "stalled" in health["last_exit"]
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert "routing service pid" in out and "stalled" in out and "killed" in out
    print(f"stalled session let go after {let_go:.2f} s")


def test_a_dead_events_service_is_restarted_and_none_outlives_a_killed_supervisor(
    serve: tuple[subprocess.Popen[str], int, Path],
) -> None:
    proc, _, status = serve
    wait_for(lambda: set(children_of(proc.pid)) == {"routing", "events"})
    events = children_of(proc.pid)["events"]
    os.kill(events, signal.SIGKILL)
    wait_for(lambda: children_of(proc.pid).get("events") not in (None, events))
    wait_for(lambda: json.loads(status.read_text())["services"]["events"]["restarts"] == 1)
    kids = children_of(proc.pid)
    proc.kill()  # kill -9 of serve itself: its services must not keep running as orphans
    proc.wait()
    wait_for(lambda: not any(alive(pid) for pid in kids.values()))


@pytest.mark.serial  # it keeps every core busy for seconds: not beside other tests
def test_the_events_service_is_not_killed_while_it_starts_on_a_saturated_host(tmp_path: Path) -> None:
    """Every core busy at normal priority while serve starts: the events service, which runs at idle priority
    once its loop beats, must get through its start (its signs of life every 0.1 s) and not be taken for
    stalled (STARTUP_SILENCE) and killed."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range((os.cpu_count() or 1) + 1)]
    config = tmp_path / "small.yaml"
    config.write_text(SMALL_YAML, encoding="utf-8")
    status = tmp_path / "status.json"
    cmd = [sys.executable, "-m", "hotline_cti.cli.main", "serve", "--config", str(config)]
    cmd += ["--listen", f"127.0.0.1:{free_port()}", "--status-file", str(status)]
    cmd += ["--mqtt", f"127.0.0.1:{free_port()}", "--database", f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"]
    cmd += ["--spool-dir", str(tmp_path / "spool")]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:

        def events() -> dict[str, object]:
            try:
                return dict(json.loads(status.read_text())["services"]["events"])
            except (FileNotFoundError, ValueError, KeyError):
                return {}

        # The first beat of its loop: started. (Starved at idle priority afterwards, it has EVENTS_STALL_LIMIT.)
        wait_for(lambda: events().get("since_beat") is not None or events().get("stalls", 0) != 0, 60.0)
        assert events()["stalls"] == 0 and events()["restarts"] == 0, events()
    finally:
        for hog in hogs:
            hog.kill()
        for hog in hogs:
            hog.wait()
        proc.kill()
        out, _ = proc.communicate(timeout=30)
    assert "stalled" not in out, out


def test_the_events_service_runs_at_idle_priority_once_started_and_routing_does_not(
    serve: tuple[subprocess.Popen[str], int, Path],
) -> None:
    """Routing preempts the events service: once its loop beats, the events service is SCHED_IDLE (nice +10 where
    that is refused); the routing service keeps the normal policy."""
    proc, _, _ = serve
    wait_for(lambda: set(children_of(proc.pid)) == {"routing", "events"})
    kids = children_of(proc.pid)

    def idle(pid: int) -> bool:
        return os.sched_getscheduler(pid) == os.SCHED_IDLE or os.getpriority(os.PRIO_PROCESS, pid) >= 10

    wait_for(lambda: idle(kids["events"]))
    assert os.sched_getscheduler(kids["routing"]) == os.SCHED_OTHER
    assert os.getpriority(os.PRIO_PROCESS, kids["routing"]) == 0
