"""Where a reload's load and compile run: a worker process, so the routing loop never waits for them.

A thread would not do: libyaml's composer and pydantic's validator are single C/Rust calls that hold
the GIL for tens to hundreds of ms on a 10,000-line file, and the routing loop would wait that long
for it (docs/benchmarks.md, reload_bench). The worker sends back only the compiled table (~300 KB
pickled for 10,000 lines, ~8 ms to unpickle), or the problems found.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hotline_cti.config.errors import ConfigError, Problem
from hotline_cti.config.loader import load_config
from hotline_cti.config.schema import MergerConfig
from hotline_cti.core.table import RoutingTable

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1  # linux/prctl.h
WORKER_NICE = 10  # fallback where SCHED_IDLE is not allowed

Compile = Callable[[MergerConfig], RoutingTable]


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
