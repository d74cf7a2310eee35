"""Every branch of ``decide``, field by field: the 12345 menu, expert seats, city precedence, unknown
numbers, every mode in every phase (an explicit transition window whose start differs from the
cut-over included), department hours and the queue overflow each decision carries.

Decisions are compared whole, so a change to any field (a lost overflow, a wrong centre, a missing
prompt) fails here.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from hotline_cti.config.compile import compile_config
from hotline_cti.config.errors import ConfigError
from hotline_cti.config.loader import load_config, read_tree
from hotline_cti.config.schema import MergerConfig
from hotline_cti.core.memo import DecisionCache
from hotline_cti.core.model import Action, Call, Decision, Mode, Phase
from hotline_cti.core.routing import decide
from hotline_cti.core.table import RoutingTable

TZ = ZoneInfo("Asia/Shanghai")
LATER = dt.datetime(2023, 1, 4, 10, tzinfo=TZ)  # a Wednesday, after every cut-over and window

SHARED_NOTE = "area code 0771 is shared by 南宁、崇左; the trunk must name the city"

# A second config for what the small one lacks: explicit transition windows (one opening before the
# cut-over, one after it, one of zero months), prompts.before, a department with service hours in front
# of a merged line, a parallel line escalating to its department, line priorities, a known city with no
# sub-centre site, a config without a complaint queue and non-default overflow waits.
EDGE_YAML = """\
region: {id: gx, name: 广西, level: province}
cities:
  - {id: nanning, name: 南宁, area_code: "0771"}
  - {id: guilin, name: 桂林, area_code: "0773"}
  - {id: liuzhou, name: 柳州, area_code: "0772"}
centres:
  - {id: gx, name: 自治区12345}
  - {id: guilin, name: 桂林12345, city: guilin}
overflow: {max_wait: 150}
queues:
  - {id: general, name: 综合}
  - {id: l12315, name: 市场监管, max_wait: 60}
  - {id: l12333, name: 人社, overflow: l12315}
departments:
  - {id: water, name: 水务, dial: PJSIP/2587066@water, service_hours: "mon-fri 08:00-18:00"}
  - {id: rsj, name: 人社局, dial: PJSIP/12333@rsj}
subcentres:
  - {id: tax, name: 税务, scope: province, dial: PJSIP/12366@tax}
  - id: tobacco
    name: 烟草
    scope: city
    sites:
      - {city: nanning, dial: PJSIP/12313@nn}
hotlines:
  - {number: 12300, name: 电信申诉, unit: 通信管理局, mode: merge, cutover: 2021-09-30, priority: 3,
     transition: {start: 2021-09-01, end: 2021-12-01}, prompts: {before: notice-12300}}
  - {number: 12301, name: 旅游, unit: 文旅厅, mode: merge, cutover: 2021-08-31, department: water, priority: 1,
     transition: {start: 2021-09-15, months: 2}, prompts: {before: notice-12301, transition: move-12301}}
  - {number: 12302, name: 价格, unit: 发改委, mode: merge, cutover: 2021-08-31, transition: {months: 0}}
  - {number: 12303, name: 质监, unit: 质监局, mode: merge, cutover: 2021-08-31, after_transition: queue, priority: 5}
  - {number: 12304, name: 物价, unit: 物价局, mode: merge}
  - {number: 12305, name: 住建, unit: 住建厅, mode: parallel, queue: gone}
  - {number: 4587066, name: 热力, unit: 柳州热力, mode: linked, department: water, city: liuzhou}
  - {number: 4587066, name: 热力, unit: 桂林热力, mode: linked, department: rsj, city: guilin}
  - {number: 12333, name: 人社, unit: 人社厅, mode: parallel, department: rsj, queue: l12333, priority: 2,
     cutover: 2021-11-30, transition: {end: 2022-01-31}, prompts: {transition: notice-12333}}
  - {number: 12315, name: 市场监管, unit: 市场监管局, mode: parallel, seats: department, department: water,
     queue: l12315, transition: {start: 2021-10-01, end: 2021-11-01}, prompts: {transition: notice-12315}}
  - {number: 12313, name: 烟草, unit: 烟草局, mode: subcentre, subcentre: tobacco, cutover: 2022-12-01,
     transition: {end: 2023-02-01}, prompts: {transition: notice-12313}}
  - {number: 12366, name: 税务, unit: 税务局, mode: subcentre, subcentre: tax, cutover: 2022-12-01,
     transition: {end: 2023-02-01}, prompts: {transition: notice-12366}}
  - {number: 3587066, name: 燃气, unit: 燃气公司, mode: linked, department: water, city: liuzhou}
prompts:
  notice-12300: 12300将于9月30日并入12345
  notice-12301: 12301将于8月31日并入12345
  move-12301: 12301已并入12345
  notice-12333: 12333已与12345并行
  notice-12315: 12315已与12345并行
  notice-12313: 12313已设分中心
  notice-12366: 12366已设分中心
"""


def at(year: int, month: int, day: int, hour: int = 10, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=TZ)


@pytest.fixture(scope="module")
def edge_table(tmp_path_factory: pytest.TempPathFactory) -> RoutingTable:
    """Schema-valid; the config checks refuse what is listed below, but a table built without the checks must
    still route every call (the routing core never trusts them)."""
    path = tmp_path_factory.mktemp("edge") / "edge.yaml"
    path.write_text(EDGE_YAML, encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    assert [p.message for p in refused.value.problems] == [
        "per-city sub-centre 'tobacco' has no site for city guilin, liuzhou",
        "duplicate number 4587066 (already used by 4587066 at line 33)",
        "12304 物价: a merged line needs its 'cutover' date",
        "12305 住建: unknown queue 'gone'",
    ]
    tree, _ = read_tree(path)
    return compile_config(MergerConfig.model_validate(tree))


def expect(**fields: Any) -> dict[str, Any]:
    """A whole decision: the given fields over the defaults of a plain queued call."""
    base: dict[str, Any] = dict(
        target=None,
        dial=None,
        centre=None,
        city=None,
        prompts=(),
        origin=None,
        expert=None,
        expert_queue=None,
        escalation=None,
        priority=0,
        overflow=None,
        overflow_after=0,
        menu=False,
        hangup=False,
        warnings=(),
        diverted=None,  # decide() never diverts: live queue state is applied after it (core/diversion.py)
        offer_callback=False,
    )
    base.update(fields)
    return base


def fields_of(d: Decision) -> dict[str, Any]:
    return {f.name: getattr(d, f.name) for f in dataclasses.fields(d)}


def check(d: Decision, **want: Any) -> None:
    assert fields_of(d) == expect(**want)


# ---------------------------------------------------------------- 12345 and its menu


def test_12345_without_a_choice_is_the_menu_then_the_general_queue(small_table: RoutingTable) -> None:
    check(
        decide(Call("12345"), small_table, LATER),
        number="12345",
        form="local",
        mode=Mode.MAIN,
        phase=Phase.NONE,
        action=Action.QUEUE,
        target="gx-general",
        centre="gx",
        prompts=("welcome",),
        overflow_after=120,  # the general queue is itself the overflow target: nothing further
        menu=True,
        reason="12345 at gx: main menu, then the general queue",
    )


def test_menu_2_is_the_complaint_queue_overflowing_to_general(small_table: RoutingTable) -> None:
    check(
        decide(Call("12345", ivr_choice="2"), small_table, LATER),
        number="12345",
        form="local",
        mode=Mode.MAIN,
        phase=Phase.NONE,
        action=Action.QUEUE,
        target="gx-complaint",
        centre="gx",
        overflow="gx-general",
        overflow_after=120,
        reason="12345 menu 2: queue complaint at gx",
    )


@pytest.mark.parametrize("choice", ["1", "0"])
def test_menu_1_and_0_are_the_general_queue(small_table: RoutingTable, choice: str) -> None:
    d = decide(Call("12345", ivr_choice=choice), small_table, LATER)
    assert (d.target, d.overflow, d.overflow_after, d.menu, d.prompts, d.warnings) == (
        "gx-general",
        None,
        120,
        False,
        (),
        (),
    )
    assert d.reason == f"12345 menu {choice}: queue general at gx"


def test_menu_1_with_a_topic_stays_on_the_general_queue(small_table: RoutingTable) -> None:
    d = decide(Call("12345", ivr_choice="1", topic="12315"), small_table, LATER)
    assert (d.target, d.expert, d.expert_queue, d.origin, d.warnings) == ("gx-general", None, None, None, ())


def test_menu_3_with_an_expert_topic_rings_the_experts_then_the_skill_queue(small_table: RoutingTable) -> None:
    check(
        decide(Call("077312345", ivr_choice="3", topic="12315"), small_table, LATER),
        number="12345",
        form="national",
        mode=Mode.MAIN,
        phase=Phase.NONE,
        action=Action.QUEUE,
        target="guilin-expert-e12315",
        centre="guilin",
        city="guilin",
        origin="12315",
        expert="e12315",
        expert_queue="guilin-expert-e12315",
        overflow="guilin-l12315",
        overflow_after=90,
        reason="12345 menu 3: topic 12315 市场监管, expert seats e12315; caller's city 桂林 from the dialled area code 0773",
    )


def test_menu_3_with_a_topic_without_experts_is_its_skill_queue(small_table: RoutingTable) -> None:
    check(
        decide(Call("12345", ivr_choice="3", topic="12348"), small_table, LATER),
        number="12345",
        form="local",
        mode=Mode.MAIN,
        phase=Phase.NONE,
        action=Action.QUEUE,
        target="gx-l12348",
        centre="gx",
        origin="12348",
        overflow="gx-general",
        overflow_after=120,
        reason="12345 menu 3: topic 12348 法律服务, no expert seats: its skill queue",
    )


def test_a_menu_choice_keeps_the_city_of_the_dialled_area(small_table: RoutingTable) -> None:
    check(
        decide(Call("077312345", ivr_choice="2"), small_table, LATER),
        number="12345",
        form="national",
        mode=Mode.MAIN,
        phase=Phase.NONE,
        action=Action.QUEUE,
        target="guilin-complaint",
        centre="guilin",
        city="guilin",
        overflow="guilin-general",
        overflow_after=120,
        reason="12345 menu 2: queue complaint at guilin; caller's city 桂林 from the dialled area code 0773",
    )


def test_menu_3_on_a_shared_area_code_keeps_the_warning(small_table: RoutingTable) -> None:
    expert = decide(Call("077112345", ivr_choice="3", topic="12315"), small_table, LATER)
    plain = decide(Call("077112345", ivr_choice="3", topic="12348"), small_table, LATER)
    unknown = decide(Call("077112345", ivr_choice="3", topic="99999"), small_table, LATER)
    assert (expert.target, expert.city, expert.warnings) == ("gx-expert-e12315", None, (f"dialled {SHARED_NOTE}",))
    assert (plain.target, plain.warnings) == ("gx-l12348", (f"dialled {SHARED_NOTE}",))
    assert unknown.warnings == (f"dialled {SHARED_NOTE}", "topic 99999 is not a configured line")
    off_menu = decide(Call("077112345", ivr_choice="8"), small_table, LATER)
    assert off_menu.warnings == (f"dialled {SHARED_NOTE}", "menu choice '8' is not on the menu")


def test_menu_3_with_an_alias_topic_reaches_its_line(small_table: RoutingTable) -> None:
    d = decide(Call("12345", ivr_choice="3", topic="12358"), small_table, LATER)
    assert (d.target, d.origin, d.expert) == ("gx-expert-e12315", "12315", "e12315")


def test_menu_3_with_an_unknown_topic_is_general_with_a_warning(small_table: RoutingTable) -> None:
    check(
        decide(Call("12345", ivr_choice="3", topic="99999"), small_table, LATER),
        number="12345",
        form="local",
        mode=Mode.MAIN,
        phase=Phase.NONE,
        action=Action.QUEUE,
        target="gx-general",
        centre="gx",
        overflow_after=120,
        reason="12345 menu 3: queue general at gx",
        warnings=("topic 99999 is not a configured line",),
    )


def test_menu_3_without_a_topic_is_general_without_a_warning(small_table: RoutingTable) -> None:
    d = decide(Call("12345", ivr_choice="3"), small_table, LATER)
    assert (d.target, d.expert, d.origin, d.warnings) == ("gx-general", None, None, ())


def test_a_digit_off_the_menu_is_general_with_a_warning(small_table: RoutingTable) -> None:
    check(
        decide(Call("12345", ivr_choice="7"), small_table, LATER),
        number="12345",
        form="local",
        mode=Mode.MAIN,
        phase=Phase.NONE,
        action=Action.QUEUE,
        target="gx-general",
        centre="gx",
        overflow_after=120,
        reason="12345 menu 7: queue general at gx",
        warnings=("menu choice '7' is not on the menu",),
    )


def test_menu_2_without_a_complaint_queue_is_general(edge_table: RoutingTable) -> None:
    d = decide(Call("12345", ivr_choice="2"), edge_table, LATER)
    assert (d.target, d.overflow, d.overflow_after, d.warnings) == ("gx-general", None, 150, ())
    assert d.reason == "12345 menu 2: queue general at gx"


def test_12345_on_a_shared_area_code_stays_at_the_region_with_a_warning(small_table: RoutingTable) -> None:
    d = decide(Call("077112345", ivr_choice="2"), small_table, LATER)
    assert (d.centre, d.city, d.target, d.form) == ("gx", None, "gx-complaint", "national")
    assert d.warnings == (f"dialled {SHARED_NOTE}",)


def test_12345_from_a_trunk_naming_an_unknown_city(small_table: RoutingTable) -> None:
    d = decide(Call("12345", city="beijing"), small_table, LATER)
    assert (d.centre, d.city, d.target, d.menu) == ("gx", None, "gx-general", True)
    assert d.warnings == ("city 'beijing' is not in the config",)


def test_12345_international_form(small_table: RoutingTable) -> None:
    d = decide(Call("+86 773 12345"), small_table, LATER)
    assert (d.number, d.form, d.centre, d.city, d.target) == (
        "12345",
        "international",
        "guilin",
        "guilin",
        "guilin-general",
    )


# ---------------------------------------------------------------- city precedence


def test_the_trunks_city_wins_over_both_area_codes(small_table: RoutingTable) -> None:
    d = decide(Call("077312313", caller="07712801234", city="nanning"), small_table, LATER)
    assert (d.city, d.target, d.centre) == ("nanning", "tobacco@nanning", "gx")


def test_the_dialled_area_wins_over_the_callers(small_table: RoutingTable) -> None:
    """077312313 from a 0771 landline is 桂林's sub-centre, not the region's queue."""
    d = decide(Call("077312313", caller="07712801234"), small_table, LATER)
    assert (d.city, d.action, d.target, d.centre, d.warnings) == (
        "guilin",
        Action.SUBCENTRE,
        "tobacco@guilin",
        "guilin",
        (),
    )


def test_a_shared_dialled_area_is_not_overridden_by_the_caller(small_table: RoutingTable) -> None:
    d = decide(Call("077112313", caller="07732801234"), small_table, LATER)
    assert (d.city, d.action, d.target) == (None, Action.QUEUE, "gx-general")
    assert d.warnings == (f"dialled {SHARED_NOTE}",)


def test_a_shared_caller_area_is_named_in_the_warning(small_table: RoutingTable) -> None:
    d = decide(Call("12313", caller="07712801234"), small_table, LATER)
    assert (d.city, d.target) == (None, "gx-general")
    assert d.warnings == (f"caller's {SHARED_NOTE}",)


@pytest.mark.parametrize("caller", ["07732801234", "0773-2801234", "+86 773 2801234"])
def test_the_callers_landline_names_the_city_when_the_dialled_number_does_not(
    small_table: RoutingTable, caller: str
) -> None:
    d = decide(Call("12313", caller=caller), small_table, LATER)
    assert (d.city, d.target, d.centre) == ("guilin", "tobacco@guilin", "guilin")


@pytest.mark.parametrize("caller", ["13877312345", "2801234", "", "0", "0773", "anonymous", "07732801234x"])
def test_mobiles_local_numbers_and_garbage_name_no_city(small_table: RoutingTable, caller: str) -> None:
    d = decide(Call("12313", caller=caller), small_table, LATER)
    assert (d.city, d.action, d.target, d.warnings) == (None, Action.QUEUE, "gx-general", ())


def test_an_unconfigured_dialled_area_falls_back_to_the_caller(small_table: RoutingTable) -> None:
    d = decide(Call("099912345", caller="07732801234"), small_table, LATER)
    assert (d.city, d.centre, d.target) == ("guilin", "guilin", "guilin-general")


# ---------------------------------------------------------------- unknown numbers


def test_an_unknown_number_with_an_area_code_keeps_its_city(small_table: RoutingTable) -> None:
    check(
        decide(Call("077399999", caller="07712801234"), small_table, LATER),
        number="99999",
        form="national",
        mode=Mode.UNKNOWN,
        phase=Phase.NONE,
        action=Action.QUEUE,
        target="guilin-general",
        centre="guilin",
        city="guilin",
        overflow_after=120,
        reason="warning: 077399999 is not in the merger list; sent to the 12345 general queue at guilin; caller's city 桂林 from the dialled area code 0773",
        warnings=("077399999 is not in the merger list",),
    )


def test_an_unknown_number_without_an_area_code_takes_the_callers_city(small_table: RoutingTable) -> None:
    d = decide(Call("99999", caller="07732801234"), small_table, LATER)
    assert (d.number, d.form, d.city, d.target) == ("99999", "local", "guilin", "guilin-general")


def test_an_unknown_number_on_a_shared_area_warns_twice(small_table: RoutingTable) -> None:
    d = decide(Call("077199999"), small_table, LATER)
    assert (d.city, d.target) == (None, "gx-general")
    assert d.warnings == ("077199999 is not in the merger list", f"dialled {SHARED_NOTE}")


def test_a_landline_number_in_another_city_is_unknown_there(small_table: RoutingTable) -> None:
    d = decide(Call("07712587066"), small_table, LATER)
    assert (d.mode, d.number, d.city, d.target) == (Mode.UNKNOWN, "2587066", None, "gx-general")


@pytest.mark.parametrize(
    ("dialled", "why"),
    [
        ("", "dialled '' is not a telephone number"),
        ("12a45", "dialled '12a45' is not a telephone number"),
        ("+86", "dialled '+86' is not a telephone number"),
        ("☎", "dialled '☎' is not a telephone number"),
        ("0773", "dialled '0773' is too short for a national number"),
    ],
)
def test_garbage_is_the_general_queue_naming_what_was_wrong(small_table: RoutingTable, dialled: str, why: str) -> None:
    check(
        decide(Call(dialled), small_table, LATER),
        number=dialled,
        form="unknown",
        mode=Mode.UNKNOWN,
        phase=Phase.NONE,
        action=Action.QUEUE,
        target="gx-general",
        centre="gx",
        overflow_after=120,
        reason=f"warning: {why}; sent to the 12345 general queue at gx",
        warnings=(why,),
    )


def test_garbage_from_a_known_trunk_city_goes_to_that_citys_centre(small_table: RoutingTable) -> None:
    d = decide(Call("12a45", city="guilin"), small_table, LATER)
    assert (d.centre, d.city, d.target) == ("guilin", "guilin", "guilin-general")


# ---------------------------------------------------------------- merged lines, phase by phase


def test_merge_in_its_window_queues_tagged_with_the_old_line(small_table: RoutingTable) -> None:
    check(
        decide(Call("12300"), small_table, at(2021, 9, 15)),
        number="12300",
        form="local",
        mode=Mode.MERGE,
        phase=Phase.TRANSITION,
        action=Action.QUEUE,
        target="gx-general",
        centre="gx",
        prompts=("transition-12300",),
        origin="12300",
        overflow_after=120,
        reason="12300 电信申诉: merged into 12345; transition prompt, then queue general at gx tagged with the old line",
    )


def test_merge_after_its_window_hangs_up_after_the_retired_prompt(small_table: RoutingTable) -> None:
    check(
        decide(Call("12300"), small_table, LATER),
        number="12300",
        form="local",
        mode=Mode.MERGE,
        phase=Phase.AFTER,
        action=Action.RETIRED,
        prompts=("retired-12300",),
        hangup=True,
        reason="12300 电信申诉: retired after its transition window; retired prompt, then hang up",
    )


def test_merge_after_its_window_may_still_queue(small_table: RoutingTable) -> None:
    check(
        decide(Call("077312301"), small_table, LATER),
        number="12301",
        form="national",
        mode=Mode.MERGE,
        phase=Phase.AFTER,
        action=Action.QUEUE,
        target="guilin-general",
        centre="guilin",
        city="guilin",
        prompts=("retired-12301",),
        origin="12301",
        overflow_after=120,
        reason="12301 旅游: retired after its transition window; retired prompt, still put through to 12345 at guilin; caller's city 桂林 from the dialled area code 0773",
    )


def test_merge_before_cutover_plays_the_before_prompt_and_rings_the_department(edge_table: RoutingTable) -> None:
    check(
        decide(Call("12300"), edge_table, at(2021, 8, 1)),
        number="12300",
        form="local",
        mode=Mode.MERGE,
        phase=Phase.BEFORE,
        action=Action.DEPARTMENT,
        target="dept-12300",
        dial="PJSIP/12300@pstn",
        centre="gx",
        prompts=("notice-12300",),
        origin="12300",
        priority=3,
        overflow="gx-general",
        overflow_after=150,
        reason="12300 电信申诉: before cut-over, the department as before",
    )


def test_a_window_opening_before_the_cutover_starts_the_transition_early(edge_table: RoutingTable) -> None:
    """12300: window 2021-09-01 .. 2021-12-01, cut-over 2021-09-30."""
    second = dt.timedelta(seconds=1)
    opens, cutover, closes = at(2021, 9, 1, 0), at(2021, 9, 30, 0), at(2021, 12, 1, 0)
    assert decide(Call("12300"), edge_table, opens - second).phase is Phase.BEFORE
    for now in (opens, cutover - second, cutover, closes - second):
        d = decide(Call("12300"), edge_table, now)
        assert (d.phase, d.action, d.target, d.prompts, d.priority) == (
            Phase.TRANSITION,
            Action.QUEUE,
            "gx-general",
            ("transition-12300",),
            3,
        ), now
    assert decide(Call("12300"), edge_table, closes).phase is Phase.AFTER


def test_a_window_opening_after_the_cutover_keeps_the_line_before_until_it_opens(edge_table: RoutingTable) -> None:
    """12301: cut-over 2021-08-31, window 2021-09-15 for two months."""
    second = dt.timedelta(seconds=1)
    cutover, opens, closes = at(2021, 8, 31, 0), at(2021, 9, 15, 0), at(2021, 11, 15, 0)
    for now in (cutover - second, cutover, opens - second):
        assert decide(Call("12301"), edge_table, now).phase is Phase.BEFORE, now
    for now in (opens, closes - second):
        d = decide(Call("12301"), edge_table, now)
        assert (d.phase, d.prompts) == (Phase.TRANSITION, ("move-12301",)), now
    assert decide(Call("12301"), edge_table, closes).phase is Phase.AFTER


def test_a_zero_month_window_retires_the_line_at_its_cutover(edge_table: RoutingTable) -> None:
    cutover = at(2021, 8, 31, 0)
    assert decide(Call("12302"), edge_table, cutover - dt.timedelta(seconds=1)).phase is Phase.BEFORE
    d = decide(Call("12302"), edge_table, cutover)
    assert (d.phase, d.action, d.prompts, d.hangup) == (Phase.AFTER, Action.RETIRED, ("retired-12302",), True)


def test_merge_after_its_window_still_queueing_keeps_its_priority(edge_table: RoutingTable) -> None:
    d = decide(Call("12303"), edge_table, LATER)
    assert (d.phase, d.action, d.target, d.prompts, d.priority, d.hangup) == (
        Phase.AFTER,
        Action.QUEUE,
        "gx-general",
        ("retired-12303",),
        5,
        False,
    )


def test_a_merged_line_without_dates_queues_without_prompts(edge_table: RoutingTable) -> None:
    d = decide(Call("12304"), edge_table, LATER)
    assert (d.phase, d.action, d.target, d.prompts, d.origin) == (Phase.NONE, Action.QUEUE, "gx-general", (), "12304")


def test_merge_before_cutover_with_the_department_closed_is_12345(edge_table: RoutingTable) -> None:
    check(
        decide(Call("12301"), edge_table, at(2021, 8, 28)),  # a Saturday
        number="12301",
        form="local",
        mode=Mode.MERGE,
        phase=Phase.BEFORE,
        action=Action.QUEUE,
        target="gx-general",
        centre="gx",
        prompts=("notice-12301", "closed"),
        origin="12301",
        priority=1,
        overflow_after=150,
        reason="12301 旅游: before cut-over, the department as before; outside its service hours, so 12345 at gx answers",
    )


def test_merge_before_cutover_with_the_department_open_rings_it(edge_table: RoutingTable) -> None:
    d = decide(Call("12301"), edge_table, at(2021, 8, 30))  # a Monday
    assert (d.action, d.target, d.dial, d.prompts, d.overflow) == (
        Action.DEPARTMENT,
        "water",
        "PJSIP/2587066@water",
        ("notice-12301",),
        "gx-general",
    )


# ---------------------------------------------------------------- parallel lines


def test_parallel_on_merged_seats_before_cutover_rings_its_department(small_table: RoutingTable) -> None:
    d = decide(Call("12315"), small_table, at(2021, 6, 1))
    assert (d.phase, d.action, d.target, d.dial, d.overflow, d.overflow_after, d.prompts) == (
        Phase.BEFORE,
        Action.DEPARTMENT,
        "dept-12315",
        "PJSIP/12315@pstn",
        "gx-l12315",
        90,
        (),
    )


def test_parallel_with_no_window_is_after_from_its_cutover(small_table: RoutingTable) -> None:
    cutover = at(2021, 11, 30, 0)
    assert decide(Call("12315"), small_table, cutover - dt.timedelta(seconds=1)).phase is Phase.BEFORE
    check(
        decide(Call("12315"), small_table, cutover),
        number="12315",
        form="local",
        mode=Mode.PARALLEL,
        phase=Phase.AFTER,
        action=Action.QUEUE,
        target="gx-l12315",
        centre="gx",
        origin="12315",
        expert="e12315",
        expert_queue="gx-expert-e12315",
        overflow="gx-general",
        overflow_after=90,
        reason="12315 市场监管: parallel line, 12345 skill queue l12315 at gx with expert seats e12315",
    )


def test_parallel_escalates_to_its_named_department(edge_table: RoutingTable) -> None:
    check(
        decide(Call("12333"), edge_table, LATER),
        number="12333",
        form="local",
        mode=Mode.PARALLEL,
        phase=Phase.AFTER,
        action=Action.QUEUE,
        target="gx-l12333",
        centre="gx",
        origin="12333",
        escalation="PJSIP/12333@rsj",
        priority=2,
        overflow="gx-l12315",
        overflow_after=150,
        reason="12333 人社: parallel line, 12345 skill queue l12333 at gx",
    )


def test_a_line_whose_queue_is_missing_goes_to_the_general_queue(edge_table: RoutingTable) -> None:
    d = decide(Call("12305"), edge_table, LATER)
    assert (d.action, d.target, d.overflow, d.overflow_after) == (Action.QUEUE, "gx-general", None, 150)


def test_parallel_plays_its_transition_prompt_only_in_its_window(edge_table: RoutingTable) -> None:
    """12333: cut-over 2021-11-30, explicit window to 2022-01-31."""
    before = decide(Call("12333"), edge_table, at(2021, 11, 29))
    inside = decide(Call("12333"), edge_table, at(2022, 1, 30))
    after = decide(Call("12333"), edge_table, at(2022, 1, 31, 0))
    assert (before.phase, before.action, before.target, before.prompts) == (
        Phase.BEFORE,
        Action.DEPARTMENT,
        "rsj",
        (),
    )
    assert (inside.phase, inside.action, inside.target, inside.prompts) == (
        Phase.TRANSITION,
        Action.QUEUE,
        "gx-l12333",
        ("notice-12333",),
    )
    assert (after.phase, after.prompts) == (Phase.AFTER, ())


def test_parallel_on_department_seats_follows_the_departments_hours(edge_table: RoutingTable) -> None:
    """12315 here: own seats with service hours, a window 2021-10-01 .. 2021-11-01 and no cut-over."""
    assert decide(Call("12315"), edge_table, at(2021, 9, 30)).phase is Phase.BEFORE
    open_ = decide(Call("12315"), edge_table, at(2021, 10, 13))  # Wednesday 10:00
    closed = decide(Call("12315"), edge_table, at(2021, 10, 13, 18))  # Wednesday 18:00, closed
    check(
        open_,
        number="12315",
        form="local",
        mode=Mode.PARALLEL,
        phase=Phase.TRANSITION,
        action=Action.DEPARTMENT,
        target="water",
        dial="PJSIP/2587066@water",
        centre="gx",
        prompts=("notice-12315",),
        origin="12315",
        overflow="gx-l12315",
        overflow_after=60,
        reason="12315 市场监管: keeps its own seats (各自接听); 12345 takes the overflow",
    )
    assert (closed.action, closed.target, closed.prompts, closed.overflow, closed.origin) == (
        Action.QUEUE,
        "gx-l12315",
        ("notice-12315", "closed"),
        "gx-general",
        "12315",
    )
    later = decide(Call("12315"), edge_table, at(2021, 11, 1, 8))
    assert (later.phase, later.action, later.prompts) == (Phase.AFTER, Action.DEPARTMENT, ())


def test_service_hours_are_read_in_the_regions_time_zone(small_table: RoutingTable) -> None:
    """02:00 UTC is 10:00 in 桂林 (open); 10:30 UTC is 18:30 (closed)."""
    open_ = decide(Call("2587066"), small_table, dt.datetime(2023, 1, 4, 2, tzinfo=dt.UTC))
    closed = decide(Call("2587066"), small_table, dt.datetime(2023, 1, 4, 10, 30, tzinfo=dt.UTC))
    assert (open_.action, closed.action) == (Action.DEPARTMENT, Action.QUEUE)


# ---------------------------------------------------------------- sub-centres, utilities, emergency, guidance


def test_region_wide_subcentre_is_the_whole_decision(small_table: RoutingTable) -> None:
    check(
        decide(Call("077312366"), small_table, LATER),
        number="12366",
        form="national",
        mode=Mode.SUBCENTRE,
        phase=Phase.AFTER,
        action=Action.SUBCENTRE,
        target="tax",
        dial="PJSIP/12366@tax",
        centre="gx",
        city="guilin",
        origin="12366",
        overflow="gx-general",
        overflow_after=120,
        reason="12366 税务: region-wide sub-centre tax; 12345 at gx takes the overflow; caller's city 桂林 from the dialled area code 0773",
    )


def test_per_city_subcentre_is_the_whole_decision(small_table: RoutingTable) -> None:
    check(
        decide(Call("12313", city="guilin"), small_table, LATER),
        number="12313",
        form="local",
        mode=Mode.SUBCENTRE,
        phase=Phase.AFTER,
        action=Action.SUBCENTRE,
        target="tobacco@guilin",
        dial="PJSIP/12313@gl",
        centre="guilin",
        city="guilin",
        origin="12313",
        overflow="guilin-general",
        overflow_after=120,
        reason="12313 烟草: 桂林 sub-centre tobacco@guilin; 12345 at guilin takes the overflow; caller's city 桂林 from the trunk",
    )


def test_per_city_subcentre_without_a_city_is_12345(small_table: RoutingTable) -> None:
    check(
        decide(Call("12313"), small_table, LATER),
        number="12313",
        form="local",
        mode=Mode.SUBCENTRE,
        phase=Phase.AFTER,
        action=Action.QUEUE,
        target="gx-general",
        centre="gx",
        origin="12313",
        overflow_after=120,
        reason="12313 烟草: per-city sub-centre but the caller's city is unknown; 12345 at gx answers and transfers",
    )


def test_a_known_city_without_a_subcentre_site_is_answered_by_12345(edge_table: RoutingTable) -> None:
    """In 12313's transition window (2022-12-01 .. 2023-02-01): its prompt first, wherever the call goes."""
    d = decide(Call("077312313"), edge_table, LATER)
    assert (d.phase, d.action, d.target, d.dial, d.centre, d.city, d.origin, d.overflow, d.prompts) == (
        Phase.TRANSITION,
        Action.QUEUE,
        "guilin-general",
        None,
        "guilin",
        "guilin",
        "12313",
        None,
        ("notice-12313",),
    )
    site = decide(Call("12313", city="nanning"), edge_table, LATER)
    assert (site.action, site.target, site.dial, site.prompts) == (
        Action.SUBCENTRE,
        "tobacco@nanning",
        "PJSIP/12313@nn",
        ("notice-12313",),
    )
    unknown = decide(Call("12313"), edge_table, LATER)
    assert (unknown.action, unknown.target, unknown.prompts) == (Action.QUEUE, "gx-general", ("notice-12313",))


def test_region_wide_subcentre_in_its_window_plays_the_transition_prompt(edge_table: RoutingTable) -> None:
    inside = decide(Call("12366"), edge_table, LATER)
    after = decide(Call("12366"), edge_table, at(2023, 2, 1, 0))
    assert (inside.phase, inside.action, inside.target, inside.prompts, inside.overflow) == (
        Phase.TRANSITION,
        Action.SUBCENTRE,
        "tax",
        ("notice-12366",),
        "gx-general",
    )
    assert (after.phase, after.prompts) == (Phase.AFTER, ())


def test_linked_utility_is_the_whole_decision(small_table: RoutingTable) -> None:
    check(
        decide(Call("2587066"), small_table, LATER),
        number="2587066",
        form="local",
        mode=Mode.LINKED,
        phase=Phase.NONE,
        action=Action.DEPARTMENT,
        target="water",
        dial="PJSIP/2587066@water",
        centre="guilin",
        city="guilin",
        origin="2587066",
        overflow="guilin-general",
        overflow_after=120,
        reason="2587066 供水: utility line (对接联通) answered by its own seats, 12345 in parallel; caller's city 桂林 from the line's area code 0773",
    )


def test_a_landline_belongs_to_its_own_city(edge_table: RoutingTable) -> None:
    calls = [Call("3587066"), Call("07723587066"), Call("3587066", caller="13877312345")]
    # A caller elsewhere (a 桂林 landline or mobile) dialling 柳州's line reaches 柳州: the line names its city.
    calls += [Call("07723587066", caller="07732801234"), Call("07723587066", caller="13877312345")]
    for call in calls:
        d = decide(call, edge_table, LATER)
        assert (d.number, d.mode, d.city, d.centre, d.target) == ("3587066", Mode.LINKED, "liuzhou", "gx", "water")
    by_trunk = decide(Call("3587066", city="guilin"), edge_table, LATER)
    assert (by_trunk.city, by_trunk.centre, by_trunk.overflow) == ("guilin", "guilin", "guilin-general")


def test_a_local_number_two_cities_share_is_the_callers_citys(edge_table: RoutingTable) -> None:
    """4587066 is a line in 柳州 and another in 桂林: dialled without an area code, the caller's landline decides."""
    from_guilin = decide(Call("4587066", caller="07732801234"), edge_table, LATER)
    from_liuzhou = decide(Call("4587066", caller="07722801234"), edge_table, LATER)
    dialled_area = decide(Call("07734587066", caller="07722801234"), edge_table, LATER)
    assert (from_guilin.mode, from_guilin.target, from_guilin.city) == (Mode.LINKED, "rsj", "guilin")
    assert (from_liuzhou.mode, from_liuzhou.target, from_liuzhou.city) == (Mode.LINKED, "water", "liuzhou")
    assert (dialled_area.mode, dialled_area.target, dialled_area.city) == (Mode.LINKED, "rsj", "guilin")
    for caller in (None, "13877312345", "07712801234"):
        d = decide(Call("4587066", caller=caller), edge_table, LATER)
        assert (d.mode, d.number, d.target) == (Mode.UNKNOWN, "4587066", "gx-general"), caller


def test_a_landline_dialled_with_a_wrong_area_code_is_unknown(edge_table: RoutingTable) -> None:
    d = decide(Call("07733587066"), edge_table, LATER)
    assert (d.mode, d.number, d.city, d.target) == (Mode.UNKNOWN, "3587066", "guilin", "guilin-general")


def test_emergency_is_the_whole_decision(small_table: RoutingTable) -> None:
    check(
        decide(Call("0773110"), small_table, LATER),
        number="110",
        form="national",
        mode=Mode.TRANSFER,
        phase=Phase.NONE,
        action=Action.EMERGENCY,
        target="110",
        dial="PJSIP/110@pstn",
        city="guilin",
        reason="110 报警: emergency line, connected to its own seats (never a 12345 queue); caller's city 桂林 from the dialled area code 0773",
    )


def test_guidance_is_the_whole_decision(small_table: RoutingTable) -> None:
    check(
        decide(Call("12339"), small_table, LATER),
        number="12339",
        form="local",
        mode=Mode.GUIDANCE,
        phase=Phase.NONE,
        action=Action.GUIDANCE,
        prompts=("guidance-12339",),
        hangup=True,
        reason="12339 国家安全: outside the merger; the caller is told where to turn, then hang up",
    )


# ---------------------------------------------------------------- the decision cache


@pytest.mark.usefixtures("caches_on")
def test_a_cached_decision_is_the_one_computed_afresh(small_table: RoutingTable) -> None:
    """Calls that differ only in what the cache key must tell apart get their own decisions."""
    table, cache = small_table, DecisionCache(small_table)
    calls = [
        Call("12345", caller="07712801234"),
        Call("12345", caller="07732801234"),
        Call("12345", city="guilin"),
        Call("077312345"),
        Call("+8677312345"),
        Call("12345", ivr_choice="3", topic="12358"),
        Call("12345", ivr_choice="7"),
        Call("12345", ivr_choice="1"),
        Call("12313", city="guilin"),
        Call("077312313"),
        Call("12315"),
        Call("12300"),
        Call("12313", caller="07712801234"),
        Call("12313", caller="07732801234"),
        Call("12313"),
        Call("12345", ivr_choice="3", topic="12315"),
        Call("12345", ivr_choice="3", topic="12348"),
        Call("12345", ivr_choice="3"),
        Call("12345", ivr_choice="2"),
        Call("12345", city="beijing"),
        Call("12345"),
        Call("077112345"),
        Call("2587066"),
        Call("07732587066"),
    ]
    for now in (LATER, LATER.replace(hour=22), at(2021, 6, 1), at(2021, 9, 15)):
        for call in calls:
            fresh = decide(call, table, now, DecisionCache(table))
            assert decide(call, table, now, cache) == fresh, call
            assert decide(call, table, now, cache) == fresh, call
            assert decide(call, table, now) == fresh, call  # no cache: decided afresh
    assert cache.decisions  # the decisions above were served from the cache the second time


def test_a_cache_made_for_another_table_is_refused_naming_why(
    small_table: RoutingTable, edge_table: RoutingTable
) -> None:
    with pytest.raises(ValueError, match=r"^decide\(\): the decision cache was made for another routing table$"):
        decide(Call("12345"), small_table, LATER, DecisionCache(edge_table))


@pytest.mark.usefixtures("caches_on")
def test_a_decision_made_before_is_served_again_as_the_same_object(small_table: RoutingTable) -> None:
    """decide's contract: with a cache, a repeated call gets the very decision made the first time."""
    cache = DecisionCache(small_table)
    for call in (Call("12345"), Call("12345", ivr_choice="2"), Call("077312345"), Call("12315"), Call("077312313")):
        first = decide(call, small_table, LATER, cache)
        assert decide(call, small_table, LATER, cache) is first, call


@pytest.mark.usefixtures("caches_on")
def test_the_cache_keeps_no_more_decisions_or_numbers_than_its_bounds(small_table: RoutingTable) -> None:
    """The menu digits and the dialled text are the caller's: the memos stop growing at their bounds,
    and the calls beyond them are still decided right."""
    menu = DecisionCache(small_table)
    menu.decisions_limit = 2
    for choice in "1279":
        call = Call("12345", ivr_choice=choice)
        assert decide(call, small_table, LATER, menu) == decide(call, small_table, LATER), call
    assert len(menu.decisions) == 2

    lines = DecisionCache(small_table)
    lines.decisions_limit = lines.parsed_limit = 2
    for dialled in ("12315", "12300", "077312313", "2587066"):
        call = Call(dialled)
        assert decide(call, small_table, LATER, lines) == decide(call, small_table, LATER), call
    assert len(lines.decisions) == 2 and len(lines.parsed) == 2
