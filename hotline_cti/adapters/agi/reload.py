"""The config a controller serves, swapped between sessions when a valid new file arrives.

A reload asked for on a running event loop (serve's SIGHUP handler and its once-a-second file watch)
loads and compiles off the loop, in a thread for a small file and in a worker process for a large one
(:mod:`hotline_cti.adapters.agi.reload_worker`), while the loop goes on routing with the table it
has; the new table is swapped in when it is ready, or the problems are logged and the old one keeps
serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import TypeVar

from hotline_cti.adapters.agi.reload_worker import (
    Compile,
    Loaded,
    PartMissing,
    Refused,
    Unchanged,
    load_and_compile,
    load_compile_pack,
    unpack,
    worker_init,
)
from hotline_cti.config import compile as config_compile
from hotline_cti.config.errors import ConfigError, Problem
from hotline_cti.core.table import RoutingTable

log = logging.getLogger(__name__)

# The loaders are bounded (hotline_cti.config.limits), so a reload takes seconds at most; this only
# frees the reload path should a worker hang anyway.
RELOAD_TIMEOUT = 60.0
# Below this (the file and those it extends), a reload loads in a thread of this process: guangxi.yaml is
# 13 KB and ~30 ms to load, in C calls of a few ms; a 10,000-line file is ~200 KB, with a 70 ms compose.
IN_THREAD_BYTES = 64 * 1024
T = TypeVar("T")


class ConfigHolder:
    """Holds the compiled routing table; a session takes ``table`` once and keeps it to the end."""

    def __init__(
        self,
        path: str | Path,
        *,
        compile_table: Compile = config_compile.compile_table,
        executor: Executor | None = None,
    ) -> None:
        """Load ``path`` now (a bad first file is fatal: ConfigError).

        ``executor`` runs the reloads asked for on an event loop; by default a thread for a file under
        :data:`IN_THREAD_BYTES` and one worker process for a larger one. ``compile_table`` must
        pickle when the work goes to a process (a module-level function or a partial of one).
        """
        self.path = Path(path)
        self._compile = compile_table
        outcome = load_and_compile(self.path, compile_table)
        if isinstance(outcome, Refused):
            raise ConfigError(list(outcome.problems))
        self.table: RoutingTable = outcome.table
        self._files: tuple[Path, ...] = outcome.files  # the file and every file it extends
        self._mtimes = self._stat()
        self._executor = executor
        self._own_executor = executor is None
        self._running: asyncio.Task[bool] | None = None
        self._starting: asyncio.Task[None] | None = None  # the worker started ahead of the first reload
        self._lock = threading.Lock()  # _submit runs in the loop's executor threads
        self._again = False  # asked again while a reload ran: run one more, the file may have changed since
        # the table served as the worker packed it (digest "" when loaded here): the next reload reuses its parts
        self._served: Loaded = outcome

    def _stat(self) -> tuple[float, ...]:
        out = []
        for file in (self.path, *self._files):
            try:
                out.append(file.stat().st_mtime)
            except OSError:
                out.append(-1.0)
        return tuple(out)

    def reload(self) -> bool | None:
        """Load the file again; on any problem keep the old table and log every problem.

        On a running event loop the load is started off the loop and None returned at once (the new
        table is swapped in when ready; see :meth:`reload_async` to wait for it). Without a loop it
        blocks and returns whether the new table is served.
        """
        self._mtimes = self._stat()
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return self._apply(load_and_compile(self.path, self._compile))
        self._start()
        return None

    async def reload_async(self) -> bool:
        """Load the file again off the loop and wait: True when the new table is served."""
        while self._running is not None and not self._running.done():
            await asyncio.wait([self._running])
        self._mtimes = self._stat()
        return await self._start()

    def reload_if_changed(self) -> bool | None:
        """Reload when the file's mtime changed; None when it did not (or, on a loop, when it started).

        Called on a loop (a watch) for a large file, it also starts the worker process ahead of the
        first reload: a fresh interpreter takes a second or more to import what loading needs, and a
        SIGHUP should not wait for that.
        """
        if self._stat() == self._mtimes:
            if self._size() >= IN_THREAD_BYTES:
                self._prestart()
            return None
        return self.reload()

    def _prestart(self) -> None:
        if not self._own_executor or self._executor is not None or self._starting is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._starting = loop.create_task(self._start_worker(), name="config-reload-worker")

    async def _start_worker(self) -> None:
        # A worker that fails to start is only logged: the next reload tries again.
        try:
            await asyncio.wrap_future(await asyncio.to_thread(self._submit, os.getpid))
        except Exception as exc:
            log.warning("config reload worker did not start (%s); the next reload starts another", exc)
            self._discard_worker()

    @property
    def reloading(self) -> bool:
        """A reload is running off the loop."""
        return self._running is not None and not self._running.done()

    def close(self) -> None:
        """Stop the worker process, if this holder started one."""
        if self._own_executor and self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    def _start(self) -> asyncio.Task[bool]:
        if self._running is not None and not self._running.done():
            self._again = True
            return self._running
        self._running = asyncio.get_running_loop().create_task(self._reload_off_loop(), name="config-reload")
        return self._running

    async def _reload_off_loop(self) -> bool:
        while True:
            self._again = False
            served = self._apply(await self._load_in_worker())
            if not self._again:
                return served

    def _submit(self, fn: Callable[..., T], *args: object) -> Future[T]:
        """Submit to the worker, making it first if need be; called in a thread of the loop's default executor.

        Not on the loop: making the pool starts multiprocessing's resource tracker and the first submit
        starts the worker, a fork and exec each (10-25 ms). Both are then children of that thread, not
        of serve's main thread (whose children are its own processes), and that thread, alive as long as
        the loop, is the parent PR_SET_PDEATHSIG watches.
        """
        with self._lock:
            if self._executor is None:
                self._executor = ProcessPoolExecutor(
                    max_workers=1,
                    # spawn, not fork: the routing process has threads (aiosqlite, the pool's own) and a loop
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=worker_init,
                    initargs=(os.getpid(),),
                )
            return self._executor.submit(fn, *args)

    def _size(self) -> int:
        total = 0
        for file in (self.path, *self._files):
            with contextlib.suppress(OSError):
                total += file.stat().st_size
        return total

    async def _load_in_worker(self) -> Loaded | Refused | Unchanged:
        if self._own_executor and self._size() < IN_THREAD_BYTES:
            # A small file holds the GIL a few ms at most (the loaders are bounded): a thread costs
            # nothing to start, where a fresh worker process takes seconds on a busy host.
            return await asyncio.to_thread(load_and_compile, self.path, self._compile)
        served = self._served
        submitted = await asyncio.to_thread(self._submit, load_compile_pack, self.path, self._compile, served.digest)
        try:
            outcome = await asyncio.wait_for(asyncio.wrap_future(submitted), RELOAD_TIMEOUT)
        except TimeoutError:
            self._discard_worker()
            return Refused((Problem(None, "", f"{self.path}: loading took over {RELOAD_TIMEOUT:.0f} s"),))
        except BrokenProcessPool as exc:  # the worker was killed (OOM killer, kill -9): a new one next time
            self._discard_worker()
            return Refused((Problem(None, "", f"{self.path}: the reload worker died ({exc})"),))
        if isinstance(outcome, Refused | Unchanged):
            return outcome
        try:
            return await unpack(outcome, served.parts)
        except PartMissing as exc:  # the worker and the loop should agree on the table served; if not, all parts
            log.warning("%s: loading again with every part sent", exc)
            self._served = Loaded(self.table, self._files)  # no digest: nothing is left out
            return await self._load_in_worker()

    def _discard_worker(self) -> None:
        self._starting = None
        if not self._own_executor or not isinstance(self._executor, ProcessPoolExecutor):
            return
        # The pool keeps its processes in a private dict; a hung worker is killed, not waited for.
        for proc in list(getattr(self._executor, "_processes", {}).values()):
            proc.kill()
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._executor = None

    def _apply(self, outcome: Loaded | Refused | Unchanged) -> bool:
        if isinstance(outcome, Refused):
            for problem in outcome.problems:
                log.error("config reload refused, still serving the previous one: %s", problem)
            return False
        if isinstance(outcome, Unchanged):
            # Nothing to rebuild on the loop, nothing to swap: a reload costs the routing loop no more than a stat.
            self._files = outcome.files
            self._mtimes = self._stat()
            log.info("config reloaded from %s: routing unchanged, the table in service kept", self.path)
            return True
        self._served = outcome
        self.table, self._files = outcome.table, outcome.files
        self._mtimes = self._stat()
        log.info("config reloaded from %s", self.path)
        return True
