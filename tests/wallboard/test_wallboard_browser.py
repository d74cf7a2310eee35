"""The wallboard in a real browser: headless Chromium reads the numbers a scripted call load produced.

A SQLite store holds this week's earlier calls; the simulated Asterisk AMI server (simulators/ami_server.py)
sends the live load over TCP to the wallboard's AmiClient; Chromium logs in, follows the SSE stream and the
test reads the figures from the DOM by element id, checking them against the store plus what was emitted.
Screenshots go to a temp dir; with HOTLINE_DOCS_SCREENSHOTS=1 they refresh docs/img/ for docs/wallboard.md
(off by default, so a test run leaves the work tree clean).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from hotline_cti.adapters.ami import AmiClient, AmiSettings
from hotline_cti.config.checked import load_checked
from hotline_cti.config.compile import compile_config
from hotline_cti.config.loader import load_config
from hotline_cti.core.table import RoutingTable
from hotline_cti.kpi.accumulator import compute_kpis
from hotline_cti.records.builder import RecordBuilder
from hotline_cti.records.model import CallRecord, Outcome
from hotline_cti.serve.record_pipeline import RecordPipeline
from hotline_cti.storage.store import Store
from hotline_cti.storage.writer import BatchWriter
from hotline_cti.wallboard.auth import User, hash_password
from hotline_cti.wallboard.service import start_wallboard
from simulators.ami_server import AmiServer, SimMember
from simulators.pbx import Pbx
from simulators.pbx.realtime import run_live
from simulators.pbx.routing import CoreRouter
from simulators.scenario import generate, load_scenario, queue_setups
from tests.chromium import browser
from tests.paths import REPO
from tests.wallboard.test_wallboard_live import abandon, answer, arrive, hangup, member, rating, transfer
from tests.wallboard.test_wallboard_region import GENERAL as REGION_GENERAL
from tests.wallboard.test_wallboard_region import UTC_NOW as REGION_NOW
from tests.wallboard.test_wallboard_region import region_store

__all__ = ["browser"]  # the fixture, imported from tests/chromium.py

ROOT = REPO
IMG = (
    ROOT / "docs" / "img"
    if os.environ.get("HOTLINE_DOCS_SCREENSHOTS") == "1"
    else Path(tempfile.mkdtemp(prefix="wallboard-img-"))
)
TZ = ZoneInfo("Asia/Shanghai")
BASE = dt.datetime(2021, 12, 1, 10, 0, tzinfo=TZ)  # Wednesday; Guangxi's merged lines are in their window
GENERAL, L12315, E12315 = "nanning-general", "gx-l12315", "gx-expert-e12315"
WAIT = 20.0  # seconds the browser may take to show a figure (a bound, not a measurement)


def _stored_calls() -> list[CallRecord]:
    """The store's calls: 20 earlier today, 40 earlier this week on 12300, 5 last week."""
    utc = dt.UTC
    out: list[CallRecord] = []
    for i in range(20):
        rec = CallRecord(f"db.t{i}", "gx", (BASE - dt.timedelta(hours=2, minutes=-i)).astimezone(utc), queue=GENERAL)
        rec.outcome = Outcome.ABANDONED if i < 3 else Outcome.ANSWERED
        rec.rating = 1 if 3 <= i < 7 else (3 if i == 7 else None)
        if i == 8:
            rec.transfers, rec.outcome = ["110"], Outcome.TRANSFERRED
        out.append(rec)
    monday = (BASE - dt.timedelta(days=2)).astimezone(utc)
    for i in range(40):
        via_main = i >= 30
        out.append(
            CallRecord(
                f"db.w{i}",
                "gx",
                monday + dt.timedelta(minutes=i),
                dialled="12345" if via_main else "12300",
                origin="12300",
                mode="main" if via_main else "merge",
                queue=GENERAL,
                outcome=Outcome.ANSWERED,
            )
        )
    sunday = (BASE - dt.timedelta(days=3)).astimezone(utc)
    out += [
        CallRecord(f"db.l{i}", "gx", sunday, origin="12300", mode="merge", outcome=Outcome.ANSWERED) for i in range(5)
    ]
    return out


def _live_load() -> list[dict[str, str]]:
    """The scripted load emitted over AMI (caller numbers in full, as Asterisk sends them)."""
    ev: list[dict[str, str]] = [member(GENERAL, "PJSIP/8004", 2)]  # 8004 takes a call: busy
    for i in range(10):  # 12345: 8 answered (3 transferred), 2 abandoned; 8 ratings
        uid = f"1700000000.{i}"
        ev += arrive(uid, f"1381234{i:04d}", queue=GENERAL)
        if i < 8:
            ev += answer(uid, GENERAL)
            ev += transfer(uid, "110") if i < 2 else transfer(uid, "120") if i == 2 else []
            ev += hangup(uid) + rating(uid, (1, 1, 1, 1, 1, 2, 2, 3)[i])
        else:
            ev += abandon(uid, GENERAL)
    for i in range(4):  # the retired 12300 still dialled: routed to 12345 in its transition window
        uid = f"1700000100.{i}"
        ev += arrive(
            uid, f"1391234{i:04d}", dialled="12300", origin="12300", mode="merge", phase="transition", queue=GENERAL
        )
        ev += answer(uid, GENERAL) + (transfer(uid, "12366") if i == 0 else []) + hangup(uid)
    for i in range(3):  # 12315 dialled directly (parallel line): 2 answered, 1 abandoned
        uid = f"1700000200.{i}"
        ev += arrive(
            uid, f"1371234{i:04d}", dialled="12315", origin="12315", mode="parallel", phase="after", queue=L12315
        )
        ev += (answer(uid, L12315) + hangup(uid)) if i < 2 else abandon(uid, L12315)
    for i in range(2):  # 12345 menu 3, topic 12315: expert seats
        uid = f"1700000300.{i}"
        ev += arrive(uid, f"1361234{i:04d}", origin="12315", queue=E12315, expert="e12315")
        ev += answer(uid, E12315) + hangup(uid)
    for i in range(3):  # still waiting
        ev += arrive(f"1700000400.{i}", f"1351234{i:04d}", queue=GENERAL)
    return ev


async def _until(check: Callable[[], bool], limit: float = 10.0) -> None:
    """Wait for ``check()`` (a bound, not a measurement)."""

    async def poll() -> None:
        while not check():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), limit)


# Table rows are rebuilt on every snapshot, so an element found a moment ago may be gone: read the page in
# one script call (atomic on the page's thread) instead of holding element references.
_READ = """
const e = document.querySelector(arguments[0]);
if (!e) return null;
return arguments[1] === "text" ? e.textContent : arguments[1] === "class" ? e.className : e.dataset.value;
"""


def _read(driver: webdriver.Chrome, selector: str, what: str = "value") -> str | None:
    """``data-value`` (or ``text`` / ``class``) of the element ``selector`` names, None when absent."""
    value = driver.execute_script(_READ, selector, what)
    return None if value is None else str(value)


def _wait_value(driver: webdriver.Chrome, element_id: str, want: str) -> None:
    try:
        WebDriverWait(driver, WAIT, poll_frequency=0.1).until(lambda d: _read(d, f"#{element_id}") == want)
    except TimeoutException:
        got = _read(driver, f"#{element_id}")
        raise AssertionError(f"#{element_id} shows {got!r}, expected {want!r}") from None


def _logout(driver: webdriver.Chrome) -> None:
    driver.find_element(By.ID, "logout").click()
    WebDriverWait(driver, WAIT).until(lambda d: d.find_elements(By.ID, "login-button"))  # the cookie is gone


def _login(driver: webdriver.Chrome, url: str, user: str, password: str) -> None:
    driver.get(url + "/")
    assert "/login" in driver.current_url  # anonymous: the login page
    driver.find_element(By.ID, "user").send_keys(user)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "login-button").click()
    WebDriverWait(driver, WAIT).until(lambda d: d.find_elements(By.ID, "total-waiting"))


def _drive(driver: webdriver.Chrome, url: str, expected: dict[str, str]) -> dict[str, Any]:
    """The browser session (runs in a worker thread while the event loop serves the wallboard)."""
    seen: dict[str, Any] = {}
    _login(driver, url, "boss", "boss-pw")
    _wait_value(driver, "calls-today", expected["calls-today"])  # every emitted event has arrived
    for element_id, want in expected.items():
        if not element_id.startswith("m-"):
            _wait_value(driver, element_id, want)
    seen["answer_rate_red"] = "bad" in str(_read(driver, "#answer-rate", "class"))
    seen["caller"] = _read(driver, f"#q-{GENERAL}-caller", "text")
    seen["longest_red"] = "bad" in str(_read(driver, "#longest-wait", "class"))
    seen["line_12300_red"] = "bad" in str(_read(driver, "#line-12300", "class"))
    seen["callback_status"] = _read(driver, "#cb-1700000300_9-status", "text")
    seen["page"] = driver.page_source
    seen["label_zh"] = driver.find_element(By.CSS_SELECTOR, "[data-i18n=waiting]").text
    IMG.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(IMG / "wallboard.png"))
    driver.find_element(By.ID, "lang-toggle").click()
    seen["label_en"] = driver.find_element(By.CSS_SELECTOR, "[data-i18n=waiting]").text
    driver.find_element(By.ID, "lang-toggle").click()
    alert = f"#alert-queue_{GENERAL}_rate"
    driver.find_element(By.CSS_SELECTOR, f"{alert} button.ack").click()  # the list is stable between snapshots
    WebDriverWait(driver, WAIT).until(lambda d: "acked" in str(_read(d, alert, "class")))
    driver.find_element(By.ID, "nav").click()
    for element_id, want in expected.items():
        if element_id.startswith("m-"):
            _wait_value(driver, element_id, want)
    seen["merger_page"] = driver.page_source
    driver.save_screenshot(str(IMG / "wallboard-merger.png"))
    _logout(driver)
    _login(driver, url, "eve", "eve-pw")
    _wait_value(driver, "calls-today", expected["calls-today"])
    seen["viewer_ack_buttons"] = len(driver.find_elements(By.CSS_SELECTOR, "button.ack"))
    seen["viewer_readonly"] = driver.find_element(By.ID, "readonly-note").is_displayed()
    seen["viewer_acked"] = "acked" in str(_read(driver, alert, "class"))
    # Back as the supervisor: lower the answer-rate target to 80% and the wall is no longer red.
    _logout(driver)
    _login(driver, url, "boss", "boss-pw")
    _wait_value(driver, "calls-today", expected["calls-today"])
    target = driver.find_element(By.ID, "answer-target")
    target.click()  # focused, the next snapshot leaves the field alone (WebDriver's clear() would blur it)
    target.send_keys(Keys.CONTROL, "a")
    target.send_keys("80")
    driver.find_element(By.CSS_SELECTOR, "#thresholds-form button[type=submit]").click()
    WebDriverWait(driver, WAIT).until(lambda d: "bad" not in str(_read(d, "#answer-rate", "class")))
    return seen


def _pct(part: int, whole: int) -> str:
    return repr(part / whole)


async def test_wall_and_merger_views_in_chromium(browser: webdriver.Chrome, tmp_path: Path) -> None:
    table = compile_config(load_config(ROOT / "merger_config" / "guangxi.yaml").model)
    now = [BASE.astimezone(dt.UTC)]  # a stepped clock: the screenshots come out the same every run

    def clock() -> dt.datetime:
        return now[0]

    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'wallboard.db'}")
    await store.upsert_calls(_stored_calls())
    users = {
        "boss": User("boss", "supervisor", hash_password("boss-pw", iterations=1000)),
        "eve": User("eve", "viewer", hash_password("eve-pw", iterations=1000)),
    }
    async with AmiServer(username="wall", secret="wall-secret") as pbx:
        pbx.add_queue(
            GENERAL,
            [
                SimMember("坐席01", "PJSIP/8001"),
                SimMember("坐席02", "PJSIP/8002", status=2),
                SimMember("坐席03", "PJSIP/8003", paused=True),
                SimMember("坐席04", "PJSIP/8004"),
            ],
        )
        pbx.add_queue(L12315, [SimMember("坐席11", "PJSIP/8101"), SimMember("坐席12", "PJSIP/8102")])
        client = AmiClient(AmiSettings(host="127.0.0.1", port=pbx.port, username="wall", secret="wall-secret"))
        # The link's one record builder, storing nothing (as `hotline-cti wallboard` runs it): the wall's calls.
        pipeline = RecordPipeline(client, RecordBuilder(table.region), None, clock=clock)
        runner = await start_wallboard(
            table, port=0, ami=client, records=pipeline.records, store=store, users=users, secret=b"k", clock=clock
        )
        try:
            await client.connect()  # login, then the resync hook reads QueueStatus (the members above)
            # Serve's callback keeper (serve/callback_keeper.py) gives the wall its open callbacks, numbers masked.
            callback = {"id": "1700000300.9", "queue": GENERAL, "number": "138****0009", "status": "retry"}
            callback |= {"source": "key", "offered": "2021-12-01T01:58:00+00:00", "joined": None}
            callback |= {"position": 3, "attempts": 1, "next_try": "2021-12-01T02:03:00+00:00"}
            runner.hub.callbacks = lambda: {"open": [callback], "waiting": 0, "retry": 1, "listed": 0}
            for event in _live_load():
                pbx.emit(event)
            last = runner.hub.state.queues
            await _until(lambda: "1700000400.2" in (last[GENERAL].waiting if GENERAL in last else {}))
            now[0] += dt.timedelta(seconds=75)  # the three callers have now waited 1:15

            # What the page must show: the store's part, counted here from the database, plus the live load.
            day = BASE.replace(hour=0)
            today = await store.calls_between(day)
            week = await store.calls_between(day - dt.timedelta(days=2), day)
            db_answered = sum(r.outcome in (Outcome.ANSWERED, Outcome.TRANSFERRED) for r in today)
            db_unanswered = sum(r.outcome is Outcome.ABANDONED for r in today)
            db_110 = sum(r.transfers.count("110") for r in today)
            db_ratings = {k: sum(r.rating == k for r in today) for k in (1, 2, 3)}
            db_12300 = [r for r in week if r.origin == "12300"]
            assert (len(today), len(db_12300)) == (20, 40)  # the store answered what was put in
            answered, unanswered = db_answered + 8 + 4 + 2 + 2, db_unanswered + 2 + 1
            ratings = {1: db_ratings[1] + 5, 2: db_ratings[2] + 2, 3: db_ratings[3] + 1}
            week_12300 = len(db_12300) + 4
            old_12300 = sum(r.mode != "main" for r in db_12300) + 4
            expected = {
                "calls-today": str(len(today) + 10 + 4 + 3 + 2 + 3),
                "total-waiting": "3",
                "longest-wait": "75",
                "agents-free": "3",
                "agents-busy": "2",
                "agents-paused": "1",
                "answer-rate": _pct(answered, answered + unanswered),
                f"q-{GENERAL}-waiting": "3",
                f"q-{L12315}-answered": "2",
                f"q-{L12315}-unanswered": "1",
                "e-e12315-answered": "2",
                "line-12300-calls": "4",
                "line-12300-old": "4",
                "line-12315-calls": "5",
                "line-12315-old": "3",
                "xfer-110": str(db_110 + 2),
                "xfer-120": "1",
                "xfer-119": "0",
                "xfer-subcentre": "1",
                "rating-1": str(ratings[1]),
                "rating-2": str(ratings[2]),
                "rating-3": str(ratings[3]),
                "satisfaction-rate": _pct(ratings[1] + ratings[2], sum(ratings.values())),
                "m-12300-calls": str(week_12300),
                "m-12300-old": str(old_12300),
                "m-12300-share": _pct(old_12300, week_12300),
                "m-12300-days": "89",  # 2021-12-01 10:00 to the window's end 2022-02-28 00:00, rounded up
                "m-12300-end": "2022-02-27",
                "m-12300-phase": "transition",
                "m-12315-calls": "5",
                "m-12315-share": _pct(3, 5),
                "m-12315-phase": "after",
                "m-12301-calls": "0",
                "cb-1700000300_9-attempts": "1",
            }
            seen = await asyncio.to_thread(_drive, browser, runner.url, expected)
        finally:
            await runner.close()
            await pipeline.stop()
            await client.close()
            await store.close()

    assert seen["answer_rate_red"]  # 84.6% is under the 95% line
    assert seen["line_12300_red"]  # callers still dial the retired 12300
    assert seen["caller"] == "135****0000"  # the longest waiting caller, masked
    assert seen["callback_status"] == "待重拨" and "138****0009" in seen["page"]  # an open callback, masked
    assert seen["longest_red"]  # 1:15 is over the 60 s wait alert
    for page in (seen["page"], seen["merger_page"]):
        for prefix in ("1381234", "1391234", "1371234", "1361234", "1351234"):
            assert prefix + "000" not in page  # no caller number in full
    assert (seen["label_zh"], seen["label_en"]) == ("排队等待", "Waiting")
    assert runner.hub.state.thresholds.answer_target == 0.8  # set from the supervisor's form
    assert seen["viewer_ack_buttons"] == 0 and seen["viewer_readonly"] and seen["viewer_acked"]
    assert (IMG / "wallboard.png").stat().st_size > 10_000
    assert (IMG / "wallboard-merger.png").stat().st_size > 10_000


def _read_wall(driver: webdriver.Chrome, url: str, expected: dict[str, str]) -> None:
    """Log in and wait until every figure in ``expected`` is on the page."""
    driver.delete_all_cookies()
    _login(driver, url, "boss", "boss-pw")
    for element_id, want in expected.items():
        _wait_value(driver, element_id, want)
    _logout(driver)


async def test_the_wall_agrees_with_the_database_under_the_simulated_pbx(
    browser: webdriver.Chrome, tmp_path: Path
) -> None:
    """simulators/pbx replays 300 calls of Guangxi's busy day over AMI; the record pipeline writes them to SQLite
    as ``hotline-cti serve`` does, the wallboard follows the same events, and the page shows what the database
    holds, counted by the report's KPI code."""
    scenario, config = load_scenario(ROOT / "simulators" / "scenarios" / "guangxi-busy-day.yaml")
    checked = load_checked(str(config))
    table = checked.table
    arrivals = generate(scenario, table.timezone, seed=7, hours=(10, 11))[:300]
    noon = dt.datetime.combine(scenario.date, dt.time(12), table.timezone).astimezone(dt.UTC)

    def clock() -> dt.datetime:  # the scenario's day, for the wall and the records alike
        return noon

    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'records.db'}")
    writer = BatchWriter(store)
    await writer.start()
    users = {"boss": User("boss", "supervisor", hash_password("boss-pw", iterations=1000))}
    async with AmiServer(username="sim", secret="sim-secret") as server:
        settings = AmiSettings(host="127.0.0.1", port=server.port, username="sim", secret="sim-secret")
        client = AmiClient(settings)
        # One builder for the link: the writer and the wall get the same records.
        pipeline = RecordPipeline(client, RecordBuilder(table.region), writer, clock=clock)
        runner = await start_wallboard(
            table, port=0, ami=client, records=pipeline.records, users=users, secret=b"k", clock=clock
        )
        try:
            await client.connect()
            pbx = Pbx(
                CoreRouter(table),
                queue_setups(scenario, checked.model),
                scenario.settings(),
                tz=table.timezone,
                sink=server.emit,
                seed=7,
            )
            summary = await run_live(pbx, arrivals, speed=None)
            state = runner.hub.state
            await _until(lambda: len(state.calls) == summary.arrivals and pipeline.builder.active == 0, limit=30)
            await pipeline.stop()
            await writer.stop()  # flushes every record to the database
            stored = await store.calls_between()
            kpi = compute_kpis(stored, tz=table.timezone)
            assert len(stored) == summary.arrivals == 300
            assert summary.transferred > 0 and summary.abandoned > 0 and sum(kpi.ratings.values()) > 0
            line_12345 = kpi.by_line["12345"]
            expected = {
                "calls-today": str(len(stored)),
                "total-waiting": "0",
                "answer-rate": repr(kpi.total.rate),
                "satisfaction-rate": repr(kpi.satisfaction),
                "rating-1": str(kpi.ratings[1]),
                "rating-3": str(kpi.ratings[3]),
                "xfer-110": str(kpi.transfers.get("110", 0)),
                "line-12345-calls": str(line_12345.calls),
                "line-12345-answered": str(line_12345.answers.answered),
                **{f"q-{q}-answered": str(c.answered) for q, c in kpi.by_queue.items()},
            }
            await asyncio.to_thread(_read_wall, browser, runner.url, expected)
        finally:
            await runner.close()
            await client.close()
            await store.close()


def _drive_region(driver: webdriver.Chrome, url: str, shot: Path) -> dict[str, Any]:
    """The region wall in the browser: the per-node table, the sums and today's calls; nothing that needs AMI."""
    driver.delete_all_cookies()
    _login(driver, url, "boss", "boss-pw")
    for element_id, want in {
        "node-nn-1-waiting": "2",
        "node-nn-2-free": "2",
        "node-nn-1-longest": "95",  # seconds (data-value); shown 1:35, over the wait alert
        "node-nn-2-longest": "40",
        "node-nn-3-waiting": "0",  # silent: listed, not summed
        f"q-{REGION_GENERAL}-waiting": "3",
        "total-waiting": "3",
        "agents-free": "3",
        "calls-today": "5",
        "answer-rate": "0.8",
    }.items():
        _wait_value(driver, element_id, want)
    seen = {
        "stale_class": _read(driver, "#node-nn-3", "class"),
        "stale_text": _read(driver, "#node-nn-3 td", "text"),
        "longest": _read(driver, "#longest-wait", "text"),
        "node_longest": (_read(driver, "#node-nn-1-longest", "text"), _read(driver, "#node-nn-1-longest", "class")),
        "nodes_shown": driver.find_element(By.ID, "nodes-section").is_displayed(),
        "note_shown": driver.find_element(By.ID, "no-asterisk-note").is_displayed(),
        "ami_forms": len(driver.find_elements(By.CSS_SELECTOR, "#spy-form, #agent-form, #play-recording")),
    }
    driver.save_screenshot(str(shot))
    _logout(driver)
    return seen


async def test_the_region_wall_in_chromium(
    browser: webdriver.Chrome, tmp_path: Path, small_table: RoutingTable
) -> None:
    """A wall with no Asterisk link: two nodes and a silent one, read from SQLite (test_wallboard_region.py)."""
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'region.db'}")
    await region_store(store)
    users = {"boss": User("boss", "supervisor", hash_password("boss-pw", iterations=1000))}
    runner = await start_wallboard(
        small_table, port=0, store=store, region=store, users=users, secret=b"k", clock=lambda: REGION_NOW
    )
    try:
        seen = await asyncio.to_thread(_drive_region, browser, runner.url, IMG / "wallboard-region.png")
    finally:
        await runner.close()
        await store.close()
    assert "bad" in str(seen["stale_class"]) and seen["stale_text"] == "nn-3 (失联)"
    assert seen["longest"] == "1:35"  # the longest over the live nodes, from their rows in the store
    assert seen["node_longest"][0] == "1:35" and "bad" in str(seen["node_longest"][1])  # nn-1's, over the alert
    assert seen["nodes_shown"] and seen["note_shown"] and seen["ami_forms"] == 0
    assert (IMG / "wallboard-region.png").stat().st_size > 10_000  # the picture in docs/wallboard.md
