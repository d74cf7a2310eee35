"""The routing service: FastAGI ``route`` and ``ivr`` sessions, the call path. No database.

Run by the supervisor as ``python -m hotline_cti.serve.routing <serve options>``. It needs only
the merger file: with the database or the broker down, calls are still decided.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import time

from hotline_cti import event_loop
from hotline_cti.adapters.agi.fastagi import FastAgiServer, Limits
from hotline_cti.adapters.agi.reload import ConfigHolder
from hotline_cti.records.queue_live import QueueBoard
from hotline_cti.serve import options
from hotline_cti.serve.child import start_child, stop_on_signals
from hotline_cti.serve.heartbeat import Heartbeat

log = logging.getLogger("hotline_cti.serve.routing")


QUEUE_POLL = 0.1  # seconds between looks at the queue snapshot (a stat; read only when it changed)


class RoutingService:
    """The FastAGI server over a config holder, reloading on SIGHUP and on file change."""

    def __init__(self, args: argparse.Namespace, holder: ConfigHolder) -> None:
        self.args = args
        self.holder = holder
        self.board = QueueBoard(options.queue_state_path(args))
        self.server = FastAgiServer(
            holder,
            allow=args.allow or ("127.0.0.0/8", "::1/128"),
            limits=Limits(command=args.command_timeout, session=args.session_deadline),
            clock=options.clock(args),
            queues=self.board,
        )
        self._poller: asyncio.TimerHandle | None = None
        self.heartbeat = Heartbeat.from_env()

    def _poll_queues(self) -> None:
        """Refresh the live queue state while the served config has diversion rules (none: no file to read)."""
        if self.holder.table.diversions:
            self.board.refresh(time.time())
        self._poller = asyncio.get_running_loop().call_later(QUEUE_POLL, self._poll_queues)

    async def run(self) -> int:
        host, port = self.args.listen
        bound = await self.server.start(host, port)
        log.info(
            "FastAGI controller on %s:%d serving %s (%s loop)", host, bound, self.args.config, event_loop.loop_name()
        )
        if self.args.clock_start is not None:
            log.warning("routing as if it were %s (--clock-start): for tests and drills only", self.args.clock_start)
        if self.heartbeat is not None:
            self.heartbeat.start()
        self._poll_queues()
        stop = stop_on_signals()
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self.holder.reload)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
            self.holder.reload_if_changed()  # a file change is picked up within a second
        if self._poller is not None:
            self._poller.cancel()
        await self.server.close()
        if self.heartbeat is not None:
            self.heartbeat.stop()
        log.info("routing stopped; %d sessions served", self.server.served)
        return 0


def main(argv: list[str] | None = None) -> int:
    started = start_child("hotline-cti-routing", argv)
    if started is None:
        return 1
    return event_loop.run(RoutingService(*started).run())


if __name__ == "__main__":
    sys.exit(main())
