"""KPI and staffing speed: records per second through the live KPI accumulator, and Erlang seat searches.

``python -m benchmarks.staffing_bench`` (a few seconds). Figures:

1. ``KpiAccumulator.add`` on a day of synthetic finished calls (the wallboard's path), and the cost of
   a ``snapshot()`` — both should be flat as the day grows (O(1) per record, O(groups) per snapshot).
2. ``agents_for_service_level`` and ``agents_for_answered`` for small to very large queues.
3. The whole Guangxi merger what-if (merger_config/guangxi.yaml with the shipped traffic file).
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Callable
from pathlib import Path

from hotline_cti.config.checked import load_checked
from hotline_cti.config.yamlsource import read_yaml
from hotline_cti.kpi.accumulator import KpiAccumulator
from hotline_cti.records.model import CallRecord, Outcome
from hotline_cti.staffing.erlang import agents_for_answered, agents_for_service_level, traffic
from hotline_cti.staffing.merger import merger_stages
from hotline_cti.staffing.traffic import traffic_from_tree

ROOT = Path(__file__).resolve().parents[1]
OUTCOMES = [Outcome.ANSWERED] * 90 + [Outcome.ABANDONED] * 5 + [Outcome.TRANSFERRED] * 3 + [Outcome.RETIRED] * 2


def synthetic_day(n: int, seed: int = 7) -> list[CallRecord]:
    """``n`` finished calls spread over one day, with lines, queues, waits, ratings and transfers."""
    rnd = random.Random(seed)
    start = dt.datetime(2026, 11, 22, 16, tzinfo=dt.UTC)
    lines = ["", "", "", "12315", "12328", "12333", "12300", "12366"]
    out = []
    for i in range(n):
        origin = rnd.choice(lines)
        out.append(
            CallRecord(
                call_id=str(i),
                region="gx",
                started=start + dt.timedelta(seconds=rnd.uniform(0, 86_400)),
                origin=origin,
                mode="parallel" if origin else "main",
                queue=f"l{origin}" if origin else "general",
                expert="e12328" if origin == "12328" and rnd.random() < 0.1 else "",
                wait=rnd.expovariate(1 / 30),
                outcome=rnd.choice(OUTCOMES),
                rating=rnd.choice([1, 1, 2, 3, None]),
                transfers=["110"] if rnd.random() < 0.02 else [],
            )
        )
    return out


def timed(fn: Callable[[], object], repeat: int = 3) -> float:
    """Best wall time of ``repeat`` runs, seconds."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    """Print the figures."""
    for n in (10_000, 100_000):
        records = synthetic_day(n)
        secs = timed(lambda records=records: KpiAccumulator().add_all(records))  # type: ignore[misc]
        acc = KpiAccumulator().add_all(records)
        snap = timed(acc.snapshot, repeat=20)
        print(f"KPI add: {n:>7} records  {n / secs:>10,.0f} records/s   snapshot {snap * 1e3:.2f} ms")
    for calls, aht in ((200, 180), (3_430, 240), (40_000, 240)):
        a = traffic(calls, aht)
        secs_sl = timed(lambda a=a, aht=aht: agents_for_service_level(a, aht, 0.8, 20))  # type: ignore[misc]
        secs_ans = timed(lambda c=calls, aht=aht: agents_for_answered(c, aht, 180, 0.95))  # type: ignore[misc]
        print(
            f"seats for {a:>7.1f} Erlang: 80/20 -> {agents_for_service_level(a, aht, 0.8, 20)} "
            f"({secs_sl * 1e3:.2f} ms), 95% answered -> {agents_for_answered(calls, aht, 180, 0.95)} "
            f"({secs_ans * 1e3:.2f} ms)"
        )
    model = load_checked(str(ROOT / "merger_config" / "guangxi.yaml")).model
    tree = read_yaml(ROOT / "merger_config" / "traffic" / "guangxi.yaml")
    plan = traffic_from_tree(tree)
    secs = timed(lambda: merger_stages(model, plan, tree))
    print(f"Guangxi merger what-if (4 stages): {secs * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
