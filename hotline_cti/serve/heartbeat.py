"""Heartbeats from a service's event loop to the supervisor, over an inherited pipe.

A beat is one byte written from the event loop itself, so it stops exactly when the loop
stops running callbacks: a blocking call, a busy loop, SIGSTOP. The supervisor reads the
other end and kills a child whose beats stop (supervisor.py).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import os
import signal
import sys

ENV_FD = "HOTLINE_HEARTBEAT_FD"
ENV_SUPERVISOR = "HOTLINE_SUPERVISOR_PID"
INTERVAL = 0.1  # seconds between beats (the events service; routing beats by its stall limit, beat_interval)
PR_SET_PDEATHSIG = 1

log = logging.getLogger(__name__)


def die_with_supervisor() -> None:
    """Ask Linux to SIGKILL this process when its parent dies (kill -9 included); exit if it already did."""
    parent = os.environ.get(ENV_SUPERVISOR)
    if parent is None:
        return
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if str(os.getppid()) != parent:  # the supervisor died before prctl took effect
        sys.exit(1)


def beat_interval(stall_limit: float) -> float:
    """Seconds between beats for a child killed after ``stall_limit`` s of silence: a quarter of it, at most 0.25.

    Each beat wakes the process, and wake-ups are what an idle routing process spends its CPU on, so it
    beats no more often than its limit asks; three beats may still be late before the supervisor acts.
    """
    return min(0.25, stall_limit / 4)


class Heartbeat:
    """Writes a byte to the supervisor's pipe: every :data:`INTERVAL` seconds from :meth:`start`, or at each
    :meth:`beat` from the owner's own timer."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        os.set_blocking(fd, False)
        self._timer: asyncio.TimerHandle | None = None

    @classmethod
    def from_env(cls) -> Heartbeat | None:
        """The heartbeat the supervisor handed down, if any (a service run by hand has none)."""
        raw = os.environ.get(ENV_FD)
        return cls(int(raw)) if raw and raw.isdigit() else None

    def start(self) -> None:
        self._beat()

    def beat(self) -> bool:
        """Write one beat; False when the supervisor is gone (PDEATHSIG then ends this process)."""
        try:
            os.write(self.fd, b".")
        except BlockingIOError:
            pass  # the supervisor is behind on reading: it has beats enough
        except OSError:
            return False
        return True

    def _beat(self) -> None:
        if self.beat():
            self._timer = asyncio.get_running_loop().call_later(INTERVAL, self._beat)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
