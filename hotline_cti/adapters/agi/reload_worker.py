"""Where a reload's load and compile run: a worker process, so the routing loop never waits for them.

A thread would not do: libyaml's composer and pydantic's validator are single C/Rust calls that hold
the GIL for tens to hundreds of ms on a 10,000-line file, and the routing loop would wait that long
for it (docs/benchmarks.md, reload_bench). The worker sends back only the compiled table, or the
problems found. Unpickling the table of a 10,000-line file is itself ~30 ms of Python (760 line
plans at ~35 µs each), so it comes :class:`Packed`: the line plans in small chunks the loop unpickles
one per turn (:func:`unpack`), and the rest of the table, which refers to them.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import hashlib
import io
import logging
import os
import pickle
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hotline_cti.config.errors import ConfigError, Problem
from hotline_cti.config.loader import load_config
from hotline_cti.config.schema import MergerConfig
from hotline_cti.core.table import LinePlan, RoutingTable

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1  # linux/prctl.h
WORKER_NICE = 10  # fallback where SCHED_IDLE is not allowed

Compile = Callable[[MergerConfig], RoutingTable]
CHUNK_BYTES = 4096  # of pickled plans per loop turn: under 0.5 ms of CPU to unpickle


@dataclass(frozen=True, slots=True)
class Loaded:
    """A new config, compiled: what the worker sends back when the file is good."""

    table: RoutingTable
    files: tuple[Path, ...]


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
    """A compiled table as the worker sends it: line plans in chunks, and the table referring to them."""

    plans: tuple[bytes, ...]  # pickled lists of LinePlan, about CHUNK_BYTES each
    skeleton: bytes  # the table, each LinePlan pickled as its index in the plans
    files: tuple[Path, ...]
    digest: str = ""  # of the pickled table: equal digests from one worker, equal tables


@dataclass(frozen=True, slots=True)
class Unchanged:
    """The file changed but its table did not (a comment, the same file saved again): nothing to swap."""

    files: tuple[Path, ...]
    digest: str


def pack(loaded: Loaded) -> Packed:
    """``loaded`` for the trip to the routing process; a plan held in several maps stays one object."""
    plans: list[LinePlan] = []
    index: dict[int, int] = {}

    class _Pickler(pickle.Pickler):
        def persistent_id(self, obj: object) -> int | None:
            if type(obj) is not LinePlan:
                return None
            at = index.get(id(obj))
            if at is None:
                at = index[id(obj)] = len(plans)
                plans.append(obj)
            return at

    buffer = io.BytesIO()
    _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(loaded.table)
    # Chunks by size, not count: a plan with a site per city pickles to 40x a short code's plan.
    groups: list[list[LinePlan]] = [[]]
    size = 0
    for plan in plans:
        n = len(pickle.dumps(plan, protocol=pickle.HIGHEST_PROTOCOL))
        if groups[-1] and size + n > CHUNK_BYTES:
            groups.append([])
            size = 0
        groups[-1].append(plan)
        size += n
    chunks = tuple(pickle.dumps(group, protocol=pickle.HIGHEST_PROTOCOL) for group in groups if group)
    digest = hashlib.sha256(buffer.getvalue())
    for chunk in chunks:
        digest.update(chunk)
    return Packed(chunks, buffer.getvalue(), loaded.files, digest.hexdigest())


async def unpack(packed: Packed) -> Loaded:
    """Rebuild the table on the loop, one chunk of plans per turn, so sessions go on between chunks."""
    plans: list[LinePlan] = []
    for chunk in packed.plans:
        plans.extend(pickle.loads(chunk))
        await asyncio.sleep(0)

    class _Unpickler(pickle.Unpickler):
        def persistent_load(self, pid: object) -> LinePlan:
            return plans[int(pid)]  # type: ignore[call-overload]

    table = _Unpickler(io.BytesIO(packed.skeleton)).load()
    if not isinstance(table, RoutingTable):  # pragma: no cover - our own worker sent it
        raise TypeError(f"the reload worker sent {type(table).__name__}, not a RoutingTable")
    return Loaded(table, packed.files)


def load_compile_pack(path: Path, compile_table: Compile, served: str = "") -> Packed | Refused | Unchanged:
    """:func:`load_and_compile`, packed for the trip back (what the worker runs); :class:`Unchanged` when the
    table is the one whose digest is ``served``, so the routing loop neither rebuilds nor swaps it."""
    outcome = load_and_compile(path, compile_table)
    if isinstance(outcome, Refused):
        return outcome
    packed = pack(outcome)
    return Unchanged(packed.files, packed.digest) if packed.digest == served else packed


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
