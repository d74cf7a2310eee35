"""One-key transfer (话务转接) as a pure plan: which AMI actions move a live call, or why not.

The targets are the ones the generated ``hotline-onekey`` context dials: the policy is built
from the dialplan generator's list (:func:`hotline_cti.dialplan.transfer_policy.build_policy`),
which also fills in the dialplan names the plans use, so an agent's key, the CLI and an MQTT
command all reach the same seats. Nothing here talks to Asterisk or reads a config:
:mod:`hotline_cti.adapters.ami.transfer` looks the channel up, executes the plan and audits
the result.

Asterisk 20 and 22 semantics the plans rely on (tested on 22.10.1):

* ``BlindTransfer`` takes the agent-side channel and sends everything bridged
  to it (the caller) to the destination.
* Attended: ``TRANSFER_EXTEN`` / ``TRANSFER_CONTEXT`` set on the agent channel
  name the target, then the atxfer feature code is received on it
  (``PlayDTMF`` with ``Receive``): the agent consults the target first, and
  hanging up completes it. (AMI ``Atxfer`` also injects the target's digits,
  which Asterisk 22 loses or passes on to the target.)
* Three-way: a dual ``Redirect`` moves caller and agent into the ConfBridge
  context, then an ``Originate`` brings the target into the same conference
  (``hotline-${HOTLINE_CALL_ID}``, read from the agent's channel).
* Hand-over (110 → 12345): a ``Redirect`` of the caller leg into
  ``hotline-handover``, which marks the call and queues it in the default
  centre's general queue.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hotline_cti.core.model import TransferMode

HANDOVER_TARGET = "12345"
TRANSFER_EXTEN = "TRANSFER_EXTEN"  # Asterisk's attended-transfer target override (features.conf)
TRANSFER_CONTEXT = "TRANSFER_CONTEXT"  # where it is looked up (the agent's own *2: hotline-onekey)
ONEKEY_MODES = (TransferMode.BLIND, TransferMode.ATTENDED, TransferMode.THREEWAY)


@dataclass(frozen=True, slots=True)
class Destination:
    """A resolved transfer target: its ``hotline-onekey`` code and the name audits use."""

    key: str  # '110', 'tax', 'tobacco@nanning', 'e12315' or '12345' for a hand-over
    code: str  # extension in hotline-onekey ('' for the hand-over)
    label: str
    modes: tuple[TransferMode, ...]  # modes allowed for this target


@dataclass(frozen=True, slots=True)
class DialplanNames:
    """The dialplan names a plan speaks, given by the dialplan package (plain data, so the core imports none of it)."""

    onekey: str  # hotline-onekey: one extension per target
    onekey_command: str  # hotline-onekey-cmd: the same targets, for a command's attended transfer
    conference: str  # hotline-threeway: caller, agent and target in one ConfBridge
    handover: str  # hotline-handover: marks a 110 call and queues it at 12345
    atxfer_code: str  # features.conf atxfer, "pressed" on the agent's channel
    call_id_var: str  # HOTLINE_CALL_ID: names the three-way conference
    centre_var: str = "HOTLINE_CENTRE"  # the call's centre: an expert target's queue is named after it


@dataclass(frozen=True, slots=True)
class TransferPolicy:
    """Every reachable target by code and by name, and which lines may hand calls over to 12345."""

    region: str
    targets: dict[str, Destination]  # by code and by key
    handover_lines: frozenset[str]  # emergency lines with handover_to_12345
    dialplan: DialplanNames

    def known(self) -> list[str]:
        """Target names for error messages, in the generator's order."""
        return list(dict.fromkeys(d.key for d in self.targets.values()))


@dataclass(frozen=True, slots=True)
class TransferRequest:
    """What someone asked for: move the call on ``channel`` to ``target`` in ``mode``.

    ``channel`` is the agent-side channel for blind/attended/three-way (the one
    in the bridge with the caller); for a hand-over it is the emergency line's
    leg or the caller leg itself, and ``from_line`` names the line handing over.
    """

    channel: str
    target: str
    mode: TransferMode
    requested_by: str
    from_line: str = ""


@dataclass(frozen=True, slots=True)
class ChannelFacts:
    """What AMI (CoreShowChannels) says about the channel and the one bridged to it."""

    name: str
    uniqueid: str
    linkedid: str
    peer: str = ""  # channel in the same bridge, '' when not bridged
    peer_uniqueid: str = ""
    hotline_call_id: str = ""  # the channel's HOTLINE_CALL_ID (AMI Getvar), '' when not read
    hotline_centre: str = ""  # the channel's HOTLINE_CENTRE (AMI Getvar), '' when not read

    @property
    def conference(self) -> str:
        """The three-way ConfBridge of the call: ``hotline-${HOTLINE_CALL_ID}``, as hotline-threeway names it.

        HOTLINE_CALL_ID is the Uniqueid of the leg that ran the routing, which is the Linkedid only when
        that leg started the call (a SIP caller); behind a Local channel it is the ;2 leg's id.
        """
        return f"hotline-{self.hotline_call_id or self.call_id}"

    @property
    def call_id(self) -> str:
        """The caller leg's Uniqueid (HOTLINE_CALL_ID): every leg of the call carries it as Linkedid."""
        return self.linkedid or self.uniqueid

    @property
    def caller_leg(self) -> str:
        """The caller's channel: the leg whose Uniqueid is the Linkedid, else the peer."""
        if self.uniqueid == self.linkedid or not self.peer:
            return self.name
        return self.peer


@dataclass(frozen=True, slots=True)
class AmiStep:
    """One AMI action and how its outcome is judged.

    ``judge``: ``response`` (the response says it all: Redirect), ``event``
    (response and then ``event`` naming the channel: BlindTransfer), ``event_only``
    (the response says nothing: the atxfer code, wait for AttendedTransfer) or
    ``originate`` (wait for OriginateResponse).
    """

    action: str
    fields: tuple[tuple[str, str], ...]
    judge: str = "response"
    event: str = ""


@dataclass(frozen=True, slots=True)
class TransferPlan:
    """The actions that carry out a request, in order."""

    request: TransferRequest
    destination: Destination
    call_id: str
    steps: tuple[AmiStep, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class Refusal:
    """A request that must not run, and why (shown to the requester and audited)."""

    reason: str
    target: str = ""


def resolve(policy: TransferPolicy, request: TransferRequest) -> Destination | Refusal:
    """Check target and mode before touching Asterisk."""
    if not request.channel.strip():
        return Refusal("no channel given", request.target)
    if request.mode is TransferMode.HANDOVER:
        if request.target != HANDOVER_TARGET:
            return Refusal(f"a hand-over goes to {HANDOVER_TARGET}, not {request.target!r}", request.target)
        if request.from_line not in policy.handover_lines:
            allowed = ", ".join(sorted(policy.handover_lines)) or "none"
            return Refusal(
                f"line {request.from_line or '(not given)'!r} may not hand calls over to 12345"
                f" (handover_to_12345 lines: {allowed})",
                request.target,
            )
        return Destination(HANDOVER_TARGET, "", "12345 general queue", (TransferMode.HANDOVER,))
    dest = policy.targets.get(request.target)
    if dest is None:
        return Refusal(f"unknown target {request.target!r}; known: {', '.join(policy.known())}", request.target)
    if request.mode not in dest.modes:
        modes = ", ".join(str(m) for m in dest.modes)
        return Refusal(f"mode {request.mode} not allowed for {dest.key} (transfer_modes: {modes})", dest.key)
    return dest


def plan_transfer(
    policy: TransferPolicy, request: TransferRequest, channel: ChannelFacts | None
) -> TransferPlan | Refusal:
    """The AMI actions for ``request`` on the live ``channel`` (None: Asterisk does not know it)."""
    dest = resolve(policy, request)
    if isinstance(dest, Refusal):
        return dest
    if channel is None:
        return Refusal(f"unknown channel {request.channel!r}: not in CoreShowChannels", dest.key)
    mode = request.mode
    if mode is not TransferMode.HANDOVER and not channel.peer:
        return Refusal(f"channel {request.channel!r} is not bridged to a caller", dest.key)
    names = policy.dialplan
    onekey = (("Channel", channel.name), ("Exten", dest.code), ("Context", names.onekey))
    steps: tuple[AmiStep, ...]
    if mode is TransferMode.BLIND:
        steps = (AmiStep("BlindTransfer", onekey, "event", "BlindTransfer"),)
    elif mode is TransferMode.ATTENDED:
        # Not AMI Atxfer: it queues the atxfer code AND the target's digits as DTMF frames, and on 22.10.1
        # the transfer prompt kept only the first digit ("Dialed '1@hotline-onekey' does not exist"), or,
        # with TRANSFER_EXTEN set, the digits reached the target. Instead TRANSFER_EXTEN names the target
        # (main/bridge_basic.c grab_transfer reads no digits when it is set), TRANSFER_CONTEXT its context
        # (hotline-onekey-cmd: the same targets, a consultation the records know as a command's), and only
        # the atxfer code is "pressed" (PlayDTMF Receive: DTMF received on the agent's channel). The
        # executor restores both once the consultation call exists.
        def setvar(name: str, value: str) -> AmiStep:
            return AmiStep("Setvar", (("Channel", channel.name), ("Variable", name), ("Value", value)))

        def key(digit: str) -> tuple[tuple[str, str], ...]:
            return (("Channel", channel.name), ("Digit", digit), ("Duration", "100"), ("Receive", "true"))

        code = [AmiStep("PlayDTMF", key(d)) for d in names.atxfer_code[:-1]]
        code.append(AmiStep("PlayDTMF", key(names.atxfer_code[-1]), "event_only", "AttendedTransfer"))
        steps = (setvar(TRANSFER_EXTEN, dest.code), setvar(TRANSFER_CONTEXT, names.onekey_command), *code)
    elif mode is TransferMode.THREEWAY:
        # The same order as the agent's *3 key in hotline-xfer: caller and agent into the
        # conference first, then the target is called into it (hotline-threeway,s with the call's id).
        redirect = (
            ("Channel", channel.peer),
            ("ExtraChannel", channel.name),
            ("Context", names.conference),
            ("Exten", "s"),
            ("Priority", "1"),
        )
        originate = (
            ("Channel", f"Local/{dest.code}@{names.onekey}"),
            ("Context", names.conference),
            ("Exten", "s"),
            ("Priority", "1"),
            ("Variable", _originate_vars(names, channel)),
            ("Async", "true"),
        )
        steps = (AmiStep("Redirect", redirect), AmiStep("Originate", originate, "originate", "OriginateResponse"))
    else:
        to_12345 = (("Channel", channel.caller_leg), ("Context", names.handover), ("Exten", "s"), ("Priority", "1"))
        steps = (AmiStep("Redirect", to_12345),)
    return TransferPlan(request, dest, channel.call_id, steps)


def _originate_vars(names: DialplanNames, channel: ChannelFacts) -> str:
    """The three-way target leg's variables (AMI ``Variable: a=b,c=d``): the call's conference, and its centre,
    which an expert-seat target's queue is named after (``<centre>-expert-<group>``); a new leg inherits nothing."""
    pairs = [f"{names.call_id_var}={channel.conference.removeprefix('hotline-')}"]
    if channel.hotline_centre:
        pairs.append(f"{names.centre_var}={channel.hotline_centre}")
    return ",".join(pairs)
