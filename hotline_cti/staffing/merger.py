"""The merger what-if: from each line's traffic before the merger, the seats needed after each cut-over date.

Where a line's calls go once it is cut over (归并方式):

* merge (整体并入) and parallel (双号并行): into 12345 — the line's skill queue if it has one, else the main
  queue; the ``professional`` share goes to the line's expert seat group (专家座席) when it has one. A
  parallel line whose seats stay with a department (``seats: department``) keeps its calls there.
* subcentre (设分中心): 12345 answers general questions from the knowledge base (main queue); the
  ``professional`` share stays with the sub-centre.
* linked (对接联通): the utility keeps its seats and its calls (12345 only transfers).
* transfer (emergency) and guidance lines bring no traffic to anyone here.

Before its cut-over a line is answered by its own seats. A line without a cut-over date counts as cut over
from the start. Pure: a validated config and traffic file in, stages out.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from hotline_cti.config.errors import ConfigError, Problem
from hotline_cti.config.schema import Hotline, MergerConfig
from hotline_cti.config.yamlsource import key_place_of
from hotline_cti.core.model import Mode, Seats
from hotline_cti.staffing.seats import SeatNeed, seats_needed
from hotline_cti.staffing.traffic import GroupLoad, TrafficFile, pool, resolve

QUEUE, EXPERT, SUBCENTRE, DEPARTMENT, OWN = "queue", "expert", "subcentre", "department", "own"
KIND_ORDER = (QUEUE, EXPERT, SUBCENTRE, DEPARTMENT, OWN)
KIND_LABELS = {
    QUEUE: "12345队列 queue",
    EXPERT: "专家座席 expert group",
    SUBCENTRE: "分中心 sub-centre",
    DEPARTMENT: "部门座席 department",
    OWN: "原热线座席 line's own seats",
}


@dataclass(frozen=True, slots=True)
class GroupNeed:
    """One group of seats in a stage and what it needs."""

    kind: str  # queue / expert / subcentre / department / own
    name: str
    need: SeatNeed


@dataclass(slots=True)
class Stage:
    """The seats needed from ``date`` on (None: before the first cut-over), after ``cut_over`` lines moved."""

    date: dt.date | None
    cut_over: list[str]
    groups: list[GroupNeed] = field(default_factory=list)

    @property
    def seats(self) -> int:
        """All seats of the stage."""
        return sum(g.need.seats for g in self.groups)

    def seats_of(self, kind: str) -> int:
        """Seats of one kind of group."""
        return sum(g.need.seats for g in self.groups if g.kind == kind)


def _destinations(
    line: Hotline, load: GroupLoad, professional: float, main_queue: str
) -> list[tuple[str, str, GroupLoad]]:
    """(kind, group, load) the line's calls go to once cut over."""
    queue = line.queue or main_queue
    if line.mode in (Mode.MERGE, Mode.PARALLEL):
        if line.seats == Seats.DEPARTMENT and line.department:
            return [(DEPARTMENT, line.department, load)]
        if line.expert and professional:
            return [(QUEUE, queue, load.share(1 - professional)), (EXPERT, line.expert, load.share(professional))]
        return [(QUEUE, queue, load)]
    if line.mode == Mode.SUBCENTRE:
        out = [(QUEUE, main_queue, load.share(1 - professional))]
        if line.subcentre:
            out.append((SUBCENTRE, line.subcentre, load.share(professional)))
        return out
    if line.mode == Mode.LINKED:
        return [(OWN, line.number, load)]
    return []  # transfer, guidance: none


def _check(config: MergerConfig, traffic: TrafficFile, tree: Any) -> dict[str, Hotline]:
    lines = {h.number: h for h in config.hotlines}
    problems = [
        Problem(
            key_place_of(tree, ("lines", number)),
            f"lines.{number}",
            f"{number} is not a line of region {config.region.id}'s merger list",
        )
        for number in traffic.lines
        if number not in lines
    ]
    if traffic.main is None:
        problems.append(
            Problem(getattr(tree, "place", None), "main", "required for the merger what-if: 12345's own calls per hour")
        )
    if problems:
        raise ConfigError(problems)
    return lines


def merger_stages(config: MergerConfig, traffic: TrafficFile, tree: Any = None) -> list[Stage]:
    """The stage before any cut-over, then one stage per cut-over date of a line with traffic.

    ``tree`` is the traffic file as read (for the places of errors); ConfigError lists unknown lines.
    """
    lines = _check(config, traffic, tree)
    assert traffic.main is not None  # _check
    defaults = traffic.defaults
    dates = sorted({c for n in traffic.lines if (c := lines[n].cutover) is not None})
    stages: list[Stage] = []
    for date in [None, *dates]:
        streams: dict[tuple[str, str], list[GroupLoad]] = {
            (QUEUE, traffic.main_queue): [resolve(traffic.main, defaults)]
        }
        moved = []
        for number, entry in traffic.lines.items():
            line = lines[number]
            load = resolve(entry, defaults)
            cut = line.cutover is None or (date is not None and line.cutover <= date)
            if date is not None and line.cutover == date:
                moved.append(number)
            if cut:
                targets = _destinations(line, load, entry.professional, traffic.main_queue)
            elif line.mode in (Mode.TRANSFER, Mode.GUIDANCE):
                targets = []
            else:
                targets = [(OWN, number, load)]
            for kind, name, part in targets:
                streams.setdefault((kind, name), []).append(part)
        stage = Stage(date, moved)
        for (kind, name), parts in sorted(streams.items(), key=lambda kv: (KIND_ORDER.index(kv[0][0]), kv[0][1])):
            stage.groups.append(GroupNeed(kind, name, seats_needed(pool(parts), traffic.targets)))
        stages.append(stage)
    return stages
