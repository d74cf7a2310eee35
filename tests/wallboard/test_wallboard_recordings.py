"""A supervisor plays a call's recording from the wallboard: authorised, audited, only known files under the dir."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from hotline_cti.config.loader import load_config
from hotline_cti.core.table import RoutingTable
from hotline_cti.records.actions import ActionRecord
from hotline_cti.records.model import CallRecord, Outcome
from hotline_cti.storage.store import Store
from hotline_cti.wallboard.app import build_app
from hotline_cti.wallboard.auth import SessionSigner, User, hash_password
from hotline_cti.wallboard.hub import Hub
from hotline_cti.wallboard.recordings import RecordingLibrary
from tests.wallboard.test_wallboard_live import NOW

AUDIO = bytes(range(256)) * 40  # 10240 bytes standing in for a WAV file


class Audit:
    def __init__(self) -> None:
        self.rows: list[ActionRecord] = []

    def submit_action(self, action: ActionRecord) -> None:
        self.rows.append(action)

    def submit_event(self, event: object) -> None:
        pass


def _users() -> dict[str, User]:
    return {
        "boss": User("boss", "supervisor", hash_password("boss-pw", iterations=1000)),
        "eve": User("eve", "viewer", hash_password("eve-pw", iterations=1000)),
    }


def _call(call_id: str, path: str) -> CallRecord:
    started = dt.datetime(2026, 3, 1, 8, tzinfo=dt.UTC)
    name = path.rsplit("/", 1)[-1] if path else ""
    return CallRecord(call_id, "gx", started, outcome=Outcome.ANSWERED, recording_file=name, recording_path=path)


@pytest.fixture
async def setup(
    tmp_path: Path, small_config_path: Path, small_table: RoutingTable
) -> AsyncIterator[tuple[TestClient, Audit, Path]]:  # type: ignore[type-arg]
    root = tmp_path / "rec"
    day = root / "20260301"
    day.mkdir(parents=True)
    (day / "1700000000.1-1772352000.wav").write_bytes(AUDIO)
    (day / "1700000000.2-1772352000.gsm").write_bytes(b"gsm")
    secret = tmp_path / "secret" / "20260301"
    secret.mkdir(parents=True)
    (secret / "1700000000.6-1.wav").write_bytes(b"not for you")
    (day / "1700000000.7-1.wav").symlink_to(secret / "1700000000.6-1.wav")
    cfg = load_config(small_config_path).model
    cfg = cfg.model_copy(update={"recording": cfg.recording.model_copy(update={"dir": str(root)})})
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}")
    await store.upsert_calls(
        [
            _call("1700000000.1", f"{day}/1700000000.1-1772352000.wav"),
            _call("1700000000.2", f"{day}/1700000000.2-1772352000.gsm"),
            _call("1700000000.3", ""),  # not recorded
            _call("1700000000.4", f"{day}/1700000000.4-1772352000.wav"),  # deleted by the retention cleanup
            _call("1700000000.5", "/etc/passwd"),  # a row pointing elsewhere
            _call("1700000000.6", f"{day}/../../secret/20260301/1700000000.6-1.wav"),
            _call("1700000000.7", f"{day}/1700000000.7-1.wav"),  # a link out of the dir
        ]
    )
    audit = Audit()
    hub = Hub(small_table, clock=lambda: NOW)
    app = build_app(hub, _users(), SessionSigner(b"s"), audit=audit, recordings=RecordingLibrary.of(cfg, store))
    try:
        async with TestClient(TestServer(app)) as client:
            yield client, audit, root
    finally:
        await store.close()


async def _login(client: TestClient, user: str) -> None:  # type: ignore[type-arg]
    resp = await client.post("/login", data={"user": user, "password": f"{user}-pw"}, allow_redirects=False)
    assert resp.status == 302


async def test_a_supervisor_plays_a_recording_with_ranges_and_is_audited_once(
    setup: tuple[TestClient, Audit, Path],  # type: ignore[type-arg]
) -> None:
    client, audit, _root = setup
    await _login(client, "boss")
    resp = await client.get("/api/recordings/1700000000.1")
    assert resp.status == 200 and await resp.read() == AUDIO
    assert resp.headers["Content-Type"] == "audio/wav" and resp.headers["Accept-Ranges"] == "bytes"
    assert resp.headers["Content-Disposition"] == 'inline; filename="1700000000.1-1772352000.wav"'
    part = await client.get("/api/recordings/1700000000.1", headers={"Range": "bytes=100-199"})
    assert part.status == 206 and await part.read() == AUDIO[100:200]
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(AUDIO)}"
    gsm = await client.get("/api/recordings/1700000000.2")
    assert gsm.status == 200 and gsm.headers["Content-Type"] == "audio/x-gsm"
    plays = [(r.actor, r.action, r.result, r.detail) for r in audit.rows if r.action == "recording:play"]
    assert plays == [
        ("wallboard:boss", "recording:play", "ok", "call 1700000000.1: 1700000000.1-1772352000.wav"),
        ("wallboard:boss", "recording:play", "ok", "call 1700000000.2: 1700000000.2-1772352000.gsm"),
    ]  # the later range of the same play is not a new play


async def test_a_viewer_and_an_anonymous_user_cannot_play(setup: tuple[TestClient, Audit, Path]) -> None:  # type: ignore[type-arg]
    client, audit, _root = setup
    assert (await client.get("/api/recordings/1700000000.1")).status == 401
    await _login(client, "eve")
    resp = await client.get("/api/recordings/1700000000.1")
    assert resp.status == 403 and AUDIO[:50] not in await resp.read()
    (row,) = [r for r in audit.rows if r.action == "recording:play"]
    assert (row.actor, row.result, row.reason) == (
        "wallboard:eve",
        "refused",
        "supervisors only: viewers cannot play recordings",
    )


@pytest.mark.parametrize(
    ("call_id", "status", "reason"),
    [
        ("1700000000.3", 404, "no recording for this call"),
        ("1700000000.9", 404, "no recording for this call"),  # unknown call
        ("1700000000.4", 404, "the file is gone (retention cleanup?)"),
        ("1700000000.5", 404, "not a recording's name"),
        ("1700000000.6", 404, "not an absolute path without '..'"),
        ("1700000000.7", 404, "not a regular file"),
        ("..%2F..%2Fetc%2Fpasswd", 400, "not a call id"),
        ("a%20b", 400, "not a call id"),
    ],
)
async def test_only_known_recordings_under_the_dir_are_served(
    setup: tuple[TestClient, Audit, Path],  # type: ignore[type-arg]
    call_id: str,
    status: int,
    reason: str,
) -> None:
    client, audit, _root = setup
    await _login(client, "boss")
    resp = await client.get(f"/api/recordings/{call_id}")
    body = await resp.read()
    assert resp.status == status, body
    assert b"not for you" not in body and b"root:" not in body
    (row,) = [r for r in audit.rows if r.action == "recording:play"]
    assert (row.result, row.reason) == ("refused", reason)


async def test_the_served_file_is_read_at_request_time(setup: tuple[TestClient, Audit, Path]) -> None:  # type: ignore[type-arg]
    client, _audit, root = setup
    await _login(client, "boss")
    os.remove(root / "20260301" / "1700000000.1-1772352000.wav")
    assert (await client.get("/api/recordings/1700000000.1")).status == 404


async def test_the_wall_offers_listening_and_playing_to_supervisors_only(
    setup: tuple[TestClient, Audit, Path],  # type: ignore[type-arg]
) -> None:
    client, _audit, _root = setup
    await _login(client, "eve")
    viewer = await (await client.get("/")).text()
    assert 'id="spy-form"' not in viewer and "recording-player" not in viewer
    await client.post("/logout", allow_redirects=False)
    await _login(client, "boss")
    page = await (await client.get("/")).text()
    for element in (
        'id="spy-form"',
        'id="spy-target"',
        'id="spy-whisper"',
        'id="play-recording"',
        'id="recording-player"',
    ):
        assert element in page
    script = await (await client.get("/static/wallboard.js")).text()
    assert '"/api/spy"' in script and '"/api/recordings/"' in script


async def test_a_compressed_sibling_is_never_served_instead(setup: tuple[TestClient, Audit, Path]) -> None:  # type: ignore[type-arg]
    client, _audit, root = setup
    (root / "20260301" / "1700000000.1-1772352000.wav.gz").write_bytes(b"planted, not the recording")
    await _login(client, "boss")
    resp = await client.get("/api/recordings/1700000000.1", headers={"Accept-Encoding": "gzip, br"})
    assert resp.status == 200 and "Content-Encoding" not in resp.headers
    assert await resp.read() == AUDIO
