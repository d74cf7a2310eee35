"""The live view of a demo run: a progress bar and a table of the busiest queues, from the PBX's AMI events.

The figures come from the wallboard's own state (:class:`hotline_cti.wallboard.live.LiveState`: waiting
callers, agents, answered and abandoned calls) fed by an AMI client of the demo's, on the simulated clock
(each event's ``Timestamp``): its events go to the link's record builder (the calls) and to the state
(queues and agents), as in the events service. Rendering is pure: lines of text in, the terminal code in :class:`Screen`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from hotline_cti.core.table import RoutingTable
from hotline_cti.records.builder import RecordBuilder
from hotline_cti.records.fanout import RecordFanout
from hotline_cti.text_output import table
from hotline_cti.wallboard.live import LiveState

QUEUE_ROWS = 10  # the busiest queues shown


class LiveView:
    """Counts the calls begun and keeps the wallboard state of the run; :meth:`lines` draws it."""

    def __init__(self, routing: RoutingTable, expected_calls: int) -> None:
        self.records = RecordFanout(RecordBuilder(routing.region))
        self.state = LiveState(routing, records=self.records)
        self.records.add_listener(self.state.take)
        self.expected_calls = expected_calls
        self.calls = 0  # caller legs begun (Newchannel with Uniqueid == Linkedid)
        self.events = 0
        self.now: dt.datetime | None = None  # simulated time of the last event

    def on_event(self, event: Mapping[str, str]) -> None:
        """One AMI event (an ``AmiClient`` callback): never raises, a bad event is the state's to skip."""
        self.events += 1
        stamp = event.get("Timestamp")
        try:
            if stamp:
                self.now = dt.datetime.fromtimestamp(float(stamp), dt.UTC)
        except ValueError:
            pass
        if event.get("Event") == "Newchannel" and event.get("Uniqueid") == event.get("Linkedid"):
            self.calls += 1
        now = self.now or dt.datetime.now(dt.UTC)
        self.records.feed(event, now)
        self.state.apply(event, now)

    def figures(self) -> dict[str, Any]:
        """The wallboard snapshot at the simulated time (queues, totals)."""
        return self.state.snapshot(self.now or dt.datetime.now(dt.UTC))

    def lines(self, width: int = 40) -> list[str]:
        """Progress bar, totals and the busiest queues, as lines of text."""
        snap = self.figures()
        tz = self.state.table.timezone
        at = self.now.astimezone(tz).strftime("%H:%M:%S") if self.now else "--:--:--"
        t = snap["totals"]
        head = [
            progress_bar(self.calls, self.expected_calls, width) + f"  simulated {at}",
            f"in queue {t['waiting']}  longest wait {t['longest_wait']} s  agents free {t['free']} busy {t['busy']}"
            f"  answered {t['answered']}  abandoned {t['abandoned']}",
        ]
        return head + queue_table(snap["queues"], QUEUE_ROWS).splitlines()

    def plain_line(self) -> str:
        """One line for a log (stdout not a terminal)."""
        snap = self.figures()
        t = snap["totals"]
        done = f"{self.calls}/{self.expected_calls}"
        at = self.now.astimezone(self.state.table.timezone).strftime("%H:%M:%S") if self.now else "--:--:--"
        return (
            f"progress {percent(self.calls, self.expected_calls)} ({done} calls, simulated {at}): "
            f"in queue {t['waiting']}, longest wait {t['longest_wait']} s, agents free {t['free']} busy {t['busy']}, "
            f"answered {t['answered']}, abandoned {t['abandoned']}"
        )


def percent(done: int, total: int) -> str:
    """'42%' of done/total, capped at 100%."""
    return f"{min(done / total, 1.0) if total else 1.0:.0%}"


def progress_bar(done: int, total: int, width: int = 40) -> str:
    """'[#########.........]  45%  1966/4369 calls'."""
    share = min(done / total, 1.0) if total else 1.0
    filled = round(share * width)
    return f"[{'#' * filled}{'.' * (width - filled)}] {share:4.0%}  {done}/{total} calls"


def queue_table(rows: Sequence[Mapping[str, Any]], limit: int) -> str:
    """The ``limit`` queues with most calls so far: waiting, longest wait, agents free/busy, answered, abandoned."""
    busiest = sorted(rows, key=lambda r: (-(r["answered"] + r["unanswered"] + r["waiting"]), r["queue"]))[:limit]
    return table(
        ["queue", "waiting", "longest wait (s)", "free", "busy", "answered", "abandoned"],
        [
            [r["queue"], r["waiting"], r["longest_wait"], r["free"], r["busy"], r["answered"], r["abandoned"]]
            for r in busiest
        ],
    )


class Screen:
    """Redraws a block of lines in place on a terminal (ANSI: cursor up, clear to end of screen)."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.drawn = 0

    def draw(self, lines: Sequence[str]) -> None:
        """Replace the block drawn last with ``lines``."""
        up = f"\x1b[{self.drawn}F" if self.drawn else ""
        self.out.write(up + "\x1b[J" + "\n".join(lines) + "\n")
        self.out.flush()
        self.drawn = len(lines)
