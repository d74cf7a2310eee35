"""The merger view of a report (归并进度): how far callers have moved from the old numbers to 12345.

Pure: the call records and the merger file in, figures and report sections out. A call is "on an old
number" when the number it dialled (its local part) is a line or alias that joins 12345 (merge,
parallel, sub-centre or utility line); 12345 itself, emergency and guidance lines are not old numbers.
"Days left" are counted from the report's day (the local day of the last call) to the end of the
line's transition window (the first day the line is past it).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from hotline_cti.config.compile import transition_window
from hotline_cti.config.schema import Hotline, MergerConfig
from hotline_cti.core.model import Mode
from hotline_cti.core.numbers import NumberError, line_label, parse_dialled
from hotline_cti.core.prompts import line_prompt_ids
from hotline_cti.records.model import CallRecord, Outcome
from hotline_cti.reports.sections import Column, Percent, Section

OLD_MODES = frozenset({Mode.MERGE, Mode.PARALLEL, Mode.SUBCENTRE, Mode.LINKED})
HANDOVER_TARGET = "12345"  # what a hand-over lists in a record's transfers (records.builder)


@dataclass(frozen=True, slots=True)
class LineState:
    """One old line on the report's day: its window and where the day falls against it."""

    number: str
    label: str
    mode: Mode
    cutover: dt.date | None
    window: tuple[dt.date, dt.date] | None  # [start, end)
    status: str  # 'before' / 'transition' / 'after' / 'none'
    days_left: int | None  # whole days until the window ends (transition only)


@dataclass(frozen=True, slots=True)
class MergerFigures:
    """The merger view's figures; every count is of the records given."""

    day: dt.date | None  # the report's day: local day of the last call
    calls: int
    by_day: dict[dt.date, int]  # all calls per local day
    old_by_day: dict[tuple[dt.date, str], int]  # (day, old line number) -> calls dialled on it
    transition: int  # routed in a line's transition window, on a line that has a transition prompt
    tagged: int  # reached 12345 carrying their old line (origin) to the agent
    retired: int
    guidance: int
    subcentre: dict[str, int]  # sub-centre target -> calls put through
    emergency: int  # put through to an emergency line
    handovers: dict[str, int]  # emergency line -> calls it handed over to 12345
    lines: list[LineState]
    guidance_lines: int  # lines of the file that only get guidance (话务引导)

    @property
    def old_calls(self) -> int:
        """Calls dialled on an old number, all days."""
        return sum(self.old_by_day.values())

    def old_share(self, day: dt.date | None = None) -> float | None:
        """Share of calls (of ``day``, or all) still dialled on an old number."""
        if day is None:
            return self.old_calls / self.calls if self.calls else None
        total = self.by_day.get(day, 0)
        old = sum(n for (d, _), n in self.old_by_day.items() if d == day)
        return old / total if total else None


def _old_numbers(model: MergerConfig) -> dict[str, Hotline]:
    """Local number (line or alias) -> its line, for the lines that join 12345."""
    out: dict[str, Hotline] = {}
    for line in model.hotlines:
        if line.mode in OLD_MODES:
            for number in (line.number, *line.aliases):
                out[number] = line
    return out


def _local(dialled: str) -> str:
    try:
        return parse_dialled(dialled).local
    except NumberError:
        return dialled


def line_states(model: MergerConfig, day: dt.date | None) -> list[LineState]:
    """Every old line with its window and, on ``day``, its phase and days left."""
    out: list[LineState] = []
    for line in model.hotlines:
        if line.mode not in OLD_MODES:
            continue
        window = transition_window(line, model.defaults.transition_months)
        status, left = "none", None
        if day is not None:
            if window is not None:
                start, end = window
                status = "before" if day < start else ("transition" if day < end else "after")
                left = (end - day).days if status == "transition" else None
            elif line.cutover is not None:
                status = "before" if day < line.cutover else "after"
        out.append(
            LineState(line.number, line_label(line.number, line.name), line.mode, line.cutover, window, status, left)
        )
    return out


def merger_figures(records: Iterable[CallRecord], model: MergerConfig, tz: dt.tzinfo) -> MergerFigures:
    """The figures of the merger view over ``records`` (days in ``tz``, the config's zone)."""
    old = _old_numbers(model)
    prompted = {h.number for h in model.hotlines if "transition" in line_prompt_ids(h, model.defaults)}
    by_day: Counter[dt.date] = Counter()
    old_by_day: Counter[tuple[dt.date, str]] = Counter()
    subcentre: Counter[str] = Counter()
    handovers: Counter[str] = Counter()
    transition = tagged = retired = guidance = emergency = calls = 0
    last: dt.date | None = None
    for rec in records:
        calls += 1
        day = rec.started.astimezone(tz).date()
        last = day if last is None or day > last else last
        by_day[day] += 1
        line = old.get(_local(rec.dialled))
        if line is not None:
            old_by_day[(day, line.number)] += 1
        transition += rec.phase == "transition" and line is not None and line.number in prompted
        tagged += bool(rec.origin) and rec.mode in OLD_MODES and bool(rec.queue)
        retired += rec.outcome is Outcome.RETIRED
        guidance += rec.outcome is Outcome.GUIDANCE
        if rec.action == "subcentre":
            subcentre[rec.target or "?"] += 1
        if rec.action == "emergency":
            emergency += 1
            if HANDOVER_TARGET in rec.transfers:
                handovers[rec.target or _local(rec.dialled)] += 1
    return MergerFigures(
        day=last,
        calls=calls,
        by_day=dict(sorted(by_day.items())),
        old_by_day=dict(sorted(old_by_day.items())),
        transition=transition,
        tagged=tagged,
        retired=retired,
        guidance=guidance,
        subcentre=dict(sorted(subcentre.items())),
        emergency=emergency,
        handovers=dict(sorted(handovers.items())),
        lines=line_states(model, last),
        guidance_lines=sum(1 for line in model.hotlines if line.mode is Mode.GUIDANCE),
    )


def _window_text(state: LineState) -> str:
    if state.window is not None:
        return f"{state.window[0]} – {state.window[1]}"
    return "-"


def _left_text(state: LineState) -> str:
    if state.status == "transition":
        return f"{state.days_left}"
    if state.status == "after":
        return "0 (over)" if state.window is not None else "0 (cut over, no window)"
    if state.status == "before":
        return "not started"
    return "-"


def merger_sections(f: MergerFigures) -> list[Section]:
    """The merger section of the report: what happened, calls per old number per day, share, days left."""
    kinds = Section(
        "merger",
        "归并情况",
        f"The merger on {f.day or 'the report day'}",
        [Column("类别", "kind"), Column("数值", "value")],
    )
    kinds.add(["过渡期提示 transition prompt (in a line's window)", f.transition])
    kinds.add(["带原号码标签 reached 12345 tagged with the old line", f.tagged])
    kinds.add(["拨打原号码 dialled an old number", f.old_calls])
    kinds.add(["原号码占比 share still dialled on old numbers", Percent(f.old_share())])
    kinds.add(["已停用号码 retired number", f.retired])
    kinds.add(["话务引导 guidance", f.guidance])
    for target, n in f.subcentre.items():
        kinds.add([f"分中心 sub-centre {target}", n])
    kinds.add(["紧急热线 emergency line", f.emergency])
    kinds.add(["移交12345 handed over to 12345 by an emergency line", sum(f.handovers.values())])
    for line, n in f.handovers.items():
        kinds.add([f"{line}移交12345 handed over by {line}", n])
    daily = Section(
        "merger-daily",
        "原号码每日来电",
        "Calls per old number per day",
        [Column("日期 号码", "day number"), Column("来电", "calls"), Column("当日占比", "share of the day's calls")],
    )
    for (day, number), n in f.old_by_day.items():
        total = f.by_day.get(day, 0)
        daily.add([f"{day} {number}", n, Percent(n / total if total else None)])
    share = Section(
        "merger-share",
        "原号码来电占比",
        "Share of calls still dialled on old numbers, per day",
        [
            Column("日期", "day"),
            Column("来电", "calls"),
            Column("拨打原号码", "on old numbers"),
            Column("占比", "share"),
        ],
    )
    for day, total in f.by_day.items():
        old = sum(n for (d, _), n in f.old_by_day.items() if d == day)
        share.add([str(day), total, old, Percent(f.old_share(day))])
    days = Section(
        "merger-days",
        "过渡期剩余天数",
        f"Days left in each line's transition window (on {f.day or '-'})",
        [
            Column("号码", "line"),
            Column("方式", "mode"),
            Column("割接日期", "cut-over"),
            Column("过渡期", "window"),
            Column("状态", "phase"),
            Column("剩余天数", "days left"),
        ],
    )
    for s in f.lines:
        days.add([s.label, s.mode.value, str(s.cutover or "-"), _window_text(s), s.status, _left_text(s)])
    return [kinds, daily, share, days]


def summary_lines(f: MergerFigures, model_name: str) -> Sequence[str]:
    """The merger lines of the demo's summary."""
    in_window = [s for s in f.lines if s.status == "transition"]
    left = sorted({s.days_left for s in in_window if s.days_left is not None})
    phases = Counter(s.status for s in f.lines)
    by_number: Counter[str] = Counter()
    for (_, number), n in f.old_by_day.items():
        by_number[number] += n
    top = ", ".join(f"{number} {n}" for number, n in by_number.most_common(6))
    subs = sum(f.subcentre.values())
    sub_text = ", ".join(f"{t} {n}" for t, n in sorted(f.subcentre.items(), key=lambda kv: (-kv[1], kv[0]))[:4])
    retiring = any(s.mode is Mode.MERGE and s.status == "after" for s in f.lines)
    hand = ", ".join(f"{line} {n}" for line, n in f.handovers.items()) or "none"
    return [
        f"merger day       {f.day} in {model_name}: {phases['transition']} lines in their transition window"
        + (f" ({', '.join(str(d) for d in left)} days left)" if left else "")
        + f", {phases['after']} past cut-over, {phases['before']} not yet cut over",
        f"transition       {f.transition} calls heard their old line's transition prompt",
        f"old line tagged  {f.tagged} calls reached a 12345 queue tagged with their old line",
        f"old numbers      {f.old_calls} calls ({Percent(f.old_share())}) still dialled an old number"
        + (f": {top}" if top else ""),
        f"retired          {f.retired} calls on a retired number"
        + ("" if f.retired or retiring else " (no merged number is past its window on this day)"),
        f"guidance         {f.guidance} calls told where to turn (话务引导)"
        + ("" if f.guidance_lines else " (the file has no guidance line)"),
        f"sub-centres      {subs} calls put through to a sub-centre" + (f" ({sub_text}, ...)" if sub_text else ""),
        f"emergency        {f.emergency} calls to emergency lines; handed over to 12345: {hand}",
    ]
