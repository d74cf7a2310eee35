"""The routing rules, mode by mode and phase by phase, on the small fixture config."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from hotline_cti.config.compile import add_months
from hotline_cti.core.model import Action, Call, Mode, Phase
from hotline_cti.core.routing import decide
from hotline_cti.core.table import RoutingTable

TZ = ZoneInfo("Asia/Shanghai")
BEFORE = dt.datetime(2021, 6, 1, 10, tzinfo=TZ)
WINDOW = dt.datetime(2021, 9, 15, 10, tzinfo=TZ)  # merge window 2021-08-31 .. 2022-02-28
AFTER = dt.datetime(2022, 3, 1, 10, tzinfo=TZ)
LATER = dt.datetime(2023, 1, 4, 10, tzinfo=TZ)  # a Wednesday


def test_add_months_clamps_to_month_end() -> None:
    assert add_months(dt.date(2021, 8, 31), 6) == dt.date(2022, 2, 28)
    assert add_months(dt.date(2019, 12, 31), 6) == dt.date(2020, 6, 30)


def test_main_line_offers_menu_then_general_queue(small_table: RoutingTable) -> None:
    d = decide(Call("12345"), small_table, LATER)
    assert (d.mode, d.action, d.target, d.menu, d.prompts) == (
        Mode.MAIN,
        Action.QUEUE,
        "gx-general",
        True,
        ("welcome",),
    )


@pytest.mark.parametrize("dialled", ["077312345", "0773-12345", "+8677312345", "008677312345"])
def test_area_code_on_12345_selects_that_citys_centre(small_table: RoutingTable, dialled: str) -> None:
    d = decide(Call(dialled), small_table, LATER)
    assert (d.centre, d.target, d.city) == ("guilin", "guilin-general", "guilin")


@pytest.mark.parametrize(
    ("choice", "topic", "target", "expert"),
    [
        ("1", None, "gx-general", None),
        ("2", None, "gx-complaint", None),
        ("0", None, "gx-general", None),
        ("3", "12315", "gx-expert-e12315", "e12315"),
        ("3", "12348", "gx-l12348", None),
    ],
)
def test_main_menu_choices(
    small_table: RoutingTable, choice: str, topic: str | None, target: str, expert: str | None
) -> None:
    d = decide(Call("12345", ivr_choice=choice, topic=topic), small_table, LATER)
    assert (d.action, d.target, d.expert, d.menu, d.warnings) == (Action.QUEUE, target, expert, False, ())


def test_expert_choice_overflows_to_the_lines_skill_queue(small_table: RoutingTable) -> None:
    d = decide(Call("12345", ivr_choice="3", topic="12315"), small_table, LATER)
    assert (d.origin, d.overflow) == ("12315", "gx-l12315")


def test_invalid_menu_choice_goes_to_general_with_a_warning(small_table: RoutingTable) -> None:
    d = decide(Call("12345", ivr_choice="7"), small_table, LATER)
    assert d.target == "gx-general" and "not on the menu" in d.warnings[0]


def test_merge_before_cutover_rings_the_department(small_table: RoutingTable) -> None:
    d = decide(Call("12300"), small_table, BEFORE)
    assert (d.phase, d.action, d.target, d.dial, d.overflow) == (
        Phase.BEFORE,
        Action.DEPARTMENT,
        "dept-12300",
        "PJSIP/12300@pstn",
        "gx-general",
    )


def test_merge_in_window_plays_transition_and_tags_origin(small_table: RoutingTable) -> None:
    d = decide(Call("077312300"), small_table, WINDOW)
    assert (d.phase, d.action, d.target, d.prompts, d.origin) == (
        Phase.TRANSITION,
        Action.QUEUE,
        "guilin-general",
        ("transition-12300",),
        "12300",
    )
    assert d.skills == ("line:12300",)


def test_window_boundaries_are_local_midnight(small_table: RoutingTable) -> None:
    start = dt.datetime(2021, 8, 31, tzinfo=TZ)
    end = dt.datetime(2022, 2, 28, tzinfo=TZ)
    second = dt.timedelta(seconds=1)
    assert decide(Call("12300"), small_table, start - second).phase is Phase.BEFORE
    assert decide(Call("12300"), small_table, start).phase is Phase.TRANSITION
    assert decide(Call("12300"), small_table, end - second).phase is Phase.TRANSITION
    assert decide(Call("12300"), small_table, end).phase is Phase.AFTER
    # The same instant written in UTC decides the same way.
    assert decide(Call("12300"), small_table, start.astimezone(dt.UTC)).phase is Phase.TRANSITION


def test_merge_after_window_retires_and_hangs_up(small_table: RoutingTable) -> None:
    d = decide(Call("12300"), small_table, AFTER)
    assert (d.action, d.target, d.prompts, d.hangup) == (Action.RETIRED, None, ("retired-12300",), True)


def test_merge_after_window_may_still_reach_12345(small_table: RoutingTable) -> None:
    d = decide(Call("12301"), small_table, AFTER)
    assert (d.action, d.target, d.prompts, d.hangup, d.origin) == (
        Action.QUEUE,
        "gx-general",
        ("retired-12301",),
        False,
        "12301",
    )


@pytest.mark.parametrize("dialled", ["12315", "12358", "077112315", "+86 771 12358"])
def test_parallel_goes_to_skill_queue_with_expert(small_table: RoutingTable, dialled: str) -> None:
    d = decide(Call(dialled, city="guilin"), small_table, LATER)
    assert (d.number, d.action, d.target, d.expert, d.expert_queue, d.overflow, d.overflow_after) == (
        "12315",
        Action.QUEUE,
        "guilin-l12315",
        "e12315",
        "guilin-expert-e12315",
        "guilin-general",
        90,
    )


def test_parallel_keeping_seats_rings_department_with_12345_overflow(small_table: RoutingTable) -> None:
    d = decide(Call("12348"), small_table, LATER)
    assert (d.action, d.target, d.dial, d.overflow) == (Action.DEPARTMENT, "sft", "PJSIP/12348@sft", "gx-l12348")


def test_region_wide_subcentre(small_table: RoutingTable) -> None:
    d = decide(Call("077312366"), small_table, LATER)
    assert (d.action, d.target, d.dial, d.centre, d.overflow) == (
        Action.SUBCENTRE,
        "tax",
        "PJSIP/12366@tax",
        "gx",
        "gx-general",
    )


def test_per_city_subcentre_follows_the_callers_city(small_table: RoutingTable) -> None:
    by_trunk = decide(Call("12313", city="nanning"), small_table, LATER)
    by_dialled = decide(Call("077312313"), small_table, LATER)
    by_caller = decide(Call("12313", caller="07732801234"), small_table, LATER)
    assert (by_trunk.target, by_trunk.dial) == ("tobacco@nanning", "PJSIP/12313@nn")
    assert by_dialled.target == by_caller.target == "tobacco@guilin"
    assert by_dialled.overflow == "guilin-general"


def test_per_city_subcentre_with_unknown_city_is_answered_by_12345(small_table: RoutingTable) -> None:
    d = decide(Call("12313"), small_table, LATER)
    assert (d.action, d.target) == (Action.QUEUE, "gx-general")


def test_shared_area_code_does_not_guess_the_city(small_table: RoutingTable) -> None:
    d = decide(Call("077112313"), small_table, LATER)
    assert d.city is None and d.action is Action.QUEUE
    assert "shared by 南宁、崇左" in d.warnings[0]


@pytest.mark.parametrize("dialled", ["110", "0773110", "+86773110"])
def test_emergency_goes_to_its_own_line_never_a_queue(small_table: RoutingTable, dialled: str) -> None:
    d = decide(Call(dialled), small_table, LATER)
    assert (d.action, d.target, d.dial, d.overflow, d.centre) == (
        Action.EMERGENCY,
        "110",
        "PJSIP/110@pstn",
        None,
        None,
    )


def test_linked_utility_rings_its_seats_and_12345_when_closed(small_table: RoutingTable) -> None:
    open_ = decide(Call("2587066"), small_table, LATER)  # Wednesday 10:00
    closed = decide(Call("2587066"), small_table, LATER.replace(hour=22))
    assert (open_.action, open_.target, open_.overflow, open_.city) == (
        Action.DEPARTMENT,
        "water",
        "guilin-general",
        "guilin",
    )
    assert (closed.action, closed.target, closed.prompts) == (Action.QUEUE, "guilin-general", ("closed",))


def test_landline_in_national_form_and_wrong_area(small_table: RoutingTable) -> None:
    assert decide(Call("07732587066"), small_table, LATER).mode is Mode.LINKED
    assert decide(Call("07712587066"), small_table, LATER).mode is Mode.UNKNOWN


def test_guidance_plays_the_channel_prompt_then_hangs_up(small_table: RoutingTable) -> None:
    d = decide(Call("12339"), small_table, LATER)
    assert (d.action, d.target, d.prompts, d.hangup) == (Action.GUIDANCE, None, ("guidance-12339",), True)


@pytest.mark.parametrize(
    ("dialled", "warning"),
    [
        ("99999", "99999 is not in the merger list"),
        ("", "dialled '' is not a telephone number"),
        ("12a45", "dialled '12a45' is not a telephone number"),
        ("+86", "dialled '+86' is not a telephone number"),
        ("☎", "dialled '☎' is not a telephone number"),
    ],
)
def test_unknown_or_garbage_goes_to_general_with_warning(small_table: RoutingTable, dialled: str, warning: str) -> None:
    d = decide(Call(dialled), small_table, LATER)
    assert (d.mode, d.action, d.target) == (Mode.UNKNOWN, Action.QUEUE, "gx-general")
    assert d.warnings == (warning,)
    assert d.reason == f"warning: {warning}; sent to the 12345 general queue at gx"


def test_json_form_has_the_public_keys(small_table: RoutingTable) -> None:
    data = decide(Call("12315"), small_table, LATER).to_dict()
    assert {"mode", "phase", "action", "target", "expert", "prompts", "reason"} <= data.keys()
    assert data["mode"] == "parallel" and data["expert"] == "e12315" and isinstance(data["prompts"], list)
