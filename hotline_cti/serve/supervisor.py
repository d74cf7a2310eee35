"""The serve supervisor: starts the routing and events services, watches their heartbeats, restarts them.

It does no work of its own (no event loop, no sockets to Asterisk), so it is the part left
running when a service stalls. A child that stops beating for longer than its stall limit is
killed with SIGKILL: for routing that closes its listening and session sockets, so Asterisk's
AGI() returns at once and the dialplan sends the caller to the fallback queue (a stalled
controller never holds callers in silence). A child that exits is started again with
exponential backoff. Children get PR_SET_PDEATHSIG, so none outlives the supervisor, however
it dies. Health goes to ``--status-file`` as JSON and, under systemd, to sd_notify (READY,
WATCHDOG, STATUS).
"""

from __future__ import annotations

import argparse
import logging
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from hotline_cti.health import write_status
from hotline_cti.serve import options
from hotline_cti.serve.heartbeat import ENV_FD, ENV_SUPERVISOR

LOOP_BEAT = b"."  # what heartbeat.Heartbeat writes; launch.STARTUP_BEAT is another byte

log = logging.getLogger("hotline_cti.serve")

STARTUP_GRACE = 60.0  # seconds a child may take to load its config before its event loop's first beat
# Before that first beat the child's start-up thread (launch.py) writes a sign of life every 0.1 s: one silent
# this long is stopped (SIGSTOP) or frozen, and is replaced now rather than at the end of its STARTUP_GRACE.
STARTUP_SILENCE = 3.0
EVENTS_STALL_LIMIT = 30.0  # the events service runs at idle priority: a busy host may starve it for a while
STOP_SECONDS = 15.0  # SIGTERM to SIGKILL at shutdown (the events service drains its writers)
BACKOFF_FIRST, BACKOFF_MAX, HEALTHY_AFTER = 0.2, 10.0, 60.0


@dataclass
class Child:
    """One supervised service process."""

    name: str
    module: str
    argv: list[str]
    stall_limit: float
    process: subprocess.Popen[bytes] | None = None
    beat_fd: int = -1
    started: float = 0.0
    last_beat: float | None = None  # the event loop's last beat (None: still starting)
    last_sign: float | None = None  # the last byte of any kind, start-up signs of life included
    restarts: int = 0
    stalls: int = 0
    backoff: float = BACKOFF_FIRST
    restart_at: float = 0.0
    last_exit: str = ""
    history: list[str] = field(default_factory=list)

    def status(self, now: float) -> dict[str, object]:
        return {
            "pid": self.process.pid if self.process else None,
            "running": self.process is not None,
            "since_beat": None if self.last_beat is None else round(now - self.last_beat, 3),
            "restarts": self.restarts,
            "stalls": self.stalls,
            "last_exit": self.last_exit,
        }


class Supervisor:
    """Runs the children until SIGTERM/SIGINT; forwards SIGHUP (reload) to them."""

    def __init__(self, args: argparse.Namespace) -> None:
        argv = options.to_argv(args)
        self.children = [Child("routing", "hotline_cti.serve.routing", argv, args.stall_limit)]
        if options.wants_events(args):
            self.children.append(Child("events", "hotline_cti.serve.events", argv, EVENTS_STALL_LIMIT))
        self.status_file: Path | None = args.status_file
        self.selector = selectors.DefaultSelector()
        self.stopping = False
        self.notify = _Notifier.from_env()

    # -- children -----------------------------------------------------------
    def _start(self, child: Child) -> None:
        read_fd, write_fd = os.pipe()
        env = {**os.environ, ENV_FD: str(write_fd), ENV_SUPERVISOR: str(os.getpid())}
        try:
            child.process = subprocess.Popen(
                [sys.executable, "-m", "hotline_cti.serve.launch", child.module, *child.argv],
                env=env,
                pass_fds=(write_fd,),
            )
        except OSError as exc:
            os.close(read_fd)
            log.error("%s service not started: %s", child.name, exc)
            child.restart_at = time.monotonic() + child.backoff
            child.backoff = min(BACKOFF_MAX, child.backoff * 2)
            return
        finally:
            os.close(write_fd)
        os.set_blocking(read_fd, False)
        child.beat_fd = read_fd
        child.started = time.monotonic()
        child.last_beat = child.last_sign = None
        self.selector.register(read_fd, selectors.EVENT_READ, child)
        log.info("%s service started, pid %d", child.name, child.process.pid)

    def _reap(self, child: Child, why: str) -> None:
        """Forget a dead child's process and schedule its restart."""
        assert child.process is not None
        code = child.process.wait()
        self.selector.unregister(child.beat_fd)
        os.close(child.beat_fd)
        child.beat_fd = -1
        child.process = None
        child.last_exit = f"{why} (exit {code})"
        now = time.monotonic()
        if now - child.started > HEALTHY_AFTER:
            child.backoff = BACKOFF_FIRST  # it ran well for a while: restart quickly again
        child.restart_at = now + child.backoff
        if not self.stopping:
            log.error("%s service %s; restarting in %.1f s", child.name, child.last_exit, child.backoff)
        child.backoff = min(BACKOFF_MAX, child.backoff * 2)
        child.restarts += 1

    def _read_beats(self, timeout: float) -> None:
        for key, _ in self.selector.select(timeout):
            child: Child = key.data
            try:
                data = os.read(key.fd, 4096)
            except BlockingIOError:
                continue
            if data:
                child.last_sign = time.monotonic()
                if LOOP_BEAT in data:
                    child.last_beat = child.last_sign

    def _check(self) -> None:
        now = time.monotonic()
        for child in self.children:
            if child.process is None:
                if not self.stopping and now >= child.restart_at:
                    self._start(child)
                continue
            if child.process.poll() is not None:
                self._reap(child, "exited")
                continue
            if child.last_beat is not None:
                since, limit = now - child.last_beat, child.stall_limit
            elif now - child.started > STARTUP_GRACE:
                since, limit = now - child.started, STARTUP_GRACE
            else:
                since, limit = now - (child.last_sign or child.started), STARTUP_SILENCE
            if since > limit:
                child.stalls += 1
                log.error("%s service pid %d stalled %.1f s: killed", child.name, child.process.pid, since)
                child.process.kill()  # SIGKILL works on a stopped process too; its sockets close now
                self._reap(child, f"stalled {since:.1f} s, killed")

    def _write_status(self) -> None:
        now = time.monotonic()
        healthy = all(c.process is not None and c.last_beat is not None for c in self.children)
        if self.status_file is not None:
            try:
                write_status(self.status_file, healthy, {c.name: c.status(now) for c in self.children})
            except OSError as exc:
                log.warning("status file %s: %s; no longer written", self.status_file, exc)
                self.status_file = None
        if self.notify is not None and healthy:
            self.notify.send("WATCHDOG=1")

    # -- the loop -------------------------------------------------------------
    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_hup)
        for child in self.children:
            self._start(child)
        ready = False
        last_status = 0.0
        while not self.stopping:
            self._read_beats(0.05)
            self._check()
            now = time.monotonic()
            if not ready and all(c.last_beat is not None for c in self.children):
                ready = True
                if self.notify is not None:
                    self.notify.send("READY=1")
            if now - last_status >= 1.0:
                self._write_status()
                last_status = now
        return self._shutdown()

    def _on_stop(self, signum: int, frame: object) -> None:
        self.stopping = True

    def _on_hup(self, signum: int, frame: object) -> None:
        for child in self.children:
            if child.process is not None:
                child.process.send_signal(signal.SIGHUP)

    def _shutdown(self) -> int:
        """SIGTERM every child, wait for them (the events service flushes), SIGKILL the late ones."""
        for child in self.children:
            if child.process is not None:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECONDS
        code = 0
        for child in self.children:
            if child.process is None:
                continue
            try:
                rc = child.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("%s service did not stop in %.0f s: killed", child.name, STOP_SECONDS)
                child.process.kill()
                rc = child.process.wait()
            if rc not in (0, -signal.SIGTERM):
                code = 1
        self._write_status()
        log.info("stopped")
        return code


class _Notifier:
    """sd_notify over $NOTIFY_SOCKET (systemd Type=notify with WatchdogSec)."""

    def __init__(self, address: str) -> None:
        self.address = "\0" + address[1:] if address.startswith("@") else address
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)

    @classmethod
    def from_env(cls) -> _Notifier | None:
        address = os.environ.get("NOTIFY_SOCKET")
        return cls(address) if address else None

    def send(self, message: str) -> None:
        try:
            self.sock.sendto(message.encode(), self.address)
        except OSError as exc:
            log.warning("sd_notify: %s", exc)
