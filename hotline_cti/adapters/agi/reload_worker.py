"""Where a reload's load and compile run: a worker process, so the routing loop never waits for them.

A thread would not do: libyaml's composer and pydantic's validator are single C/Rust calls that hold
the GIL for tens to hundreds of ms on a 10,000-line file, and the routing loop would wait that long
for it (docs/benchmarks.md, reload_bench). The worker sends back only the compiled table, or the
problems found, as :class:`Packed`: each line plan (and the mobile prefix map) pickled on its own, and
the rest of the table referring to them. Unpickling all 760 line plans of a 10,000-line file is ~30 ms
of Python, and a whole new set of objects each reload brings on the loop's full garbage collections
(a 45-200 ms pause each), so the worker sends only the parts that are not in the table the loop
serves; the loop reuses the others (:func:`unpack`, in small steps, one per loop turn).
"""

from __future__ import annotations

import asyncio
import contextlib
import copyreg
import ctypes
import ctypes.util
import dataclasses
import gc
import hashlib
import io
import logging
import os
import pickle
import signal
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from hotline_cti.config.errors import ConfigError, Problem
from hotline_cti.config.loader import load_config
from hotline_cti.config.schema import MergerConfig
from hotline_cti.core.table import LinePlan, RoutingTable

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1  # linux/prctl.h
WORKER_NICE = 10  # fallback where SCHED_IDLE is not allowed

Compile = Callable[[MergerConfig], RoutingTable]
CHUNK_BYTES = 4096  # of pickled parts per loop turn: under 0.5 ms of CPU to unpickle
# Tables whose part digests the worker keeps: the loop serves the last one this worker sent, as a rule; a
# table it does not know (its first reload, a new worker) only costs sending every part.
TABLES_REMEMBERED = 4
# What a table is sent in: its line plans, and its mobile prefix map (a province's is ~8,000 prefixes, 1.4 ms
# to unpickle, and the same from one reload to the next).
Part = LinePlan | dict[str, str]


@dataclass(frozen=True, slots=True)
class Loaded:
    """A new config, compiled: what a load in this process (or :func:`unpack`) gives."""

    table: RoutingTable
    files: tuple[Path, ...]
    digest: str = ""  # of the table as the worker packed it; "" when loaded in this process
    # the table's parts by digest (of the worker's pickle), for the next reload to reuse
    parts: Mapping[str, Part] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Refused:
    """Every problem of a bad file (a ConfigError does not pickle with its problems)."""

    problems: tuple[Problem, ...]


def load_and_compile(path: Path, compile_table: Compile) -> Loaded | Refused:
    """Load ``path`` and compile it; every failure comes back as :class:`Refused`, never raised."""
    try:
        loaded = load_config(path)
    except ConfigError as exc:
        return Refused(tuple(exc.problems))
    except ValueError as exc:  # PyYAML's bare ValueError for a date such as 2021-02-30
        return Refused((Problem(None, "", f"{path}: cannot read: {exc}"),))
    try:
        table = compile_table(loaded.model)
    except Exception as exc:  # e.g. a timezone the tz database lacks: refused like a schema error
        return Refused((Problem(None, "", f"{path}: cannot compile the routing table: {exc}"),))
    return Loaded(table, loaded.files)


@dataclass(frozen=True, slots=True)
class Packed:
    """A compiled table as the worker sends it: its parts, and the table referring to them by index."""

    parts: tuple[bytes | None, ...]  # each part pickled, or None: the served table's part of that digest
    digests: tuple[str, ...]  # of each part's pickle, in index order
    skeleton: bytes  # the table, each part pickled as its index in ``parts``
    files: tuple[Path, ...]
    digest: str  # of the skeleton and the part digests: equal digests from one worker, equal tables
    base: str = ""  # the served table's digest when parts are left out (None), "" when all are sent


@dataclass(frozen=True, slots=True)
class Unchanged:
    """The file changed but its table did not (a comment, the same file saved again): nothing to swap."""

    files: tuple[Path, ...]
    digest: str


_NOT_IN_ANY_TABLE = object()
_MOBILE_FIELD = [f.name for f in dataclasses.fields(RoutingTable)].index("mobile_city")


class _PartPickler(pickle.Pickler):
    """Pickles ``table`` with each of its parts as an index in :attr:`parts`, one index per object.

    A module-level class keeping its state on the instance: a class made per call is a reference
    cycle (its ``__mro__``), and one closing over the parts would keep them until a full collection.
    """

    def __init__(self, file: io.BytesIO, table: RoutingTable) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.parts: list[Part] = []
        self._index: dict[int, int] = {}
        # A frozen table pickles its read-only maps as plain dicts made afresh (core/table.py); its mobile map is
        # copied once here and put in the table's state (reducer_override), so persistent_id sees this object.
        self._table = table
        self._mobile: object = dict(table.mobile_city) if table.mobile_city else _NOT_IN_ANY_TABLE

    def reducer_override(self, obj: object) -> Any:
        if obj is not self._table or self._mobile is _NOT_IN_ANY_TABLE:
            return NotImplemented
        state = list(self._table.__getstate__())
        state[_MOBILE_FIELD] = self._mobile
        return (copyreg.__newobj__, (RoutingTable,), tuple(state))  # type: ignore[attr-defined]

    def persistent_id(self, obj: object) -> int | None:
        if type(obj) is not LinePlan and obj is not self._mobile:
            return None
        at = self._index.get(id(obj))
        if at is None:
            at = self._index[id(obj)] = len(self.parts)
            self.parts.append(cast(Part, obj))  # a LinePlan or the mobile map, as tested above
        return at


class _PartUnpickler(pickle.Unpickler):
    """Rebuilds a table from its skeleton, each index replaced by its part (see :class:`_PartPickler`)."""

    def __init__(self, data: bytes, parts: list[Part]) -> None:
        super().__init__(io.BytesIO(data))
        self.parts = parts

    def persistent_load(self, pid: object) -> Part:
        if type(pid) is not int:  # pragma: no cover - our own worker sent it
            raise pickle.UnpicklingError(f"part reference {pid!r} is not an index")
        return self.parts[pid]


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


# In the worker: the part digests of the last tables it packed, by table digest (oldest first).
_remembered: dict[str, frozenset[str]] = {}


def pack(loaded: Loaded, served: str = "") -> Packed:
    """``loaded`` for the trip to the routing process; a plan held in several maps stays one object.

    Parts of the table whose digest is ``served`` (when this process packed it lately) are left out:
    the loop has them already.
    """
    buffer = io.BytesIO()
    pickler = _PartPickler(buffer, loaded.table)
    pickler.dump(loaded.table)
    skeleton = buffer.getvalue()
    pickled = [pickle.dumps(part, protocol=pickle.HIGHEST_PROTOCOL) for part in pickler.parts]
    digests = tuple(_digest(data) for data in pickled)
    digest = _digest(skeleton + "".join(digests).encode())
    known = _remembered.get(served, frozenset()) if served else frozenset()
    parts = tuple(None if d in known else data for d, data in zip(digests, pickled, strict=True))
    _remembered.pop(digest, None)
    _remembered[digest] = frozenset(digests)
    while len(_remembered) > TABLES_REMEMBERED:
        del _remembered[next(iter(_remembered))]
    return Packed(parts, digests, skeleton, loaded.files, digest, served if known else "")


class PartMissing(LookupError):
    """The worker left out a part the loop does not have (the tables served disagree): send them all."""


async def unpack(packed: Packed, served: Mapping[str, Part]) -> Loaded:
    """Rebuild the table on the loop, ~CHUNK_BYTES of new parts per turn, so sessions go on between steps.

    ``served`` is the parts of the table in service by digest: those the worker left out are taken
    from there, the same objects (PartMissing when one is not there).
    """
    parts: list[Part] = []
    step = 0
    for digest, data in zip(packed.digests, packed.parts, strict=True):
        if data is None:
            part = served.get(digest)
            if part is None:
                raise PartMissing(f"the reload worker left out part {digest}, which the table in service lacks")
            parts.append(part)
            continue
        parts.append(pickle.loads(data))
        step += len(data)
        if step >= CHUNK_BYTES:
            step = 0
            await asyncio.sleep(0)
    table = _PartUnpickler(packed.skeleton, parts).load()
    if not isinstance(table, RoutingTable):  # pragma: no cover - our own worker sent it
        raise TypeError(f"the reload worker sent {type(table).__name__}, not a RoutingTable")
    return Loaded(table, packed.files, packed.digest, dict(zip(packed.digests, parts, strict=True)))


def load_compile_pack(path: Path, compile_table: Compile, served: str = "") -> Packed | Refused | Unchanged:
    """:func:`load_and_compile`, packed for the trip back (what the worker runs): only the parts not in the
    table whose digest is ``served``, and :class:`Unchanged` when the table is that one, so the routing loop
    neither rebuilds nor swaps it.

    The cycle collector is off meanwhile: loading 10,000 lines makes objects fast enough to set off a
    full collection every few ms, ~40 % of the worker's CPU (250 ms a reload, on a core routing may
    need), for garbage that reference counting frees anyway; what cycles there are (a refusal's
    traceback) are young, and one collection of the youngest generation afterwards frees them.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        outcome = load_and_compile(path, compile_table)
        if isinstance(outcome, Refused):
            return outcome
        packed = pack(outcome, served)
        return Unchanged(packed.files, packed.digest) if packed.digest == served else packed
    finally:
        if was_enabled:
            gc.enable()
            gc.collect(0)


def worker_init(parent: int) -> None:
    """In the worker: die with the parent (never an orphan after ``kill -9``), and yield the CPU to it."""
    libc_name = ctypes.util.find_library("c")
    if libc_name:
        # Not Linux (no prctl): the pool's own pipe still ends the worker with the parent.
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(libc_name, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    # SCHED_IDLE, as serve's events process: routing preempts a reload the moment a session needs the CPU
    # (nice alone still let a decision wait a scheduler slice there); nice where SCHED_IDLE is refused.
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (OSError, AttributeError):
        with contextlib.suppress(OSError):
            os.nice(WORKER_NICE)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(0)
