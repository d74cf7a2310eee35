"""The content of a KPI report, independent of its format: bilingual titled sections of rows.

Every format (table, CSV, HTML) renders these same sections, so the numbers agree everywhere.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from hotline_cti.kpi.accumulator import KpiSnapshot
from hotline_cti.kpi.callbacks import CallbackCounts
from hotline_cti.kpi.counts import AnswerCount
from hotline_cti.records.model import RATING_LABELS

WAIT_EDGES = (10, 20, 30, 60, 120, 300)
"""Bucket bounds (seconds) of the wait distribution: ≤10, 10–20, ..., >300."""


@dataclass(frozen=True, slots=True)
class Column:
    """A column: Chinese label, English subtitle, and the machine key used in CSV."""

    zh: str
    en: str


@dataclass(slots=True)
class Section:
    """One titled table of the report; ``flagged[i]`` marks row i as below the answer-rate target."""

    key: str
    zh: str
    en: str
    columns: list[Column]
    rows: list[list[object]] = field(default_factory=list)
    flagged: list[bool] = field(default_factory=list)

    def add(self, row: list[object], flag: bool = False) -> None:
        """Append a row (one value per column)."""
        self.rows.append(row)
        self.flagged.append(flag)


@dataclass(frozen=True, slots=True)
class Percent:
    """A 0..1 share that prints as a percentage (None prints as '-')."""

    value: float | None

    def __str__(self) -> str:
        return "-" if self.value is None else f"{self.value * 100:.1f}%"


@dataclass(frozen=True, slots=True)
class Seconds:
    """A duration that prints with one decimal and 's'."""

    value: float | None

    def __str__(self) -> str:
        return "-" if self.value is None else f"{self.value:.1f} s"


NAME = Column("名称", "name")
OFFERED = Column("呼入", "offered")
ANSWERED = Column("接通", "answered")
ABANDONED = Column("放弃", "abandoned")
RATE = Column("接通率", "answer rate")
BELOW = Column("低于95%", "below 95%")


def _answer_cells(c: AnswerCount, target: float) -> list[object]:
    return [c.offered, c.answered, c.abandoned, Percent(c.rate), c.below(target)]


def _group(key: str, zh: str, en: str, groups: dict[str, AnswerCount], target: float, name: Column) -> Section:
    sec = Section(key, zh, en, [name, OFFERED, ANSWERED, ABANDONED, RATE, BELOW])
    for group_name, counts in sorted(groups.items()):
        sec.add([group_name, *_answer_cells(counts, target)], counts.below(target))
    return sec


def hour_label(hour: int) -> str:
    """'09:00' for hour 9 (zero-padded so labels sort in time order)."""
    return f"{hour:02d}:00"


def wait_bucket_labels(edges: tuple[int, ...] = WAIT_EDGES) -> list[str]:
    """Labels of the wait distribution buckets: '≤10 s', '10–20 s', ..., '>300 s'."""
    labels = [f"≤{edges[0]} s"]
    labels += [f"{lo}–{hi} s" for lo, hi in itertools.pairwise(edges)]
    return [*labels, f">{edges[-1]} s"]


def build_sections(k: KpiSnapshot) -> list[Section]:
    """The report's sections, in reading order."""
    t = k.target
    overview = Section("overview", "总体", "Overview", [Column("指标", "metric"), Column("数值", "value")])
    for zh, en, value in [
        ("来电总量", "calls", k.calls),
        ("呼入座席", "offered to agents", k.total.offered),
        ("接通", "answered", k.total.answered),
        ("接通率", "answer rate", Percent(k.total.rate)),
        ("放弃", "abandoned", k.total.abandoned),
        ("放弃率", "abandon rate", Percent(k.total.abandon_rate)),
        ("短时放弃", f"short abandons (<{k.short_abandon_s:g} s, not offered)", k.total.short_abandoned),
        ("平均等待", "average wait", Seconds(k.waits.mean)),
        ("P90等待", "p90 wait", Seconds(k.waits.p90)),
        ("平均应答速度", "average speed of answer", Seconds(k.answered_waits.mean)),
        ("满意率", "satisfaction rate", Percent(k.satisfaction)),
    ]:
        overview.add([f"{zh} {en}", value], en == "answer rate" and k.total.below(t))
    lines = Section(
        "lines",
        "来电号码",
        "Volume and answer rate by origin line",
        [
            Column("号码", "line"),
            Column("来电", "calls"),
            Column("拨打原号码", "on old number"),
            Column("已停用号码", "retired"),
            Column("引导", "guidance"),
            OFFERED,
            ANSWERED,
            ABANDONED,
            RATE,
            BELOW,
        ],
    )
    for line, v in sorted(k.by_line.items(), key=lambda kv: (-kv[1].calls, kv[0])):
        lines.add(
            [line, v.calls, v.old_number, v.retired, v.guidance, *_answer_cells(v.answers, t)], v.answers.below(t)
        )
    by_hour = {hour_label(h): c for h, c in k.by_hour.items()}
    hours = _group("hours", "分时段", "Answer rate by hour (local time)", by_hour, t, Column("时段", "hour"))
    transfers = Section(
        "transfers", "转接", "Transfers by target", [Column("目标", "target"), Column("次数", "transfers")]
    )
    for target, n in sorted(k.transfers.items(), key=lambda kv: (-kv[1], kv[0])):
        transfers.add([target, n])
    rated = k.rated
    satisfaction = Section(
        "satisfaction",
        "满意度",
        "Satisfaction",
        [Column("评价", "rating"), Column("数量", "count"), Column("占比", "share")],
    )
    for code, label in RATING_LABELS.items():
        satisfaction.add([label, k.ratings[code], Percent(k.ratings[code] / rated if rated else None)])
    satisfaction.add(["满意率 (满意+基本满意)/已评价", rated, Percent(k.satisfaction)])
    waits = Section(
        "waits",
        "等待时长分布",
        "Wait distribution",
        [Column("等待", "wait"), Column("来电", "calls"), Column("占比", "share")],
    )
    for label, n in zip(wait_bucket_labels(), k.waits.histogram(WAIT_EDGES), strict=True):
        waits.add([label, n, Percent(n / k.waits.count if k.waits.count else None)])
    return [
        overview,
        lines,
        _group("queues", "队列", "Queues", k.by_queue, t, Column("队列", "queue")),
        _group("experts", "专家座席", "Expert seat groups", k.by_expert, t, Column("专家组", "expert group")),
        _group("subcentres", "分中心", "Sub-centres", k.by_subcentre, t, Column("分中心", "sub-centre")),
        hours,
        waits,
        transfers,
        satisfaction,
    ]


NODE_UNNAMED = "-"  # calls stored before nodes were named (revision 0008): one Asterisk, no node


def node_section(by_node: dict[str, KpiSnapshot]) -> Section:
    """节点: each Asterisk node's calls and answer rate (the report above combines them all)."""
    section = Section(
        "nodes",
        "节点",
        "Asterisk nodes",
        [Column("节点", "node"), Column("来电", "calls"), OFFERED, ANSWERED, ABANDONED, RATE, BELOW],
    )
    for node, k in sorted(by_node.items()):
        section.add([node or NODE_UNNAMED, k.calls, *_answer_cells(k.total, k.target)], k.total.below(k.target))
    return section


def callback_section(c: CallbackCounts) -> Section:
    """回呼: offered, accepted, answered by an agent, reached, given up, abandoned callers listed."""
    section = Section("callbacks", "回呼", "Callbacks", [Column("指标", "metric"), Column("数值", "value")])
    for zh, en, value in [
        ("提供回呼", "offered", c.offered),
        ("接受回呼", "accepted", c.accepted),
        ("座席应答", "answered by an agent", c.answered),
        ("回呼接通", "reached the caller", c.reached),
        ("回呼接通率", "reach rate (reached / accepted)", Percent(c.reach_rate)),
        ("放弃回呼", "given up", c.given_up),
        ("放弃来电列入回呼", "abandoned callers listed", c.listed),
    ]:
        section.add([f"{zh} {en}", value])
    return section
