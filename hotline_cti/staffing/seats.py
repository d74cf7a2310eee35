"""Seats one group needs for the targets, with the figures that justify the number."""

from __future__ import annotations

from dataclasses import dataclass

from hotline_cti.staffing.erlang import agents_for_answered, agents_for_service_level, erlang_a, service_level
from hotline_cti.staffing.traffic import GroupLoad, Targets


@dataclass(frozen=True, slots=True)
class SeatNeed:
    """Seats for the service level (Erlang C), for the answered floor (Erlang A), and what that gives."""

    load: GroupLoad
    for_service_level: int
    for_answered: int
    seats: int  # the larger of the two
    service_level: float | None  # P(wait ≤ target seconds) with ``seats`` (Erlang C); None without calls
    answered: float | None  # answered fraction with ``seats`` (Erlang A)


def seats_needed(load: GroupLoad, targets: Targets) -> SeatNeed:
    """Seats meeting both the service level and the answered floor for ``load``."""
    if load.calls_per_hour <= 0:
        return SeatNeed(load, 0, 0, 0, None, None)
    a = load.erlangs
    by_sl = agents_for_service_level(a, load.aht_s, targets.service_level, targets.within_s)
    by_answered = agents_for_answered(load.calls_per_hour, load.aht_s, load.patience_s, targets.answered)
    seats = max(by_sl, by_answered)
    return SeatNeed(
        load,
        by_sl,
        by_answered,
        seats,
        service_level(seats, a, load.aht_s, targets.within_s),
        erlang_a(seats, load.calls_per_hour, load.aht_s, load.patience_s).answered,
    )
