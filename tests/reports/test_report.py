"""The KPI report in its three formats: numbers match hand-computed ones, SVG charts are well-formed XML."""

from __future__ import annotations

import csv
import io
import re
import xml.etree.ElementTree as ET

from hotline_cti.reports.render import FORMATS, render_report
from tests.kpi.test_kpi import sample

SVG_NS = "{http://www.w3.org/2000/svg}"


def csv_figures(text: str) -> dict[tuple[str, str, str], str]:
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["section", "name", "metric", "value"]
    return {(s, n, m): v for s, n, m, v in rows[1:]}


def test_csv_holds_the_hand_computed_figures() -> None:
    f = csv_figures(render_report(sample(), "csv"))
    # 12 calls, one still active: 11; offered 8, answered 6 -> 75%; waits 10,20,30,40,60,5.5
    assert f[("overview", "来电总量 calls", "value")] == "11"
    assert f[("overview", "接通率 answer rate", "value")] == "0.7500"
    assert f[("overview", "平均等待 average wait", "value")] == f"{(10 + 20 + 30 + 40 + 60 + 5.5) / 6:.1f}"
    assert f[("overview", "P90等待 p90 wait", "value")] == "60.0"
    assert f[("overview", "满意率 satisfaction rate", "value")] == "0.7500"
    assert f[("queues", "gx-general", "answer rate")] == f"{4 / 6:.4f}"
    assert f[("queues", "gx-general", "below 95%")] == "true"
    assert f[("queues", "gx-market", "below 95%")] == "false"
    assert f[("lines", "12315", "on old number")] == "2"
    assert f[("lines", "12300", "retired")] == "1"
    assert f[("lines", "12300", "answer rate")] == ""  # never offered: no rate
    assert f[("subcentres", "gx-tax", "answered")] == "1"
    assert f[("hours", "09:00", "offered")] == "7" and f[("hours", "10:00", "answer rate")] == "1.0000"
    assert f[("transfers", "110", "transfers")] == "2"
    assert f[("satisfaction", "满意", "share")] == "0.5000"
    assert f[("waits", "≤10 s", "calls")] == "2" and f[("waits", "30–60 s", "calls")] == "2"


def test_table_shows_sections_and_flags() -> None:
    text = render_report(sample(), "table")
    assert "队列 / Queues" in text and "来电号码 / Volume and answer rate by origin line" in text
    general = next(line for line in text.splitlines() if line.startswith("gx-general"))
    assert general.split() == ["gx-general", "6", "4", "1", "66.7%", "yes"]


def test_html_is_self_contained_with_well_formed_charts() -> None:
    page = render_report(sample(), "html", region="gx")
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page and "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    assert "<link" not in page
    svgs = re.findall(r"<svg.*?</svg>", page, flags=re.S)
    assert len(svgs) == 3
    roots = [ET.fromstring(s) for s in svgs]
    hourly = roots[0]
    bars = hourly.findall(f"{SVG_NS}rect")
    assert [b.find(f"{SVG_NS}title").text for b in bars] == ["09:00 71.4% (5/7)", "10:00 100.0% (1/1)"]  # type: ignore[union-attr]
    assert hourly.findall(f"{SVG_NS}line")[-1].get("stroke-dasharray")  # the 95% line
    assert any("95% 接通率要求" in (t.text or "") for t in hourly.iter(f"{SVG_NS}text"))
    volume_titles = [t.text for t in roots[2].iter(f"{SVG_NS}title")]
    assert "12345: 6" in volume_titles and "12315: 2 on the old number" in volume_titles
    # flagged rows are marked; Chinese headings carry English subtitles
    assert re.search(r'<tr class="below"><td>gx-general</td>', page)
    assert "<h2>专家座席<small>Expert seat groups</small></h2>" in page


def test_empty_period_renders_every_format() -> None:
    for fmt in FORMATS:
        assert render_report([], fmt)
    page = render_report([], "html")
    for s in re.findall(r"<svg.*?</svg>", page, flags=re.S):
        ET.fromstring(s)
