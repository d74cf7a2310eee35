"""Wallboard logins that resist guessing and sessions that end when told (issue 14, item 3), and the audit
of logins and supervisor actions (item 4)."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer

from hotline_cti.storage.store import Store
from hotline_cti.storage.writer import BatchWriter
from hotline_cti.wallboard import app as app_module
from hotline_cti.wallboard.app import COOKIE, MAX_HASHING, build_app
from hotline_cti.wallboard.auth import SessionSigner, User, UsersSource
from hotline_cti.wallboard.hub import Hub
from hotline_cti.wallboard.throttle import LoginLimits, LoginThrottle
from tests.wallboard.test_wallboard_app import ACTION_HEADERS, SECRET, _next_data, _users
from tests.wallboard.test_wallboard_app import hub as hub  # the wall with two callers waiting (a fixture)

Client = TestClient  # type: ignore[type-arg]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def login(client: Client, user: str, password: str) -> ClientResponse:
    return await client.post("/login", data={"user": user, "password": password, "next": "/"}, allow_redirects=False)


def cookie_of(resp: ClientResponse) -> str:
    return resp.cookies[COOKIE].value


async def state_with(client: Client, cookie: str) -> int:
    client.session.cookie_jar.clear()
    client.session.cookie_jar.update_cookies({COOKIE: cookie})
    return (await client.get("/api/state")).status


def users_line(user: User) -> str:
    return f"{user.name}:{user.role}:{user.password_hash}\n"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def make_client(hub: Hub) -> AsyncIterator[Callable[..., Awaitable[Client]]]:
    clients: list[Client] = []

    async def make(
        users: UsersSource | None = None,
        limits: LoginLimits | None = None,
        clock: FakeClock | None = None,
        audit: BatchWriter | None = None,
    ) -> Client:
        throttle = LoginThrottle(limits or LoginLimits(), clock=clock or FakeClock())
        known = users if users is not None else UsersSource(users=_users())
        app = build_app(hub, known, SessionSigner(SECRET), throttle=throttle, audit=audit)
        client = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


async def test_200_bad_passwords_lock_the_user_and_the_right_one_is_refused_until_the_lockout_ends(
    make_client: Callable[..., Awaitable[Client]], clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="hotline_cti.wallboard")
    limits = LoginLimits(user_failures=5, address_failures=10_000, window=900, lockout=600)
    client = await make_client(limits=limits, clock=clock)
    statuses = [(await login(client, "boss", f"guess-{n}")).status for n in range(200)]
    assert statuses[:5] == [401] * 5  # the fifth failure locks the name
    assert set(statuses[5:]) == {429}  # locked: refused before any hash
    resp = await login(client, "boss", "boss-pw")
    assert resp.status == 429 and COOKIE not in resp.cookies and int(resp.headers["Retry-After"]) > 0
    assert (await login(client, "eve", "eve-pw")).status == 302  # the lock is the name's, not everyone's
    text = caplog.text
    assert "'boss'" in text and "locked for 600s" in text and "127.0.0.1" in text
    assert "boss-pw" not in text and "guess-" not in text  # never a password in the log
    clock.now += 599
    assert (await login(client, "boss", "boss-pw")).status == 429
    clock.now += 2  # the lockout has expired
    resp = await login(client, "boss", "boss-pw")
    assert resp.status == 302 and COOKIE in resp.cookies


async def test_an_address_trying_many_names_is_locked_out(
    make_client: Callable[..., Awaitable[Client]], clock: FakeClock
) -> None:
    limits = LoginLimits(user_failures=5, address_failures=20, window=900, lockout=300)
    client = await make_client(limits=limits, clock=clock)
    statuses = [(await login(client, f"user{n}", "x")).status for n in range(25)]
    assert statuses[:20] == [401] * 20 and set(statuses[20:]) == {429}
    assert (await login(client, "eve", "eve-pw")).status == 429  # right name and password, wrong address
    clock.now += 301
    assert (await login(client, "eve", "eve-pw")).status == 302


async def test_failures_outside_the_window_do_not_add_up(
    make_client: Callable[..., Awaitable[Client]], clock: FakeClock
) -> None:
    client = await make_client(limits=LoginLimits(user_failures=3, window=60), clock=clock)
    for _ in range(10):
        assert (await login(client, "eve", "nope")).status == 401
        assert (await login(client, "eve", "nope")).status == 401
        clock.now += 61
    assert (await login(client, "eve", "eve-pw")).status == 302


def test_limits_come_from_the_environment() -> None:
    env = {"HOTLINE_WALLBOARD_USER_FAILURES": "3", "HOTLINE_WALLBOARD_LOCKOUT": "120"}
    assert LoginLimits.from_env(env) == LoginLimits(user_failures=3, lockout=120)
    assert LoginLimits.from_env({}) == LoginLimits()
    with pytest.raises(ValueError, match="HOTLINE_WALLBOARD_USER_FAILURES"):
        LoginLimits.from_env({"HOTLINE_WALLBOARD_USER_FAILURES": "0"})


async def test_logout_revokes_the_cookie_even_when_replayed(make_client: Callable[..., Awaitable[Client]]) -> None:
    client = await make_client()
    cookie = cookie_of(await login(client, "boss", "boss-pw"))
    assert await state_with(client, cookie) == 200
    assert (await client.post("/logout", allow_redirects=False)).status == 302
    assert await state_with(client, cookie) == 401  # the old cookie, signature still valid, is dead
    other = cookie_of(await login(client, "boss", "boss-pw"))
    assert await state_with(client, other) == 200 and await state_with(client, cookie) == 401


async def test_a_removed_user_or_a_new_role_ends_the_session_at_once(
    make_client: Callable[..., Awaitable[Client]], tmp_path: Path
) -> None:
    boss, eve = _users()["boss"], _users()["eve"]
    path = tmp_path / "users"
    path.write_text(users_line(boss) + users_line(eve), encoding="utf-8")
    client = await make_client(users=UsersSource(path))
    boss_cookie = cookie_of(await login(client, "boss", "boss-pw"))
    eve_cookie = cookie_of(await login(client, "eve", "eve-pw"))
    assert await state_with(client, boss_cookie) == 200 and await state_with(client, eve_cookie) == 200

    path.write_text(users_line(eve), encoding="utf-8")  # boss removed
    assert await state_with(client, boss_cookie) == 401  # the very next request
    resp = await client.post("/api/ack", json={"id": "x"}, headers=ACTION_HEADERS)
    assert resp.status == 401
    assert (await login(client, "boss", "boss-pw")).status == 401
    assert await state_with(client, eve_cookie) == 200

    promoted = User("eve", "supervisor", eve.password_hash)
    path.write_text(users_line(promoted), encoding="utf-8")  # a new role: log in again to get it
    assert await state_with(client, eve_cookie) == 401
    path.write_text("eve:broken\n", encoding="utf-8")  # a bad file is refused; the users before stay
    cookie = cookie_of(await login(client, "eve", "eve-pw"))
    assert await state_with(client, cookie) == 200


async def test_password_hashing_runs_off_the_event_loop_and_a_flood_is_bounded(
    make_client: Callable[..., Awaitable[Client]], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = await make_client(limits=LoginLimits(user_failures=1000, address_failures=100_000))
    viewer = await make_client()  # another screen on the same wall, already logged in
    assert (await login(viewer, "eve", "eve-pw")).status == 302
    release = threading.Event()
    threads: list[str] = []
    real = app_module.check_password

    def slow_check(password: str, encoded: str) -> bool:
        threads.append(threading.current_thread().name)
        release.wait(30)  # holds its thread until the test has seen the loop serve other requests
        return real(password, encoded)

    monkeypatch.setattr(app_module, "check_password", slow_check)
    safety = threading.Timer(30, release.set)  # never hang the suite if the hash blocked the loop
    safety.start()
    try:
        flood = [asyncio.create_task(login(client, "boss", f"bad-{n}")) for n in range(MAX_HASHING + 4)]
        while len(threads) < 2:  # both hash threads are busy (blocked)
            await asyncio.sleep(0.01)
        # The loop is free: another screen's request is served while every hash thread is held.
        assert (await viewer.get("/api/state")).status == 200
        assert not release.is_set()
        done = [t for t in flood if t.done()]
        assert len(done) == 4 and {t.result().status for t in done} == {429}  # beyond the bound: refused at once
        release.set()
        statuses = sorted(r.status for r in await asyncio.gather(*flood))
    finally:
        release.set()
        safety.cancel()
    assert statuses == [401] * MAX_HASHING + [429] * 4
    assert threads and all(name.startswith("wallboard-hash") for name in threads)
    assert threading.main_thread().name not in threads


async def test_logins_and_supervisor_actions_are_audited(
    make_client: Callable[..., Awaitable[Client]], batch_writer: BatchWriter, sqlite_store: Store, clock: FakeClock
) -> None:
    client = await make_client(limits=LoginLimits(user_failures=2), clock=clock, audit=batch_writer)
    await login(client, "boss", "wrong")
    await login(client, "boss", "wrong")  # locks boss
    await login(client, "boss", "boss-pw")  # refused while locked
    clock.now += 10_000
    assert (await login(client, "boss", "boss-pw")).status == 302
    assert (await client.post("/api/ack", json={"id": "queue:gx-general:rate"}, headers=ACTION_HEADERS)).status == 200
    bad = await client.post("/api/thresholds", json={"answer_target": 7}, headers=ACTION_HEADERS)
    assert bad.status == 400
    ok = await client.post("/api/thresholds", json={"answer_target": 0.9, "wait_alert": 90}, headers=ACTION_HEADERS)
    assert ok.status == 200
    await client.post("/logout", allow_redirects=False)
    await login(client, "eve", "eve-pw")
    assert (await client.post("/api/ack", json={"id": "x"}, headers=ACTION_HEADERS)).status == 403
    await batch_writer.stop()
    rows = await sqlite_store.actions_between()
    assert [(r.actor, r.action, r.result) for r in rows] == [
        ("wallboard:boss", "login", "refused"),  # the failure that locked the name (a flood adds log lines only)
        ("wallboard:boss", "login", "ok"),
        ("wallboard:boss", "ack", "ok"),
        ("wallboard:boss", "thresholds", "refused"),
        ("wallboard:boss", "thresholds", "ok"),
        ("wallboard:boss", "logout", "ok"),
        ("wallboard:eve", "login", "ok"),
        ("wallboard:eve", "ack", "refused"),
    ]
    assert rows[2].detail == "queue:gx-general:rate"
    assert '"answer_target": 0.9' in rows[4].detail and "answer_target" in rows[3].reason
    assert rows[0].reason.startswith("locked out") and rows[7].reason.startswith("supervisors only")
    assert all(r.at.tzinfo is not None for r in rows)
    events = [topic for _, topic, _ in await sqlite_store.pending_events()]
    assert events == ["hotline/gx/actions"] * len(rows)
    await batch_writer.start()


async def test_an_open_event_stream_ends_when_its_user_is_removed(
    make_client: Callable[..., Awaitable[Client]], hub: Hub, tmp_path: Path
) -> None:
    boss, eve = _users()["boss"], _users()["eve"]
    path = tmp_path / "users"
    path.write_text(users_line(boss) + users_line(eve), encoding="utf-8")
    client = await make_client(users=UsersSource(path))
    await login(client, "eve", "eve-pw")
    async with client.get("/events") as resp:
        assert json.loads(await _next_data(resp))["totals"]["waiting"] == 2  # streaming
        path.write_text(users_line(boss), encoding="utf-8")  # eve removed while her wall is open
        hub.publish()
        rest = await asyncio.wait_for(resp.content.read(), 10)  # the server ends the stream (within a second)
    assert b"data:" not in rest  # and sent her nothing after the removal
    assert hub.subscriber_count == 0
