"""Inline SVG charts for the HTML report, generated as text (no JavaScript, no external files)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from xml.sax.saxutils import escape, quoteattr

from hotline_cti.kpi.counts import AnswerCount

OK = "#2e7d32"
LOW = "#c62828"
NEUTRAL = "#1565c0"
MUTED = "#90a4ae"


def _text(x: float, y: float, text: str, anchor: str = "middle", size: int = 11, fill: str = "#333") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" fill="{fill}">{escape(text)}</text>'
    )


def _rect(x: float, y: float, w: float, h: float, fill: str, title: str) -> str:
    return (
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 0):.1f}" height="{max(h, 0):.1f}" fill="{fill}">'
        f"<title>{escape(title)}</title></rect>"
    )


def _svg(width: int, height: int, label: str, body: list[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label={quoteattr(label)}>' + "".join(body) + "</svg>"
    )


def hourly_answer_chart(by_hour: dict[int, AnswerCount], target: float) -> str:
    """Bars of the answer rate per local hour (red below ``target``) with the target as a dashed line.

    The rate axis starts at 50% (lower if an hour fell below it) so the gap to 95% stays visible.
    """
    width, height, left, top, bottom = 760, 290, 44, 26, 36
    plot_w, plot_h = width - left - 10, height - top - bottom
    slot = plot_w / 24
    rates = [c.rate for c in by_hour.values() if c.rate is not None]
    floor = min(0.5, math.floor(min(rates, default=1.0) * 10) / 10)

    def y_of(rate: float) -> float:
        return top + plot_h * (1 - (rate - floor) / (1 - floor))

    body = [f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#999"/>']
    steps = 5
    for i in range(steps + 1):
        tick = floor + (1 - floor) * i / steps
        body.append(_text(left - 6, y_of(tick) + 4, f"{tick * 100:.0f}%", anchor="end", size=10))
    for hour in range(24):
        counts = by_hour.get(hour)
        x = left + hour * slot
        if hour % 3 == 0:
            body.append(_text(x + slot / 2, top + plot_h + 16, f"{hour:02d}"))
        if counts is None or counts.rate is None:
            continue
        rate = counts.rate
        colour = LOW if counts.below(target) else OK
        tip = f"{hour:02d}:00 {rate * 100:.1f}% ({counts.answered}/{counts.offered})"
        body.append(_rect(x + 2, y_of(rate), slot - 4, top + plot_h - y_of(rate), colour, tip))
    ty = y_of(target)
    body.append(
        f'<line x1="{left}" y1="{ty:.1f}" x2="{left + plot_w}" y2="{ty:.1f}" stroke="{LOW}" stroke-dasharray="6 4"/>'
    )
    body.append(_text(left + plot_w, top - 8, f"- - {target * 100:g}% 接通率要求 target", anchor="end", fill=LOW))
    body.append(_text(left + plot_w / 2, height - 4, "时段（本地时间）hour of day, local time"))
    return _svg(width, height, "answer rate by hour", body)


def column_chart(labels: Sequence[str], values: Sequence[int], caption: str) -> str:
    """Vertical bars of counts, one per label (used for the wait distribution)."""
    width, height, left, top, bottom = 760, 240, 44, 16, 40
    plot_w, plot_h = width - left - 10, height - top - bottom
    slot = plot_w / max(len(labels), 1)
    peak = max(values, default=0) or 1
    body = [f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#999"/>']
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        x = left + i * slot
        h = plot_h * value / peak
        body.append(_rect(x + 6, top + plot_h - h, slot - 12, h, NEUTRAL, f"{label}: {value}"))
        body.append(_text(x + slot / 2, top + plot_h - h - 4, str(value), size=10))
        body.append(_text(x + slot / 2, top + plot_h + 16, label))
    body.append(_text(left + plot_w / 2, height - 4, caption))
    return _svg(width, height, caption, body)


def volume_chart(rows: Sequence[tuple[str, int, int]]) -> str:
    """Horizontal bars of calls per origin line (name, calls, on the old number); the old-number part is grey."""
    bar, gap, left, top = 18, 6, 90, 10
    width = 760
    height = top + len(rows) * (bar + gap) + 30
    plot_w = width - left - 80
    peak = max((calls for _, calls, _ in rows), default=0) or 1
    body: list[str] = []
    for i, (line, calls, old) in enumerate(rows):
        y = top + i * (bar + gap)
        body.append(_text(left - 6, y + bar - 5, line, anchor="end"))
        body.append(_rect(left, y, plot_w * calls / peak, bar, NEUTRAL, f"{line}: {calls}"))
        body.append(_rect(left, y, plot_w * old / peak, bar, MUTED, f"{line}: {old} on the old number"))
        body.append(_text(left + plot_w * calls / peak + 4, y + bar - 5, str(calls), anchor="start"))
    body.append(_text(width / 2, height - 6, "来电量（灰色为拨打原号码）calls per line, grey: dialled the old number"))
    return _svg(width, height, "volume by origin line", body)
