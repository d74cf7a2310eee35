"""How the supervisor starts a service: signs of life from the first line, before any heavy import.

``python -m hotline_cti.serve.launch hotline_cti.serve.routing <serve options>`` starts a thread
that writes ``s`` to the heartbeat pipe every :data:`STARTUP_INTERVAL` seconds, then runs the
service module as ``__main__``. The service's event loop beats ``.`` (heartbeat.py) once it runs
and calls :func:`stop_startup_beats`. So the supervisor tells a child that starts slowly (imports,
a large merger file) from one that is stopped (SIGSTOP) or frozen in its start: the first keeps
writing ``s``, the second falls silent and is killed within ``STARTUP_SILENCE`` seconds
(supervisor.py) instead of its whole start-up allowance.

Only the standard library is imported before the thread runs.
"""

from __future__ import annotations

import os
import runpy
import sys
import threading

ENV_FD = "HOTLINE_HEARTBEAT_FD"  # as heartbeat.ENV_FD (not imported: that module imports asyncio)
STARTUP_INTERVAL = 0.1  # seconds between signs of life while starting
STARTUP_BEAT = b"s"

_started = threading.Event()  # set when the service's own heartbeat runs


def stop_startup_beats() -> None:
    """The service's event loop beats now: the start-up thread stops (a stalled loop must fall silent)."""
    _started.set()


def _beat_while_starting(fd: int) -> None:
    while not _started.wait(STARTUP_INTERVAL):
        try:
            os.write(fd, STARTUP_BEAT)
        except BlockingIOError:
            pass  # the supervisor is behind on reading: it has signs enough
        except OSError:
            return  # the supervisor is gone; PDEATHSIG ends this process


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python -m hotline_cti.serve.launch <service module> [options]", file=sys.stderr)
        return 2
    module, rest = args[0], args[1:]
    raw = os.environ.get(ENV_FD, "")
    if raw.isdigit():
        fd = int(raw)
        os.set_blocking(fd, False)
        threading.Thread(target=_beat_while_starting, args=(fd,), name="startup-beats", daemon=True).start()
    sys.argv = [module, *rest]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
    return 0


if __name__ == "__main__":
    # Run through the imported module, so that the service's stop_startup_beats() reaches this thread's flag.
    from hotline_cti.serve import launch

    sys.exit(launch.main())
