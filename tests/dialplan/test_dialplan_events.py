"""The UserEvents the generated dialplan sends for call records, seen through the simulated PBX.

Calls run through the committed guangxi extensions.conf against the real FastAGI server over TCP.
"""

from __future__ import annotations

import datetime as dt
import re
import socket
from collections.abc import AsyncIterator
from zoneinfo import ZoneInfo

import pytest

from hotline_cti.adapters.agi.fastagi import FastAgiServer
from hotline_cti.adapters.agi.reload import ConfigHolder
from hotline_cti.dialplan.confparse import Context, parse_extensions
from simulators.dialplan_runner import DialplanRunner
from tests.paths import REPO

NOW = dt.datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
CALL_ID = "1700000000.7"
ROUTE_FIELDS = ["UserEvent", "CallId", "Dialled", "Form", "Action", "Target", "Origin", "Mode", "Phase"]
ROUTE_FIELDS += ["Centre", "City", "Expert", "CallerTag"]


@pytest.fixture
async def port() -> AsyncIterator[int]:
    server = FastAgiServer(ConfigHolder(REPO / "merger_config/guangxi.yaml"), clock=lambda: NOW)
    bound = await server.start("127.0.0.1", 0)
    yield bound
    await server.close()
    assert server.active == 0


def _contexts(port: int) -> dict[str, Context]:
    """The golden file asks 127.0.0.1:4573; point it at the test server's port."""
    text = (REPO / "dialplans/guangxi/extensions.conf").read_text(encoding="utf-8")
    return parse_extensions(text.replace("127.0.0.1:4573", f"127.0.0.1:{port}"), "extensions.conf")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_queue_overflow_and_rating_events(port: int) -> None:
    outcomes = {"gx-l12315": "TIMEOUT", "gx-general": "ANSWERED"}
    runner = DialplanRunner(
        _contexts(port),
        keys=("1",),
        outcome=lambda queue: outcomes.get(queue, "END"),
    )
    result = await runner.run("hotline-inbound", "12315", uniqueid=CALL_ID)
    route, recording, overflow, rating = result.events
    assert list(route) == ROUTE_FIELDS
    assert route["UserEvent"] == "HotlineRoute" and route["CallId"] == CALL_ID and route["Dialled"] == "12315"
    assert (route["Form"], route["Action"], route["Target"]) == ("local", "queue", "gx-l12315")
    assert (route["Mode"], route["Phase"], route["Centre"]) == ("parallel", "after", "gx")
    assert overflow == {"UserEvent": "HotlineOverflow", "CallId": CALL_ID, "From": "gx-l12315", "To": "gx-general"}
    assert rating == {"UserEvent": "HotlineRating", "CallId": CALL_ID, "Rating": "1"}
    assert result.visited == ["gx-l12315", "gx-general"]
    # named once before the first queue (the overflow queue records to the same file): call id and time only
    assert recording["UserEvent"] == "HotlineRecording" and recording["CallId"] == CALL_ID
    assert re.fullmatch(r"hotline/\d{8}/" + re.escape(CALL_ID) + r"-\d*\.wav", recording["File"]), recording


async def test_no_rating_event_without_a_valid_key(port: int) -> None:
    runner = DialplanRunner(
        _contexts(port),
        keys=("7",),
        outcome=lambda queue: "ANSWERED",
    )
    result = await runner.run("hotline-inbound", "077312315")
    assert [e["UserEvent"] for e in result.events] == ["HotlineRoute", "HotlineRecording"]
    assert result.events[0]["Dialled"] == "077312315" and result.events[0]["Form"] == "national"
    assert (
        result.played == ["hotline/survey-ask"] and result.kind == "queue"
    )  # answered; asked, no valid key: no thanks


async def test_menu_sends_the_final_decision_again(port: int) -> None:
    runner = DialplanRunner(_contexts(port), keys=("1",))
    result = await runner.run("hotline-inbound", "077312345")
    first, final, recording = result.events
    assert recording["UserEvent"] == "HotlineRecording"
    assert first["UserEvent"] == final["UserEvent"] == "HotlineRoute"
    assert first["Dialled"] == final["Dialled"] == "077312345"
    assert final["Action"] == "queue" and final["Target"] == result.target
    assert [script for script, _ in result.agi] == ["route", "ivr"]


async def test_fallback_event_when_the_controller_is_down() -> None:
    runner = DialplanRunner(_contexts(_closed_port()))
    result = await runner.run("hotline-inbound", "12345", uniqueid=CALL_ID)
    event, recording = result.events
    assert recording["UserEvent"] == "HotlineRecording" and recording["CallId"] == CALL_ID
    assert event["Action"] == "fallback" and event["Target"] == "gx-general" == result.target
    assert event["CallId"] == CALL_ID and event["Dialled"] == "12345" and event["Centre"] == "gx"
    # an emergency line still reaches its seats, and says so
    result = await runner.run("hotline-inbound", "110")
    (event,) = result.events
    assert (event["Action"], event["Target"], result.kind) == ("emergency", "110", "dial")
