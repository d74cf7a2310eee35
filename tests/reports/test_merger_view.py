"""The merger view: the day the main job replays, and the report's figures against hand-counted records."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from hotline_cti.config.loader import load_config
from hotline_cti.config.schema import MergerConfig
from hotline_cti.demo.day import transition_day
from hotline_cti.records.model import CallRecord, Outcome
from hotline_cti.reports.merger import merger_figures, merger_sections, summary_lines
from hotline_cti.reports.render import render_report
from tests.paths import REPO

ROOT = REPO
TZ = ZoneInfo("Asia/Shanghai")


def model(name: str) -> MergerConfig:
    return load_config(ROOT / "merger_config" / f"{name}.yaml").model


def test_the_replayed_day_is_inside_each_files_transition() -> None:
    # Guangxi: 整体并入 window 2021-08-31..2022-02-28; 双号并行 cut over 2021-11-30 inside it; +2 weeks = Tue.
    assert transition_day(model("guangxi")) == dt.date(2021, 12, 14)
    # Yuncheng: window 2019-12-31..2020-06-30; last cut-over inside it 2020-05-31; +2 weeks = Sun -> Tue 06-16.
    assert transition_day(model("yuncheng")) == dt.date(2020, 6, 16)
    assert transition_day(model("yongzhou")) is None  # no line has a window: the scenario's own date


def test_a_settled_day_past_every_window_falls_back_to_the_middle_of_the_longest() -> None:
    gx = model("guangxi")
    # Only the merged lines' window, cut-over 2021-08-31; another cut-over on the window's last day.
    late = [
        h.model_copy(update={"cutover": dt.date(2022, 2, 27)}) if h.mode.value == "parallel" else h for h in gx.hotlines
    ]
    day = transition_day(gx.model_copy(update={"hotlines": late}))
    assert day is not None and dt.date(2021, 11, 29) <= day <= dt.date(2021, 12, 2)  # mid-window, Tue-Thu
    assert day.weekday() in (1, 2, 3)


def rec(
    n: int,
    day: int,
    dialled: str,
    *,
    mode: str = "main",
    phase: str = "none",
    action: str = "queue",
    origin: str = "",
    queue: str = "nanning-general",
    target: str = "",
    transfers: list[str] | None = None,
    outcome: Outcome = Outcome.ANSWERED,
) -> CallRecord:
    started = dt.datetime(2021, 12, day, 10, 0, n, tzinfo=TZ).astimezone(dt.UTC)
    return CallRecord(
        call_id=f"c{n}",
        region="gx",
        started=started,
        dialled=dialled,
        mode=mode,
        phase=phase,
        action=action,
        origin=origin,
        queue=queue,
        target=target,
        transfers=transfers or [],
        outcome=outcome,
    )


RECORDS = [
    rec(1, 13, "12345"),
    rec(2, 13, "12300", mode="merge", phase="transition", origin="12300"),
    rec(3, 14, "12345"),
    rec(4, 14, "12345", origin="12315"),  # 12345 menu, expert topic: not an old number
    rec(5, 14, "12300", mode="merge", phase="transition", origin="12300"),
    rec(6, 14, "077112301", mode="merge", phase="transition", origin="12301"),  # national form
    rec(7, 14, "12315", mode="parallel", phase="after", origin="12315", queue="nanning-l12315"),
    rec(
        8,
        14,
        "12313",
        mode="subcentre",
        phase="after",
        action="subcentre",
        origin="12313",
        queue="",
        target="tobacco@nanning",
    ),
    rec(
        9,
        14,
        "110",
        mode="transfer",
        action="emergency",
        queue="nanning-general",
        target="110",
        transfers=["12345"],
        outcome=Outcome.TRANSFERRED,
    ),
    rec(10, 14, "119", mode="transfer", action="emergency", queue="", target="119", outcome=Outcome.EMERGENCY),
]


def test_figures_count_the_records() -> None:
    f = merger_figures(RECORDS, model("guangxi"), TZ)
    d13, d14 = dt.date(2021, 12, 13), dt.date(2021, 12, 14)
    assert f.day == d14 and f.calls == 10
    assert f.by_day == {d13: 2, d14: 8}
    assert f.old_by_day == {
        (d13, "12300"): 1,
        (d14, "12300"): 1,
        (d14, "12301"): 1,
        (d14, "12313"): 1,
        (d14, "12315"): 1,
    }
    assert f.old_calls == 5 and f.old_share() == 0.5 and f.old_share(d13) == 0.5 and f.old_share(d14) == 4 / 8
    assert f.transition == 3 and f.tagged == 4  # 12300 x2, 12301, 12315 (queued with their old line)
    assert f.retired == 0 and f.guidance == 0 and f.guidance_lines == 0
    assert f.subcentre == {"tobacco@nanning": 1} and f.emergency == 2 and f.handovers == {"110": 1}
    states = {s.number: s for s in f.lines}
    assert states["12300"].status == "transition" and states["12300"].days_left == 76  # 2022-02-28 - 2021-12-14
    assert states["12315"].status == "after" and states["12315"].days_left is None
    assert states["12313"].window is None and "110" not in states and len(states) == 33


def test_retired_and_guidance_are_counted_and_their_absence_explained() -> None:
    retired = rec(1, 14, "12300", mode="merge", phase="after", action="retired", queue="", outcome=Outcome.RETIRED)
    text = "\n".join(summary_lines(merger_figures([retired], model("guangxi"), TZ), "广西"))
    assert "retired          1 calls on a retired number\n" in text + "\n"
    assert "(the file has no guidance line)" in text
    quiet = "\n".join(summary_lines(merger_figures(RECORDS, model("guangxi"), TZ), "广西"))
    assert "0 calls on a retired number (no merged number is past its window on this day)" in quiet
    assert "14 lines in their transition window (76 days left), 19 past cut-over, 0 not yet cut over" in quiet
    assert "handed over to 12345: 110 1" in quiet
    yc = merger_figures(
        [rec(1, 14, "12339", mode="guidance", action="guidance", outcome=Outcome.GUIDANCE)], model("yuncheng"), TZ
    )
    assert yc.guidance == 1 and yc.guidance_lines == 7


def test_report_ends_with_the_merger_sections_in_every_format() -> None:
    gx = model("guangxi")
    keys = [s.key for s in merger_sections(merger_figures(RECORDS, gx, TZ))]
    assert keys == ["merger", "merger-daily", "merger-share", "merger-days"]
    csv = render_report(RECORDS, "csv", merger=gx)
    assert "merger-daily,2021-12-14 12300,calls,1" in csv
    assert "merger-share,2021-12-14,share,0.5000" in csv
    assert "merger-days,12300 全国电信用户申诉渠道咨询电话,days left,76" in csv
    assert "merger,110移交12345 handed over by 110,value,1" in csv
    html = render_report(RECORDS, "html", merger=gx)
    assert all(f'id="{k}"' in html for k in keys) and "过渡期剩余天数" in html
    assert "merger" not in render_report(RECORDS, "csv")  # without the merger file: no merger view


def test_report_command_adds_the_merger_view_and_names_a_bad_file(tmp_path: Path) -> None:
    import asyncio

    from hotline_cti.storage.store import Store

    db = tmp_path / "calls.db"

    async def fill() -> None:
        store = await Store.open(f"sqlite+aiosqlite:///{db}")
        try:
            await store.upsert_calls(RECORDS)
        finally:
            await store.close()

    asyncio.run(fill())
    base = [sys.executable, "-m", "hotline_cti.cli.main", "report", "--database", f"sqlite:///{db}"]
    run = subprocess.run(
        [*base, "--config", str(ROOT / "merger_config" / "guangxi.yaml")], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    assert "过渡期剩余天数 / Days left in each line's transition window (on 2021-12-14)" in run.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("region: [\n", encoding="utf-8")
    run = subprocess.run([*base, "--config", str(bad)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and f"{bad}:" in run.stderr


@pytest.mark.parametrize("text", ["2021-13-01", "yesterday", "0001-01-01"])
def test_bad_dates_are_refused(text: str) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "hotline_cti.cli.main", "demo", "--date", text],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2 and "argument --date" in run.stderr
