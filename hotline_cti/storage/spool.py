"""The local spool: rows on their way to the database, on disk until the database has them.

Every row the :class:`~hotline_cti.storage.writer.BatchWriter` accepts is first appended here
(one SQLite file per Asterisk link, WAL, committed at once) and deleted only after the
database committed it. So a database outage, a restart or a ``kill -9`` of the events
service loses nothing that was accepted: the next writer replays the spool, and because
every database write is idempotent (calls, ratings and transfers are upserts by key,
outbox events are inserted once by their event id) a row replayed after its commit is
not written twice.

The spool is bounded in bytes (the payload bytes it holds): past the bound new rows are
refused, and the writer logs that once per episode. Local SQLite rather than a flat file
because deleting written rows from the head, reading one lane at a time and surviving a
torn last write are what it does already.

An ``fcntl`` lock on ``<file>.lock`` keeps a second events service on the same host and
link from sharing the file (the database lease guards other hosts: storage/lease.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import re
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

__all__ = ["DEFAULT_MAX_BYTES", "Spool", "SpoolBusy", "spool_path"]

DEFAULT_MAX_BYTES = 256 * 1024 * 1024


class SpoolBusy(Exception):
    """Another process holds this spool (another events service for the same link on this host)."""


def spool_path(directory: Path, link: str) -> Path:
    """The spool file of one Asterisk link in ``directory`` (the link id made safe for a file name)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", link).strip("._") or "default"
    return directory / f"spool-{safe}.db"


class Spool:
    """Rows by lane (``calls``, ``events``...), in append order; ``path=None`` keeps them in memory (tests)."""

    def __init__(
        self, path: Path | None = None, *, max_bytes: int = DEFAULT_MAX_BYTES, group_commit: float = 0.0
    ) -> None:
        self.path = path
        self.max_bytes = max_bytes
        # > 0: appends made within this many seconds share one commit (on the running event loop). A commit is
        # most of an append's cost (~90% measured); a kill -9 then loses at most that window, as it loses the AMI
        # events still unread in the socket. 0: every append is its own commit.
        self.group_commit = group_commit
        self._commit_due: asyncio.TimerHandle | None = None
        self._lock_fd: int | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._lock_fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(self._lock_fd)
                self._lock_fd = None
                raise SpoolBusy(f"{path} is in use by another process") from None
        try:
            # Autocommit: each append is its own transaction, on disk (in the WAL) when append returns,
            # so it survives kill -9 of this process. synchronous=NORMAL skips the fsync: a power cut may
            # lose the last commits, a crash of the process does not.
            self._db = sqlite3.connect(str(path) if path else ":memory:", isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS spool (id INTEGER PRIMARY KEY AUTOINCREMENT, lane TEXT NOT NULL, "
                "body TEXT NOT NULL)"
            )
            self._db.execute("CREATE INDEX IF NOT EXISTS ix_spool_lane ON spool (lane, id)")
            # The record builder's calls in progress (serve/record_pipeline.py checkpoints them): a restarted events
            # service takes them back, so a call that ends while it restarts is still finished and recorded.
            self._db.execute("CREATE TABLE IF NOT EXISTS open_calls (call_id TEXT PRIMARY KEY, body TEXT NOT NULL)")
            # Small named positions kept with the rows they cover (the CDR file's offset read: serve/cdr_follow.py).
            self._db.execute("CREATE TABLE IF NOT EXISTS marks (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
            self.recount()
        except BaseException:
            self._unlock()
            raise

    def recount(self) -> None:
        """Count the rows and bytes held from the file itself."""
        self._counts: dict[str, int] = {}
        self.bytes = 0
        totals = "SELECT lane, count(*), sum(length(CAST(body AS BLOB))) FROM spool GROUP BY lane"
        for lane, count, size in self._db.execute(totals):
            self._counts[lane] = int(count)
            self.bytes += int(size or 0)

    def _begin_group(self) -> None:
        """Open the group transaction (committed by a timer) unless one is open already."""
        if self.group_commit <= 0 or self._db.in_transaction:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop to commit later: autocommit
        self._db.execute("BEGIN")
        self._commit_due = loop.call_later(self.group_commit, self.commit)

    def commit(self) -> None:
        """Commit the open group now (at its timer, and at close)."""
        if self._commit_due is not None:
            self._commit_due.cancel()
            self._commit_due = None
        if self._db.in_transaction:
            self._db.execute("COMMIT")

    @contextlib.contextmanager
    def atomic(self) -> Iterator[None]:
        """Appends and :meth:`forget_open` calls inside are committed together, or (on an exception) not at all:
        a finished call's record and its leaving the checkpoint survive a kill -9 together. (A savepoint, so it
        also works inside a commit group, which then commits it with the rest.)"""
        self._begin_group()
        self._db.execute("SAVEPOINT atomic")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK TO atomic")
            self._db.execute("RELEASE atomic")
            self.recount()
            raise
        self._db.execute("RELEASE atomic")

    def save_open(self, bodies: Mapping[str, str]) -> None:
        """Replace the checkpoint of calls in progress (call id -> JSON)."""
        with self.atomic():
            self._db.execute("DELETE FROM open_calls")
            self._db.executemany("INSERT INTO open_calls (call_id, body) VALUES (?, ?)", bodies.items())

    def load_open(self) -> list[str]:
        """The checkpointed calls in progress (JSON bodies)."""
        return [str(b) for (b,) in self._db.execute("SELECT body FROM open_calls")]

    def mark(self, name: str) -> str | None:
        """A named position saved with :meth:`set_mark`; None before the first."""
        row = self._db.execute("SELECT value FROM marks WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def set_mark(self, name: str, value: str) -> None:
        """Save a named position (inside :meth:`atomic`, with the rows it accounts for)."""
        self._db.execute("INSERT OR REPLACE INTO marks (name, value) VALUES (?, ?)", (name, value))

    def forget_open(self, call_ids: Iterable[str]) -> None:
        """Drop finished calls from the checkpoint."""
        self._db.executemany("DELETE FROM open_calls WHERE call_id = ?", [(c,) for c in call_ids])

    def count(self, lane: str | None = None) -> int:
        """Rows held (in one lane, or in all)."""
        if lane is None:
            return sum(self._counts.values())
        return self._counts.get(lane, 0)

    def append(self, lane: str, body: str) -> bool:
        """Append one row (committed when this returns); False, appending nothing, when it would pass the bound."""
        size = len(body.encode("utf-8"))
        if self.bytes + size > self.max_bytes:
            return False
        self._begin_group()
        self._db.execute("INSERT INTO spool (lane, body) VALUES (?, ?)", (lane, body))
        self._counts[lane] = self._counts.get(lane, 0) + 1
        self.bytes += size
        return True

    def head(self, lane: str, limit: int) -> list[tuple[int, str]]:
        """The oldest ``limit`` rows of a lane: ``(id, body)``."""
        cur = self._db.execute("SELECT id, body FROM spool WHERE lane = ? ORDER BY id LIMIT ?", (lane, limit))
        return [(int(i), str(b)) for i, b in cur]

    def delete(self, lane: str, rows: list[tuple[int, str]]) -> None:
        """Forget rows the database has committed: ``rows`` is a prefix of the lane's :meth:`head`."""
        if not rows:
            return
        self._db.execute("DELETE FROM spool WHERE lane = ? AND id <= ?", (lane, rows[-1][0]))
        self._counts[lane] = max(0, self._counts.get(lane, 0) - len(rows))
        self.bytes = max(0, self.bytes - sum(len(b.encode("utf-8")) for _, b in rows))

    def close(self) -> None:
        self.commit()
        self._db.close()
        self._unlock()

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = None
