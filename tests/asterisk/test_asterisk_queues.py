"""The caller's side of the queue on a real Asterisk 22: diversion from live queue state.

The queue state reaches the controller as in ``serve``: the events side's :class:`QueueFeed` (our AMI
client, app_queue's events, a QueueStatus re-read at login) writes the snapshot file, and the routing
side's :class:`QueueBoard` reads it; the FastAGI controller decides from that board.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hotline_cti.adapters.ami.client import AmiClient, AmiSettings
from hotline_cti.core.diversion import QueueState
from hotline_cti.core.model import Call
from hotline_cti.records.queue_live import QueueBoard
from hotline_cti.serve.queue_feed import QueueFeed
from simulators.asterisk import log_problems, silent_wav
from tests.asterisk.test_asterisk_calls import Rig, started_rig
from tests.paths import REPO

CONFIG = REPO / "merger_config" / "guangxi.yaml"
GENERAL = "  - {id: general, name: 综合咨询}\n"
DIVERTING_GENERAL = """\
  - id: general
    name: 综合咨询
    diversion:
      - {when: no_agents, to: release, prompt: divert-no-agents}
"""
AGENT = "Local/agent1001@hotline-agents/n"
# Every queue announces position and expected wait; every 5 s at most, again only when the position improved.
ANNOUNCEMENTS = "announcements: {frequency: 5, min_frequency: 1, holdtime: once, only_up: true}\n"
# Asterisk's Chinese number files (hotline-cti prompts build renders them to <out>/zh/digits/).
ZH_DIGITS = [*map(str, range(10)), *(str(n) for n in range(10, 100, 10)), "hundred", "thousand", "wan", "yi"]


@dataclass
class QueueRig:
    rig: Rig
    board: QueueBoard
    feed: QueueFeed

    def state(self, queue: str, until: Callable[[QueueState], bool], timeout: float = 15.0) -> QueueState:
        """Wait until the controller's board shows ``queue`` in a state ``until`` accepts."""
        deadline = time.monotonic() + timeout
        while True:
            current = self.board.states.get(queue)
            if current is not None and until(current):
                return current
            assert time.monotonic() < deadline, f"{queue} on the board: {current}"
            time.sleep(0.05)


@pytest.fixture(scope="module")
def qrig(asterisk_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[QueueRig]:
    work = tmp_path_factory.mktemp("gx-queues")
    text = CONFIG.read_text(encoding="utf-8")
    assert GENERAL in text
    config = work / "guangxi.yaml"
    config.write_text(text.replace(GENERAL, DIVERTING_GENERAL, 1) + ANNOUNCEMENTS, encoding="utf-8")
    (work / "generated").mkdir()
    with started_rig(asterisk_root, work / "generated", config, "queues") as rig, contextlib.ExitStack() as stack:
        loop = rig.controller.loop
        settings = AmiSettings(
            host="127.0.0.1", port=rig.pbx.ami_port, username=rig.pbx.ami_user, secret=rig.pbx.ami_secret
        )
        client = AmiClient(settings)
        feed = QueueFeed(client, work / "queue-state.json")
        asyncio.run_coroutine_threadsafe(client.connect(), loop).result(15)
        stack.callback(lambda: asyncio.run_coroutine_threadsafe(client.close(), loop).result(10))
        loop.call_soon_threadsafe(feed.start)
        stack.callback(lambda: asyncio.run_coroutine_threadsafe(feed.stop(), loop).result(10))
        board = QueueBoard(feed.path)
        polling = True

        def poll() -> None:  # the routing service's poll (serve/routing.py), on the controller's loop
            board.refresh(time.time())
            if polling:
                loop.call_later(0.05, poll)

        loop.call_soon_threadsafe(poll)
        rig.controller.server.queues = board
        yield QueueRig(rig, board, feed)
        polling = False


@pytest.fixture(autouse=True)
def _clean_calls(qrig: QueueRig) -> Iterator[None]:
    yield
    qrig.rig.hang_up_all()


def _route(rig: Rig, leg: str) -> list[tuple[str, str]]:
    return [
        (e["Action"], e["Target"])
        for e in rig.events(leg)
        if e["Event"] == "UserEvent" and e.get("UserEvent") == "HotlineRoute"
    ]


def test_no_agent_logged_in_releases_with_the_prompt_then_an_agent_takes_calls_again(qrig: QueueRig) -> None:
    """No member in gx-general: the caller hears the transition and the no-agents prompt and is released; once
    agent1001 logs in (QueueAdd) the next call joins the queue, and when it pauses the diversion is back."""
    rig = qrig.rig
    rig.at("2021-09-15T10:00")
    assert rig.expect(Call("12300")).target == "gx-general"
    qrig.state("gx-general", lambda s: s.available == 0)

    leg = rig.call("12300")
    rig.wait(leg, "Hangup", timeout=15.0)
    apps = rig.apps(leg)
    assert ("hotline-dispatch", "Playback", "hotline/transition-12300&hotline/divert-no-agents") in apps
    assert apps[-1][:2] == ("hotline-end", "Hangup")
    assert not [e for e in rig.events(leg) if e["Event"].startswith("QueueCaller")]
    assert _route(rig, leg) == [("release", "")]
    assert rig.var(leg, "HOTLINE_DIVERTED") == "no_agents"

    rig.ami.action(
        "QueueAdd", Queue="gx-general", Interface=AGENT, MemberName="agent1001", StateInterface="PJSIP/agent1001"
    )
    try:
        qrig.state("gx-general", lambda s: s.available == 1)
        leg = rig.call("12300")
        assert rig.wait(leg, "QueueCallerJoin", timeout=15.0)["Queue"] == "gx-general"
        assert _route(rig, leg) == [("queue", "gx-general")]
        assert rig.var(leg, "HOTLINE_DIVERTED") in (None, "")
        rig.hang_up_all()
        qrig.state("gx-general", lambda s: s.waiting == 0)

        rig.ami.action("QueuePause", Queue="gx-general", Interface=AGENT, Paused="true")
        qrig.state("gx-general", lambda s: s.members == 1 and s.available == 0)
        leg = rig.call("12300")
        rig.wait(leg, "Hangup", timeout=15.0)
        assert _route(rig, leg) == [("release", "")]
    finally:
        rig.ami.action("QueueRemove", Queue="gx-general", Interface=AGENT)
    assert qrig.feed.writes > 0 and qrig.feed.tracker.skipped == 0


def _played(rig: Rig, channel: str) -> list[str]:
    """(file with its format, language) Asterisk played on ``channel``, from its log, in order."""
    pattern = re.compile(rf"<{re.escape(channel)}> Playing '([^']+)' \(language '([^']+)'\)")
    return [f"{m[1]} {m[2]}" for m in pattern.finditer(rig.pbx.log_text("full.log"))]


def _wait_played(rig: Rig, channel: str, what: str, timeout: float = 20.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        played = _played(rig, channel)
        if any(what in p for p in played):
            return played
        assert time.monotonic() < deadline, f"{what} not played on {channel}: {played}"
        time.sleep(0.2)


def test_position_is_announced_in_mandarin_and_again_only_when_it_improves(qrig: QueueRig) -> None:
    """Two callers in gx-l12317: the second hears 您现在排在第 二 位 (hotline/queue-thereare, Asterisk's
    digits/2 in language zh, hotline/queue-callswaiting); once the first hangs up, 您是下一位."""
    rig = qrig.rig
    digits = rig.pbx.dir / "data/sounds/zh/digits"
    digits.mkdir(parents=True, exist_ok=True)
    for name in ZH_DIGITS:
        (digits / f"{name}.wav").write_bytes(silent_wav(0.1))
    rig.at("2021-12-15T10:00")
    assert rig.expect(Call("12317")).target == "gx-l12317"
    leg_a = rig.call("12317")
    join_a = rig.wait(leg_a, "QueueCallerJoin", timeout=15.0)
    leg_b = rig.call("12317")
    join_b = rig.wait(leg_b, "QueueCallerJoin", timeout=15.0)
    assert (join_a["Position"], join_b["Position"]) == ("1", "2")

    played_b = _wait_played(rig, join_b["Channel"], "hotline/queue-callswaiting")
    said = [
        p for p in played_b if p.split(".")[0] in ("hotline/queue-thereare", "digits/2", "hotline/queue-callswaiting")
    ]
    assert said == [
        "hotline/queue-thereare.slin zh",
        "digits/2.slin zh",  # our Mandarin file (WAV, read as slin): Asterisk's English one is digits/2.gsm
        "hotline/queue-callswaiting.slin zh",
    ], played_b
    assert any(p.startswith("hotline/queue-youarenext") for p in _wait_played(rig, join_a["Channel"], "youarenext"))
    # app_queue worked the expected wait out (no answers yet: under a minute, so it is not said)
    deadline = time.monotonic() + 10
    while "Hold time for gx-l12317 is 0 minute(s)" not in rig.pbx.log_text("full.log"):
        assert time.monotonic() < deadline, "app_queue did not work out the expected wait"
        time.sleep(0.2)

    time.sleep(6)  # past announce-frequency: position 2 unchanged, so not said again (only_up)
    assert _played(rig, join_b["Channel"]).count("hotline/queue-thereare.slin zh") == 1
    rig.ami.action("Hangup", Channel=next(e["Channel"] for e in rig.events(leg_a)))
    _wait_played(rig, join_b["Channel"], "hotline/queue-youarenext")  # moved up to 1: said at once


def test_the_generated_announcements_and_rules_load_without_a_warning(qrig: QueueRig) -> None:
    """queues.conf with the announcement settings and extensions.conf: Asterisk logs no WARNING or ERROR."""
    assert log_problems(qrig.rig.pbx.log_text()) == []
    assert "announce-position-only-up=yes" in (qrig.rig.pbx.dir / "generated/queues.conf").read_text(encoding="utf-8")
