"""The wall's supervisor panel in headless Chromium: a recording plays in the page's audio element, a
listen-in request shows Asterisk's (here: the wall's) answer, and the play is audited."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import math
import struct
import wave
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from hotline_cti.config.compile import compile_config
from hotline_cti.config.loader import load_config
from hotline_cti.records.actions import ActionRecord
from hotline_cti.records.model import CallRecord, Outcome
from hotline_cti.storage.store import Store
from hotline_cti.wallboard.auth import User, hash_password
from hotline_cti.wallboard.recordings import RecordingLibrary
from hotline_cti.wallboard.service import start_wallboard
from tests.chromium import browser
from tests.paths import REPO

__all__ = ["browser"]

ROOT = REPO
CALL = "1700000000.7"
SECONDS = 3.0


def tone_wav(seconds: float, freq: float = 440.0, rate: int = 8000) -> bytes:
    frames = b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * freq * i / rate))) for i in range(int(seconds * rate))
    )
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames)
    return out.getvalue()


class Audit:
    def __init__(self) -> None:
        self.rows: list[ActionRecord] = []

    def submit_action(self, action: ActionRecord) -> None:
        self.rows.append(action)

    def submit_event(self, event: object) -> None:
        pass


def _session(driver: webdriver.Chrome, url: str) -> dict[str, object]:
    wait = WebDriverWait(driver, 20)
    driver.get(url + "/")
    driver.find_element(By.ID, "user").send_keys("boss")
    driver.find_element(By.ID, "password").send_keys("boss-pw")
    driver.find_element(By.ID, "login-button").click()
    wait.until(lambda d: d.find_elements(By.ID, "spy-form"))
    driver.find_element(By.ID, "spy-target").send_keys(CALL)
    driver.find_element(By.ID, "play-recording").click()
    wait.until(lambda d: (d.execute_script("return document.getElementById('recording-player').duration") or 0) > 0)
    duration = driver.execute_script("return document.getElementById('recording-player').duration")
    driver.find_element(By.ID, "spy-whisper").click()
    wait.until(lambda d: d.find_element(By.ID, "spy-result").text)
    return {"duration": duration, "spy": driver.find_element(By.ID, "spy-result").text}


async def test_a_supervisor_plays_a_recording_in_the_browser(browser: webdriver.Chrome, tmp_path: Path) -> None:
    root = tmp_path / "rec"
    (root / "20260301").mkdir(parents=True)
    path = root / "20260301" / f"{CALL}-1772352000.wav"
    path.write_bytes(tone_wav(SECONDS))
    cfg = load_config(ROOT / "merger_config" / "guangxi.yaml").model
    cfg = cfg.model_copy(update={"recording": cfg.recording.model_copy(update={"dir": str(root)})})
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}")
    started = dt.datetime(2026, 3, 1, 8, tzinfo=dt.UTC)
    record = CallRecord(CALL, "gx", started, outcome=Outcome.ANSWERED, recording_file=path.name)
    record.recording_path = str(path)
    await store.upsert_calls([record])
    audit = Audit()
    users = {"boss": User("boss", "supervisor", hash_password("boss-pw", iterations=1000))}
    runner = await start_wallboard(
        compile_config(cfg), port=0, users=users, secret=b"k", audit=audit, recordings=RecordingLibrary.of(cfg, store)
    )
    try:
        seen = await asyncio.to_thread(_session, browser, runner.url)
    finally:
        await runner.close()
        await store.close()
    assert abs(float(str(seen["duration"])) - SECONDS) < 0.1  # the browser loaded the whole WAV
    # no AMI here: the wall says why instead of calling anyone
    assert seen["spy"] == "400 listening in is not available here (no AMI connection)"
    plays = [(r.actor, r.action, r.result) for r in audit.rows if r.action == "recording:play"]
    assert plays == [("wallboard:boss", "recording:play", "ok")]
    assert [(r.action, r.result) for r in audit.rows if r.action == "spy"] == [("spy", "refused")]
