"""The shipped merger lists (merger_config/*.yaml) hold the facts of their source documents.

Expected data comes from tests/seed_tables.py, copied by hand from the documents;
every seed line is also routed before, during and after its cut-over in every dialled form.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from functools import cache
from zoneinfo import ZoneInfo

import pytest

from hotline_cti.config.compile import compile_config
from hotline_cti.config.loader import load_config
from hotline_cti.config.schema import MergerConfig
from hotline_cti.core.model import Action, Call, Phase, Scope, Seats, TransferMode
from hotline_cti.core.numbers import dialled_forms
from hotline_cti.core.routing import decide
from hotline_cti.core.table import RoutingTable
from hotline_cti.dialplan.names import all_queue_names
from hotline_cti.dialplan.queues import render_queues
from tests.paths import REPO
from tests.seed_tables import (
    GUANGXI,
    YONGZHOU,
    YONGZHOU_INTEGRATION_END,
    YUNCHENG,
    YUNCHENG_PROMPT,
    SeedLine,
)

CONFIG_DIR = REPO / "merger_config"
TZ = ZoneInfo("Asia/Shanghai")
REGIONS = {r.config: r for r in (GUANGXI, YUNCHENG, YONGZHOU)}

# Transition windows worked out by hand: cut-over + 6 months, [start, end).
GX_WINDOW_END = dt.date(2022, 2, 28)  # 2021-08-31 + 6 months, clamped to February's end
YC_WINDOW_END = dt.date(2020, 6, 30)  # 2019-12-31 + 6 months, clamped to June's end
WINDOW_END = {"guangxi.yaml": GX_WINDOW_END, "yuncheng.yaml": YC_WINDOW_END}

# Guangxi calls come from a Guilin landline (0773 names one city only), so every form lands at Guilin's 12345.
GX_CALLER, GX_CENTRE = "07732823456", "guilin"
YC_CALLER, YC_CENTRE = "03592021234", "yc"
YZ_CALLER = "07468221234"
CALLER = {"guangxi.yaml": GX_CALLER, "yuncheng.yaml": YC_CALLER, "yongzhou.yaml": YZ_CALLER}
AREA = {"guangxi.yaml": "0773", "yuncheng.yaml": "0359", "yongzhou.yaml": "0746"}
ALL_TRANSFER_MODES = [TransferMode.BLIND, TransferMode.ATTENDED, TransferMode.THREEWAY]


@cache
def model(config: str) -> MergerConfig:
    return load_config(CONFIG_DIR / config).model


@cache
def table(config: str) -> RoutingTable:
    return compile_config(model(config))


def at(day: dt.date, hour: int = 0, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=TZ)


# --- static facts -------------------------------------------------------------------------------


@pytest.mark.parametrize("config", sorted(REGIONS))
def test_file_loads_and_has_exactly_the_seed_lines(config: str) -> None:
    seed = REGIONS[config]
    assert [h.number for h in model(config).hotlines] == [s.number for s in seed.lines]


@pytest.mark.parametrize("config", sorted(REGIONS))
def test_cities_and_area_codes(config: str) -> None:
    seed = REGIONS[config]
    cities = {c.name.removesuffix("市"): c.area_code for c in model(config).cities}
    assert cities == seed.cities


@pytest.mark.parametrize("config", sorted(REGIONS))
def test_one_region_centre_and_one_per_city(config: str) -> None:
    m = model(config)
    assert sum(c.city is None for c in m.centres) == 1
    city_centres = sorted(c.city for c in m.centres if c.city is not None)
    expected = sorted(c.id for c in m.cities) if len(m.cities) > 1 else []
    assert city_centres == expected


def _line_cases() -> list[tuple[str, SeedLine]]:
    return [(r.config, s) for r in REGIONS.values() for s in r.lines]


@pytest.mark.parametrize(("config", "seed"), _line_cases(), ids=lambda v: v if isinstance(v, str) else v.number)
def test_line_facts(config: str, seed: SeedLine) -> None:
    m = model(config)
    line = next(h for h in m.hotlines if h.number == seed.number)
    assert line.mode.value == seed.mode
    if seed.unit:
        assert line.unit == seed.unit
    if seed.name is not None:
        assert line.name == seed.name
    assert line.aliases == list(seed.aliases)
    assert line.cutover == seed.cutover
    # Expert seats exactly where the document says 设专家座席.
    assert (line.expert is not None) == seed.expert
    if line.expert is not None:
        assert line.expert in {e.id for e in m.expert_groups}
    # 各自接听: own seats and a department to ring.
    if seed.own_seats:
        assert line.seats is Seats.DEPARTMENT
        assert line.department in {d.id for d in m.departments}
    elif seed.mode == "parallel":
        assert line.seats in (None, Seats.MERGED)
    if seed.scope is not None:
        sub = next(s for s in m.subcentres if s.id == line.subcentre)
        assert sub.scope is Scope(seed.scope)
        if sub.scope is Scope.CITY:
            assert sorted(site.city for site in sub.sites) == sorted(c.id for c in m.cities)
    if seed.mode == "transfer":
        assert line.transfer_modes == ALL_TRANSFER_MODES
        assert line.handover_to_12345 == (seed.number == "110")
    if seed.mode == "guidance":
        assert line.channel


@pytest.mark.parametrize("config", sorted(REGIONS))
def test_emergency_lines(config: str) -> None:
    seed = REGIONS[config]
    transfer = [h.number for h in model(config).hotlines if h.mode.value == "transfer"]
    assert sorted(transfer) == sorted(seed.emergency)


def test_guangxi_counts_and_defaults() -> None:
    m = model("guangxi.yaml")
    annex = [h for h in m.hotlines if h.mode.value != "transfer"]
    assert len(annex) == 33
    modes = [h.mode.value for h in annex]
    assert (modes.count("merge"), modes.count("parallel"), modes.count("subcentre")) == (14, 14, 5)
    assert m.defaults.transition_months == 6
    # Each 双号并行 line has its own skill queue.
    parallel_queues = [h.queue for h in annex if h.mode.value == "parallel"]
    assert len(set(parallel_queues)) == 14 and None not in parallel_queues
    assert {"general", "complaint"} <= {q.id for q in m.queues}


def test_yuncheng_counts_prompt_and_defaults() -> None:
    m = model("yuncheng.yaml")
    assert len(m.hotlines) == 54
    modes = [h.mode.value for h in m.hotlines]
    counts = {mode: modes.count(mode) for mode in set(modes)}
    assert counts == {"merge": 7, "parallel": 16, "linked": 19, "transfer": 5, "guidance": 7}
    assert m.prompts["yc-transition"] == YUNCHENG_PROMPT
    assert m.defaults.transition_prompt == "yc-transition"
    assert m.defaults.transition_months == 6
    assert m.defaults.after_transition.value == "hangup"
    # Every remote seat and utility has its department to ring.
    for h in m.hotlines:
        if h.mode.value in ("parallel", "linked"):
            assert h.department in {d.id for d in m.departments}


def test_yongzhou_names_no_numbers_beyond_the_draft() -> None:
    m = model("yongzhou.yaml")
    assert m.region.level.value == "city"
    assert {h.mode.value for h in m.hotlines} == {"transfer"}
    assert dt.date(2018, 1, 31) == YONGZHOU_INTEGRATION_END


# --- routing every seed line --------------------------------------------------------------------


@dataclass(frozen=True)
class Expect:
    action: Action
    phase: Phase
    target: str | None
    prompts: tuple[str, ...] = ()
    origin: str | None = None
    expert: str | None = None
    overflow: str | None = None
    escalation: str | None = None
    hangup: bool = False


def _moments(config: str, seed: SeedLine) -> list[tuple[str, dt.datetime]]:
    """Named instants around the line's cut-over and window."""
    if seed.cutover is None:
        return [("none", at(dt.date(2024, 3, 1), 10))]
    cut = seed.cutover
    out = [("before", at(cut - dt.timedelta(days=1), 10)), ("before-last", at(cut) - dt.timedelta(seconds=1))]
    if seed.mode == "merge":
        end = WINDOW_END[config]
        out += [
            ("window-first", at(cut)),
            ("window", at(cut + dt.timedelta(days=20), 15)),
            ("window-last", at(end) - dt.timedelta(seconds=1)),
            ("after-first", at(end)),
            ("after", at(end + dt.timedelta(days=30), 9)),
        ]
    else:
        out += [("after-first", at(cut)), ("after", at(cut + dt.timedelta(days=30), 9))]
    return out


def _expect(config: str, seed: SeedLine, moment: str) -> Expect:
    """The decision the documents call for, worked out from the seed facts."""
    m = model(config)
    line = next(h for h in m.hotlines if h.number == seed.number)
    n = seed.number
    before = moment.startswith("before")
    if seed.mode == "transfer":
        return Expect(Action.EMERGENCY, Phase.NONE, n)
    if seed.mode == "guidance":
        return Expect(Action.GUIDANCE, Phase.NONE, None, (f"guidance-{n}",), hangup=True)
    if config == "guangxi.yaml":
        centre = GX_CENTRE
        if seed.mode == "merge":
            if before:
                return Expect(Action.DEPARTMENT, Phase.BEFORE, f"dept-{n}", origin=n, overflow=f"{centre}-general")
            if moment.startswith("window"):
                return Expect(Action.QUEUE, Phase.TRANSITION, f"{centre}-general", (f"transition-{n}",), origin=n)
            return Expect(Action.RETIRED, Phase.AFTER, None, (f"retired-{n}",), hangup=True)
        if seed.mode == "parallel":
            phase = Phase.BEFORE if before else Phase.AFTER
            skill = f"{centre}-l{n}"
            if seed.own_seats:  # 各自接听: its seats answer, the line's 12345 skill queue takes the overflow
                return Expect(Action.DEPARTMENT, phase, line.department, origin=n, overflow=skill)
            if before:
                return Expect(Action.DEPARTMENT, phase, f"dept-{n}", origin=n, overflow=skill)
            expert = f"e{n}" if seed.expert else None
            return Expect(Action.QUEUE, phase, skill, origin=n, expert=expert, overflow=f"{centre}-general")
        # 设分中心: the sub-centre answers from the start; region-wide ones overflow to the region 12345.
        phase = Phase.BEFORE if before else Phase.AFTER
        if seed.scope == "province":
            return Expect(Action.SUBCENTRE, phase, line.subcentre, origin=n, overflow="gx-general")
        return Expect(Action.SUBCENTRE, phase, f"{line.subcentre}@{centre}", origin=n, overflow=f"{centre}-general")
    # Yuncheng: one centre.
    centre = YC_CENTRE
    if seed.mode == "merge":
        if before:
            return Expect(Action.DEPARTMENT, Phase.BEFORE, f"dept-{n}", origin=n, overflow=f"{centre}-general")
        if moment.startswith("window"):
            return Expect(Action.QUEUE, Phase.TRANSITION, f"{centre}-general", ("yc-transition",), origin=n)
        return Expect(Action.RETIRED, Phase.AFTER, None, (f"retired-{n}",), hangup=True)
    if seed.mode == "parallel":
        if before:
            return Expect(Action.DEPARTMENT, Phase.BEFORE, line.department, origin=n, overflow=f"{centre}-general")
        # General questions at 12345; professional ones go to the remote seat (设置远端座席).
        return Expect(Action.QUEUE, Phase.AFTER, f"{centre}-general", origin=n, escalation=f"PJSIP/{n}@yc-remote")
    assert seed.mode == "linked"
    phase = Phase.BEFORE if before else Phase.AFTER
    return Expect(Action.DEPARTMENT, phase, line.department, origin=n, overflow=f"{centre}-general")


def _route_cases() -> list[tuple[str, str, str, str, str]]:
    cases = []
    for region in REGIONS.values():
        area = AREA[region.config]
        for seed in region.lines:
            for number in (seed.number, *seed.aliases):
                for moment, _ in _moments(region.config, seed):
                    for dialled in dialled_forms(number, area):
                        cases.append((region.config, seed.number, number, moment, dialled))
    return cases


def _case_id(case: tuple[str, str, str, str, str]) -> str:
    config, _, number, moment, dialled = case
    return f"{config.removesuffix('.yaml')}-{number}-{moment}-{dialled}"


@pytest.mark.parametrize("case", _route_cases(), ids=_case_id)
def test_route_every_seed_line(case: tuple[str, str, str, str, str]) -> None:
    config, line_number, _, moment, dialled = case
    seed = next(s for s in REGIONS[config].lines if s.number == line_number)
    when = dict(_moments(config, seed))[moment]
    decision = decide(Call(dialled=dialled, caller=CALLER[config]), table(config), when)
    want = _expect(config, seed, moment)
    got = Expect(
        decision.action,
        decision.phase,
        decision.target,
        decision.prompts,
        decision.origin,
        decision.expert,
        decision.overflow,
        decision.escalation,
        decision.hangup,
    )
    assert got == want
    assert decision.number == line_number
    assert not decision.warnings
    if want.action is Action.EMERGENCY:
        assert decision.centre is None  # never a 12345 queue
        assert decision.dial == f"PJSIP/{line_number}@pstn"


# --- Guangxi's per-city 12313 sub-centre and shared area codes ------------------------------------


@pytest.mark.parametrize("city", sorted(GUANGXI.cities))
def test_guangxi_12313_reaches_each_citys_site(city: str) -> None:
    m = model("guangxi.yaml")
    city_id = next(c.id for c in m.cities if c.name.removesuffix("市") == city)
    decision = decide(Call(dialled="12313", city=city_id), table("guangxi.yaml"), at(dt.date(2022, 1, 5), 10))
    assert decision.action is Action.SUBCENTRE
    assert decision.target == f"tobacco@{city_id}"
    assert decision.centre == city_id
    assert decision.overflow == f"{city_id}-general"


def test_guangxi_shared_area_code_warns_and_falls_back_to_region_centre() -> None:
    # 南宁 and 崇左 share 0771: without the trunk naming the city, 12345 at region level answers.
    decision = decide(Call(dialled="077112313"), table("guangxi.yaml"), at(dt.date(2022, 1, 5), 10))
    assert decision.action is Action.QUEUE
    assert decision.target == "gx-general"
    assert decision.warnings and "0771" in decision.warnings[0]


DOUBLED_NUMBER = re.compile(r"(\d{3,})\1")


def _names(model: MergerConfig) -> list[str]:
    groups = (model.centres, model.queues, model.expert_groups, model.departments, model.subcentres, model.hotlines)
    return [item.name for group in groups for item in group]


@pytest.mark.parametrize("config", sorted(REGIONS))
def test_no_name_repeats_its_number(config: str) -> None:
    doubled = [n for n in _names(load_config(CONFIG_DIR / config).model) if DOUBLED_NUMBER.search(n)]
    assert doubled == []


def test_guangxi_queue_titles_name_the_line_once_and_queue_names_stay() -> None:
    model = load_config(CONFIG_DIR / "guangxi.yaml").model
    conf = render_queues(model)
    titles = [line for line in conf.splitlines() if line.startswith("; ") and "12345政务服务便民热线 " in line]
    assert "; 桂林市12345政务服务便民热线 12315市场监管投诉举报热线" in titles
    assert not [t for t in titles if DOUBLED_NUMBER.search(t)]
    sections = [s for s in re.findall(r"^\[([^\]]+)\]$", conf, flags=re.M) if s != "general"]  # [general]: settings
    assert len(sections) == len(set(sections)) == len(all_queue_names(model))
    assert "guilin-l12315" in sections  # the Asterisk names did not change with the titles
    assert all(re.fullmatch(r"[a-z0-9-]+", s) for s in sections)


def test_routing_reason_names_a_numbered_line_once() -> None:
    table = compile_config(load_config(CONFIG_DIR / "guangxi.yaml").model)
    reason = decide(Call(dialled="12315", city="guilin"), table, dt.datetime(2022, 6, 7, 10, tzinfo=TZ)).reason
    assert reason.startswith("12315市场监管投诉举报热线: parallel line")
    other = decide(Call(dialled="12316", city="guilin"), table, dt.datetime(2022, 6, 7, 10, tzinfo=TZ)).reason
    assert other.startswith("12316 全国农业系统公益服务电话: parallel line")


@pytest.mark.parametrize("config", sorted(REGIONS))
def test_header_cites_the_document_by_title_not_a_path(config: str) -> None:
    header = [
        line
        for line in (CONFIG_DIR / config).read_text(encoding="utf-8").splitlines()[:6]
        if line.startswith("# Source:") or line.startswith("# 投诉") or "《" in line
    ]
    source = next(line for line in header if line.startswith("# Source:"))
    assert "《" in source
    assert not re.search(r"/\w+/|seeds|\.txt", "\n".join(header))
