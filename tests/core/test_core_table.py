"""The config compiled into routing tables: windows, months, area codes, queues, lines and their targets."""

from __future__ import annotations

import dataclasses
import datetime as dt
import pickle
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from hotline_cti.config.compile import add_months, compile_config, transition_window
from hotline_cti.config.errors import ConfigError
from hotline_cti.config.loader import load_config, read_tree
from hotline_cti.config.schema import Hotline, MergerConfig
from hotline_cti.core.hours import ALWAYS, parse_hours
from hotline_cti.core.model import AfterTransition, Call, Mode, Scope, Seats
from hotline_cti.core.routing import decide
from hotline_cti.core.table import LinePlan, QueuePlan, RoutingTable, Target

TZ = ZoneInfo("Asia/Shanghai")
D = dt.date


def midnight(day: dt.date, tz: ZoneInfo = TZ) -> float:
    return dt.datetime(day.year, day.month, day.day, tzinfo=tz).timestamp()


@pytest.mark.parametrize(
    ("day", "months", "result"),
    [
        (D(2021, 8, 31), 6, D(2022, 2, 28)),
        (D(2020, 1, 31), 1, D(2020, 2, 29)),
        (D(2021, 1, 31), 1, D(2021, 2, 28)),
        (D(2021, 11, 30), 2, D(2022, 1, 30)),
        (D(2021, 12, 15), 1, D(2022, 1, 15)),
        (D(2021, 12, 15), 12, D(2022, 12, 15)),
        (D(2021, 1, 15), 11, D(2021, 12, 15)),
        (D(2021, 3, 31), 0, D(2021, 3, 31)),
        (D(2021, 5, 31), 25, D(2023, 6, 30)),
    ],
)
def test_add_months(day: dt.date, months: int, result: dt.date) -> None:
    assert add_months(day, months) == result


def hotline(**kw: object) -> Hotline:
    fields: dict[str, object] = {"number": "12300", "name": "n", "unit": "u", "mode": "merge"}
    fields.update(kw)
    return Hotline.model_validate(fields)


@pytest.mark.parametrize(
    ("line", "default_months", "window"),
    [
        (hotline(cutover=D(2021, 8, 31)), 6, (D(2021, 8, 31), D(2022, 2, 28))),
        (hotline(cutover=D(2021, 8, 31)), 0, None),
        (hotline(mode="parallel", cutover=D(2021, 8, 31)), 6, None),
        (hotline(mode="merge"), 6, None),
        (hotline(cutover=D(2021, 8, 31), transition={"months": 2}), 6, (D(2021, 8, 31), D(2021, 10, 31))),
        (hotline(cutover=D(2021, 8, 31), transition={"months": 0}), 6, (D(2021, 8, 31), D(2021, 8, 31))),
        (hotline(cutover=D(2021, 8, 31), transition={"end": D(2021, 9, 9)}), 6, (D(2021, 8, 31), D(2021, 9, 9))),
        (hotline(cutover=D(2021, 8, 31), transition={"start": D(2021, 9, 1)}), 3, (D(2021, 9, 1), D(2021, 12, 1))),
        (
            hotline(mode="parallel", transition={"start": D(2021, 9, 1), "end": D(2021, 10, 1)}),
            6,
            (D(2021, 9, 1), D(2021, 10, 1)),
        ),
        (hotline(mode="parallel", transition={"months": 2}), 6, None),
    ],
)
def test_transition_window(line: Hotline, default_months: int, window: tuple[dt.date, dt.date] | None) -> None:
    assert transition_window(line, default_months) == window


EDGE = """\
region: {id: sx, name: 运城, level: city, trunk: out, timezone: Asia/Urumqi}
cities:
  - {id: yuncheng, name: 运城, area_code: "0359"}
centres:
  - {id: yc, name: 运城12345}
overflow: {target: spare, max_wait: 77}
defaults: {transition_months: 3, after_transition: queue, welcome_prompt: hello}
service_hours: "mon-fri 08:00-18:00"
queues:
  - {id: general, name: 综合, overflow: spare}
  - {id: spare, name: 备用, max_wait: 30}
departments:
  - {id: water, name: 水务, dial: PJSIP/1@water, service_hours: "mon 08:00-09:00"}
subcentres:
  - {id: tax, name: 税务, scope: province}
hotlines:
  - {number: 12300, name: 电信, unit: 通信管理局, mode: merge, cutover: 2021-08-31, aliases: [2666110], priority: 4}
  - {number: 12301, name: 旅游, unit: 文旅局, mode: merge, cutover: 2021-08-31, after_transition: hangup,
     dial: PJSIP/12301@own}
  - {number: 12315, name: 市场, unit: 市场局, mode: parallel, seats: department, department: water}
  - {number: 12366, name: 税务, unit: 税务局, mode: subcentre, subcentre: tax}
  - {number: 96333, name: 电梯, unit: 特检院, mode: linked}
  - {number: 110, name: 报警, unit: 公安, mode: transfer, dial: PJSIP/110@police}
  - {number: 119, name: 火警, unit: 消防, mode: transfer}
  - {number: 12339, name: 国安, unit: 国安局, mode: guidance}
"""


@pytest.fixture
def edge(tmp_path: Path) -> RoutingTable:
    """Schema-valid but refused by the config checks (a sub-centre without dial, a linked line without its
    department, an uncatalogued welcome prompt): the compiler must still give every line a usable plan.

    Compiled afresh for each test, so each test runs the compiler (and mutation testing links them)."""
    path = tmp_path / "edge.yaml"
    path.write_text(EDGE, encoding="utf-8")
    with pytest.raises(ConfigError):
        load_config(path)
    tree, _ = read_tree(path)
    return compile_config(MergerConfig.model_validate(tree))


def test_region_facts(edge: RoutingTable) -> None:
    assert (edge.region, edge.timezone, edge.default_centre, edge.welcome_prompt) == (
        "sx",
        ZoneInfo("Asia/Urumqi"),
        "yc",
        "hello",
    )
    assert edge.region_hours == parse_hours("mon-fri 08:00-18:00")
    assert (edge.overflow_target, edge.overflow_wait) == ("spare", 77)
    assert edge.queues == {"general": QueuePlan("general", "spare", 77), "spare": QueuePlan("spare", None, 30)}
    assert (edge.centre_by_city, edge.city_names, edge.city_by_area, edge.shared_areas) == (
        {},
        {"yuncheng": "运城"},
        {"0359": "yuncheng"},
        {},
    )


def test_a_compiled_table_is_frozen_and_keeps_no_memo(edge: RoutingTable) -> None:
    """Routing never writes a table: a test, a session or a thread can share one (memos: core/memo.py)."""
    assert {f.name for f in dataclasses.fields(edge)}.isdisjoint({"cache", "parsed", "diverted"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        edge.region = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        edge.short["12399"] = edge.lines["12300"]  # type: ignore[index]
    line = edge.lines["12300"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        line.cutover = 0.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        line.prompts["transition"] = "other"  # type: ignore[index]
    swapped = dataclasses.replace(edge, diversions={"yc-general": ()})
    with pytest.raises(TypeError):
        swapped.diversions["yc-spare"] = ()  # type: ignore[index]
    assert swapped.short is edge.short  # a read-only map is shared as it is, not wrapped again


def test_a_table_pickles_to_an_equal_frozen_table(edge: RoutingTable) -> None:
    """The reload worker sends the table to the routing process pickled (reload_worker.pack)."""
    data = pickle.dumps(edge, protocol=pickle.HIGHEST_PROTOCOL)
    again = pickle.loads(data)
    assert again == edge and again.lines["12300"] == edge.lines["12300"]
    assert again.short["12300"] is again.lines["12300"]  # one plan, held in several maps
    with pytest.raises(TypeError):
        again.short["12399"] = again.lines["12300"]
    with pytest.raises(TypeError):
        again.lines["12300"].prompts["transition"] = "other"


def test_a_pickled_state_of_another_shape_is_refused(edge: RoutingTable) -> None:
    """A state with a field more or less (a table pickled by another version) is refused, not half restored."""
    state = edge.__getstate__()
    with pytest.raises(ValueError):
        RoutingTable.__new__(RoutingTable).__setstate__(state[:-1])
    plan = edge.lines["12300"]
    with pytest.raises(ValueError):
        LinePlan.__new__(LinePlan).__setstate__((*plan.__getstate__(), "one more"))


def test_dates_are_local_midnight_in_the_regions_zone(edge: RoutingTable) -> None:
    tz = ZoneInfo("Asia/Urumqi")
    line = edge.lines["12300"]
    assert (line.cutover, line.window_start, line.window_end) == (
        midnight(D(2021, 8, 31), tz),
        midnight(D(2021, 8, 31), tz),
        midnight(D(2021, 11, 30), tz),
    )
    for number in ("12315", "12339", "110"):
        plan = edge.lines[number]
        assert (plan.cutover, plan.window_start, plan.window_end) == (None, None, None)


def test_merged_lines(edge: RoutingTable) -> None:
    line = edge.lines["12300"]
    assert (line.mode, line.seats, line.queue, line.expert, line.priority, line.after_transition) == (
        Mode.MERGE,
        Seats.MERGED,
        "general",
        None,
        4,
        AfterTransition.QUEUE,
    )
    assert line.department == Target("dept-12300", "通信管理局", "PJSIP/12300@out")
    assert line.prompts == {"transition": "transition-12300", "retired": "retired-12300"}
    own = edge.lines["12301"]
    assert own.department == Target("dept-12301", "文旅局", "PJSIP/12301@own")
    assert own.after_transition is AfterTransition.HANGUP


def test_a_landline_alias_of_a_single_city_region_belongs_to_that_city(edge: RoutingTable) -> None:
    line = edge.lines["12300"]
    assert edge.short["12300"] is line
    assert edge.landline == {("0359", "2666110"): line}
    assert edge.landline_local == {"2666110": line}
    assert line.landline_area == "0359"


def test_department_seats_and_linked_lines(edge: RoutingTable) -> None:
    parallel = edge.lines["12315"]
    assert parallel.seats is Seats.DEPARTMENT
    assert parallel.department == Target("water", "水务", "PJSIP/1@water", parse_hours("mon 08:00-09:00"))
    linked = edge.lines["96333"]
    assert (linked.seats, linked.department) == (Seats.DEPARTMENT, Target("dept-96333", "特检院", "PJSIP/96333@out"))
    assert linked.department is not None and linked.department.hours == ALWAYS


def test_a_region_wide_subcentre_without_a_dial_has_no_target(edge: RoutingTable) -> None:
    line = edge.lines["12366"]
    assert (line.subcentre_scope, line.subcentre_id, line.subcentre_all, line.subcentre_sites) == (
        Scope.PROVINCE,
        "tax",
        None,
        {},
    )
    assert line.department is None


def test_emergency_and_guidance_lines(edge: RoutingTable) -> None:
    assert edge.lines["110"].emergency == Target("110", "报警", "PJSIP/110@police")
    assert edge.lines["119"].emergency == Target("119", "火警", "PJSIP/119@out")
    assert edge.lines["119"].department is None
    guidance = edge.lines["12339"]
    assert (guidance.emergency, guidance.department, guidance.prompts) == (None, None, {"guidance": "guidance-12339"})


def test_small_config_tables(small_config_path: Path) -> None:
    small_table = compile_config(load_config(small_config_path).model)
    assert small_table.centre_by_city == {"guilin": "guilin"}
    assert small_table.city_by_area == {"0773": "guilin"}
    assert small_table.shared_areas == {"0771": ("nanning", "chongzuo")}
    assert small_table.queues["l12315"] == QueuePlan("l12315", "general", 90)
    assert small_table.queues["complaint"] == QueuePlan("complaint", None, 120)
    assert small_table.short["12358"] is small_table.lines["12315"]
    assert small_table.landline == {("0773", "2587066"): small_table.lines["2587066"]}
    tobacco = small_table.lines["12313"]
    assert tobacco.subcentre_sites == {
        "nanning": Target("tobacco@nanning", "烟草", "PJSIP/12313@nn"),
        "guilin": Target("tobacco@guilin", "烟草", "PJSIP/12313@gl"),
        "chongzuo": Target("tobacco@chongzuo", "烟草", "PJSIP/12313@cz"),
    }
    assert (tobacco.subcentre_scope, tobacco.subcentre_all) == (Scope.CITY, None)
    assert small_table.lines["12366"].subcentre_all == Target("tax", "税务", "PJSIP/12366@tax")
    assert small_table.lines["12348"].department == Target("sft", "司法厅12348", "PJSIP/12348@sft")
    assert small_table.lines["12315"].seats is Seats.MERGED


def test_small_config_lines_keep_their_unit_and_expert_seats(small_config_path: Path) -> None:
    table = compile_config(load_config(small_config_path).model)
    line = table.lines["12315"]
    assert (line.unit, line.expert, line.queue) == ("市场监管局", "e12315", "l12315")
    assert table.lines["12348"].expert is None


SHARED = """\
region: {id: sx, name: 山西, level: province, trunk: out}
cities:
  - {id: taiyuan, name: 太原, area_code: "0351"}
  - {id: datong, name: 大同, area_code: "0352"}
centres:
  - {id: sx, name: 山西12345}
queues:
  - {id: general, name: 综合}
hotlines:
  - {number: 2666110, name: 太原供水, unit: 太原水务, mode: linked, city: taiyuan}
  - {number: 96333, name: 大同电梯, unit: 大同特检, mode: linked, city: datong, aliases: [2666110]}
  - {number: 2600000, name: 无城, unit: 无城, mode: linked, aliases: [12399]}
"""


def test_a_landline_shared_by_two_cities_or_without_a_city_needs_its_area(tmp_path: Path) -> None:
    """Schema-valid but refused by the checks (one number twice, a landline without its city in a
    two-city region): the compiler still keeps every other number of every line."""
    path = tmp_path / "shared.yaml"
    path.write_text(SHARED, encoding="utf-8")
    with pytest.raises(ConfigError):
        load_config(path)
    tree, _ = read_tree(path)
    table = compile_config(MergerConfig.model_validate(tree))
    taiyuan, datong, cityless = (table.lines[n] for n in ("2666110", "96333", "2600000"))
    # 2666110 is a landline in both cities: it needs an area code, neither city owns the bare number
    assert table.landline == {("0351", "2666110"): taiyuan, ("0352", "2666110"): datong}
    assert table.landline_local == {}
    # a landline without its city has no area: it is left out, and its short alias still reaches the line
    assert cityless.landline_area is None and table.short == {"96333": datong, "12399": cityless}


TWO_CITIES = """\
region: {id: sx, name: 山西, level: province, trunk: out}
cities:
  - {id: taiyuan, name: 太原, area_code: "0351"}
  - {id: datong, name: 大同, area_code: "0352"}
centres:
  - {id: sx, name: 山西12345}
queues:
  - {id: general, name: 综合}
departments:
  - {id: water, name: 太原水务, dial: PJSIP/2666110@ty}
  - {id: lift, name: 大同特检, dial: PJSIP/96333@dt}
hotlines:
  - {number: 2666110, name: 太原供水, unit: 太原水务, mode: linked, department: water, city: taiyuan}
  - {number: 96333, name: 大同电梯, unit: 大同特检, mode: linked, department: lift, city: datong}
"""


def test_a_short_number_names_no_area_even_when_its_line_has_a_city(tmp_path: Path) -> None:
    """A short number is dialled the same in every city, so it does not place the caller in its line's
    city the way a landline does: a Taiyuan landline calling 大同's 96333 is a Taiyuan caller."""
    path = tmp_path / "two.yaml"
    path.write_text(TWO_CITIES, encoding="utf-8")
    table = compile_config(load_config(path).model)
    assert table.lines["96333"].landline_area is None
    assert table.lines["2666110"].landline_area == "0351"
    now = dt.datetime(2023, 1, 4, 10, tzinfo=TZ)
    assert decide(Call("96333", caller="03522801234"), table, now).city == "datong"
    assert decide(Call("96333", caller="03512801234"), table, now).city == "taiyuan"
    assert decide(Call("96333"), table, now).city is None
    assert decide(Call("2666110", caller="03522801234"), table, now).city == "taiyuan"  # the landline's own city
