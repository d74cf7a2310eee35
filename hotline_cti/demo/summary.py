"""The KPI summary printed at the end of a demo run (pure: a KPI snapshot in, lines of text out)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from hotline_cti.kpi.accumulator import KpiSnapshot
from hotline_cti.kpi.counts import AnswerCount
from hotline_cti.records.model import RATING_LABELS, CallRecord, Outcome
from hotline_cti.text_output import table

TOP_QUEUES = 10  # the busiest queues are listed; below them only those under the answer target


def retired_by_number(records: Iterable[CallRecord]) -> dict[str, int]:
    """Calls that dialled a retired number (prompt, hang-up), by the number dialled."""
    return dict(sorted(Counter(r.dialled for r in records if r.outcome is Outcome.RETIRED).items()))


def _rate(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.1%}"


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def _mark(count: AnswerCount, target: float) -> str:
    return "BELOW" if count.below(target) else ("ok" if count.offered else "-")


def summary_lines(k: KpiSnapshot, retired: Mapping[str, int]) -> list[str]:
    """The run's KPIs: answer rate against the 95% floor (接通率) overall and per queue and line, waits,
    abandonment, transfers, satisfaction (满意率) and the calls that still dialled a retired number.

    ``retired`` is :func:`retired_by_number` of the same records.
    """
    t = k.total
    lines = [
        f"calls            {k.calls} finished, {t.offered} offered to agents",
        f"answer rate      {_rate(t.rate)} ({t.answered} answered; target {k.target:.0%}: {_mark(t, k.target)})",
        f"abandoned        {t.abandoned} ({_rate(t.abandon_rate)}), short abandons {t.short_abandoned}"
        f" (<{k.short_abandon_s:g} s, not offered)",
        f"waits            mean {_secs(k.waits.mean)}, p90 {_secs(k.waits.p90)},"
        f" average speed of answer {_secs(k.answered_waits.mean)}",
        f"transfers        {sum(k.transfers.values())}"
        + (
            " ("
            + ", ".join(f"{n} to {to}" for to, n in sorted(k.transfers.items(), key=lambda kv: (-kv[1], kv[0])))
            + ")"
            if k.transfers
            else ""
        ),
        f"satisfaction     {_rate(k.satisfaction)} of {k.rated} rated ("
        + ", ".join(f"{label} {k.ratings[code]}" for code, label in RATING_LABELS.items())
        + ")",
        f"retired numbers  {sum(retired.values())} calls still dialled a retired number"
        + (" (" + ", ".join(f"{line} {n}" for line, n in retired.items()) + ")" if retired else ""),
    ]
    queues = sorted(k.by_queue.items(), key=lambda kv: (-kv[1].offered, kv[0]))
    shown = [(n, c) for i, (n, c) in enumerate(queues) if c.offered and (i < TOP_QUEUES or c.below(k.target))]
    line_counts = sorted(((n, v.answers) for n, v in k.by_line.items()), key=lambda kv: (-kv[1].offered, kv[0]))
    rows = [["queue", n, c.offered, c.answered, c.abandoned, _rate(c.rate), _mark(c, k.target)] for n, c in shown]
    rows += [
        ["line", n, c.offered, c.answered, c.abandoned, _rate(c.rate), _mark(c, k.target)]
        for n, c in line_counts
        if c.offered
    ]
    header = ["", "name", "offered", "answered", "abandoned", "answer rate", f"vs {k.target:.0%}"]
    lines += ["", *table(header, rows).splitlines()]
    hidden = sum(1 for _, c in queues if c.offered) - len(shown)
    if hidden:
        lines.append(f"({hidden} smaller queues not listed: all at or above {k.target:.0%})")
    return lines
