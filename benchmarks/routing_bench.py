"""Routing benchmark: config load + validate time and decision time per call on a national-scale config.

Run: ``python -m benchmarks.routing_bench``. Decision time is measured in batches
of 1,000 calls with ``perf_counter_ns`` around each batch (timer overhead is then
under 0.1 %), and reported per call: median and p99 over the batches. The
baseline, measured in the same run, is ``decide`` with its decision cache's decisions
cleared before every call (full rule evaluation), plus a bare dict look-up for scale.

Half the calls whose trunk names no city come from a mobile. The national config's cities
are synthetic, so every real Chinese mobile prefix (libphonenumber's data) is dealt to one of
them: the table then holds as many mobile prefixes as all of China has. The real load-time
cost of the prefixes is measured on the shipped Guangxi file.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import statistics
import tempfile
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from zoneinfo import ZoneInfo

from benchmarks.national_config import callers_yaml, national_yaml
from hotline_cti.adapters.agi.scripts import ScriptCache, route_script
from hotline_cti.callers.hashing import hash_number
from hotline_cti.callers.screen import CallerScreen
from hotline_cti.config.compile import compile_config, compile_table
from hotline_cti.config.loader import load_config
from hotline_cti.config.mobile import ENV_CACHE_DIR, _prefixes_for, expand_prefixes, mobile_descriptions
from hotline_cti.core.diversion import DiversionRule, DivertTo, DivertWhen, QueueState, divert_live
from hotline_cti.core.memo import DecisionCache
from hotline_cti.core.model import Call
from hotline_cti.core.numbers import dialled_forms
from hotline_cti.core.routing import decide
from hotline_cti.core.table import RoutingTable
from hotline_cti.records.queue_live import decode, encode

BATCH = 1000
BATCHES = 200
GUANGXI = Path(__file__).resolve().parent.parent / "merger_config" / "guangxi.yaml"


def _national_mobiles(table: RoutingTable) -> dict[str, str]:
    """Every Chinese mobile prefix, dealt to the synthetic cities one described city at a time."""
    described = mobile_descriptions()
    cities = sorted(table.city_names)
    deal = {text: cities[i % len(cities)] for i, text in enumerate(sorted(set(described.values())))}
    return expand_prefixes({prefix: deal[text] for prefix, text in described.items()})


INSTANTS = (
    dt.datetime(2021, 6, 1, 10, tzinfo=ZoneInfo("Asia/Shanghai")),
    dt.datetime(2021, 9, 15, 3, tzinfo=ZoneInfo("Asia/Shanghai")),
    dt.datetime(2023, 1, 4, 22, tzinfo=ZoneInfo("Asia/Shanghai")),
)
# On the calendar config: a holiday, a make-up working day, a closure, an ordinary weekday, a weekend.
CALENDAR_INSTANTS = tuple(
    dt.datetime.fromisoformat(t).replace(tzinfo=ZoneInfo("Asia/Shanghai"))
    for t in ("2026-10-02T10:00", "2026-10-10T10:00", "2026-07-15T10:00", "2026-07-16T10:00", "2026-07-18T10:00")
)


def _calls(
    table: RoutingTable, rng: random.Random, n: int, instants: tuple[dt.datetime, ...] = INSTANTS
) -> list[tuple[Call, dt.datetime]]:
    areas = sorted(table.city_by_area)
    shorts = sorted(table.short)
    lands = sorted(table.landline)
    cities = sorted(table.city_names)
    mobiles = sorted(table.mobile_city)
    out = []
    for _ in range(n):
        if rng.random() < 0.3:
            number = "12345"
            forms = dialled_forms(number, rng.choice(areas))
        elif rng.random() < 0.8:
            number = rng.choice(shorts)
            forms = dialled_forms(number, rng.choice(areas))
        else:
            area, number = rng.choice(lands)
            forms = dialled_forms(number, area)
        city = rng.choice(cities) if rng.random() < 0.5 else None
        caller = f"{rng.choice(mobiles)}{rng.randrange(10000):04d}" if mobiles and rng.random() < 0.5 else None
        out.append((Call(rng.choice(forms), caller=caller, city=city), rng.choice(instants)))
    return out


def _per_call_ns(
    table: RoutingTable, cache: DecisionCache, calls: list[tuple[Call, dt.datetime]], clear: bool
) -> list[float]:
    samples = []
    decisions = cache.decisions
    for b in range(BATCHES):
        batch = calls[(b * BATCH) % len(calls) :][:BATCH]
        if clear:
            start = time.perf_counter_ns()
            for call, now in batch:
                decisions.clear()
                decide(call, table, now, cache)
        else:
            start = time.perf_counter_ns()
            for call, now in batch:
                decide(call, table, now, cache)
        samples.append((time.perf_counter_ns() - start) / len(batch))
    return samples


def _with_diversions(table: RoutingTable, rng: random.Random) -> tuple[RoutingTable, dict[str, QueueState]]:
    """``table`` with three rules on every queue of every centre, and a live state for each (a third diverted)."""
    centres = sorted({table.default_centre, *table.centre_by_city.values()})
    states: dict[str, QueueState] = {}
    diversions: dict[str, tuple[DiversionRule, ...]] = {}
    for centre in centres:
        for qid in table.queues:
            name = f"{centre}-{qid}"
            diversions[name] = (
                DiversionRule(DivertWhen.NO_AGENTS, 0, DivertTo.RELEASE, None, (), ("divert-no-agents",), 0),
                DiversionRule(
                    DivertWhen.CALLERS_PER_AGENT_OVER, 3, DivertTo.OVERFLOW, f"{centre}-complaint", (), (), 0
                ),
                DiversionRule(DivertWhen.WAIT_OVER, 120, DivertTo.RELEASE, None, (), ("divert-busy",), 0),
            )
            agents = rng.choice((0, 2, 5, 10))
            states[name] = QueueState(agents, agents, rng.randrange(agents + 1), rng.randrange(40), rng.randrange(200))
    return replace(table, diversions=diversions), states


def _live_ns(
    table: RoutingTable,
    cache: DecisionCache,
    calls: list[tuple[Call, dt.datetime]],
    states: Mapping[str, QueueState],
) -> list[float]:
    """Per call: decide, then the diversion check against the live queue state (the routing service's path)."""
    samples = []
    rules, memo = table.diversions, cache.diverted
    for b in range(BATCHES):
        batch = calls[(b * BATCH) % len(calls) :][:BATCH]
        start = time.perf_counter_ns()
        for call, now in batch:
            divert_live(decide(call, table, now, cache), rules, memo, states)
        samples.append((time.perf_counter_ns() - start) / len(batch))
    return samples


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    """Print the figures and ratios."""
    text = national_yaml()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "national.yaml"
        path.write_text(text, encoding="utf-8")
        loads = []
        for _ in range(3):
            t0 = time.perf_counter()
            loaded = load_config(path)
            loads.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    table = compile_config(loaded.model)
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    mobiles = _national_mobiles(table)
    table = compile_config(loaded.model, mobile_city=mobiles)
    mobile_s = time.perf_counter() - t0
    guangxi = load_config(GUANGXI).model
    with tempfile.TemporaryDirectory() as cache:
        os.environ[ENV_CACHE_DIR] = cache  # an empty disk cache: the geodata is read
        _prefixes_for.cache_clear()
        t0 = time.perf_counter()
        gx_table = compile_table(guangxi)
        gx_s = time.perf_counter() - t0
        _prefixes_for.cache_clear()  # a new process: the map from the disk cache
        t0 = time.perf_counter()
        compile_table(guangxi)
        gx_cached_s = time.perf_counter() - t0
        del os.environ[ENV_CACHE_DIR]
    model = loaded.model
    print(
        f"config: {len(model.cities)} cities, {len(model.hotlines)} lines, {len(model.subcentres)} sub-centres, {len(text) / 1e6:.2f} MB YAML"
    )
    print(
        f"load + validate: median {statistics.median(loads) * 1000:.0f} ms (target <= 1000 ms); compile {compile_s * 1000:.0f} ms"
    )
    print(
        f"mobile prefixes: {len(table.mobile_city)} (all of China, dealt to the cities; built in {mobile_s * 1000:.0f} ms); "
        f"guangxi.yaml compile with its {len(gx_table.mobile_city)} mobile prefixes {gx_s * 1000:.0f} ms "
        f"({gx_cached_s * 1000:.0f} ms from the disk cache)"
    )
    calls = _calls(table, random.Random(7), BATCH * 20)
    memo = DecisionCache(table)
    for call, now in calls:  # warm the cache as a running controller would be
        decide(call, table, now, memo)
    warm = _per_call_ns(table, memo, calls, clear=False)
    cold = _per_call_ns(table, memo, calls, clear=True)
    lookup = {i: i for i in range(1000)}
    t0 = time.perf_counter_ns()
    for i in range(BATCH * 100):
        lookup.get(i % 1000)
    dict_ns = (time.perf_counter_ns() - t0) / (BATCH * 100)
    w_med, w_p99 = statistics.median(warm), _pct(warm, 0.99)
    c_med, c_p99 = statistics.median(cold), _pct(cold, 0.99)
    print(f"decide (served): median {w_med / 1000:.2f} us, p99 {w_p99 / 1000:.2f} us per call (target median <= 5 us)")
    print(f"baseline decide, cache cleared each call: median {c_med / 1000:.2f} us, p99 {c_p99 / 1000:.2f} us")
    print(f"baseline bare dict lookup: {dict_ns:.0f} ns")
    print(f"ratio served/cold: {w_med / c_med:.2f}x; served/dict lookup: {w_med / dict_ns:.0f}x")
    table, live_states = _with_diversions(table, random.Random(11))
    memo = DecisionCache(table)
    # What the routing service holds: the decoded snapshot file (a QueueState is made per look-up).
    states = decode(encode(live_states, time.time()))[1]
    for call, now in calls:  # the memo of diverted decisions warms like the decision cache
        divert_live(decide(call, table, now, memo), table.diversions, memo.diverted, states)
    live = _live_ns(table, memo, calls, states)
    plain = _per_call_ns(table, memo, calls, clear=False)  # the same table and calls, measured again beside it
    l_med, l_p99 = statistics.median(live), _pct(live, 0.99)
    p_med = statistics.median(plain)
    turned = sum(
        divert_live(decide(c, table, n, memo), table.diversions, memo.diverted, states).diverted is not None
        for c, n in calls
    )
    print(
        f"decide + diversion on live queue state ({len(states)} queues, 3 rules each, {turned * 100 // len(calls)} % of"
        f" calls diverted): median {l_med / 1000:.2f} us, p99 {l_p99 / 1000:.2f} us per call (target median <= 5 us)"
    )
    print(f"ratio with/without live queue state: {l_med / p_med:.2f}x (without: median {p_med / 1000:.2f} us)")
    # The routing service reads the events service's snapshot on its loop when the file changed (at most every
    # 0.1 s): its decode is a pause of that loop. Every queue has rules here, so every queue is in the file.
    data = encode(live_states, time.time())
    previous = (states.blob, states.index)
    reads, first = [], []
    for _ in range(20):
        t0 = time.perf_counter()
        decode(data, previous)  # the names as before: the index is kept
        reads.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        decode(data)  # the names read again (first read, or a queue added)
        first.append(time.perf_counter() - t0)
    print(
        f"queue snapshot of {len(live_states)} queues: {len(data) / 1000:.0f} kB; read {statistics.median(reads) * 1e6:.0f} us"
        f" (names unchanged), {statistics.median(first) * 1000:.2f} ms (names read again): a pause of the routing"
        " loop, at most every 0.1 s"
    )
    _calendar_figures(mobiles, w_med)
    _screen_figures(mobiles)


def _calendar_table(text: str, mobiles: dict[str, str]) -> tuple[RoutingTable, int, int]:
    """The compiled table of config ``text``, its calendar entries and departments."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "national-calendar.yaml"
        path.write_text(text, encoding="utf-8")
        model = load_config(path).model
    return compile_config(model, mobile_city=mobiles), len(model.holidays), len(model.departments)


def _interleaved(tables: tuple[RoutingTable, RoutingTable], calls: list[tuple[Call, dt.datetime]]) -> list[list[float]]:
    """Served ns per call of each table, batch by batch in turn, so a busy host slows both alike."""
    samples: list[list[float]] = [[], []]
    caches = [DecisionCache(table) for table in tables]
    for call, now in calls:  # warm both caches
        for table, cache in zip(tables, caches, strict=True):
            decide(call, table, now, cache)
    for b in range(BATCHES):
        batch = calls[(b * BATCH) % len(calls) :][:BATCH]
        for i, table in enumerate(tables):
            cache = caches[i]
            start = time.perf_counter_ns()
            for call, now in batch:
                decide(call, table, now, cache)
            samples[i].append((time.perf_counter_ns() - start) / len(batch))
    return samples


def _calendar_figures(mobiles: dict[str, str], plain_med: float) -> None:
    """A year's holidays against the same config (weekday department hours) without them, same calls and days."""
    base, _, _ = _calendar_table(national_yaml(hours_only=True), mobiles)
    cal, entries, departments = _calendar_table(national_yaml(calendar=True), mobiles)
    calls = _calls(cal, random.Random(7), BATCH * 20, CALENDAR_INSTANTS)
    base_ns, cal_ns = _interleaved((base, cal), calls)
    b_med, c_med = statistics.median(base_ns), statistics.median(cal_ns)
    print(
        f"calendar: {entries} entries (a year's holidays, 调休, a closure for every tenth department), "
        f"{departments} departments on weekday hours; calls on a holiday, a make-up day, a closure, a weekday, a weekend"
    )
    print(
        f"baseline, weekday hours without holidays (served): median {b_med / 1000:.2f} us, p99 {_pct(base_ns, 0.99) / 1000:.2f} us"
    )
    print(
        f"decide with holidays (served): median {c_med / 1000:.2f} us, p99 {_pct(cal_ns, 0.99) / 1000:.2f} us; "
        f"ratio to the baseline {c_med / b_med:.2f}x (plain config served {plain_med / 1000:.2f} us)"
    )


def _screen_figures(mobiles: dict[str, str]) -> None:
    """``route`` scripts with the caller screen (HMAC, window, lists, tag) against without, batch by batch in turn."""
    table, _, _ = _calendar_table(callers_yaml(), mobiles)
    rng = random.Random(11)
    key = b"bench-number-key-0123456789"
    callers = [f"139{rng.randrange(10**8):08d}" for _ in range(5000)]  # repeat callers among them
    screen = CallerScreen(key)
    screen.set_lists({"nuisance": frozenset(h for c in callers[::50] if (h := hash_number(key, c)))})
    now = INSTANTS[1]
    envs = []
    for call, _ in _calls(table, rng, BATCH * 20):
        envs.append({"agi_network_script": "route", "agi_arg_1": call.dialled, "agi_callerid": rng.choice(callers)})
    samples: list[list[float]] = [[], []]
    cache, scripts = DecisionCache(table), ScriptCache()  # as the FastAGI server keeps them
    for b in range(BATCHES):
        batch = envs[(b * BATCH) % len(envs) :][:BATCH]
        for i, with_screen in enumerate((None, screen)):
            start = time.perf_counter_ns()
            for env in batch:
                route_script(env, table, now, decide, with_screen, cache=cache, scripts=scripts)
            samples[i].append((time.perf_counter_ns() - start) / len(batch))
    plain, screened = statistics.median(samples[0]), statistics.median(samples[1])
    print(
        f"route script without the caller screen: median {plain / 1000:.2f} us; with it (HMAC, window of "
        f"{screen.remembered} numbers, lists, tag): median {screened / 1000:.2f} us, p99 {_pct(samples[1], 0.99) / 1000:.2f} us; "
        f"ratio {screened / plain:.2f}x"
    )


if __name__ == "__main__":
    main()
