"""Service hours: parsing every accepted spelling and refusal, and open/closed at each window's edges."""

from __future__ import annotations

import datetime as dt

import pytest

from hotline_cti.core.hours import ALWAYS, ServiceHours, parse_hours

WED = dt.datetime(2023, 1, 4)  # a Wednesday


@pytest.mark.parametrize("text", ["7x24", "24x7", "always", "7×24", " 7X24 ", "ALWAYS"])
def test_round_the_clock_spellings(text: str) -> None:
    hours = parse_hours(text)
    assert hours == ALWAYS and hours.always and hours.windows == ()


def test_always_is_open_at_any_time() -> None:
    assert ALWAYS.is_open(WED.replace(hour=3)) and ServiceHours(True, ((0, 0, 1),)).is_open(WED)


@pytest.mark.parametrize(
    ("text", "windows"),
    [
        ("mon 08:30-17:30", ((0, 510, 1050),)),
        ("MON-Wed 00:00-24:00", ((0, 0, 1440), (1, 0, 1440), (2, 0, 1440))),
        ("sat-mon 09:00-12:00", ((5, 540, 720), (6, 540, 720), (0, 540, 720))),
        ("mon-fri 08:30-17:30; sat 09:00-12:00", (*((d, 510, 1050) for d in range(5)), (5, 540, 720))),
        (" sun 23:58-23:59 ;; ", ((6, 1438, 1439),)),
        ("mon-mon 08:00-09:00", ((0, 480, 540),)),
    ],
)
def test_weekly_windows(text: str, windows: tuple[tuple[int, int, int], ...]) -> None:
    assert parse_hours(text) == ServiceHours(False, windows)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no service window given (use '7x24' for round-the-clock service)"),
        (" ; ", "no service window given (use '7x24' for round-the-clock service)"),
        ("mon 8:30-17:30", "'mon 8:30-17:30' is not a window like 'mon-fri 08:30-17:30' (or use '7x24')"),
        ("monday 08:30-17:30", "'monday 08:30-17:30' is not a window like 'mon-fri 08:30-17:30' (or use '7x24')"),
        ("mon 08:30-17:30 x", "'mon 08:30-17:30 x' is not a window like 'mon-fri 08:30-17:30' (or use '7x24')"),
        ("xmon 08:30-17:30", "'xmon 08:30-17:30' is not a window like 'mon-fri 08:30-17:30' (or use '7x24')"),
        ("abc 08:00-09:00", "'abc': days are mon tue wed thu fri sat sun"),
        ("mon-abc 08:00-09:00", "'mon-abc': days are mon tue wed thu fri sat sun"),
        ("mon 25:00-26:00", "'25:00' is not a time of day"),
        ("mon 08:60-09:00", "'08:60' is not a time of day"),
        ("mon 08:00-24:01", "'24:01' is not a time of day"),
        ("mon 09:00-09:00", "'mon 09:00-09:00': the window closes before it opens"),
        ("mon 09:00-08:59", "'mon 09:00-08:59': the window closes before it opens"),
    ],
)
def test_refusals_name_the_bad_part(text: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_hours(text)
    assert str(info.value) == message


def test_the_last_minute_of_an_hour_and_midnight_are_times_of_day() -> None:
    assert parse_hours("tue 08:59-24:00") == ServiceHours(False, ((1, 539, 1440),))


@pytest.mark.parametrize(
    ("hour", "minute", "open_"),
    [(8, 29, False), (8, 30, True), (12, 0, True), (17, 29, True), (17, 30, False), (23, 59, False)],
)
def test_open_from_the_first_minute_to_before_the_last(hour: int, minute: int, open_: bool) -> None:
    hours = parse_hours("mon-fri 08:30-17:30")
    assert hours.is_open(WED.replace(hour=hour, minute=minute)) is open_


def test_open_only_on_the_windows_days() -> None:
    hours = parse_hours("wed 08:00-09:00; fri 10:00-11:00")
    assert hours.is_open(WED.replace(hour=8))
    assert not hours.is_open(WED.replace(hour=10))
    assert not hours.is_open((WED + dt.timedelta(days=1)).replace(hour=8))
    assert hours.is_open((WED + dt.timedelta(days=2)).replace(hour=10))
