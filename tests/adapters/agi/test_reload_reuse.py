"""A reload of a large file sends and rebuilds only the line plans that changed, and the table it replaces is
freed at once by reference counting: no garbage left for a full collection to pause routing over."""

from __future__ import annotations

import dataclasses
import gc
import logging
import pickle
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks.national_config import national_yaml
from hotline_cti.adapters.agi import reload_worker
from hotline_cti.adapters.agi.reload import IN_THREAD_BYTES, ConfigHolder
from hotline_cti.adapters.agi.reload_worker import Loaded, Packed, Refused, load_compile_pack, unpack
from hotline_cti.config.compile import compile_table
from hotline_cti.config.loader import load_config
from hotline_cti.config.schema import MergerConfig
from hotline_cti.core.table import LinePlan, RoutingTable
from tests.paths import REPO

CUTOVER = "cutover: '2021-08-31'"  # of the merge lines in the national config


@pytest.fixture(scope="module")
def national() -> str:
    return national_yaml(175)  # 10,286 lines, 760 line plans


def with_cutover(text: str, day: int) -> str:
    """``text`` with its first merge line cut over on 2021-09-``day`` instead: one line plan changed."""
    return text.replace(CUTOVER, f"cutover: '2021-09-{day:02d}'", 1)


def fresh_compile(path: Path) -> RoutingTable:
    return compile_table(load_config(path).model)


def plans_of(table: RoutingTable) -> list[LinePlan]:
    return list({id(plan): plan for plan in table.lines.values()}.values())


def shared(old: RoutingTable, new: RoutingTable) -> int:
    """How many of ``new``'s line plans are the very objects ``old`` holds."""
    ids = {id(plan) for plan in plans_of(old)}
    return sum(id(plan) in ids for plan in plans_of(new))


@pytest.fixture
def national_file(tmp_path: Path, national: str) -> Path:
    path = tmp_path / "national.yaml"
    path.write_text(national, encoding="utf-8")
    assert path.stat().st_size >= IN_THREAD_BYTES  # reloads go through the worker process
    return path


@pytest.fixture
def counted_loads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Counts the line plans :func:`unpack` unpickles (each plan is its own pickle)."""
    calls: list[int] = []
    real: Callable[..., Any] = pickle.loads

    def loads(data: bytes, /, **kwargs: Any) -> Any:
        calls.append(len(data))
        return real(data, **kwargs)

    monkeypatch.setattr(reload_worker.pickle, "loads", loads)
    yield calls


async def test_a_one_line_change_sends_and_unpickles_one_plan_and_reuses_the_rest(
    national_file: Path, national: str, counted_loads: list[int]
) -> None:
    first = load_compile_pack(national_file, compile_table)
    assert isinstance(first, Packed) and first.base == "" and None not in first.parts  # nothing served yet
    served = await unpack(first, {})
    assert len(counted_loads) == len(plans_of(served.table)) == 760

    national_file.write_text(with_cutover(national, 1), encoding="utf-8")
    second = load_compile_pack(national_file, compile_table, served.digest)
    assert isinstance(second, Packed) and second.base == served.digest
    assert sum(data is not None for data in second.parts) == 1
    counted_loads.clear()
    rebuilt = await unpack(second, served.parts)
    assert len(counted_loads) == 1  # one plan unpickled, not 760
    assert shared(served.table, rebuilt.table) == 759
    old = next(p for p in plans_of(served.table) if p.cutover != rebuilt.table.lines[p.number].cutover)
    assert rebuilt.table.lines[old.number] is not old
    assert rebuilt.table == fresh_compile(national_file)
    assert served.table != rebuilt.table


async def test_a_worker_that_does_not_know_the_served_table_sends_every_plan(
    national_file: Path, national: str
) -> None:
    served = await unpack(load_compile_pack(national_file, compile_table), {})  # type: ignore[arg-type]
    national_file.write_text(with_cutover(national, 2), encoding="utf-8")
    packed = load_compile_pack(national_file, compile_table, "0" * 32)  # a digest it never made (restarted)
    assert isinstance(packed, Packed) and packed.base == "" and None not in packed.parts
    rebuilt = await unpack(packed, served.parts)
    assert shared(served.table, rebuilt.table) == 0
    assert rebuilt.table == fresh_compile(national_file)


async def test_a_reload_reuses_the_served_plans_and_equals_a_fresh_compile(national_file: Path, national: str) -> None:
    holder = ConfigHolder(national_file)
    try:
        national_file.write_text(with_cutover(national, 1), encoding="utf-8")
        assert await holder.reload_async() is True  # the first table the worker builds: every plan sent
        first = holder.table
        assert len(plans_of(first)) == 760
        for day in (2, 3):
            national_file.write_text(with_cutover(national, day), encoding="utf-8")
            before = holder.table
            assert await holder.reload_async() is True
            assert holder.table is not before
            assert shared(before, holder.table) == 759  # the changed line is the one new plan
            assert holder.table == fresh_compile(national_file)
        # the worker restarted (killed, or replaced after a hang): it sends every plan, the table is still right
        holder.close()
        national_file.write_text(with_cutover(national, 4), encoding="utf-8")
        before = holder.table
        assert await holder.reload_async() is True
        assert shared(before, holder.table) == 0
        assert holder.table == fresh_compile(national_file)
    finally:
        holder.close()


async def test_when_the_loop_lacks_a_plan_the_worker_left_out_it_loads_again_with_all(
    national_file: Path, national: str, caplog: pytest.LogCaptureFixture
) -> None:
    holder = ConfigHolder(national_file)
    try:
        national_file.write_text(with_cutover(national, 1), encoding="utf-8")
        assert await holder.reload_async() is True
        # the loop's record of the served plans lost (it cannot happen short of a bug): not a wrong table
        holder._served = dataclasses.replace(holder._served, parts={})
        national_file.write_text(with_cutover(national, 2), encoding="utf-8")
        with caplog.at_level(logging.WARNING):
            assert await holder.reload_async() is True
        assert "loading again with every part sent" in caplog.text
        assert holder.table == fresh_compile(national_file)
    finally:
        holder.close()


def test_the_worker_job_runs_without_the_cycle_collector_and_leaves_no_cycles(national_file: Path) -> None:
    """The collector cost the worker ~40 % of its CPU per reload, for garbage reference counting frees."""
    seen: list[bool] = []

    def watched(model: MergerConfig) -> RoutingTable:
        seen.append(gc.isenabled())
        return compile_table(model)

    bad = national_file.read_text(encoding="utf-8").replace("overflow: general", "overflow: nosuch", 1)
    assert bad != national_file.read_text(encoding="utf-8")
    good = national_file.read_text(encoding="utf-8")
    for text, kind in ((good, Packed), (bad, Refused)):
        national_file.write_text(text, encoding="utf-8")
        load_compile_pack(national_file, watched)  # first-time caches
        gc.collect()
        assert isinstance(load_compile_pack(national_file, watched), kind)
        assert gc.isenabled()
        assert gc.collect() == 0  # a refusal's traceback cycles included: freed by the job's own collection
    assert seen == [False, False]  # compile ran with the collector off (a bad file stops before compiling)
    gc.disable()
    try:
        load_compile_pack(national_file, watched)
        assert not gc.isenabled()  # left as the caller had it
    finally:
        gc.enable()


GUANGXI = REPO / "merger_config" / "guangxi.yaml"


async def test_the_mobile_prefix_map_is_reused_when_the_cities_did_not_change(tmp_path: Path) -> None:
    """A province's real cities map ~8,000 mobile prefixes: 1.4 ms to unpickle in one step, the same each reload."""
    rows = "".join(f"  - {{id: pad{i}, name: 部门{i}, dial: PJSIP/{i}@pad{i}}}\n" for i in range(1500))
    text = GUANGXI.read_text(encoding="utf-8").replace("departments:\n", "departments:\n" + rows, 1)
    path = tmp_path / "guangxi.yaml"
    path.write_text(text, encoding="utf-8")
    assert path.stat().st_size >= IN_THREAD_BYTES
    holder = ConfigHolder(path)
    try:
        assert len(holder.table.mobile_city) > 1000
        tables, maps = [], []
        for day in (1, 2, 3):
            path.write_text(text.replace("cutover: 2021-08-31", f"cutover: 2021-09-{day:02d}", 1), encoding="utf-8")
            assert await holder.reload_async() is True
            assert holder.table == fresh_compile(path)
            tables.append(holder.table)
            # the table's map is a read-only view; the parts the loop keeps hold the dict behind it
            maps.append([part for part in holder._served.parts.values() if type(part) is dict])
        assert [len(m) for m in maps] == [1, 1, 1]
        assert maps[2][0] is maps[1][0] and dict(tables[2].mobile_city) == maps[2][0]  # unpickled once, then reused
        assert len({id(t) for t in tables}) == 3
    finally:
        holder.close()


def probe(table: RoutingTable) -> weakref.ref[RoutingTable]:
    """Dies when ``table`` is freed."""
    return weakref.ref(table)


@pytest.fixture
def no_cycle_collector() -> Iterator[None]:
    """Only reference counting frees objects meanwhile; afterwards, the cycle collector as it was."""
    gc.collect()
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        if was:
            gc.enable()


async def test_a_replaced_table_and_its_plans_are_freed_by_reference_counting(
    national_file: Path, national: str, no_cycle_collector: None
) -> None:
    """A reload that left a cycle holding the previous plans (an unpickler class made per call did) kept them
    for the next full collection, whose pause of tens of ms landed on routing."""
    holder = ConfigHolder(national_file)
    try:
        probes = []
        for day in (1, 2, 3, 4):
            national_file.write_text(with_cutover(national, day), encoding="utf-8")
            probes.append(probe(holder.table))
            assert await holder.reload_async() is True
        assert [p() is None for p in probes] == [True, True, True, True]  # freed without the cycle collector
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        left = [type(o).__name__ for o in gc.garbage if isinstance(o, LinePlan | RoutingTable | Loaded)]
        assert left == []
        assert not [o for o in gc.garbage if isinstance(o, list) and o and isinstance(o[0], LinePlan)]
    finally:
        holder.close()
