"""Live queue state from AMI events, and the compact snapshot the routing service reads.

The events service folds AMI's queue events into a :class:`QueueTracker` (re-read with QueueStatus
after every login) and writes :func:`encode`'s snapshot to a file whenever it changes, and at least
once a second; the routing service reloads that file when it changes (:class:`QueueBoard`), so a
call's diversion check is a dictionary look-up, never an AMI query (docs/queues.md). A snapshot older
than :data:`STALE_AFTER` counts as none: no diversion, every caller joins the queue as before.
"""

from __future__ import annotations

import logging
import math
import os
import struct
import sys
import time
from array import array
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from hotline_cti.core.diversion import QueueState

log = logging.getLogger(__name__)

STALE_AFTER = 5.0  # seconds: an events service that stopped writing for this long is not believed
MAX_BYTES = 4 * 1024 * 1024  # a snapshot of 10,000 queues is ~500 KB; anything bigger is not ours
MAX_COUNT = 1_000_000
# QueueMemberStatus Status (AST_DEVICE_*): 4 invalid and 5 unavailable are not logged in; 0 unknown and
# 1 not in use can take a call (app_queue rings both).
NOT_LOGGED_IN = frozenset({4, 5})
FREE = frozenset({0, 1})


@dataclass(slots=True)
class _Queue:
    members: dict[str, tuple[int, bool, bool]] = field(default_factory=dict)  # interface -> status, paused, in call
    waiting: dict[str, float] = field(default_factory=dict)  # Uniqueid -> when it joined (epoch seconds)
    holdtime: int = 0
    finished: int = 0  # calls completed + abandoned (app_queue's first-answer rule)

    def state(self) -> QueueState:
        members = available = free = 0
        for status, paused, in_call in self.members.values():
            if status in NOT_LOGGED_IN:
                continue
            members += 1
            if paused:
                continue
            available += 1
            free += status in FREE and not in_call
        return QueueState(members, available, free, len(self.waiting), self.holdtime)


def _int(event: Mapping[str, str], name: str) -> int | None:
    text = event.get(name, "").strip()
    return int(text) if text.isdigit() and len(text) < 10 else None


class QueueTracker:
    """Every queue's members, waiting callers and holdtime, as app_queue's AMI events tell them. Pure but for
    ``clock`` (epoch seconds), which stamps a caller's join: QueueCallerJoin carries no time, QueueEntry (the
    QueueStatus re-read) its ``Wait`` so far."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.queues: dict[str, _Queue] = {}
        self.version = 0  # bumped on every change: the writer writes when it moved
        self.skipped = 0  # events without the fields they need

    def reset(self) -> None:
        """Forget everything before a QueueStatus re-read (after an AMI login)."""
        self.queues.clear()
        self.version += 1

    def apply(self, event: Mapping[str, str]) -> bool:
        """Fold one AMI event in; True when it changed something this tracker keeps."""
        name = event.get("Event", "")
        handler = _HANDLERS.get(name)
        if handler is None:
            return False
        queue = event.get("Queue", "").strip()
        if not queue:
            self.skipped += 1
            return False
        q = self.queues.get(queue)
        if q is None:
            q = self.queues[queue] = _Queue()
        if handler(q, event, self.clock):
            self.version += 1
            return True
        self.skipped += 1
        return False

    def states(self, only: Collection[str] | None = None) -> dict[str, QueueState]:
        """Each queue's :class:`QueueState` now (of the queues in ``only``, when given)."""
        return {name: q.state() for name, q in self.queues.items() if only is None or name in only}

    def oldest(self) -> dict[str, float]:
        """Each queue with callers: when its longest-waiting caller joined (epoch seconds)."""
        return {name: min(q.waiting.values()) for name, q in self.queues.items() if q.waiting}


def _member(q: _Queue, event: Mapping[str, str], _clock: Callable[[], float]) -> bool:
    interface = (event.get("Interface") or event.get("Location") or event.get("StateInterface") or "").strip()
    status = _int(event, "Status")
    if not interface or status is None:
        return False
    q.members[interface] = (status, event.get("Paused", "").strip() == "1", event.get("InCall", "").strip() == "1")
    return True


def _member_removed(q: _Queue, event: Mapping[str, str], _clock: Callable[[], float]) -> bool:
    interface = (event.get("Interface") or event.get("Location") or event.get("StateInterface") or "").strip()
    if not interface:
        return False
    q.members.pop(interface, None)
    return True


def _member_pause(q: _Queue, event: Mapping[str, str], _clock: Callable[[], float]) -> bool:
    interface = (event.get("Interface") or event.get("Location") or "").strip()
    known = q.members.get(interface)
    if known is None:
        return bool(interface)  # a member the status events will describe
    q.members[interface] = (known[0], event.get("Paused", "").strip() == "1", known[2])
    return True


def _join(q: _Queue, event: Mapping[str, str], clock: Callable[[], float]) -> bool:
    uid = event.get("Uniqueid", "").strip()
    if not uid:
        return False
    q.waiting[uid] = clock() - (_int(event, "Wait") or 0)  # QueueEntry: waited that long already
    return True


def _leave(q: _Queue, event: Mapping[str, str], _clock: Callable[[], float]) -> bool:
    uid = event.get("Uniqueid", "").strip()
    if not uid:
        return False
    q.waiting.pop(uid, None)
    return True


def _abandon(q: _Queue, event: Mapping[str, str], _clock: Callable[[], float]) -> bool:
    q.finished += 1  # app_queue counts the abandon (callsabandoned)
    q.waiting.pop(event.get("Uniqueid", "").strip(), None)  # its Leave follows; a feed without one is not stuck
    return True


def _connect(q: _Queue, event: Mapping[str, str], _clock: Callable[[], float]) -> bool:
    """AgentConnect: app_queue's recalc_holdtime, 3/4 of the old average plus 1/4 of this caller's wait."""
    wait = _int(event, "HoldTime")
    if wait is None:
        return False
    q.holdtime = wait if q.finished == 0 else (q.holdtime * 3 + wait) >> 2
    q.waiting.pop(event.get("Uniqueid", "").strip(), None)  # answered: out of the queue (its Leave came first)
    return True


def _complete(q: _Queue, event: Mapping[str, str], _clock: Callable[[], float]) -> bool:
    q.finished += 1  # callscompleted, counted when the answered call ends
    return True


def _params(q: _Queue, event: Mapping[str, str], _clock: Callable[[], float]) -> bool:
    """QueueParams (QueueStatus): app_queue's own holdtime and counters, after a reconnect."""
    holdtime = _int(event, "Holdtime")
    if holdtime is None:
        return False
    q.holdtime = holdtime
    q.finished = (_int(event, "Completed") or 0) + (_int(event, "Abandoned") or 0)
    return True


_HANDLERS = {
    "QueueMemberStatus": _member,
    "QueueMember": _member,
    "QueueMemberAdded": _member,
    "QueueMemberRemoved": _member_removed,
    "QueueMemberPause": _member_pause,
    "QueueCallerJoin": _join,
    "QueueEntry": _join,
    "QueueCallerLeave": _leave,
    "QueueCallerAbandon": _abandon,
    "AgentConnect": _connect,
    "AgentComplete": _complete,
    "QueueParams": _params,
}
EVENTS = tuple(_HANDLERS)


# -- the snapshot file -------------------------------------------------------------------------------
#
# Binary, so that reading it is a few C calls whatever the number of queues (a national config has ~7,000):
#   magic "HQS2" | at: float64 | n: uint32 | names size: uint32 | names: UTF-8, '\n'-joined, sorted
#   | counts: 5 x n uint32 (members, available, free, waiting, holdtime per queue, in the names' order)
# little-endian. The names rarely change: the reader keeps its index while they do not.

MAGIC = b"HQS2"
_HEAD = struct.Struct("<4sdII")
_FIELDS = 5


def encode(states: Mapping[str, QueueState], at: float) -> bytes:
    """The snapshot of ``states`` at ``at`` (epoch seconds)."""
    names = sorted(states)
    blob = "\n".join(names).encode()
    counts = array("I", (min(x, MAX_COUNT) for n in names for x in _row(states[n])))
    if sys.byteorder != "little":
        counts.byteswap()
    return _HEAD.pack(MAGIC, at, len(names), len(blob)) + blob + counts.tobytes()


def _row(s: QueueState) -> tuple[int, int, int, int, int]:
    return (s.members, s.available, s.free, s.waiting, s.holdtime)


class SnapshotError(ValueError):
    """A snapshot file that is not one :func:`encode` wrote."""


class SnapshotStates(Mapping[str, QueueState]):
    """The queues of one snapshot; a queue's :class:`QueueState` is made the first time a call asks for it."""

    __slots__ = ("_counts", "_index", "_made", "blob")

    def __init__(self, index: Mapping[str, int], counts: array[int], blob: bytes = b"") -> None:
        self._index = index
        self._counts = counts
        self._made: dict[str, QueueState] = {}
        self.blob = blob  # the names as stored: the next read compares it and keeps the index

    @property
    def index(self) -> Mapping[str, int]:
        """Queue name -> its row (shared by the next read while the names do not change)."""
        return self._index

    def get(self, name: str, default: QueueState | None = None) -> QueueState | None:  # type: ignore[override]
        made = self._made.get(name)
        if made is not None:
            return made
        i = self._index.get(name)
        if i is None:
            return default
        i *= _FIELDS
        c = self._counts
        made = self._made[name] = QueueState(c[i], c[i + 1], c[i + 2], c[i + 3], c[i + 4])
        return made

    def __getitem__(self, name: str) -> QueueState:
        state = self.get(name)
        if state is None:
            raise KeyError(name)
        return state

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)


def decode(data: bytes, names_before: tuple[bytes, Mapping[str, int]] | None = None) -> tuple[float, SnapshotStates]:
    """``(at, states)`` from a snapshot; raises SnapshotError naming what is wrong.

    ``names_before`` (the names blob and index of the previous read) is reused when the names did not change.
    """
    if len(data) > MAX_BYTES:
        raise SnapshotError(f"{len(data)} bytes, more than {MAX_BYTES}")
    if len(data) < _HEAD.size:
        raise SnapshotError("shorter than its header")
    magic, at, n, size = _HEAD.unpack_from(data)
    if magic != MAGIC:
        raise SnapshotError("not a queue snapshot (magic)")
    if not math.isfinite(at):
        raise SnapshotError("its time is not a number")
    if len(data) != _HEAD.size + size + 4 * _FIELDS * n:
        raise SnapshotError(f"{len(data)} bytes do not hold {n} queues and {size} bytes of names")
    blob = data[_HEAD.size : _HEAD.size + size]
    if names_before is not None and names_before[0] == blob:
        index = names_before[1]
    else:
        try:
            names = blob.decode().split("\n") if n else []
        except UnicodeDecodeError:
            raise SnapshotError("queue names are not UTF-8") from None
        if len(names) != n or len(set(names)) != n:
            raise SnapshotError(f"{len(names)} distinct names for {n} queues")
        index = {name: i for i, name in enumerate(names)}
    counts = array("I")
    counts.frombytes(data[_HEAD.size + size :])
    if sys.byteorder != "little":
        counts.byteswap()
    if counts and max(counts) > MAX_COUNT:
        raise SnapshotError(f"a count over {MAX_COUNT}")
    return at, SnapshotStates(index, counts, blob)


def write_snapshot(path: Path, states: Mapping[str, QueueState], at: float) -> None:
    """Replace ``path`` atomically (a reader never sees half a file)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(encode(states, at))
    os.replace(tmp, path)


class QueueBoard:
    """The routing service's copy of the snapshot: :attr:`states` is what a call's diversion reads."""

    def __init__(self, path: Path, stale_after: float = STALE_AFTER) -> None:
        self.path = path
        self.stale_after = stale_after
        self.states: Mapping[str, QueueState] = {}
        self.at = 0.0
        self._seen: tuple[int, int, int] | None = None  # (inode, mtime ns, size) of the file last read
        self._names: tuple[bytes, Mapping[str, int]] | None = None  # names blob and index of the last read
        self._complained = ""

    def refresh(self, now: float) -> None:
        """Read the file if it changed; forget the states once they are stale. Never raises."""
        try:
            st = os.stat(self.path)
            seen = (st.st_ino, st.st_mtime_ns, st.st_size)
            if seen != self._seen:
                with open(self.path, "rb") as f:
                    data = f.read(MAX_BYTES + 1)
                self.at, states = decode(data, self._names)
                self.states = states
                self._names = (states.blob, states.index)
                self._seen = seen
                self._complained = ""
        except (OSError, SnapshotError) as exc:
            self._complain(
                "unreadable", f"queue state {self.path}: {exc}; diversion rules are off until it is readable"
            )
            self.states, self._seen = {}, None
            return
        if self.states and now - self.at > self.stale_after:
            self._complain("stale", f"queue state {self.path} is {now - self.at:.0f} s old; diversion rules are off")
            self.states = {}

    def _complain(self, kind: str, message: str) -> None:
        if kind != self._complained:  # once per kind of trouble, not once per poll
            log.warning("%s", message)
        self._complained = kind
