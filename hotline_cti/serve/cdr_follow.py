"""Asterisk's CDR file, followed by the events service: the calls AMI never showed it are recorded anyway.

AMI keeps no history. While no events service is logged in (killed and restarting, stopped, an
AMI reset, a standby taking over), a call may start and end unseen. Asterisk writes a CDR for
every call whoever listens, so the events service follows the CSV file ``cdr_custom`` appends to
(``--cdr-csv``, columns of records/cdr.py) from the offset it had reached, kept in the spool with
the rows it produced: a ``kill -9`` neither skips nor repeats a line.

A line is acted on once it has been read :data:`SETTLE` seconds ago, so the call's own AMI events
(Asterisk writes the CDR as it sends the Hangup) have been handled by then. Each call of the line
(its caller leg) is then, per ``RecordBuilder.ended_per_cdr``:

* finished here already with its Hangup: nothing to do (nearly every call);
* finished here without its Hangup (a resync found it gone, at the time we found out): its end
  time corrected from the CDR, the record stored again;
* in progress here: its Hangup was lost; finished at the CDR's end time;
* unknown: stored from the CDR with its ``calls/ended`` event, only where the database does not
  hold the call yet (``Store.add_recovered_calls``), so no call is stored or announced twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import stat
import time
from collections import Counter
from pathlib import Path

from hotline_cti.event_loop import cancel_and_wait
from hotline_cti.records.builder import Output
from hotline_cti.records.caller import CallerPolicy
from hotline_cti.records.cdr import CdrRow, parse_line, record_from_rows
from hotline_cti.serve.record_pipeline import RecordPipeline
from hotline_cti.storage.spool import Spool

__all__ = ["CdrFollower"]

log = logging.getLogger(__name__)

SETTLE = 5.0  # seconds a CDR line waits after it was read, for the call's own AMI events
POLL = 1.0  # seconds between reads of the file
READ_LIMIT = 4 * 1024 * 1024  # bytes read per poll at most: a long backlog is taken in steps


def _mark_name(path: Path) -> str:
    return f"cdr:{path}"


class CdrFollower:
    """Follows one CDR CSV file for one record pipeline; its position is a spool mark."""

    def __init__(
        self,
        path: Path,
        pipeline: RecordPipeline,
        spool: Spool,
        *,
        callers: CallerPolicy | None = None,
        settle: float = SETTLE,
        poll: float = POLL,
    ) -> None:
        if pipeline.writer is None:
            raise ValueError("the CDR follower stores the calls it recovers: its pipeline needs a writer")
        self.path = path
        self.pipeline = pipeline
        self.writer = pipeline.writer
        self.spool = spool
        self.callers = callers or CallerPolicy()
        self.settle = settle
        self.poll_every = poll
        self.mark_name = _mark_name(path)
        self.counts: Counter[str] = Counter()  # per ended_per_cdr outcome, and "malformed"
        self._inode = 0
        self._offset = 0  # next byte to read in the file of _inode
        self._pending: list[tuple[int, int, float, CdrRow | None]] = []  # (inode, end offset, read at, row)
        self._task: asyncio.Task[None] | None = None
        self._not_a_file = False

    @staticmethod
    def anchor(path: Path, spool: Spool) -> None:
        """On the spool's first use with this file, start from the file's end as it is now: done as soon as the
        spool is open, so a standby that takes over later reads every call since it started."""
        name = _mark_name(path)
        if spool.mark(name) is not None:
            return
        inode = offset = 0
        with contextlib.suppress(OSError):
            st = os.stat(path)
            inode, offset = st.st_ino, st.st_size
        with spool.atomic():
            spool.set_mark(name, f"{inode}:{offset}")
        log.info("CDR %s: followed from its end (%d bytes): earlier calls are not read", path, offset)

    async def start(self) -> None:
        """Take the position from the spool, start polling."""
        self.anchor(self.path, self.spool)
        inode, _, offset = (self.spool.mark(self.mark_name) or "0:0").partition(":")
        try:
            self._inode, self._offset = int(inode), int(offset)
        except ValueError:
            log.error("CDR %s: position %r unreadable; following from the file's end", self.path, inode + ":" + offset)
            with contextlib.suppress(OSError):
                st = os.stat(self.path)
                self._inode, self._offset = st.st_ino, st.st_size
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="cdr-follow")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.poll_every)
            try:
                self.poll()
            except Exception:
                log.exception("CDR %s: not read this time", self.path)

    def poll(self, now: float | None = None) -> None:
        """Read what was appended, act on the lines read ``settle`` seconds ago or more."""
        now = time.monotonic() if now is None else now
        self._read(now)
        settled = 0
        while settled < len(self._pending) and self._pending[settled][2] <= now - self.settle:
            settled += 1
        if settled:
            self._act(self._pending[:settled])
            del self._pending[:settled]

    def _read(self, now: float) -> None:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            return  # not there yet (Asterisk writes it at the first CDR), or rotated away this instant
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                if not self._not_a_file:
                    self._not_a_file = True
                    log.error("CDR %s: not a regular file; not read", self.path)
                return
            self._not_a_file = False
            if st.st_ino != self._inode or st.st_size < self._offset:
                # A new file (rotated: the rest of the old one, if any, is not read) or one truncated in place.
                if self._inode:
                    log.warning("CDR %s: a new file (rotated or truncated); reading it from its start", self.path)
                self._inode, self._offset = st.st_ino, 0
            if st.st_size <= self._offset:
                return
            data = os.pread(fd, min(READ_LIMIT, st.st_size - self._offset), self._offset)
        finally:
            os.close(fd)
        complete = data.rfind(b"\n") + 1  # a line still being written is read next time
        if complete == 0:
            if len(data) >= READ_LIMIT:  # no line end in READ_LIMIT bytes: not a CDR file; skip the lump
                log.error("CDR %s: %d bytes without a line end skipped", self.path, len(data))
                self._offset += len(data)
            return
        position = self._offset
        for raw in data[:complete].splitlines(keepends=True):
            position += len(raw)
            row = parse_line(raw.decode("utf-8", errors="replace").rstrip("\r\n"))
            self._pending.append((self._inode, position, now, row))
        self._offset += complete

    def _act(self, lines: list[tuple[int, int, float, CdrRow | None]]) -> None:
        rows = [row for *_, row in lines if row is not None]
        malformed = len(lines) - len(rows)
        if malformed:
            self.counts["malformed"] += malformed
            log.warning("CDR %s: %d line(s) not in the expected columns skipped", self.path, malformed)
        builder = self.pipeline.builder
        by_call: dict[str, list[CdrRow]] = {}
        for row in rows:
            if row.caller_leg:
                by_call.setdefault(row.uniqueid, []).append(row)
        outputs: list[Output] = []
        recovered = []
        for call_id, legs in by_call.items():
            record = record_from_rows(call_id, legs, builder.region, self.callers)
            if record is None:
                continue
            record = dataclasses.replace(record, call_id=builder.key(record.call_id), node=builder.node)
            kind, out = builder.ended_per_cdr(record)
            self.counts[kind] += 1
            outputs.extend(out)
            if kind == "unknown":
                recovered.append(record)
        inode, offset = lines[-1][0], lines[-1][1]
        # The rows and the new position in one spool transaction: killed before it, the lines are read again.
        with self.spool.atomic():
            self.pipeline.submit(outputs)
            for record in recovered:
                self.writer.submit_recovered(record)
            self.spool.set_mark(self.mark_name, f"{inode}:{offset}")
        if recovered or outputs:
            log.info(
                "CDR: %d call(s) never seen on AMI stored from the CDR (unless stored already), %d finished or "
                "corrected at the CDR's end time",
                len(recovered),
                len({o.call_id for o in outputs if hasattr(o, "call_id")}),
            )
