"""The routing service: FastAGI ``route`` and ``ivr`` sessions, the call path. No database on the call path.

Run by the supervisor as ``python -m hotline_cti.serve.routing <serve options>``. It needs only
the merger file: with the database or the broker down, calls are still decided. With
``HOTLINE_NUMBER_KEY`` set it screens repeat and nuisance callers (docs/callers.md): the managed lists
are read from the database in the background every few seconds, never while a call waits.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import time

from hotline_cti import event_loop
from hotline_cti.adapters.agi.fastagi import FastAgiServer, Limits
from hotline_cti.adapters.agi.reload import ConfigHolder
from hotline_cti.callers.hashing import ENV_NUMBER_KEY, NumberKeyError, number_key
from hotline_cti.callers.lists import ListRefresher, refresh_seconds
from hotline_cti.callers.screen import CallerScreen
from hotline_cti.records.queue_live import QueueBoard
from hotline_cti.serve import options
from hotline_cti.serve.child import start_child, stop_on_signals
from hotline_cti.serve.heartbeat import Heartbeat, beat_interval
from hotline_cti.serve.launch import stop_startup_beats
from hotline_cti.storage.store import ENV_DATABASE_URL

log = logging.getLogger("hotline_cti.serve.routing")


QUEUE_POLL = 0.1  # seconds between looks at the queue snapshot (a stat; read only when it changed)
CONFIG_WATCH = 1.0  # seconds between looks at the config file (a change is picked up within this)


class RoutingService:
    """The FastAGI server over a config holder, reloading on SIGHUP and on file change."""

    def __init__(self, args: argparse.Namespace, holder: ConfigHolder) -> None:
        self.args = args
        self.holder = holder
        self.screen = caller_screen(holder)
        self.board = QueueBoard(options.queue_state_path(args))
        self.server = FastAgiServer(
            holder,
            allow=args.allow or ("127.0.0.0/8", "::1/128"),
            limits=Limits(command=args.command_timeout, session=args.session_deadline),
            clock=options.clock(args),
            screen=self.screen,
            queues=self.board,
            own_sweep=False,  # swept by _tick
        )
        self._timer: asyncio.TimerHandle | None = None
        self._watch_at = 0.0
        self.heartbeat = Heartbeat.from_env()
        self.beat_every = beat_interval(args.stall_limit)
        self.lists: ListRefresher | None = None
        url = args.database or os.environ.get(ENV_DATABASE_URL)
        if self.screen is not None and url:
            self.lists = ListRefresher(url, self.screen, refresh_seconds())

    def _tick(self) -> None:
        """The process's one housekeeping timer: the heartbeat, the sessions' deadlines, the live queue state
        (while the served config has diversion rules), the config file's watch.

        One timer, not one each: wake-ups are most of what an idle process costs (docs/benchmarks.md,
        asterisk_bench), and these share theirs. It runs every quarter of the stall limit or of the
        shortest session limit (at most 0.25 s), every 0.1 s while there are diversion rules.
        """
        loop = asyncio.get_running_loop()
        if self.heartbeat is not None:
            self.heartbeat.beat()
        self.server.sweep()
        diversions = bool(self.holder.table.diversions)
        if diversions:
            self.board.refresh(time.time())
        now = loop.time()
        if now >= self._watch_at:
            self._watch_at = now + CONFIG_WATCH
            self.holder.reload_if_changed()  # a file change is picked up within a second
        every = min(self.beat_every, self.server.tick, QUEUE_POLL if diversions else CONFIG_WATCH)
        self._timer = loop.call_later(every, self._tick)

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        self._watch_at = loop.time() + CONFIG_WATCH
        self._tick()  # first: the supervisor hears the child while the lists are read
        stop_startup_beats()  # the loop beats now: a stall must fall silent
        if self.lists is not None:
            await self.lists.start()  # before listening: the first calls are screened with the lists
        host, port = self.args.listen
        bound = await self.server.start(host, port)
        log.info(
            "FastAGI controller on %s:%d serving %s (%s loop)", host, bound, self.args.config, event_loop.loop_name()
        )
        if self.args.clock_start is not None:
            log.warning("routing as if it were %s (--clock-start): for tests and drills only", self.args.clock_start)
        stop = stop_on_signals()
        loop.add_signal_handler(signal.SIGHUP, self.holder.reload)
        await stop.wait()
        await self.server.close()
        if self.lists is not None:
            await self.lists.stop()
        if self._timer is not None:
            self._timer.cancel()  # last: the supervisor hears the child until it is done
        log.info("routing stopped; %d sessions served", self.server.served)
        return 0


def caller_screen(holder: ConfigHolder) -> CallerScreen | None:
    """The caller screen when ``HOTLINE_NUMBER_KEY`` is set; None (decisions as they are) otherwise."""
    try:
        key = number_key()
    except NumberKeyError as exc:
        if os.environ.get(ENV_NUMBER_KEY) or holder.table.callers is not None:
            log.error("%s: repeat and nuisance caller rules are not applied", exc)
        return None
    return CallerScreen(key)


def main(argv: list[str] | None = None) -> int:
    started = start_child("hotline-cti-routing", argv)
    if started is None:
        return 1
    return event_loop.run(RoutingService(*started).run())


if __name__ == "__main__":
    sys.exit(main())
