"""The one-key transfer plan (core/transfer.py) as whole values: every mode's AMI steps, every refusal's
exact reason and target, the policy's targets and modes, and which leg is the caller's."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from hotline_cti.config.loader import load_config
from hotline_cti.core.model import TransferMode
from hotline_cti.core.transfer import (
    HANDOVER_TARGET,
    ONEKEY_MODES,
    AmiStep,
    ChannelFacts,
    Destination,
    Refusal,
    TransferPlan,
    TransferPolicy,
    TransferRequest,
    plan_transfer,
    resolve,
)
from hotline_cti.dialplan import names
from hotline_cti.dialplan.transfer_policy import build_policy

CALLER = "PJSIP/trunk-00000001"
AGENT = "Local/1001@hotline-agents-00000002;1"
BRIDGED = ChannelFacts(AGENT, "1700000000.2", "1700000000.1", CALLER, "1700000000.1")
ALL = (TransferMode.BLIND, TransferMode.ATTENDED, TransferMode.THREEWAY)


@pytest.fixture
def policy(small_config_path: Path) -> TransferPolicy:
    """Built afresh for each test, so each test runs build_policy (and mutation testing links them)."""
    return build_policy(load_config(small_config_path).model)


def req(target: str, mode: TransferMode, channel: str = AGENT, from_line: str = "") -> TransferRequest:
    return TransferRequest(channel, target, mode, "agent:1001", from_line)


def test_the_policy(policy: TransferPolicy) -> None:
    assert (policy.region, policy.handover_lines) == ("gx", frozenset({"110"}))
    assert ONEKEY_MODES == ALL and HANDOVER_TARGET == "12345"
    assert policy.targets["110"] == Destination(
        "110", "110", "emergency 110", (TransferMode.BLIND, TransferMode.THREEWAY)
    )
    assert policy.targets["119"] == Destination("119", "119", "emergency 119", ALL)
    assert policy.targets["8001"] == policy.targets["tax"] == Destination("tax", "8001", "sub-centre tax", ALL)
    assert policy.targets["8002"] == Destination("tobacco@chongzuo", "8002", "sub-centre tobacco@chongzuo", ALL)
    assert policy.targets["9001"] == policy.targets["e12315"]
    assert policy.known() == [
        "110",
        "119",
        "120",
        "122",
        "12122",
        "tax",
        "tobacco@chongzuo",
        "tobacco@guilin",
        "tobacco@nanning",
        "e12315",
    ]


def test_blind_plan(policy: TransferPolicy) -> None:
    onekey = (("Channel", AGENT), ("Exten", "119"), ("Context", names.CTX_XFER_OUT))
    request = req("119", TransferMode.BLIND)
    assert plan_transfer(policy, request, BRIDGED) == TransferPlan(
        request,
        policy.targets["119"],
        "1700000000.1",
        (AmiStep("BlindTransfer", onekey, "event", "BlindTransfer"),),
    )


def test_attended_plan_by_code(policy: TransferPolicy) -> None:
    request = req("8001", TransferMode.ATTENDED)
    # The target rides in TRANSFER_EXTEN (Atxfer's injected digits are lost on Asterisk 22); only *2 is pressed.
    press = (("Duration", "100"), ("Receive", "true"))
    assert plan_transfer(policy, request, BRIDGED) == TransferPlan(
        request,
        policy.targets["tax"],
        "1700000000.1",
        (
            AmiStep("Setvar", (("Channel", AGENT), ("Variable", "TRANSFER_EXTEN"), ("Value", "8001"))),
            AmiStep("Setvar", (("Channel", AGENT), ("Variable", "TRANSFER_CONTEXT"), ("Value", names.CTX_XFER_CMD))),
            AmiStep("PlayDTMF", (("Channel", AGENT), ("Digit", "*"), *press)),
            AmiStep("PlayDTMF", (("Channel", AGENT), ("Digit", "2"), *press), "event_only", "AttendedTransfer"),
        ),
    )


def test_threeway_plan(policy: TransferPolicy) -> None:
    request = req("110", TransferMode.THREEWAY)
    plan = plan_transfer(policy, request, BRIDGED)
    assert plan == TransferPlan(
        request,
        policy.targets["110"],
        "1700000000.1",
        (
            AmiStep(
                "Redirect",
                (
                    ("Channel", CALLER),
                    ("ExtraChannel", AGENT),
                    ("Context", names.CTX_CONF),
                    ("Exten", "s"),
                    ("Priority", "1"),
                ),
            ),
            AmiStep(
                "Originate",
                (
                    ("Channel", f"Local/110@{names.CTX_XFER_OUT}"),
                    ("Context", names.CTX_CONF),
                    ("Exten", "s"),
                    ("Priority", "1"),
                    ("Variable", "HOTLINE_CALL_ID=1700000000.1"),  # the caller's conference, whatever its leg
                    ("Async", "true"),
                ),
                "originate",
                "OriginateResponse",
            ),
        ),
    )
    assert AmiStep("Redirect", ()).judge == "response" and AmiStep("Redirect", ()).event == ""


@pytest.mark.parametrize(
    ("facts", "caller_leg"),
    [
        (ChannelFacts("PJSIP/110-9", "1.9", "1.1", CALLER, "1.1"), CALLER),  # the emergency leg, bridged
        (ChannelFacts(CALLER, "1.1", "1.1", "PJSIP/110-9", "1.9"), CALLER),  # the caller leg itself
        (ChannelFacts(CALLER, "1.1", "1.5"), CALLER),  # not bridged: the leg named
    ],
)
def test_handover_plan_redirects_the_caller_leg(policy: TransferPolicy, facts: ChannelFacts, caller_leg: str) -> None:
    request = req("12345", TransferMode.HANDOVER, facts.name, "110")
    plan = plan_transfer(policy, request, facts)
    assert plan == TransferPlan(
        request,
        Destination("12345", "", "12345 general queue", (TransferMode.HANDOVER,)),
        facts.linkedid,
        (
            AmiStep(
                "Redirect",
                (("Channel", caller_leg), ("Context", names.CTX_HANDOVER), ("Exten", "s"), ("Priority", "1")),
            ),
        ),
    )


def test_channel_facts() -> None:
    assert (BRIDGED.call_id, BRIDGED.caller_leg) == ("1700000000.1", CALLER)
    alone = ChannelFacts("X", "1.3", "")
    assert (alone.call_id, alone.caller_leg) == ("1.3", "X")


@pytest.mark.parametrize(
    ("request_", "facts", "refusal"),
    [
        (req("110", TransferMode.BLIND, channel=""), BRIDGED, Refusal("no channel given", "110")),
        (req("110", TransferMode.BLIND, channel=" \t"), BRIDGED, Refusal("no channel given", "110")),
        (
            req("999", TransferMode.BLIND),
            BRIDGED,
            Refusal(
                "unknown target '999'; known: 110, 119, 120, 122, 12122, tax, tobacco@chongzuo, tobacco@guilin,"
                " tobacco@nanning, e12315",
                "999",
            ),
        ),
        (
            req("110", TransferMode.ATTENDED),
            BRIDGED,
            Refusal("mode attended not allowed for 110 (transfer_modes: blind, threeway)", "110"),
        ),
        (
            req("8001", TransferMode.BLIND),
            None,
            Refusal(f"unknown channel {AGENT!r}: not in CoreShowChannels", "tax"),
        ),
        (
            req("8001", TransferMode.BLIND),
            ChannelFacts(AGENT, "1.2", "1.2"),
            Refusal(f"channel {AGENT!r} is not bridged to a caller", "tax"),
        ),
        (
            req("12345", TransferMode.HANDOVER, from_line="119"),
            BRIDGED,
            Refusal("line '119' may not hand calls over to 12345 (handover_to_12345 lines: 110)", "12345"),
        ),
        (
            req("12345", TransferMode.HANDOVER),
            BRIDGED,
            Refusal("line '(not given)' may not hand calls over to 12345 (handover_to_12345 lines: 110)", "12345"),
        ),
        (
            req("119", TransferMode.HANDOVER, from_line="110"),
            BRIDGED,
            Refusal("a hand-over goes to 12345, not '119'", "119"),
        ),
        (
            req("12345", TransferMode.HANDOVER, from_line="110"),
            None,
            Refusal(f"unknown channel {AGENT!r}: not in CoreShowChannels", "12345"),
        ),
    ],
)
def test_refusals(
    policy: TransferPolicy, request_: TransferRequest, facts: ChannelFacts | None, refusal: Refusal
) -> None:
    assert plan_transfer(policy, request_, facts) == refusal


def test_a_region_without_handover_lines_says_none(policy: TransferPolicy) -> None:
    bare = TransferPolicy("gx", policy.targets, frozenset(), policy.dialplan)
    refusal = resolve(bare, req("12345", TransferMode.HANDOVER, from_line="110"))
    assert refusal == Refusal("line '110' may not hand calls over to 12345 (handover_to_12345 lines: none)", "12345")
    several = TransferPolicy("gx", policy.targets, frozenset({"122", "110"}), policy.dialplan)
    refusal = resolve(several, req("12345", TransferMode.HANDOVER, from_line="119"))
    assert isinstance(refusal, Refusal) and refusal.reason.endswith("(handover_to_12345 lines: 110, 122)")
    assert Refusal("x").target == ""


def test_threeway_to_an_expert_group_carries_the_calls_centre(policy: TransferPolicy) -> None:
    """An expert-seat target is the queue ``<centre>-expert-<group>``: the originated leg inherits nothing, so the
    plan hands it the call's centre (read from the agent's channel) beside the conference's call id."""
    code = next(d.code for d in policy.targets.values() if d.code.startswith("90"))
    facts = dataclasses.replace(BRIDGED, hotline_centre="guilin")
    plan = plan_transfer(policy, req(code, TransferMode.THREEWAY), facts)
    assert isinstance(plan, TransferPlan)
    originate = dict(plan.steps[-1].fields)
    assert originate["Channel"] == f"Local/{code}@{names.CTX_XFER_OUT}"
    assert originate["Variable"] == "HOTLINE_CALL_ID=1700000000.1,HOTLINE_CENTRE=guilin"
    unread = plan_transfer(policy, req(code, TransferMode.THREEWAY), BRIDGED)  # the centre could not be read
    assert (
        isinstance(unread, TransferPlan) and dict(unread.steps[-1].fields)["Variable"] == "HOTLINE_CALL_ID=1700000000.1"
    )
