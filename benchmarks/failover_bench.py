"""Controller failover on a real Asterisk 22: what a dead, stalled or frozen first controller adds per call.

``python -m benchmarks.failover_bench`` (root; the rig of scripts/asterisk-rig.sh; about a minute).
One Asterisk runs the generated Guangxi dialplan rendered with two controllers and ``--agi-timeout``
(simulators/failover.py); the second is the in-process FastAGI controller. For each case ``--calls``
calls to 12300 (a queue decision) are originated at once, after the no-failure run of the same process:

* **none**: a healthy first controller decides (the baseline);
* **refused**: nothing listens on the first port (FastAGI's connect is refused at once);
* **stalled socket**: the first port accepts and never answers (a hung host): cut by ``--agi-timeout``;
* **serve frozen**: ``hotline-cti serve`` on the first port, its whole process group SIGSTOPped (the kernel
  still accepts; its supervisor cannot help): cut by ``--agi-timeout``;
* **routing child stalled**: only serve's routing child SIGSTOPped: its supervisor kills it after
  ``--stall-limit`` (1 s) and the closed sessions move on at once.

Latency is Asterisk's own: the first ``AGI()``'s Newexten to the ``HotlineRoute`` UserEvent (AMI Timestamps);
"decided by" is the controller whose ``AGI()`` set ``HOTLINE_DECIDED`` (VarSet events).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from simulators.asterisk import rig_root
from simulators.asterisk_load import percentile
from simulators.failover import (
    AGI_TIMEOUT,
    FailoverRig,
    Outcome,
    failover_rig,
    first_controller,
    frozen_serve_first,
    stalled_first,
    stalled_routing_child,
)

NUMBER = "12300"


def _summary(name: str, outcomes: list[Outcome], rig: FailoverRig, base: float | None) -> str:
    seconds = [o.seconds for o in outcomes]
    by_second = sum(1 for o in outcomes if o.decided_by == rig.second.port)
    by_first = sum(1 for o in outcomes if o.decided_by == rig.first)
    fallback = sum(1 for o in outcomes if o.action == "fallback")
    p50, p99, worst = percentile(seconds, 0.5), percentile(seconds, 0.99), max(seconds)
    line = (
        f"{name:<24} calls {len(outcomes):>3}  decided by first {by_first:>3} second {by_second:>3}"
        f"  fallback {fallback}  p50 {p50 * 1000:8.1f} ms  p99 {p99 * 1000:8.1f} ms  max {worst * 1000:8.1f} ms"
    )
    if base is not None:
        line += f"  added p50 {(p50 - base) * 1000:+8.1f} ms  ratio p50 {p50 / base:7.1f}x"
    return line


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.failover_bench", description=__doc__.splitlines()[0])
    p.add_argument("--calls", type=int, default=20, help="calls per case, originated at once (default 20)")
    p.add_argument("--agi-timeout", type=float, default=AGI_TIMEOUT, help=f"seconds (default {AGI_TIMEOUT:g})")
    args = p.parse_args(argv)
    cases: list[tuple[str, Callable[[FailoverRig], AbstractContextManager[Any]]]] = [
        ("none (baseline)", first_controller),
        ("refused", lambda rig: contextlib.nullcontext()),
        ("stalled socket", stalled_first),
        ("serve frozen (SIGSTOP)", frozen_serve_first),
        ("routing child stalled", stalled_routing_child),
    ]
    work = Path(tempfile.mkdtemp(prefix="failover-bench-"))
    print(
        f"controller failover on Asterisk 22: {args.calls} calls per case to {NUMBER}, --agi-timeout {args.agi_timeout:g}"
    )
    with failover_rig(rig_root(), work, name="failover-bench", agi_timeout=args.agi_timeout) as rig:
        base: float | None = None
        for name, make in cases:
            with make(rig):
                outcomes = rig.place(NUMBER, args.calls, timeout=120.0)
            print(_summary(name, outcomes, rig, base), flush=True)
            if base is None:
                base = percentile([o.seconds for o in outcomes], 0.5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
