"""Holidays, make-up working days (调休) and closures: validated with file:line, compiled into the table,
routed with the out-of-hours closed handling, shown by ``config show``, ``config diff`` and the merger view."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from hotline_cti.cli.main import main
from hotline_cti.config.compile import compile_config
from hotline_cti.config.errors import ConfigError
from hotline_cti.config.loader import load_config
from hotline_cti.core.calendar import DayEffect, build_calendar
from hotline_cti.core.memo import DecisionCache
from hotline_cti.core.model import Action, Call, epoch_seconds
from hotline_cti.core.routing import decide
from hotline_cti.core.table import RoutingTable
from hotline_cti.wallboard.merger import merger_rows
from tests.paths import REPO

GUANGXI = REPO / "merger_config" / "guangxi.yaml"
TZ = dt.timezone(dt.timedelta(hours=8))

HOLIDAY_YAML = """\
extends: guangxi.yaml
departments:
  - {id: sft-12348, service_hours: "mon-fri 08:30-17:30"}
  - {id: water, name: 南宁供水, dial: PJSIP/2666110@pstn}
  - {id: archive, name: 档案馆, dial: PJSIP/2600000@pstn, service_hours: "mon-fri 09:00-17:00", public_holidays: false}
prompts:
  holiday-12345: 国庆节期间12345照常为您服务。
  closed-upgrade: 系统升级，今天由12345代为受理。
holidays:
  - {date: 2026-10-01, until: 2026-10-07, name: 国庆节, message: holiday-12345}
  - {date: 2026-10-10, name: 国庆节调休上班, workday: true, hours_of: fri}
  - {date: 2026-09-27, name: 国庆节调休上班, workday: true}
  - {date: 2026-07-15, name: 系统升级, departments: [sft-12348], prompt: closed-upgrade}
  - {date: 2026-08-03, until: 2026-08-04, name: 管网检修, departments: [water]}
  - {date: 2026-10-03, name: 值班, departments: [sft-12348], workday: true}
hotlines:
  - {number: "2666110", name: 南宁供水, unit: 南宁供水公司, mode: linked, department: water, city: nanning}
  - {number: "2600000", name: 档案馆, unit: 档案馆, mode: linked, department: archive, city: nanning}
"""


def write(tmp_path: Path, text: str, name: str = "hol.yaml") -> Path:
    shutil.copy(GUANGXI, tmp_path / "guangxi.yaml")
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def table(tmp_path: Path) -> RoutingTable:
    return compile_config(load_config(write(tmp_path, HOLIDAY_YAML)).model)


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=TZ)


def test_public_holiday_closes_a_department_that_keeps_its_seats(table: RoutingTable) -> None:
    d = decide(Call("12348"), table, at("2026-10-01T10:00"))
    assert d.action is Action.QUEUE and d.target == "gx-l12348" and d.prompts == ("closed",)
    assert "closed 2026-10-01..2026-10-07 (国庆节)" in d.reason
    # the last day of the run, and the first day after it
    assert decide(Call("12348"), table, at("2026-10-07T16:00")).action is Action.QUEUE
    assert decide(Call("12348"), table, at("2026-10-08T10:00")).action is Action.DEPARTMENT
    # the day before, a Wednesday within its hours
    assert decide(Call("12348"), table, at("2026-09-30T17:00")).action is Action.DEPARTMENT


def test_make_up_working_day_opens_with_the_named_weekday_hours(table: RoutingTable) -> None:
    saturday = decide(Call("12348"), table, at("2026-10-10T10:00"))
    assert saturday.action is Action.DEPARTMENT and saturday.dial == "PJSIP/12348@pstn"
    assert "2026-10-10 国庆节调休上班 (make-up working day, fri hours)" in saturday.reason
    after_hours = decide(Call("12348"), table, at("2026-10-10T18:00"))
    assert after_hours.action is Action.QUEUE and after_hours.prompts == ("closed",)
    # a working day is not a closed day: the department is shut for the hour, not for the day
    assert after_hours.reason.endswith(
        "2026-10-10 国庆节调休上班 (make-up working day, fri hours); outside its service hours, so 12345 at gx answers"
    )
    # the Saturday after, an ordinary weekend day: closed as out of hours
    later = decide(Call("12348"), table, at("2026-10-17T10:00"))
    assert later.action is Action.QUEUE and "outside its service hours" in later.reason
    # a Sunday make-up day without hours_of keeps Monday's hours
    assert decide(Call("12348"), table, at("2026-09-27T09:00")).action is Action.DEPARTMENT


def test_a_departments_own_entries_win_over_the_region_and_play_their_prompt(table: RoutingTable) -> None:
    closure = decide(Call("12348"), table, at("2026-07-15T10:00"))
    assert closure.action is Action.QUEUE and closure.prompts == ("closed-upgrade",)
    # its own working day inside the national holiday
    assert decide(Call("12348"), table, at("2026-10-03T10:00")).action is Action.DEPARTMENT
    assert decide(Call("12348"), table, at("2026-10-04T10:00")).action is Action.QUEUE


def test_before_its_cutover_a_line_rings_its_department_by_the_departments_calendar(tmp_path: Path) -> None:
    """Before cut-over the department answers as before, holidays and make-up working days included."""
    before = (
        '  - {number: "12348", name: 法律, unit: 司法厅, mode: parallel, department: sft-12348, cutover: 2027-01-01}\n'
    )
    table = compile_config(load_config(write(tmp_path, HOLIDAY_YAML + before)).model)
    holiday = decide(Call("12348"), table, at("2026-10-01T10:00"))
    assert holiday.action is Action.QUEUE and holiday.prompts == ("closed",)
    assert holiday.reason == (
        "12348 法律: before cut-over, the department as before; closed 2026-10-01..2026-10-07 (国庆节), "
        "so 12345 at gx answers"
    )
    make_up = decide(Call("12348"), table, at("2026-10-10T10:00"))
    assert make_up.action is Action.DEPARTMENT and make_up.reason == (
        "12348 法律: before cut-over, the department as before; 2026-10-10 国庆节调休上班 (make-up working day, fri hours)"
    )


def test_a_7x24_utility_keeps_holidays_but_not_its_own_closures(table: RoutingTable) -> None:
    call = Call("0771-2666110")
    assert decide(call, table, at("2026-10-01T10:00")).action is Action.DEPARTMENT
    closed = decide(call, table, at("2026-08-04T23:00"))
    assert closed.action is Action.QUEUE and closed.prompts == ("closed",) and "管网检修" in closed.reason
    assert decide(call, table, at("2026-08-05T00:00")).action is Action.DEPARTMENT


def test_a_department_off_the_public_calendar_keeps_its_weekly_hours(table: RoutingTable) -> None:
    call = Call("0771-2600000")
    assert decide(call, table, at("2026-10-01T10:00")).action is Action.DEPARTMENT  # a Thursday
    assert decide(call, table, at("2026-10-10T10:00")).action is Action.QUEUE  # a Saturday: no make-up day


def test_12345_stays_open_and_plays_the_days_message_before_the_welcome(table: RoutingTable) -> None:
    d = decide(Call("12345"), table, at("2026-10-02T03:00"))
    assert d.action is Action.QUEUE and d.menu and d.prompts == ("holiday-12345", "welcome")
    assert d.reason == "12345 at gx: 2026-10-01..2026-10-07 国庆节 message, main menu, then the general queue"
    assert decide(Call("12345"), table, at("2026-10-08T03:00")).prompts == ("welcome",)
    # the menu's second decision plays no welcome and no message
    assert decide(Call("12345", ivr_choice="1"), table, at("2026-10-02T03:00")).prompts == ()


def test_the_calendar_is_compiled_once_into_runs(table: RoutingTable) -> None:
    dept = table.lines["12348"].department
    assert dept is not None and dept.calendar is not None
    entries = [e.describe() for e in dept.calendar.entries()]
    assert entries == [
        "2026-07-15 系统升级 (closed)",
        "2026-09-27 国庆节调休上班 (make-up working day, mon hours)",
        "2026-10-01..2026-10-07 国庆节 (closed)",
        "2026-10-03 值班 (make-up working day, mon hours)",
        "2026-10-10 国庆节调休上班 (make-up working day, fri hours)",
    ]
    # 10-01..10-07 with its own 10-03: three runs of the holiday around one working day
    national = [e for e in dept.calendar.effects if e is not None and e.name == "国庆节"]
    assert len(national) == 2
    # each entry is one object, shared by the departments' calendars and 12345's (calendar_effects)
    assert national[0] is national[1]
    assert table.main_calendar is not None and table.main_calendar.entries() == (national[0],)
    # departments on the plain region calendar share one compiled object
    plain = compile_config(load_config(GUANGXI).model)
    assert plain.lines["12348"].department is not None and plain.lines["12348"].department.calendar is None


def test_runs_start_and_end_at_local_midnight_and_leave_the_gaps_ordinary() -> None:
    tz = ZoneInfo("Asia/Shanghai")
    day = dt.date(2026, 10, 1)

    def effect(name: str, first: int, last: int) -> DayEffect:
        return DayEffect(name, day.replace(day=first), day.replace(day=last), True, 0, None, None)

    holiday, duty, closure = effect("国庆节", 1, 2), effect("值班", 3, 3), effect("检修", 5, 5)
    days = {day.replace(day=1): holiday, day.replace(day=2): holiday, day.replace(day=3): duty}
    calendar = build_calendar({**days, day.replace(day=5): closure}, tz)
    assert calendar is not None and build_calendar({}, tz) is None

    def on(date: int, hour: int, minute: int = 0) -> DayEffect | None:
        return calendar.at(dt.datetime(2026, 10, date, hour, minute, tzinfo=tz).timestamp())

    assert on(1, 0) is holiday and on(2, 23, 59) is holiday and on(3, 0) is duty and on(3, 23, 59) is duty
    assert on(4, 0) is None and on(4, 23, 59) is None  # the one ordinary day between two entries
    assert on(5, 0) is closure and on(6, 0) is None
    assert calendar.at(dt.datetime(2026, 9, 30, 23, 59, tzinfo=tz).timestamp()) is None  # the evening before
    # one bound where each run starts or ends: adjacent runs share theirs, a gap gets one of its own
    assert len(calendar.bounds) == 5 and calendar.effects == (None, holiday, duty, None, closure, None)


def test_cached_decisions_do_not_leak_across_days(table: RoutingTable) -> None:
    """The decision cache key carries the day's effect: the same call on a holiday and a workday differs."""
    for _ in range(2):
        assert decide(Call("12348"), table, at("2026-10-01T10:00")).action is Action.QUEUE
        assert decide(Call("12348"), table, at("2026-10-09T10:00")).action is Action.DEPARTMENT
        assert decide(Call("12348"), table, at("2026-07-15T10:00")).prompts == ("closed-upgrade",)


def test_posix_seconds_decide_as_the_datetime_they_are(table: RoutingTable) -> None:
    """The FastAGI path's clock gives POSIX seconds, not datetimes: the same instant, the same decision.

    Around every edge the time enters by: service hours (08:30, 17:30, local), day runs (local midnight),
    make-up days, a department's own closure, 12345's day message, and before/after a line's cut-over.
    """
    days = ["2026-07-15", "2026-08-03", "2026-09-27", "2026-09-30", "2026-10-01", "2026-10-03", "2026-10-07"]
    days += ["2026-10-08", "2026-10-10", "2026-10-17", "2021-12-14", "2021-12-15", "2022-03-01"]
    times = ["00:00:00", "08:29:59", "08:30:00", "12:00:00", "17:29:59", "17:30:00", "23:59:59"]
    numbers = ["12348", "2666110", "2600000", "12345", "12315", "12300", "0773-12345", "110", "99999"]
    cached = DecisionCache(table)
    checked = 0
    for day in days:
        for clock in times:
            moment = at(f"{day}T{clock}")
            ts = epoch_seconds(moment)
            assert ts == moment.timestamp() and epoch_seconds(ts) is ts
            for number in numbers:
                call = Call(number, caller="13800138000")
                assert decide(call, table, ts) == decide(call, table, moment), (number, moment)
                memo = decide(call, table, ts, cached)
                assert memo == decide(call, table, moment, cached), (number, moment)
                if number != "99999":  # a known line's decision is served again, whichever form the time came in
                    assert memo is decide(call, table, moment, cached), (number, moment)
                checked += 1
    assert checked == len(days) * len(times) * len(numbers)


def test_a_routing_time_without_a_zone_is_refused_naming_it(table: RoutingTable) -> None:
    for number in ("12348", "12345", "99999"):  # a line, 12345, a number the config does not know: every path
        with pytest.raises(ValueError, match="timezone-aware: 2026-10-01T10:00:00"):
            decide(Call(number), table, dt.datetime(2026, 10, 1, 10))
    assert epoch_seconds(1_790_000_000) == 1_790_000_000.0


BAD = """\
extends: guangxi.yaml
departments:
  - {id: sft-12348, service_hours: "mon-fri 08:30-17:30"}
holidays:
  - {date: 2026-10-01, until: 2026-10-07, name: 国庆节, prompt: no-such-prompt}
  - {date: 2026-10-05, name: 重复, workday: true}
  - {date: 2026-10-09, until: 2026-10-08, name: 倒序}
  - {date: 2026-10-12, name: 周一调休, workday: true, prompt: closed}
  - {date: 2026-10-13, name: 未知, departments: [ghost, sft-12348, sft-12348], message: closed}
  - {date: 2026-10-14, name: 太长, until: 2030-01-01}
  - {date: 2026-10-15, name: 时段, hours_of: mon}
  - {date: 2026-10-17, name: 周六休, departments: [sft-12348]}
  - {date: 2026-10-17, name: 周六班, departments: [sft-12348], workday: true}
  - {date: 2026-10-24, name: 周六A, departments: [sft-12348]}
  - {date: 2026-10-24, name: 周六B, departments: [sft-12348]}
"""


def test_every_calendar_problem_is_reported_with_its_place(tmp_path: Path) -> None:
    path = write(tmp_path, BAD)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    out = [str(p) for p in info.value.problems]
    lines = BAD.splitlines()

    def line(needle: str) -> str:
        return f"{path}:{next(n for n, text in enumerate(lines, 1) if needle in text)}:"

    expected = [
        (line("国庆节"), "holidays[0].prompt", "prompt 'no-such-prompt' is not in the catalogue"),
        (
            line("重复"),
            "holidays[1].date",
            "a make-up working day (调休上班) is a weekend day, but 2026-10-05 is a mon",
        ),
        (line("重复"), "holidays[1].date", "contradicts holidays[0] 2026-10-01..2026-10-07 国庆节 at line 5"),
        (line("倒序"), "holidays[2].until", "ends (2026-10-08) before it starts (2026-10-09)"),
        (line("周一调休"), "holidays[3].prompt", "a make-up working day closes nothing"),
        (line("未知"), "holidays[4].message", "'message' is 12345's exception message"),
        (line("未知"), "holidays[4].departments[0]", "unknown department 'ghost'"),
        (line("未知"), "holidays[4].departments[2]", "department 'sft-12348' is listed twice"),
        (line("太长"), "holidays[5].until", "an entry spans at most 366 days"),
        (line("时段"), "holidays[6].hours_of", "hours_of is for make-up working days"),
        (line("周六班"), "holidays[8].date", "contradicts holidays[7] 2026-10-17 周六休 at line 12 on 2026-10-17"),
        (line("周六B"), "holidays[10].date", "overlaps holidays[9] 2026-10-24 周六A at line 14"),
    ]
    for place, where, message in expected:
        assert any(p.startswith(place) and f" {where}: " in p and message in p for p in out), (where, message, out)
    assert len(out) == len(expected) + 1  # and 周一调休 is on a Monday
    assert any(p.startswith(line("周一调休")) and "2026-10-12 is a mon" in p for p in out)


def test_a_bad_date_and_a_bad_key_are_placed_and_the_rest_still_checked(tmp_path: Path) -> None:
    text = HOLIDAY_YAML.replace("name: 管网检修", "name: 管网检修, colour: red").replace("2026-07-15", "2026-02-30")
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    out = [str(p) for p in info.value.problems]
    row = next(n for n, t in enumerate(text.splitlines(), 1) if "2026-02-30" in t)
    assert any(p.startswith(f"{path}:{row}:") and "day is out of range for month" in p for p in out)
    assert any("holidays[4].colour: unknown key 'colour'" in p for p in out)


def test_config_show_lists_the_calendar(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "show", str(write(tmp_path, HOLIDAY_YAML))]) == 0
    out = capsys.readouterr().out
    assert "holidays (6)" in out
    row = next(line for line in out.splitlines() if line.startswith("2026-10-01..2026-10-07"))
    assert "国庆节" in row and "closed" in row and "region" in row and "holiday-12345" in row
    row = next(line for line in out.splitlines() if line.startswith("2026-07-15"))
    assert "sft-12348" in row and "closed-upgrade" in row


def test_config_diff_shows_the_calendar_and_what_a_holiday_changes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    new = write(tmp_path, HOLIDAY_YAML)
    old = write(
        tmp_path,
        HOLIDAY_YAML.replace("国庆节调休上班, workday: true, hours_of: fri", "补班, workday: true"),
        "old.yaml",
    )
    assert main(["config", "diff", str(old), str(new), "--at", "2026-10-01T10:00"]) == 0
    out = capsys.readouterr().out
    assert "holiday removed: 2026-10-10 补班: workday (mon hours), region" in out
    assert "holiday added:   2026-10-10 国庆节调休上班: workday (fri hours), region" in out
    assert out.rstrip().endswith("holidays: 1 added, 1 removed")
    # the same file, an ordinary day against the holiday: 12348 closes, 12345 gets its message
    assert main(["config", "diff", str(new), str(new), "--at", "2026-09-30T10:00", "--at2", "2026-10-01T10:00"]) == 0
    out = capsys.readouterr().out
    assert "changed: 12348" in out and "action: department -> queue" in out and "prompts: - -> closed" in out
    assert "prompts: welcome -> holiday-12345, welcome" in out
    assert "holiday" not in out.rsplit("diff:", 1)[1]


def test_merger_view_shows_the_departments_exception_day(table: RoutingTable) -> None:
    rows = {r.number: r for r in merger_rows(table, {}, at("2026-10-02T10:00"))}
    assert rows["12348"].calendar == "today: 2026-10-01..2026-10-07 国庆节 (closed)"
    assert rows["12348"].to_dict()["calendar"] == rows["12348"].calendar
    rows = {r.number: r for r in merger_rows(table, {}, at("2026-10-08T10:00"))}
    assert rows["12348"].calendar == "next: 2026-10-10 国庆节调休上班 (make-up working day, fri hours)"
    assert rows["12300"].calendar is None  # no department of its own
    rows = {r.number: r for r in merger_rows(table, {}, at("2026-11-01T10:00"))}
    assert rows["12348"].calendar is None  # nothing to come


def test_the_merger_page_has_the_holidays_column() -> None:
    from hotline_cti.wallboard import assets

    page = assets.merger_page("u", "viewer")
    assert 'data-i18n="calendar"' in page and page.index('data-i18n="days_left"') < page.index('data-i18n="calendar"')
    assert 'id + "-calendar", m.calendar' in assets.script()
