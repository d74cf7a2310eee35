"""The main job end to end: ``hotline-cti demo`` as a subprocess over a small busy hour, and its pure parts."""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import io
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from hotline_cti.config.loader import load_config
from hotline_cti.demo.live import Screen, progress_bar, queue_table
from hotline_cti.demo.summary import retired_by_number, summary_lines
from hotline_cti.kpi.accumulator import compute_kpis
from hotline_cti.records.model import CallRecord
from hotline_cti.reports.merger import merger_figures
from hotline_cti.reports.merger import summary_lines as merger_summary
from hotline_cti.storage.store import Store
from simulators.mosquitto import _ensure_installed as ensure_mosquitto
from simulators.scenario import load_scenario
from tests.paths import REPO

ROOT = REPO
SCENARIO = ROOT / "simulators" / "scenarios" / "guangxi-busy-day.yaml"
PID_RE = re.compile(r"\(pid (\d+)\)")
TZ = ZoneInfo("Asia/Shanghai")
MERGED = {"12300", "12301"}  # the scenario's 整体并入 lines


def small_scenario(tmp_path: Path, calls_per_day: int, lines: dict[str, float] | None = None) -> Path:
    """Guangxi's busy day, scaled down (its busiest hour keeps ~1/10 of the calls per day); ``lines``: shares changed."""
    data = yaml.safe_load(SCENARIO.read_text(encoding="utf-8"))
    data["calls_per_day"] = calls_per_day
    data["lines"].update(lines or {})
    data["config"] = str(ROOT / "merger_config" / "guangxi.yaml")
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def demo(tmp_path: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "hotline_cti.cli.main", "demo", str(ROOT / "merger_config"), *args]


def group_gone(pid: int) -> bool:
    """True when no process of the group ``pid`` led is left (children run in their own sessions)."""
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return True
    return False


async def stored(db: Path) -> list[CallRecord]:
    store = await Store.open(f"sqlite+aiosqlite:///{db}")
    try:
        return await store.calls_between()
    finally:
        await store.close()


def test_demo_replays_a_busy_hour_into_the_database_and_report(tmp_path: Path) -> None:
    ensure_mosquitto()  # the demo itself only uses mosquitto when it is installed
    out_dir = tmp_path / "out"
    # More calls on a merged line and on 110 than a real day has, so a small hour shows each kind.
    scenario = small_scenario(tmp_path, 3000, {"12300": 0.04, "110": 0.04})
    proc = subprocess.run(
        demo(tmp_path, "--scenario", str(scenario), "--speed", "600", "--out", str(out_dir), "--mqtt"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert "ok: " in out and "demo: 3 configs, " in out and ", 0 errors" in out
    assert "hours 10-11 at 600x" in out  # the scenario's busiest hour by default
    # A day inside Guangxi's transition (demo/day.py), routed and recorded at that day's time.
    assert "on 2021-12-14 (Tue), hours 10-11" in out
    assert "clock:      both route and record 2021-12-14 (Tuesday) from 10:00" in out
    assert re.search(r"^progress \d+% \(\d+/\d+ calls, simulated 10:", out, re.M)
    # One record per call the simulator reports, written by the controller from the AMI events.
    simulated = int(json.loads((out_dir / "simulate.json").read_text(encoding="utf-8"))["arrivals"])
    assert simulated > 100
    records = asyncio.run(stored(out_dir / "hotline-cti.db"))
    assert len({r.call_id for r in records}) == len(records) == simulated
    assert f"records: {simulated} in the database for {simulated} calls simulated" in out
    # The printed summary is compute_kpis over the database.
    kpis = compute_kpis(records)
    assert "\n".join(summary_lines(kpis, retired_by_number(records))) in out
    assert f"answer rate      {kpis.total.rate:.1%} ({kpis.total.answered} answered" in out
    assert kpis.calls == simulated and kpis.total.offered > 0
    # The HTML report with its SVG charts.
    report = out_dir / "report.html"
    assert f"report: {report}" in out
    html = report.read_text(encoding="utf-8")
    assert html.count("<svg") >= 3 and "分时段接通率" in html
    # The merger: every kind is in the records, and the summary's figures are counted from them.
    model = load_config(ROOT / "merger_config" / "guangxi.yaml").model
    assert {r.started.astimezone(TZ).date() for r in records} == {dt.date(2021, 12, 14)}
    transition = [r for r in records if r.phase == "transition"]
    assert transition and {r.dialled for r in transition} <= MERGED and all(r.origin == r.dialled for r in transition)
    assert all(r.mode == "merge" and r.queue.endswith("-general") for r in transition)  # tagged, then 12345
    tagged = [r for r in records if r.origin and r.mode in ("merge", "parallel", "subcentre") and r.queue]
    sub = collections.Counter(r.target for r in records if r.action == "subcentre")
    handed = [r for r in records if r.action == "emergency" and "12345" in r.transfers]
    assert handed and all(r.dialled == "110" for r in handed) and sum(sub.values()) > 0
    old = [r for r in records if r.dialled not in ("12345", "110")]  # the scenario dials short codes only
    figures = merger_figures(records, model, TZ)
    assert "\n".join(merger_summary(figures, model.region.name)) in out
    assert f"transition       {len(transition)} calls heard their old line's transition prompt" in out
    assert f"old line tagged  {len(tagged)} calls reached a 12345 queue" in out
    assert f"old numbers      {len(old)} calls ({len(old) / len(records):.1%}) still dialled an old number" in out
    assert f"sub-centres      {sum(sub.values())} calls put through to a sub-centre" in out
    assert f"handed over to 12345: 110 {len(handed)}" in out
    assert "merger day       2021-12-14 in 广西壮族自治区: 14 lines in their transition window (76 days left)" in out
    assert "retired          0 calls on a retired number (no merged number is past its window on this day)" in out
    assert "guidance         0 calls told where to turn (话务引导) (the file has no guidance line)" in out
    assert all(f'id="{k}"' in html for k in ("merger", "merger-daily", "merger-share", "merger-days"))
    n12300 = sum(1 for r in records if r.dialled == "12300")
    assert f"<td>2021-12-14 12300</td><td>{n12300}</td>" in html
    # Nothing left running: both children's process groups are gone.
    pids = [int(p) for p in PID_RE.findall(out)]
    assert len(pids) == 2
    assert all(group_gone(pid) for pid in pids)
    # --mqtt: every call event of the outbox went out through the throwaway broker, which is gone too.
    port = int(re.search(r"^mqtt: mosquitto on 127\.0\.0\.1:(\d+)$", out, re.M).group(1))  # type: ignore[union-attr]
    with sqlite3.connect(out_dir / "hotline-cti.db") as db:
        sent = dict(db.execute("SELECT sent IS NOT NULL, count(*) FROM outbox GROUP BY 1").fetchall())
    assert sent.get(1, 0) > simulated and not sent.get(0)
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass


def test_demo_stopped_midway_leaves_nothing_running(tmp_path: Path) -> None:
    scenario = small_scenario(tmp_path, 3000)
    proc = subprocess.Popen(
        demo(tmp_path, "--scenario", str(scenario), "--speed", "20", "--out", str(tmp_path / "out")),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    seen: list[str] = []
    try:
        for line in proc.stdout:
            seen.append(line)
            if line.startswith("progress "):  # both children up and the replay running
                break
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = "".join(seen) + rest
    assert proc.returncode == 130, out
    assert "demo: interrupted; controller and PBX stopped" in out
    pids = [int(p) for p in PID_RE.findall(out)]
    assert len(pids) == 2
    assert all(group_gone(pid) for pid in pids)


def test_demo_stops_at_an_invalid_merger_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        (ROOT / "merger_config" / "guangxi.yaml").read_text(encoding="utf-8").replace("hotlines:", "hotlinez:")
    )
    proc = subprocess.run(
        [sys.executable, "-m", "hotline_cti.cli.main", "demo", str(bad), "--out", str(tmp_path / "out")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert f"INVALID {bad}:" in proc.stdout
    assert re.search(rf"^{re.escape(str(bad))}:\d+:\d+: ", proc.stdout, re.M)
    assert "2/3" not in proc.stdout and not (tmp_path / "out").exists()


def test_busiest_hour_of_the_shipped_scenario() -> None:
    from hotline_cti.cli.demo_cmd import busiest_hours

    scenario, _ = load_scenario(SCENARIO)
    assert busiest_hours(scenario) == (10, 11)


def test_progress_bar_and_queue_table() -> None:
    assert progress_bar(1, 4, 8) == "[##......]  25%  1/4 calls"
    assert progress_bar(9, 4, 4) == "[####] 100%  9/4 calls"
    rows = [
        {
            "queue": "q-small",
            "waiting": 0,
            "longest_wait": 0,
            "free": 2,
            "busy": 0,
            "answered": 1,
            "unanswered": 0,
            "abandoned": 0,
        },
        {
            "queue": "q-big",
            "waiting": 3,
            "longest_wait": 41,
            "free": 0,
            "busy": 9,
            "answered": 50,
            "unanswered": 2,
            "abandoned": 2,
        },
    ]
    text = queue_table(rows, 1)
    assert "q-big" in text and "q-small" not in text
    assert text.splitlines()[-1].split() == ["q-big", "3", "41", "0", "9", "50", "2"]


def test_screen_redraws_in_place() -> None:
    buf = io.StringIO()
    screen = Screen(buf)
    screen.draw(["a", "b"])
    screen.draw(["c"])
    assert buf.getvalue() == "\x1b[Ja\nb\n\x1b[2F\x1b[Jc\n"


@pytest.mark.parametrize("hours", ["25-26", "20-2", "x"])
def test_bad_hours_are_refused(hours: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "hotline_cti.cli.main", "demo", "--hours", hours],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "argument --hours" in proc.stderr
