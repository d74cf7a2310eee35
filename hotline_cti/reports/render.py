"""One entry point: call records of a period in, the report in the asked format out."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Literal
from zoneinfo import ZoneInfo

from hotline_cti.config.schema import MergerConfig
from hotline_cti.kpi.accumulator import CHINA_TZ, compute_kpis
from hotline_cti.kpi.agent_time import AgentFigures
from hotline_cti.kpi.callbacks import CallbackCounts
from hotline_cti.records.model import CallRecord
from hotline_cti.reports.agent_section import agent_section
from hotline_cti.reports.formats import render_csv, render_table
from hotline_cti.reports.html import render_html
from hotline_cti.reports.merger import merger_figures, merger_sections
from hotline_cti.reports.sections import build_sections, callback_section, node_section

Format = Literal["table", "csv", "html"]
FORMATS: tuple[Format, ...] = ("table", "csv", "html")
TITLE = "12345热线 接通率与服务指标报表"


def describe_period(
    since: dt.datetime | None, until: dt.datetime | None, region: str | None, tz: dt.tzinfo, node: str | None = None
) -> str:
    """'KPI report, region gx, node nn-1, 2026-11-01 00:00 – 2026-11-08 00:00 (UTC+08:00)' style subtitle."""

    def show(when: dt.datetime | None, default: str) -> str:
        return when.astimezone(tz).strftime("%Y-%m-%d %H:%M") if when else default

    zone = dt.datetime.now(tz).isoformat()[-6:]  # '+08:00'
    where = (f", region {region}" if region else "") + (f", node {node}" if node is not None else "")
    return f"KPI report{where}, {show(since, 'first call')} – {show(until, 'last call')} (UTC{zone})"


def render_report(
    records: Iterable[CallRecord],
    fmt: Format,
    *,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    region: str | None = None,
    tz: dt.tzinfo = CHINA_TZ,
    merger: MergerConfig | None = None,
    agents: Sequence[AgentFigures] = (),
    callbacks: CallbackCounts | None = None,
    node: str | None = None,
) -> str:
    """The KPI report of ``records`` as a terminal table, CSV or a self-contained HTML page.

    With ``merger`` (the merger file served) the report adds the merger view: calls per old number per day,
    the share still dialled on old numbers, days left in each line's transition window. With ``agents`` (the
    agent state log's figures) an agents' section comes last. Calls of several Asterisk nodes are combined;
    a section then gives each node's own figures (``node``: the records are one node's, named in the subtitle).
    """
    records = list(records)
    kpis = compute_kpis(records, tz=tz)
    sections = build_sections(kpis)
    nodes = {r.node for r in records}
    if len(nodes) > 1:
        sections.insert(1, node_section({n: compute_kpis([r for r in records if r.node == n], tz=tz) for n in nodes}))
    if callbacks is not None:
        sections.append(callback_section(callbacks))
    if merger is not None:
        sections += merger_sections(merger_figures(records, merger, ZoneInfo(merger.region.timezone)))
    if agents:
        sections.append(agent_section(agents))
    subtitle = describe_period(since, until, region, tz, node)
    if fmt == "csv":
        return render_csv(sections)
    if fmt == "html":
        return render_html(TITLE, subtitle, kpis, sections)
    return render_table(f"{TITLE}\n{subtitle}", sections)
