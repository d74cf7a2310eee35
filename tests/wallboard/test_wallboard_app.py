"""Wallboard web app through aiohttp's test client: login, viewer vs supervisor, anonymous users, masking, SSE."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from hotline_cti.core.model import Phase
from hotline_cti.core.table import RoutingTable
from hotline_cti.records.builder import RecordBuilder
from hotline_cti.records.fanout import RecordFanout
from hotline_cti.wallboard import assets
from hotline_cti.wallboard.app import COOKIE, build_app
from hotline_cti.wallboard.auth import (
    SessionSigner,
    User,
    UsersFileError,
    check_password,
    hash_password,
    load_users,
    parse_users,
)
from hotline_cti.wallboard.hub import Hub
from hotline_cti.wallboard.merger import MERGER_MODES
from tests.wallboard.test_wallboard_live import NOW, abandon, answer, arrive

SECRET = b"test-secret"
FULL_NUMBERS = ("13812345678", "07712587066")
ACTION_HEADERS = {"X-Requested-With": "wallboard"}


def _users() -> dict[str, User]:
    return {
        "boss": User("boss", "supervisor", hash_password("boss-pw", iterations=1000)),
        "eve": User("eve", "viewer", hash_password("eve-pw", iterations=1000)),
    }


def wired_hub(table: RoutingTable, max_rate: float = 2.0) -> Hub:
    """A hub behind the link's one record builder, as the events service wires them."""
    return Hub(table, clock=lambda: NOW, max_rate=max_rate, records=RecordFanout(RecordBuilder(table.region)))


def deliver(hub: Hub, event: dict[str, str]) -> None:
    """One AMI event as the link delivers it: to the record builder (subscribed first), then to the wall."""
    assert isinstance(hub.records, RecordFanout)
    hub.records.feed(event, hub.clock().astimezone(dt.UTC))
    hub.feed(event)


@pytest.fixture
async def hub(small_table: RoutingTable) -> Hub:
    hub = wired_hub(small_table)
    for event in [*arrive("1.1", FULL_NUMBERS[0]), *arrive("1.2", FULL_NUMBERS[1], dialled="12300", origin="12300")]:
        deliver(hub, event)
    return hub


@pytest.fixture
async def client(hub: Hub) -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    app = build_app(hub, _users(), SessionSigner(SECRET))
    async with TestClient(TestServer(app)) as c:
        yield c


async def _login(client: TestClient, user: str, password: str, next_url: str = "/") -> ClientResponse:  # type: ignore[type-arg]
    return await client.post(
        "/login", data={"user": user, "password": password, "next": next_url}, allow_redirects=False
    )


async def test_anonymous_users_get_the_login_page_or_401(client: TestClient) -> None:  # type: ignore[type-arg]
    for path in ("/", "/merger"):
        resp = await client.get(path, allow_redirects=False)
        location = URL(resp.headers["Location"])
        assert resp.status == 302 and (location.path, location.query["next"]) == ("/login", path)
    for path in ("/api/state", "/events"):
        assert (await client.get(path)).status == 401
    assert (await client.post("/api/ack", json={"id": "x"}, headers=ACTION_HEADERS)).status == 401
    page = await (await client.get("/")).text()  # following the redirect
    assert 'id="login-button"' in page and 'data-i18n="password"' in page
    assert "13812345678" not in page and "138****5678" not in page  # nothing of the wall leaks


async def test_wrong_password_and_unknown_user_are_refused(client: TestClient) -> None:  # type: ignore[type-arg]
    for user, password in (("boss", "nope"), ("nobody", "boss-pw"), ("", "")):
        resp = await _login(client, user, password)
        assert resp.status == 401 and 'id="login-error"' in await resp.text()
        assert COOKIE not in resp.cookies
    assert (await client.get("/api/state")).status == 401


async def test_viewer_sees_the_wall_read_only(client: TestClient) -> None:  # type: ignore[type-arg]
    resp = await _login(client, "eve", "eve-pw", "/merger")
    assert resp.status == 302 and resp.headers["Location"] == "/merger"
    cookie = resp.cookies[COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Strict"
    page = await (await client.get("/")).text()
    assert 'id="readonly-note"' in page and 'id="thresholds-form"' not in page
    assert 'data-role="viewer"' in page
    assert (await client.get("/api/state")).status == 200
    assert (await client.post("/api/ack", json={"id": "queue:gx-general:rate"}, headers=ACTION_HEADERS)).status == 403
    resp = await client.post("/api/thresholds", json={"answer_target": 0.5}, headers=ACTION_HEADERS)
    assert resp.status == 403 and "supervisors only" in await resp.text()


async def test_supervisor_changes_thresholds_and_acknowledges_alerts(client: TestClient, hub: Hub) -> None:  # type: ignore[type-arg]
    await _login(client, "boss", "boss-pw")
    page = await (await client.get("/")).text()
    assert 'id="thresholds-form"' in page and 'data-role="supervisor"' in page
    # Without the header a cross-site form could have sent it: refused.
    assert (await client.post("/api/thresholds", json={"wait_alert": 30})).status == 403
    resp = await client.post("/api/thresholds", json={"answer_target": 0.9, "wait_alert": 30}, headers=ACTION_HEADERS)
    assert resp.status == 200 and await resp.json() == {"ok": True, "answer_target": 0.9, "wait_alert": 30}
    resp = await client.post("/api/thresholds", json={"answer_target": 5}, headers=ACTION_HEADERS)
    assert resp.status == 400 and "answer_target must be in (0, 1]" in await resp.text()
    resp = await client.post("/api/thresholds", data=b"{not json", headers=ACTION_HEADERS)
    assert resp.status == 400
    state = await (await client.get("/api/state")).json()
    assert state["thresholds"] == {"answer_target": 0.9, "wait_alert": 30}

    for event in [*answer("1.1"), *abandon("1.2")]:
        deliver(hub, event)
    state = await (await client.get("/api/state")).json()
    assert {a["id"]: a["acknowledged"] for a in state["alerts"] if a["id"] == "queue:gx-general:rate"} == {
        "queue:gx-general:rate": False
    }
    resp = await client.post("/api/ack", json={"id": "queue:gx-general:rate"}, headers=ACTION_HEADERS)
    assert resp.status == 200
    state = await (await client.get("/api/state")).json()
    assert {a["id"]: a["acknowledged"] for a in state["alerts"]}["queue:gx-general:rate"] is True
    assert (await client.post("/api/ack", json={"id": 3}, headers=ACTION_HEADERS)).status == 400


async def test_forged_expired_and_logged_out_sessions_are_anonymous(client: TestClient) -> None:  # type: ignore[type-arg]
    signer = SessionSigner(SECRET)
    viewer = _users()["eve"]
    forged = SessionSigner(b"other-secret").issue(viewer, time.time())
    expired = signer.issue(viewer, time.time() - signer.lifetime - 1)
    payload, _, sig = signer.issue(viewer, time.time()).partition(".")
    tampered = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1] + "." + sig
    for value in (forged, expired, tampered, "garbage", "é.é"):
        client.session.cookie_jar.update_cookies({COOKIE: value})
        assert (await client.get("/api/state")).status == 401, value
    await _login(client, "eve", "eve-pw")
    assert (await client.get("/api/state")).status == 200
    resp = await client.post("/logout", allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"] == "/login"
    assert (await client.get("/api/state")).status == 401


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "\\\\evil", "evil"])
async def test_login_never_redirects_off_site(client: TestClient, target: str) -> None:  # type: ignore[type-arg]
    resp = await _login(client, "eve", "eve-pw", target)
    assert resp.headers["Location"] == "/"


async def test_no_caller_number_in_full_on_any_page_or_stream(client: TestClient) -> None:  # type: ignore[type-arg]
    await _login(client, "boss", "boss-pw")
    bodies = [await (await client.get(p)).text() for p in ("/", "/merger", "/api/state", "/static/wallboard.js")]
    async with client.get("/events") as resp:
        bodies.append(await _next_data(resp))
    for body in bodies:
        for number in FULL_NUMBERS:
            assert number not in body
    state = json.loads(bodies[2])
    assert state["queues"][0]["longest_caller"] == "138****5678"


async def _next_data(resp: ClientResponse) -> str:
    """The next ``data:`` payload of an SSE stream."""
    while True:
        line = await asyncio.wait_for(resp.content.readline(), 10)
        assert line, "stream closed"
        if line.startswith(b"data: "):
            return line[6:].decode().strip()


async def test_sse_sends_a_snapshot_at_once_and_after_each_change(client: TestClient, hub: Hub) -> None:  # type: ignore[type-arg]
    await _login(client, "eve", "eve-pw")
    async with client.get("/events") as resp:
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        first = json.loads(await _next_data(resp))
        assert first["totals"]["waiting"] == 2
        for event in answer("1.1"):
            deliver(hub, event)
        hub.publish()
        second = json.loads(await _next_data(resp))
        assert second["totals"]["waiting"] == 1 and second["totals"]["answered"] == 1
        assert hub.subscriber_count == 1


async def test_slow_subscriber_gets_only_the_newest_snapshot(hub: Hub) -> None:
    queue = hub.subscribe()
    for event in answer("1.1"):
        deliver(hub, event)
    hub.publish()
    for event in answer("1.2"):
        deliver(hub, event)
    hub.publish()
    assert queue.qsize() == 1
    assert json.loads(queue.get_nowait())["totals"]["answered"] == 2
    hub.unsubscribe(queue)
    assert hub.subscriber_count == 0


async def test_publisher_throttles_to_the_configured_rate(small_table: RoutingTable) -> None:
    """The publisher sleeps ``1/max_rate`` between snapshots however many events arrive."""
    hub = wired_hub(small_table, max_rate=2.0)
    assert hub.min_interval == 0.5
    queue = hub.subscribe()
    queue.get_nowait()
    hub.start()
    for i in range(200):
        for event in arrive(f"2.{i}", "13800000000"):
            deliver(hub, event)
    snapshot = json.loads(await asyncio.wait_for(queue.get(), 10))
    await hub.stop()
    assert snapshot["totals"]["waiting"] == 200  # one snapshot carried every event before it


async def test_static_assets_and_both_languages(client: TestClient) -> None:  # type: ignore[type-arg]
    css = await client.get("/static/wallboard.css")
    assert css.status == 200 and css.headers["Content-Type"].startswith("text/css")
    script = await (await client.get("/static/wallboard.js")).text()
    assert '"answer_rate": {"zh": "今日接通率", "en": "Answer rate today"}' in script
    assert "http://" not in script and "https://" not in script  # no CDN


def test_bad_malformed_events_are_skipped_and_counted(hub: Hub) -> None:
    deliver(hub, {"Event": "QueueCallerJoin", "Uniqueid": "9.9", "CallerIDNum": "13812345678"})
    deliver(hub, {"Event": "UserEvent", "UserEvent": "HotlineRating", "CallId": "9.9", "Rating": "7"})
    assert hub.skipped == 2
    assert json.loads(hub.snapshot_json())["totals"]["waiting"] == 2


def test_password_hashes() -> None:
    encoded = hash_password("秘密 pw", iterations=1000)
    assert encoded.startswith("pbkdf2_sha256$1000$") and ":" not in encoded
    assert check_password("秘密 pw", encoded)
    assert not check_password("秘密 pW", encoded)
    assert not check_password("x", "pbkdf2_sha256$x$y$z") and not check_password("x", "plain")
    assert hash_password("a", iterations=1000) != hash_password("a", iterations=1000)  # salted


def test_users_file_errors_name_file_and_line(tmp_path: Path) -> None:
    good = hash_password("pw", iterations=1000)
    text = f"# wallboard users\nboss:supervisor:{good}\n\nbad line\neve:admin:{good}\nbob:viewer:md5$x\nboss:viewer:{good}\n"
    path = tmp_path / "users"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(UsersFileError) as err:
        load_users(path)
    assert str(err.value).splitlines() == [
        f"{path}:4: want user:role:hash, got 1 field(s)",
        f"{path}:5: role 'admin' is not one of supervisor, viewer",
        f"{path}:6: hash of 'bob' is not pbkdf2_sha256$iterations$salt$digest",
        f"{path}:7: user 'boss' appears twice",
    ]
    assert parse_users(f"boss:supervisor:{good}\n")["boss"].is_supervisor
    with pytest.raises(UsersFileError, match="cannot read users file"):
        load_users(tmp_path / "missing")


def test_users_come_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "users"
    path.write_text(f"eve:viewer:{hash_password('pw', iterations=1000)}\n", encoding="utf-8")
    monkeypatch.setenv("HOTLINE_WALLBOARD_USERS", str(path))
    assert list(load_users()) == ["eve"]
    monkeypatch.delenv("HOTLINE_WALLBOARD_USERS")
    assert load_users() == {}


def test_every_string_on_every_page_has_both_languages() -> None:
    assert all(set(texts) == {"zh", "en"} and all(texts.values()) for texts in assets.STRINGS.values())
    pages = (assets.wall_page("u", "supervisor"), assets.merger_page("u", "viewer"), assets.login_page(failed=True))
    used = {key for page in pages for key in re.findall(r'data-i18n="([a-z_]+)"', page)}
    used |= set(re.findall(r'tr\("([a-z_]+)"\)', assets.script()))  # fixed keys in the script
    # keys the script builds: tr("mode_" + m.mode), tr("phase_" + m.phase), tr("alert_" + a.kind)
    used |= {f"mode_{m}" for m in MERGER_MODES} | {f"phase_{p}" for p in Phase} | {"alert_rate", "alert_wait"}
    assert used <= set(assets.STRINGS), used - set(assets.STRINGS)
    assert {"answer_rate", "ack", "no_alerts", "cutover_in"} <= used


def test_a_reloaded_config_renames_lines(hub: Hub, small_table: RoutingTable) -> None:
    lines = dict(small_table.lines)
    lines["12300"] = dataclasses.replace(lines["12300"], name="电信用户申诉（新）")
    hub.set_table(dataclasses.replace(small_table, lines=lines))
    state = json.loads(hub.snapshot_json())
    assert {row["number"]: row["name"] for row in state["lines"]}["12300"] == "电信用户申诉（新）"
    assert {row["number"]: row["name"] for row in state["merger"]}["12300"] == "电信用户申诉（新）"
