"""The self-contained HTML report: inline CSS, inline SVG charts, KPI tables with lines below 95% flagged."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from hotline_cti.kpi.accumulator import KpiSnapshot
from hotline_cti.reports.sections import WAIT_EDGES, Section, wait_bucket_labels
from hotline_cti.reports.svg import column_chart, hourly_answer_chart, volume_chart
from hotline_cti.text_output import cell_text

STYLE = """
body{font-family:"Noto Sans CJK SC","Microsoft YaHei",sans-serif;margin:2em;color:#222;max-width:1000px}
h1 small,h2 small,th small{display:block;font-weight:normal;color:#666;font-size:.75em}
table{border-collapse:collapse;margin:.5em 0 1.5em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th:first-child,td:first-child{text-align:left}
tr.below td{background:#fdecea;color:#b71c1c;font-weight:bold}
figure{margin:1em 0}
figcaption{color:#555}
"""


def _figure(zh: str, en: str, svg: str) -> str:
    return f"<figure><h2>{escape(zh)}<small>{escape(en)}</small></h2>{svg}</figure>"


def _table(sec: Section) -> str:
    head = "".join(f"<th>{escape(c.zh)}<small>{escape(c.en)}</small></th>" for c in sec.columns)
    rows = []
    for row, flagged in zip(sec.rows, sec.flagged, strict=True):
        cells = "".join(f"<td>{escape(cell_text(str(v) if not isinstance(v, bool) else v))}</td>" for v in row)
        rows.append(f'<tr class="below">{cells}</tr>' if flagged else f"<tr>{cells}</tr>")
    body = "".join(rows) or f'<tr><td colspan="{len(sec.columns)}">无 none</td></tr>'
    return (
        f'<section id="{sec.key}"><h2>{escape(sec.zh)}<small>{escape(sec.en)}</small></h2>'
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></section>"
    )


def render_html(title: str, subtitle: str, k: KpiSnapshot, sections: Sequence[Section]) -> str:
    """One HTML file with everything inline; ``title`` is Chinese, ``subtitle`` English (period, region)."""
    volume = [(name, v.calls, v.old_number) for name, v in sorted(k.by_line.items(), key=lambda kv: -kv[1].calls)]
    charts = [
        _figure("分时段接通率", "Answer rate by hour against the 95% line", hourly_answer_chart(k.by_hour, k.target)),
        _figure(
            "等待时长分布",
            "Wait distribution (answered and abandoned calls)",
            column_chart(wait_bucket_labels(), k.waits.histogram(WAIT_EDGES), "等待时长 wait"),
        ),
        _figure("各号码来电量", "Volume by origin line", volume_chart(volume)),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="zh-CN"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{escape(title)}<small>{escape(subtitle)}</small></h1>"
        + "".join(charts)
        + "".join(_table(sec) for sec in sections)
        + "</body></html>\n"
    )
