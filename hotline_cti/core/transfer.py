"""One-key transfer (话务转接) as a pure plan: which AMI actions move a live call, or why not.

The targets are the ones the generated ``hotline-onekey`` context dials
(:func:`hotline_cti.dialplan.targets.transfer_targets`), so an agent's key, the
CLI and an MQTT command all reach the same seats. Nothing here talks to
Asterisk: :mod:`hotline_cti.adapters.ami.transfer` looks the channel up,
executes the plan and audits the result.

Asterisk 20 semantics the plans rely on:

* ``BlindTransfer`` takes the agent-side channel and sends everything bridged
  to it (the caller) to the destination.
* ``Atxfer`` injects the atxfer feature code and the digits on the agent
  channel: the agent consults the target first, and hanging up completes it.
* Three-way: a dual ``Redirect`` moves caller and agent into the ConfBridge
  context, then an ``Originate`` brings the target into the same conference.
* Hand-over (110 → 12345): a ``Redirect`` of the caller leg into the fallback
  context, which queues it in the default centre's general queue.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hotline_cti.config.schema import MergerConfig
from hotline_cti.core.model import Mode
from hotline_cti.dialplan import names
from hotline_cti.dialplan.targets import transfer_targets
from hotline_cti.records.model import TransferMode

HANDOVER_TARGET = "12345"
ONEKEY_MODES = (TransferMode.BLIND, TransferMode.ATTENDED, TransferMode.THREEWAY)


@dataclass(frozen=True, slots=True)
class Destination:
    """A resolved transfer target: its ``hotline-onekey`` code and the name audits use."""

    key: str  # '110', 'tax', 'tobacco@nanning', 'e12315' or '12345' for a hand-over
    code: str  # extension in hotline-onekey ('' for the hand-over)
    label: str
    modes: tuple[TransferMode, ...]  # modes allowed for this target


@dataclass(frozen=True, slots=True)
class TransferPolicy:
    """Every reachable target by code and by name, and which lines may hand calls over to 12345."""

    region: str
    targets: dict[str, Destination]  # by code and by key
    handover_lines: frozenset[str]  # emergency lines with handover_to_12345

    def known(self) -> list[str]:
        """Target names for error messages, in the generator's order."""
        return list(dict.fromkeys(d.key for d in self.targets.values()))


def build_policy(cfg: MergerConfig) -> TransferPolicy:
    """The transfer policy of a merger config (targets from the dialplan generator's list)."""
    line_modes = {h.number: h.transfer_modes for h in cfg.hotlines if h.mode is Mode.TRANSFER}
    targets: dict[str, Destination] = {}
    for t in transfer_targets(cfg):
        key = t.key
        allowed = tuple(TransferMode(str(m)) for m in line_modes.get(key, [])) or ONEKEY_MODES
        dest = Destination(key, t.code, t.label, allowed)
        targets.setdefault(t.code, dest)
        targets.setdefault(key, dest)
    handover = frozenset(h.number for h in cfg.hotlines if h.mode is Mode.TRANSFER and h.handover_to_12345)
    return TransferPolicy(cfg.region.id, targets, handover)


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
    (the response says nothing: Atxfer, wait for AttendedTransfer) or
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
    onekey = (("Channel", channel.name), ("Exten", dest.code), ("Context", names.CTX_XFER_OUT))
    steps: tuple[AmiStep, ...]
    if mode is TransferMode.BLIND:
        steps = (AmiStep("BlindTransfer", onekey, "event", "BlindTransfer"),)
    elif mode is TransferMode.ATTENDED:
        steps = (AmiStep("Atxfer", onekey, "event_only", "AttendedTransfer"),)
    elif mode is TransferMode.THREEWAY:
        # The same order as the agent's *3 key in hotline-xfer: caller and agent into the
        # conference first, then the target is called into it.
        redirect = (
            ("Channel", channel.peer),
            ("ExtraChannel", channel.name),
            ("Context", names.CTX_CONF),
            ("Exten", "s"),
            ("Priority", "1"),
        )
        originate = (
            ("Channel", f"Local/{dest.code}@{names.CTX_XFER_OUT}"),
            ("Application", "ConfBridge"),
            ("Data", f"hotline-{channel.call_id},hotline_bridge,hotline_user"),
            ("Async", "true"),
        )
        steps = (AmiStep("Redirect", redirect), AmiStep("Originate", originate, "originate", "OriginateResponse"))
    else:
        to_queue = (("Channel", channel.caller_leg), ("Context", names.CTX_FALLBACK), ("Exten", "s"), ("Priority", "1"))
        steps = (AmiStep("Redirect", to_queue),)
    return TransferPlan(request, dest, channel.call_id, steps)
