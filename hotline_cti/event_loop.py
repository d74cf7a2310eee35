"""The event loop the long-running daemons use: uvloop when installed, else asyncio's own.

Measured on the FastAGI controller (benchmarks/fastagi_bench.py): uvloop takes
~15-30 % off the server's CPU per routing session and its decision p99 from ~2-4 ms
to under 1 ms, since a session is mostly small reads and writes, where the stock
loop's per-callback cost shows. Set ``HOTLINE_EVENT_LOOP=asyncio`` to run on the
stock loop (e.g. to rule uvloop out when chasing a bug).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
ENV = "HOTLINE_EVENT_LOOP"
log = logging.getLogger(__name__)


def loop_name() -> str:
    """``uvloop`` or ``asyncio``: what :func:`run` will use."""
    if os.environ.get(ENV, "").strip().lower() == "asyncio":
        return "asyncio"
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` to completion on the chosen loop (like ``asyncio.run``).

    What exists before the daemon starts (modules, config) lives as long as it does, so it is frozen out of the
    garbage collector: a full collection over it held the loop ~100 ms, delaying routing decisions under AMI load
    (benchmarks/records_bench.py).
    """
    gc.collect()
    gc.freeze()
    if loop_name() == "uvloop":
        import uvloop

        return uvloop.run(main)
    return asyncio.run(main)


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    """Cancel a background task and wait for it to end; its cancellation is not an error (None: nothing to do)."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
