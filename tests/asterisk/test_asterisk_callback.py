"""Callback (回呼) on a real Asterisk 22: the key while waiting, the place kept, the agent told, the caller called.

Caller A and then caller B wait in gx-general (no agent). B presses 9, hears the number read back and
confirms with 1; a placeholder takes B's place (position 2) and B hangs up. A gives up; an agent (a
SIPp UAS as PJSIP/agent1002) logs in and answers the placeholder, hears the callback prompt (Queue's
gosub on its leg) and only then is B's phone (a SIPp UAS behind PJSIP/cbphone) called and bridged to
it. The events side's CallbackKeeper stores each step in a real SQLite database.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from hotline_cti.adapters.ami.client import AmiClient, AmiSettings
from hotline_cti.config.compile import compile_config
from hotline_cti.config.loader import load_config
from hotline_cti.core.diversion import QueueState
from hotline_cti.dialplan.options import RenderOptions
from hotline_cti.dialplan.render import render_all, write_all
from hotline_cti.records.callback import CallbackStatus
from hotline_cti.records.queue_live import QueueBoard
from hotline_cti.serve.callback_keeper import CallbackKeeper
from hotline_cti.storage.store import Store
from simulators.asterisk import (
    ControllerThread,
    Event,
    asterisk_race,
    free_port,
    log_problems,
    silent_prompts,
    start_asterisk,
)
from tests.asterisk.test_asterisk_calls import HARNESS, Rig, _endpoint, _stamp
from tests.paths import REPO

CONFIG = REPO / "merger_config" / "guangxi.yaml"
CALLBACK = 'callback: {queues: [general], dial: "PJSIP/{number}@cbphone", retries: 1, retry_after: 10}\n'
GENERAL = "  - {id: general, name: 综合咨询}\n"
# A long expected wait offers the callback before the caller joins (the diversion's 'callback' action).
OFFERING = "  - id: general\n    name: 综合咨询\n    diversion:\n      - {when: wait_over, over: 100, to: callback}\n"
AGENT = "Local/agent1002@hotline-agents/n"
CALLER_B = "07715550123"
# The offer reads the caller's number back before its Read, and the whisper reads it to the agent before the
# caller is dialled (Playback, then SayDigits: an 11-digit number is ~9.4 s of the stock en digit sounds, played
# in real time), so the next step comes that long after.
READ_BACK_WAIT = 30.0


def _uas(port: int) -> subprocess.Popen[bytes]:
    """A SIPp UAS that answers one call and hangs up when the other side does."""
    return subprocess.Popen(
        ["sipp", "-sn", "uas", "-i", "127.0.0.1", "-p", str(port), "-m", "1", "-nostdin", "-timeout", "60"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@contextlib.contextmanager
def callback_rig(root: Path, work: Path) -> Iterator[tuple[Rig, int, int, Path]]:
    config = work / "guangxi.yaml"
    config.write_text(CONFIG.read_text(encoding="utf-8").replace(GENERAL, OFFERING, 1) + CALLBACK, encoding="utf-8")
    cfg = load_config(config).model
    table = compile_config(cfg)
    out = work / "generated"
    controller = ControllerThread(config, dt.datetime(2021, 9, 15, 10, tzinfo=table.timezone))
    with contextlib.ExitStack() as stack:
        stack.callback(controller.shutdown)
        port = controller.listen()
        write_all(render_all(cfg, RenderOptions(controllers=(f"127.0.0.1:{port}",))), out)
        sounds = silent_prompts(cfg)
        agent_port, phone_port = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_DGRAM)
        pjsip = _endpoint("agent1002", f"sip:agent1002@127.0.0.1:{agent_port}").replace(
            "context = hotline-inbound", "context = hotline-agents"
        )
        pjsip += _endpoint("cbphone", f"sip:127.0.0.1:{phone_port}")
        pbx = start_asterisk(
            root, name="callback", generated_dir=out, extra_extensions=HARNESS, pjsip=pjsip, sounds=sounds
        )
        stack.callback(pbx.stop, keep_dir=bool(os.environ.get("HOTLINE_RIG_KEEP")))
        ami = pbx.ami()
        stack.callback(ami.close)
        yield Rig(pbx, ami, controller, cfg, table, agent_port, pbx.log_text()), agent_port, phone_port, config


def _wait(rig: Rig, pred: object, timeout: float = 15.0) -> Event:
    return rig.ami.wait_for(pred, timeout)  # type: ignore[arg-type]


def _step(step: str) -> Callable[[Event], bool]:
    """A predicate: the HotlineCallback event of ``step``."""
    return lambda e: e.get("Event") == "UserEvent" and e.get("UserEvent") == "HotlineCallback" and e.get("Step") == step


def test_callback_keeps_the_place_tells_the_agent_and_reaches_the_caller(asterisk_root: Path, tmp_path: Path) -> None:
    with callback_rig(asterisk_root, tmp_path) as (rig, agent_port, phone_port, config):
        loop = rig.controller.loop

        def run(coro: object, timeout: float = 15.0) -> object:
            return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)  # type: ignore[arg-type]

        store = run(Store.open(f"sqlite:///{tmp_path / 'cti.db'}"))
        assert isinstance(store, Store)
        client = AmiClient(
            AmiSettings(host="127.0.0.1", port=rig.pbx.ami_port, username=rig.pbx.ami_user, secret=rig.pbx.ami_secret)
        )
        policy = load_config(config).model.callback
        assert policy is not None
        keeper = CallbackKeeper(client, store, policy, rig.table.region)
        run(client.connect())
        loop.call_soon_threadsafe(keeper.start)
        try:
            rig.at("2021-09-15T10:00")
            leg_a = rig.call("12300")
            assert rig.wait(leg_a, "QueueCallerJoin", timeout=15.0)["Queue"] == "gx-general"
            leg_b = rig.call("12300", caller=CALLER_B)
            join_b = rig.wait(leg_b, "QueueCallerJoin", timeout=15.0)
            assert (join_b["Queue"], join_b["Position"]) == ("gx-general", "2")
            caller_b = next(e["Channel"] for e in rig.ami.events if e.get("Uniqueid") == leg_b.removesuffix("-2"))

            rig.ami.send_dtmf(caller_b, "9")
            rig.wait(leg_b, "Newexten", timeout=READ_BACK_WAIT, Context="hotline-callback", Application="Read")
            steps = [(e["Application"], e["AppData"]) for e in rig.events(leg_b) if e["Event"] == "Newexten"]
            assert ("Playback", "hotline/callback-number") in steps and ("SayDigits", CALLER_B) in steps
            rig.ami.send_dtmf(caller_b, "1")
            accepted = _wait(rig, _step("accepted"))
            assert (accepted["CallId"], accepted["Number"], accepted["Position"]) == (leg_b, CALLER_B, "2")
            hold = _wait(
                rig,
                lambda e: (
                    e.get("Event") == "QueueCallerJoin"
                    and e.get("Channel", "").startswith(f"Local/{leg_b}@hotline-callback-hold")
                ),
            )
            assert (hold["Queue"], hold["Position"]) == ("gx-general", "2")  # B's place, behind A
            rig.wait(leg_b, "Newexten", timeout=10.0, Application="Playback", AppData="hotline/callback-accepted")
            rig.wait(leg_b, "Hangup", timeout=10.0)  # B is released; the placeholder waits in B's place

            rig.ami.action("Hangup", Channel=next(e["Channel"] for e in rig.events(leg_a)))  # A gives up
            rig.wait(leg_a, "Hangup")
            agent_uas, phone_uas = _uas(agent_port), _uas(phone_port)
            rig.ami.action(
                "QueueAdd",
                Queue="gx-general",
                Interface=AGENT,
                MemberName="agent1002",
                StateInterface="PJSIP/agent1002",
            )
            try:
                whisper = _wait(
                    rig,
                    lambda e: (
                        e.get("Event") == "Newexten"
                        and e.get("Context") == "hotline-callback-whisper"
                        and e.get("AppData") == "hotline/callback-agent"
                    ),
                    20.0,
                )
                assert whisper["Channel"].startswith("Local/agent1002@hotline-agents")  # played on the agent's leg
                dial = _wait(
                    rig,
                    lambda e: e.get("Event") == "DialBegin" and e.get("DialString") == f"{CALLER_B}@cbphone",
                    READ_BACK_WAIT,
                )
                assert _stamp(whisper) < _stamp(dial)  # the agent heard who it is before the caller was called
                assert dial["Context"] == "hotline-callback-dial"
                _wait(
                    rig,
                    lambda e: (
                        e.get("Event") == "DialEnd"
                        and e.get("DestChannel", "").startswith("PJSIP/cbphone-")
                        and e.get("DialStatus") == "ANSWER"
                    ),
                    20.0,
                )
                bridged = _wait(
                    rig,
                    lambda e: e.get("Event") == "BridgeEnter" and e.get("Channel", "").startswith("PJSIP/cbphone-"),
                )
                time.sleep(0.5)
                rig.ami.action("Hangup", Channel=bridged["Channel"])  # the caller hangs up after the call
                dialled = _wait(rig, _step("dialled"), 20.0)
                assert (dialled["CallId"], dialled["Result"], dialled["Attempt"]) == (leg_b, "ANSWER", "1")
            finally:
                rig.ami.action("QueueRemove", Queue="gx-general", Interface=AGENT)
                for uas in (agent_uas, phone_uas):
                    uas.kill()
                    uas.wait(5)

            deadline = time.monotonic() + 10
            while True:
                rows = run(store.callbacks_between())
                assert isinstance(rows, list)
                if (rows and rows[0].status is CallbackStatus.REACHED) or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            (row,) = rows
            assert row.callback_id == leg_b and row.status is CallbackStatus.REACHED and row.queue == "gx-general"
            assert (row.position, row.attempts, row.source) == (2, 1, "key")
            assert row.number == "077****0123"  # closed: kept masked only
            assert row.accepted and row.answered and row.reached and row.answered <= row.reached
            # The callback contexts load and run cleanly; Asterisk's own races as channels go are passed over.
            assert [line for line in log_problems(rig.pbx.log_text()) if not asterisk_race(line)] == []
        finally:
            run(keeper.stop())
            run(client.close())
            run(store.close())


def test_a_long_expected_wait_offers_the_callback_before_the_queue(asterisk_root: Path, tmp_path: Path) -> None:
    """The board says gx-general's expected wait is 300 s: the controller diverts to the offer. C accepts
    (a placeholder joins at the end: C was never in the queue); D declines with 0 and joins the queue."""
    with callback_rig(asterisk_root, tmp_path) as (rig, _, _, _):
        board = QueueBoard(tmp_path / "unused.json")
        board.states = {"gx-general": QueueState(members=1, available=1, free=0, waiting=0, holdtime=300)}
        rig.controller.server.queues = board
        rig.at("2021-09-15T10:00")
        leg_c = rig.call("12300", caller="07715550177")
        rig.wait(leg_c, "Newexten", timeout=15.0, Context="hotline-callback", Exten="offer")
        rig.wait(leg_c, "Newexten", timeout=READ_BACK_WAIT, Context="hotline-callback", Application="Read")
        assert rig.var(leg_c, "HOTLINE_DIVERTED") == "wait_over"
        assert not [e for e in rig.events(leg_c) if e["Event"] == "QueueCallerJoin"]
        caller_c = next(e["Channel"] for e in rig.ami.events if e.get("Uniqueid") == leg_c.removesuffix("-2"))
        rig.ami.send_dtmf(caller_c, "1")
        accepted = _wait(rig, lambda e: _step("accepted")(e) and e.get("CallId") == leg_c)
        assert (accepted["Position"], accepted["Number"]) == ("", "07715550177")
        hold = _wait(
            rig,
            lambda e: (
                e.get("Event") == "QueueCallerJoin"
                and e.get("Channel", "").startswith(f"Local/{leg_c}@hotline-callback-hold")
            ),
        )
        assert hold["Queue"] == "gx-general"

        leg_d = rig.call("12300", caller="07715550188")
        rig.wait(leg_d, "Newexten", timeout=READ_BACK_WAIT, Context="hotline-callback", Application="Read")
        caller_d = next(e["Channel"] for e in rig.ami.events if e.get("Uniqueid") == leg_d.removesuffix("-2"))
        rig.ami.send_dtmf(caller_d, "0")
        join = rig.wait(leg_d, "QueueCallerJoin", timeout=15.0)  # declined: into the queue, behind C's place
        assert (join["Queue"], join["Position"]) == ("gx-general", "2")
        assert ("hotline-queue", "Queue") in [(c, a) for c, a, _ in rig.apps(leg_d)]


def test_with_the_controller_down_the_key_still_books_a_callback_in_the_fallback_queue(
    asterisk_root: Path, tmp_path: Path
) -> None:
    """No controller: the caller waits in the fallback queue; the key, the read-back, the placeholder are all
    Asterisk's own, and the callback is for the queue app_queue names (QUEUENAME)."""
    with callback_rig(asterisk_root, tmp_path) as (rig, _, _, _):
        rig.controller.close()
        leg = rig.call("12300", caller="07715550199")
        join = rig.wait(leg, "QueueCallerJoin", timeout=15.0)
        assert join["Queue"] == "gx-general" and rig.var(leg, "HOTLINE_DECIDED") in (None, "")
        caller = next(e["Channel"] for e in rig.ami.events if e.get("Uniqueid") == leg.removesuffix("-2"))
        rig.ami.send_dtmf(caller, "9")
        rig.wait(leg, "Newexten", timeout=READ_BACK_WAIT, Context="hotline-callback", Application="Read")
        rig.ami.send_dtmf(caller, "1")
        accepted = _wait(rig, lambda e: _step("accepted")(e) and e.get("CallId") == leg)
        assert (accepted["Queue"], accepted["Position"], accepted["Number"]) == ("gx-general", "1", "07715550199")
        hold = _wait(rig, lambda e: e.get("Event") == "QueueCallerJoin" and f"Local/{leg}@" in e.get("Channel", ""))
        assert (hold["Queue"], hold["Position"]) == ("gx-general", "1")
