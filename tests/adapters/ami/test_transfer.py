"""One-key transfer: the pure plan, and every mode executed against the simulated Asterisk 20 AMI server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from hotline_cti.adapters.ami import AmiClient, AmiSettings
from hotline_cti.adapters.ami.transfer import TransferExecutor, TransferTimeouts
from hotline_cti.config.loader import load_config
from hotline_cti.core.model import TransferMode
from hotline_cti.core.transfer import (
    ChannelFacts,
    Refusal,
    TransferPlan,
    TransferPolicy,
    TransferRequest,
    plan_transfer,
)
from hotline_cti.dialplan import names
from hotline_cti.dialplan.transfer_policy import build_policy
from hotline_cti.storage.store import Store
from hotline_cti.storage.writer import BatchWriter
from simulators.ami_server import AmiServer
from tests.sqlite_store import audited

SECRET = "sim-secret"  # the simulator's dummy credential, not a real one
CALLER = "PJSIP/trunk-00000001"
AGENT = "Local/1001@hotline-agents-00000002;1"


@pytest.fixture(scope="module")
def policy(small_config_path: Path) -> TransferPolicy:
    return build_policy(load_config(small_config_path).model)


def request(target: str, mode: TransferMode, channel: str = AGENT, from_line: str = "") -> TransferRequest:
    return TransferRequest(channel, target, mode, "agent:1001", from_line)


BRIDGED = ChannelFacts(AGENT, "1700000000.2", "1700000000.1", CALLER, "1700000000.1")


# ------------------------------------------------------------------ pure plan


def test_targets_are_the_onekey_contexts_list(policy: TransferPolicy) -> None:
    assert policy.targets["110"].code == "110"
    assert policy.targets["tax"] is policy.targets["8001"]
    assert policy.targets["tobacco@guilin"].label == "sub-centre tobacco@guilin"
    assert policy.targets["e12315"].code == "9001"
    assert policy.known()[:5] == ["110", "119", "120", "122", "12122"]


def test_blind_plan_is_one_blindtransfer_on_the_agent_leg(policy: TransferPolicy) -> None:
    plan = plan_transfer(policy, request("tax", TransferMode.BLIND), BRIDGED)
    assert isinstance(plan, TransferPlan)
    assert plan.call_id == "1700000000.1"
    (step,) = plan.steps
    assert (step.action, step.judge, step.event) == ("BlindTransfer", "event", "BlindTransfer")
    assert dict(step.fields) == {"Channel": AGENT, "Exten": "8001", "Context": names.CTX_XFER_OUT}


def test_threeway_plan_moves_both_legs_then_calls_the_target(policy: TransferPolicy) -> None:
    plan = plan_transfer(policy, request("110", TransferMode.THREEWAY), BRIDGED)
    assert isinstance(plan, TransferPlan)
    redirect, originate = plan.steps
    assert dict(redirect.fields) == {
        "Channel": CALLER,
        "ExtraChannel": AGENT,
        "Context": names.CTX_CONF,
        "Exten": "s",
        "Priority": "1",
    }
    # the target's leg runs hotline-threeway,s, as caller and agent do: the same ConfBridge by HOTLINE_CALL_ID
    assert dict(originate.fields) == {
        "Channel": f"Local/110@{names.CTX_XFER_OUT}",
        "Context": names.CTX_CONF,
        "Exten": "s",
        "Priority": "1",
        "Variable": "HOTLINE_CALL_ID=1700000000.1",
        "Async": "true",
    }


def test_threeway_conference_is_named_by_the_channels_call_id(policy: TransferPolicy) -> None:
    """Behind a Local caller HOTLINE_CALL_ID (the leg that ran the routing) is not the Linkedid: the
    conference is the one hotline-threeway joins, hotline-${HOTLINE_CALL_ID}, read from the channel."""
    facts = replace(BRIDGED, hotline_call_id="rig1234-2")
    plan = plan_transfer(policy, request("110", TransferMode.THREEWAY), facts)
    assert isinstance(plan, TransferPlan)
    assert dict(plan.steps[1].fields)["Variable"] == "HOTLINE_CALL_ID=rig1234-2"
    assert plan.call_id == "1700000000.1"  # the audit row keeps the call's id


def test_attended_plan_names_the_target_and_presses_only_the_atxfer_code(policy: TransferPolicy) -> None:
    """Not AMI Atxfer (its digits are lost or reach the target): TRANSFER_EXTEN/CONTEXT, then *2 received."""
    plan = plan_transfer(policy, request("e12315", TransferMode.ATTENDED), BRIDGED)
    assert isinstance(plan, TransferPlan)
    assert [(s.action, dict(s.fields).get("Variable") or dict(s.fields).get("Digit")) for s in plan.steps] == [
        ("Setvar", "TRANSFER_EXTEN"),
        ("Setvar", "TRANSFER_CONTEXT"),
        ("PlayDTMF", "*"),
        ("PlayDTMF", "2"),
    ]
    assert [dict(s.fields)["Value"] for s in plan.steps[:2]] == ["9001", names.CTX_XFER_CMD]
    assert all(dict(s.fields)["Receive"] == "true" for s in plan.steps[2:])
    assert (plan.steps[-1].judge, plan.steps[-1].event) == ("event_only", "AttendedTransfer")


@pytest.mark.parametrize(
    ("req", "facts", "reason"),
    [
        (request("999", TransferMode.BLIND), BRIDGED, "unknown target '999'; known: 110, 119"),
        (
            request("110", TransferMode.ATTENDED),
            BRIDGED,
            "mode attended not allowed for 110 (transfer_modes: blind, threeway)",
        ),
        (request("119", TransferMode.BLIND), None, "unknown channel"),
        (request("119", TransferMode.BLIND), ChannelFacts(AGENT, "1.2", "1.2"), "not bridged to a caller"),
        (request("12345", TransferMode.HANDOVER, from_line="119"), BRIDGED, "line '119' may not hand calls over"),
        (request("119", TransferMode.HANDOVER, from_line="110"), BRIDGED, "a hand-over goes to 12345, not '119'"),
        (request("110", TransferMode.BLIND, channel=" "), BRIDGED, "no channel given"),
    ],
)
def test_refusals_say_why(
    policy: TransferPolicy, req: TransferRequest, facts: ChannelFacts | None, reason: str
) -> None:
    refusal = plan_transfer(policy, req, facts)
    assert isinstance(refusal, Refusal)
    assert reason in refusal.reason


def test_handover_redirects_the_caller_leg_into_hotline_handover(policy: TransferPolicy) -> None:
    trunk_110 = ChannelFacts("PJSIP/110-00000009", "1700000000.9", "1700000000.1", CALLER, "1700000000.1")
    plan = plan_transfer(policy, request("12345", TransferMode.HANDOVER, trunk_110.name, "110"), trunk_110)
    assert isinstance(plan, TransferPlan)
    (step,) = plan.steps
    assert dict(step.fields) == {"Channel": CALLER, "Context": names.CTX_HANDOVER, "Exten": "s", "Priority": "1"}


# ------------------------------------------------------------ against the AMI


@pytest.fixture
async def server() -> AsyncIterator[AmiServer]:
    async with AmiServer(secret=SECRET) as srv:
        srv.add_channel(CALLER, caller_num="13812345678", context="hotline-queue")
        srv.add_channel(AGENT, caller_num="1001")
        srv.bridge(CALLER, AGENT)
        yield srv


@pytest.fixture
async def client(server: AmiServer) -> AsyncIterator[AmiClient]:
    settings = AmiSettings(host="127.0.0.1", port=server.port, username="hotline", secret=SECRET, action_timeout=2.0)
    async with AmiClient(settings) as cli:
        yield cli


def executor(client: AmiClient, policy: TransferPolicy, batch_writer: BatchWriter) -> TransferExecutor:
    return TransferExecutor(
        client, lambda: policy, batch_writer, timeouts=TransferTimeouts(action=2, event=2, attended=2)
    )


def transfer_actions(server: AmiServer) -> list[str]:
    return [
        a.name for a in server.actions if a.name in ("BlindTransfer", "Atxfer", "PlayDTMF", "Redirect", "Originate")
    ]


async def test_blind_transfer_runs_and_is_audited(
    server: AmiServer, client: AmiClient, policy: TransferPolicy, batch_writer: BatchWriter, sqlite_store: Store
) -> None:
    caller_id = server.channels[CALLER].uniqueid
    record = await executor(client, policy, batch_writer).execute(request("119", TransferMode.BLIND))
    assert (record.result, record.reason, record.target, record.call_id) == ("ok", "", "119", caller_id)
    (action,) = server.actions_named("BlindTransfer")
    assert (action.get("Channel"), action.get("Exten"), action.get("Context")) == (AGENT, "119", "hotline-onekey")
    assert server.channels[CALLER].context == "hotline-onekey"  # the caller moved, the agent leg is gone
    assert AGENT not in server.channels
    rows, events = await audited(batch_writer, sqlite_store)
    assert rows == [record]
    ((topic, body),) = events
    assert topic == "hotline/gx/transfers" and body["type"] == "transfers"
    assert body["data"]["requested_by"] == "agent:1001" and body["data"]["result"] == "ok"
    assert body["data"]["transfer_id"] == record.transfer_id


async def test_attended_transfer_waits_for_the_attendedtransfer_event(
    server: AmiServer, client: AmiClient, policy: TransferPolicy, batch_writer: BatchWriter
) -> None:
    record = await executor(client, policy, batch_writer).execute(request("e12315", TransferMode.ATTENDED))
    assert (record.result, record.target, record.mode) == ("ok", "e12315", TransferMode.ATTENDED)
    assert server.actions_named("Atxfer") == []
    assert [a.get("Digit") for a in server.actions_named("PlayDTMF")] == ["*", "2"]
    for _ in range(3000):  # TRANSFER_EXTEN is cleared once the consultation call exists (30 s bound a hang)
        if any(a.get("Value") == "" for a in server.actions_named("Setvar")):
            break
        await asyncio.sleep(0.01)
    for _ in range(3000):  # and TRANSFER_CONTEXT is the agents' own again
        if len(server.actions_named("Setvar")) == 4:
            break
        await asyncio.sleep(0.01)
    assert [(a.get("Variable"), a.get("Value")) for a in server.actions_named("Setvar")] == [
        ("TRANSFER_EXTEN", "9001"),
        ("TRANSFER_CONTEXT", "hotline-onekey-cmd"),
        ("TRANSFER_EXTEN", ""),
        ("TRANSFER_CONTEXT", "hotline-onekey"),
    ]


async def test_attended_transfer_without_event_is_unknown_not_ok(
    server: AmiServer, client: AmiClient, policy: TransferPolicy, batch_writer: BatchWriter
) -> None:
    server.atxfer_delay = 30  # the agent is still consulting when we stop waiting
    ex = TransferExecutor(client, lambda: policy, batch_writer, timeouts=TransferTimeouts(attended=0.2))
    record = await ex.execute(request("119", TransferMode.ATTENDED))
    assert record.result == "unknown"
    assert "no AttendedTransfer event" in record.reason


async def test_attended_transfer_whose_consultation_ends_is_failed_at_once(
    server: AmiServer, client: AmiClient, policy: TransferPolicy, batch_writer: BatchWriter
) -> None:
    """The consultation call (same Linkedid) hangs up with no AttendedTransfer: failed, not unknown;
    another call's consultation to the same target ending changes nothing."""
    server.atxfer_delay = 30  # Asterisk would never send AttendedTransfer
    linked = server.channels[AGENT].linkedid
    ex = TransferExecutor(client, lambda: policy, batch_writer, timeouts=TransferTimeouts(attended=5.0))
    running = asyncio.ensure_future(ex.execute(request("119", TransferMode.ATTENDED)))
    while len(server.actions_named("PlayDTMF")) < 2:
        await asyncio.sleep(0.01)
    for uid, link in (("9.1", "other.1"), ("9.2", linked)):
        name = f"Local/119@hotline-onekey-cmd-0000000{uid[-1]};1"
        server.emit({"Event": "Newchannel", "Channel": name, "Uniqueid": uid, "Linkedid": link})
        server.emit({"Event": "Hangup", "Channel": name, "Uniqueid": uid, "Linkedid": link, "Cause": "17"})
        if link != linked:
            await asyncio.sleep(0.1)
            assert not running.done()  # not ours
    record = await asyncio.wait_for(running, 30)  # bounds a hang; the attended wait (5 s) is not reached
    assert record.result == "failed"
    assert record.reason == "the consultation call to 119 ended (cause 17) with no AttendedTransfer"


async def test_attended_transfer_that_could_not_press_the_code_restores_the_agents_variables(
    server: AmiServer, client: AmiClient, policy: TransferPolicy, batch_writer: BatchWriter
) -> None:
    """PlayDTMF unanswered: the outcome is unknown (it may have run), and TRANSFER_EXTEN / TRANSFER_CONTEXT
    do not stay on the agent's channel (its own next *2 would go to this target without asking)."""
    server.silent_actions = {"playdtmf"}
    record = await executor(client, policy, batch_writer).execute(request("119", TransferMode.ATTENDED))
    assert record.result == "unknown" and record.reason.startswith("PlayDTMF sent, no answer")
    assert [(a.get("Variable"), a.get("Value")) for a in server.actions_named("Setvar")][-2:] == [
        ("TRANSFER_EXTEN", ""),
        ("TRANSFER_CONTEXT", "hotline-onekey"),
    ]
    assert server.channels[AGENT].variables["TRANSFER_EXTEN"] == ""


async def test_attended_transfer_completed_after_the_wait_settles_its_audit_row(
    server: AmiServer, client: AmiClient, policy: TransferPolicy, batch_writer: BatchWriter, sqlite_store: Store
) -> None:
    """An agent consulting 119 for longer than the wait: the row first says unknown, then ok, same id."""
    server.atxfer_delay = 0.6
    ex = TransferExecutor(client, lambda: policy, batch_writer, timeouts=TransferTimeouts(attended=0.2))
    record = await ex.execute(request("119", TransferMode.ATTENDED))
    assert record.result == "unknown"
    rows, _ = await audited(batch_writer, sqlite_store)
    assert [r.result for r in rows] == ["unknown"]
    for _ in range(1500):  # bounded wait for the late event (30 s: a hang, not a timing assertion)
        await asyncio.sleep(0.02)
        rows, events = await audited(batch_writer, sqlite_store)
        if rows[0].result != "unknown":
            break
    (row,) = rows
    assert (row.transfer_id, row.result, row.target) == (record.transfer_id, "ok", "119")
    assert row.reason.startswith("AttendedTransfer after ")
    assert [e["data"]["result"] for _, e in events] == ["unknown", "ok"]


async def test_a_late_attended_transfer_of_another_channel_settles_nothing(
    server: AmiServer, client: AmiClient, policy: TransferPolicy, batch_writer: BatchWriter, sqlite_store: Store
) -> None:
    server.atxfer_delay = 30  # ours never completes
    ex = TransferExecutor(
        client, lambda: policy, batch_writer, timeouts=TransferTimeouts(attended=0.1, attended_late=0.5)
    )
    record = await ex.execute(request("119", TransferMode.ATTENDED))
    server.emit({"Event": "AttendedTransfer", "Result": "Success", "OrigTransfererChannel": "PJSIP/9999-00000009"})
    await asyncio.sleep(0.7)  # past attended_late: the listener is gone
    server.emit({"Event": "AttendedTransfer", "Result": "Success", "OrigTransfererChannel": AGENT})
    await asyncio.sleep(0.1)
    rows, _ = await audited(batch_writer, sqlite_store)
    assert [(r.transfer_id, r.result) for r in rows] == [(record.transfer_id, "unknown")]


async def test_threeway_redirects_both_legs_and_originates_the_target(
    server: AmiServer, client: AmiClient, policy: TransferPolicy, batch_writer: BatchWriter
) -> None:
    server.channels[AGENT].variables["HOTLINE_CENTRE"] = "gx"
    record = await executor(client, policy, batch_writer).execute(request("110", TransferMode.THREEWAY))
    assert record.result == "ok", record.reason
    assert transfer_actions(server) == ["Redirect", "Originate"]
    (redirect,) = server.actions_named("Redirect")
    assert (redirect.get("Channel"), redirect.get("ExtraChannel")) == (CALLER, AGENT)
    assert server.channels[CALLER].context == server.channels[AGENT].context == "hotline-threeway"
    (originate,) = server.actions_named("Originate")
    assert (originate.get("Context"), originate.get("Exten")) == ("hotline-threeway", "s")
    # the conference's name (the agent leg's HOTLINE_CALL_ID) and the centre an expert target's queue is named after
    getvars = [(g.get("Channel"), g.get("Variable")) for g in server.actions_named("Getvar")]
    assert getvars == [(AGENT, "HOTLINE_CALL_ID"), (AGENT, "HOTLINE_CENTRE")]
    assert (originate.get("Variable") or "").endswith(",HOTLINE_CENTRE=gx")


async def test_threeway_target_not_answering_fails_after_the_redirect(
    server: AmiServer, client: AmiClient, policy: TransferPolicy, batch_writer: BatchWriter
) -> None:
    server.originate_reason = 3  # no answer
    record = await executor(client, policy, batch_writer).execute(request("110", TransferMode.THREEWAY))
    assert record.result == "failed"
    assert "did not answer" in record.reason and "after Redirect succeeded" in record.reason


ON_110 = {"HOTLINE_ACTION": "emergency", "HOTLINE_TARGET": "110", "HOTLINE_ORIGIN": "110"}  # hotline-inbound's


async def test_handover_from_110_queues_the_caller_in_12345(
    server: AmiServer, client: AmiClient, policy: TransferPolicy, batch_writer: BatchWriter
) -> None:
    server.channels[CALLER].variables.update(ON_110)  # the citizen dialled 110
    record = await executor(client, policy, batch_writer).execute(
        request("12345", TransferMode.HANDOVER, channel=AGENT, from_line="110")
    )
    assert (record.result, record.target, record.mode) == ("ok", "12345", TransferMode.HANDOVER)
    (redirect,) = server.actions_named("Redirect")
    assert (redirect.get("Channel"), redirect.get("Context")) == (CALLER, "hotline-handover")


@pytest.mark.parametrize(
    ("variables", "why"),
    [
        ({"HOTLINE_ACTION": "queue", "HOTLINE_TARGET": "gx-general"}, "is on line 12345 (HOTLINE_ACTION=queue"),
        ({}, "is on line 12345 (HOTLINE_ACTION=(unset)"),  # not routed by us at all
        ({"HOTLINE_ACTION": "emergency", "HOTLINE_TARGET": "119"}, "is on line 119"),  # 119's call, not 110's
    ],
)
async def test_handover_of_a_call_not_on_the_claimed_line_is_refused_without_moving_it(
    server: AmiServer,
    client: AmiClient,
    policy: TransferPolicy,
    batch_writer: BatchWriter,
    sqlite_store: Store,
    variables: dict[str, str],
    why: str,
) -> None:
    server.channels[CALLER].variables.update(variables)
    record = await executor(client, policy, batch_writer).execute(
        request("12345", TransferMode.HANDOVER, channel=AGENT, from_line="110")
    )
    assert record.result == "refused" and why in record.reason and "not on 110" in record.reason
    assert server.actions_named("Redirect") == []  # the citizen's call was not touched
    getvars = server.actions_named("Getvar")
    assert getvars and {g.get("Channel") for g in getvars} == {CALLER}  # read on the caller leg
    rows, _ = await audited(batch_writer, sqlite_store)
    assert [(r.result, r.mode) for r in rows] == [("refused", TransferMode.HANDOVER)]


async def test_handover_is_refused_when_the_line_cannot_be_read(
    server: AmiServer, client: AmiClient, policy: TransferPolicy, batch_writer: BatchWriter
) -> None:
    server.channels[CALLER].variables.update(ON_110)
    server.silent_actions.add("getvar")  # Asterisk does not answer: fail closed
    ex = TransferExecutor(client, lambda: policy, batch_writer, timeouts=TransferTimeouts(action=0.3))
    record = await ex.execute(request("12345", TransferMode.HANDOVER, channel=AGENT, from_line="110"))
    assert record.result == "refused" and "cannot confirm the call's line" in record.reason
    assert server.actions_named("Redirect") == []


async def test_unknown_channel_and_target_are_refused_without_acting(
    server: AmiServer, client: AmiClient, policy: TransferPolicy, batch_writer: BatchWriter, sqlite_store: Store
) -> None:
    ex = executor(client, policy, batch_writer)
    missing = await ex.execute(request("119", TransferMode.BLIND, channel="PJSIP/nobody-00000099"))
    unknown = await ex.execute(request("999", TransferMode.BLIND))
    assert (missing.result, unknown.result) == ("refused", "refused")
    assert "unknown channel 'PJSIP/nobody-00000099'" in missing.reason
    assert "unknown target '999'" in unknown.reason
    assert transfer_actions(server) == []
    rows, events = await audited(batch_writer, sqlite_store)
    assert sorted((t.target, t.result) for t in rows) == [("119", "refused"), ("999", "refused")]
    assert [body["data"]["result"] for _, body in events] == ["refused", "refused"]


async def test_unanswered_action_is_unknown_and_sent_once(
    server: AmiServer, client: AmiClient, policy: TransferPolicy, batch_writer: BatchWriter
) -> None:
    server.silent_actions.add("blindtransfer")
    ex = TransferExecutor(client, lambda: policy, batch_writer, timeouts=TransferTimeouts(action=0.3))
    record = await ex.execute(request("119", TransferMode.BLIND))
    assert record.result == "unknown"
    assert len(server.actions_named("BlindTransfer")) == 1
