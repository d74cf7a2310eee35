"""The demo's child processes: each in its own process group, every group ended on every way out."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

STOP_SECONDS = 30.0  # a controller flushing its last records may take a moment; then it is killed


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Children:
    """Start commands in new sessions (own process groups) and end them all on exit, even on Ctrl-C.

    Used as a context manager; :meth:`stop` ends one child early (SIGTERM to its group, SIGKILL after a
    timeout) and returns its exit code.
    """

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(
        self, argv: Sequence[str], *, log: Path, env: Mapping[str, str], stdout: Path | None = None
    ) -> subprocess.Popen[bytes]:
        """Run ``argv`` with stderr (and stdout unless ``stdout`` is given) appended to ``log``."""
        with log.open("ab") as err, stdout.open("wb") if stdout else log.open("ab") as out:
            proc = subprocess.Popen(
                list(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=dict(env), start_new_session=True
            )
        self.procs.append(proc)
        return proc

    @staticmethod
    def _signal(proc: subprocess.Popen[bytes], sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)  # the group: anything the child started goes too

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = STOP_SECONDS) -> int:
        """SIGTERM the child's group, wait up to ``timeout`` s, then SIGKILL it. Returns the exit code."""
        if proc.poll() is None:
            self._signal(proc, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout)
        self._signal(proc, signal.SIGKILL)  # stragglers of the group, even when the leader has gone
        return proc.wait()

    def close(self) -> None:
        """End every child still running: SIGTERM to all groups at once, SIGKILL what is left after 5 s."""
        for proc in self.procs:
            if proc.poll() is None:
                self._signal(proc, signal.SIGTERM)
        deadline = time.monotonic() + 5.0
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(max(0.0, deadline - time.monotonic()))
            self._signal(proc, signal.SIGKILL)
            proc.wait()

    def __enter__(self) -> Children:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
