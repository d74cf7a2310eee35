"""One call record per call, built from AMI events: a pure state machine (no I/O, no clock).

``RecordBuilder.feed(message, at)`` takes one AMI event (any ``Mapping`` of
header to value) and the time it was received, and returns what it finished:
``Event`` s for the real-time feed (``calls/started|routed|queued|answered|
transferred|ended|rated``, data = the record's dict) and, once a call ends,
its ``CallRecord``. A record may come out again later (a survey rating or a
CDR after the hang-up): storage upserts it by call_id.

The caller leg's ``Uniqueid`` is the call id (= HOTLINE_CALL_ID), keyed by the builder's node
(``<node>:<Uniqueid>``, :func:`~hotline_cti.records.model.call_key`; bare without a node): every record,
event and audit row it makes carries that key, so two Asterisk nodes' equal uniqueids never meet in the
store. Other legs
(agents, department and sub-centre dials) are tied to it by ``Linkedid`` or
by the ``DestUniqueid`` of AgentConnect / DialBegin.

After a Redirect (one-key transfer) Asterisk sends AgentComplete only when
the caller finally hangs up, so the talk time is taken from the agent leg's
own BridgeLeave / Hangup, and AgentComplete's TalkTime is used only when that
was not seen.

Memory is bounded: calls with no hang-up are finished after ``max_age`` (and
the oldest beyond ``max_calls``), and only the last ``keep_finished`` ended
records are remembered for late ratings and CDRs. Malformed events (no
Uniqueid, a non-numeric rating or time) are logged with numbers masked and
skipped.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hotline_cti.channel_vars import (
    CALLBACK_HOLD_CONTEXT,
    EVENT_HANDOVER,
    EVENT_OVERFLOW,
    EVENT_RATING,
    EVENT_RECORDING,
    EVENT_ROUTE,
    EVENT_TRANSFER,
    FALLBACK_ACTION,
)
from hotline_cti.core.model import TransferMode
from hotline_cti.dialplan.names import CTX_XFER_CMD, CTX_XFER_OUT
from hotline_cti.events import Event
from hotline_cti.privacy import mask_numbers
from hotline_cti.records.caller import CallerPolicy
from hotline_cti.records.model import CallRecord, Outcome, TransferRecord, call_key, split_key

__all__ = ["Output", "RecordBuilder", "event_time", "outcome_of"]

log = logging.getLogger(__name__)

Output = CallRecord | Event | TransferRecord
CONFERENCE_PREFIX = "hotline-"  # hotline-threeway's ConfBridge: hotline-${HOTLINE_CALL_ID}
HANDOVER_TARGET = "12345"  # what a hand-over lists in the call record's transfers
_SAME_TIME = dt.timedelta(seconds=1)  # a CDR end this close to ours is the same (CDR times are whole seconds)


@dataclass
class _Call:
    """What the builder knows about one call in progress, beyond the record itself."""

    record: CallRecord
    seen: dt.datetime  # last event for this call
    joined: dt.datetime | None = None  # last QueueCallerJoin
    first_joined: dt.datetime | None = None  # first QueueCallerJoin: an overflowed call's wait starts here
    in_queue: bool = False  # between QueueCallerJoin and QueueCallerLeave: the caller's dials ring members
    queues_joined: int = 0
    abandoned: bool = False
    answered: dt.datetime | None = None
    agent_legs: set[str] = field(default_factory=set)  # Uniqueids of the legs that answered
    legs: set[str] = field(default_factory=set)  # every other leg tied to the call, forgotten with it
    dial_status: str = ""  # last DialEnd status of a department / sub-centre / emergency dial
    transfer_dial_due: bool = False  # a transfer event was counted; the dial-out to its target follows
    handed_over: bool = False  # an emergency line handed the call to 12345 (HotlineHandover)
    conference_joins: set[str] = field(default_factory=set)  # three-way targets seen joining the conference
    consulting: str = ""  # one-key code of the last consultation (atxfer) or three-way target dialled
    consulting_channel: str = ""  # its channel (Local/<code>@hotline-onekey[-cmd]-...)
    recordings: dict[str, str] = field(default_factory=dict)  # channel Uniqueid -> file named for it (not yet started)


_GONE_KEPT = 1000  # unknown hang-ups remembered between two resyncs


def _is_placeholder(m: Mapping[str, str]) -> bool:
    """A callback's placeholder leg (Local/<id>@hotline-callback-hold): not a call; the callbacks table counts it."""
    channel = _get(m, "Channel")
    return channel.startswith("Local/") and f"@{CALLBACK_HOLD_CONTEXT}-" in channel


def outcome_of(call: _Call) -> Outcome:
    """The outcome rules, in order: the route's kind first, then what happened to the call."""
    rec = call.record
    if rec.action == "retired":
        return Outcome.RETIRED
    if rec.action == "guidance":
        return Outcome.GUIDANCE
    if call.answered is not None:
        if rec.transfers:
            return Outcome.TRANSFERRED
        if rec.action == "emergency":
            return Outcome.EMERGENCY
        return Outcome.ANSWERED
    if rec.overflowed:
        return Outcome.OVERFLOWED
    if call.abandoned or call.dial_status == "CANCEL":
        return Outcome.ABANDONED
    return Outcome.FAILED


def _every_queue(call: _Call, at: dt.datetime, wait: float | None) -> float | None:
    """The wait counting every queue the call was in: from its first join when it overflowed (AMI's
    HoldTime counts only the queue it is in now)."""
    if call.queues_joined > 1 and call.first_joined is not None:
        return max(wait or 0.0, (at - call.first_joined).total_seconds())
    return wait


def _seconds(value: str | None) -> float | None:
    """An AMI number of seconds, or None when missing or not a number."""
    if value is None or value == "":
        return None
    try:
        return float(value)
    except ValueError:
        return None


def event_time(m: Mapping[str, str]) -> dt.datetime | None:
    """When Asterisk says the event happened (``Timestamp``, with ``timestampevents = yes``); None
    when it carries none or one that is not a time."""
    stamp = _seconds(_get(m, "Timestamp"))
    if stamp is None:
        return None
    try:
        return dt.datetime.fromtimestamp(stamp, dt.UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _duration(m: Mapping[str, str], key: str) -> float | None:
    """A seconds header of the event: None when absent, ``_Malformed`` when present but not a number."""
    raw = _get(m, key)
    value = _seconds(raw)
    if raw and (value is None or value < 0):
        raise _Malformed(f"{key} {raw!r} is not a number of seconds")
    return value


def _hms(value: str) -> float | None:
    """CoreShowChannel's ``Duration: HH:MM:SS``."""
    try:
        hours, minutes, seconds = (int(p) for p in value.split(":"))
    except ValueError:
        return None
    return float(hours * 3600 + minutes * 60 + seconds)


def _onekey_code(channel: str) -> str:
    """``Local/110@hotline-onekey-0000001a;1`` -> ``110``: the target of a consultation or three-way leg; else ''."""
    if not channel.startswith("Local/"):
        return ""
    code, sep, rest = channel.removeprefix("Local/").partition("@")
    return code if sep and rest.startswith(f"{CTX_XFER_OUT}-") else ""


def _by_command(channel: str) -> bool:
    """Whether a consultation leg is a CLI / MQTT attended transfer's (``Local/<code>@hotline-onekey-cmd-...``)."""
    return channel.partition("@")[2].startswith(f"{CTX_XFER_CMD}-")


def _agent_of(channel: str) -> str:
    """The agent whose key it was: ``PJSIP/8001-0000001a`` -> ``8001``, ``Local/lagent@ctx-00000008;1`` -> ``lagent``."""
    if channel.startswith("Local/"):
        return channel.removeprefix("Local/").partition("@")[0]
    return _seat(channel).rpartition("/")[2]


def _seat(channel: str) -> str:
    """``PJSIP/sft-0000002a`` -> ``PJSIP/sft``: the endpoint, not the per-call channel."""
    head, sep, tail = channel.rpartition("-")
    return head if sep and tail and all(c in "0123456789abcdef" for c in tail.lower()) else channel


class RecordBuilder:
    """Builds call records from AMI events. One instance per AMI connection (region)."""

    def __init__(
        self,
        region: str,
        caller_storage: CallerPolicy | None = None,
        *,
        max_age: dt.timedelta = dt.timedelta(hours=4),
        max_calls: int = 50_000,
        keep_finished: int = 10_000,
        node: str = "",
    ) -> None:
        self.region = region
        self.node = node  # the Asterisk node this builder's AMI link belongs to; '' keys calls by bare uniqueid
        self.caller_storage = caller_storage or CallerPolicy()
        self.max_age = max_age
        self.max_calls = max_calls
        self.keep_finished = keep_finished
        self._calls: OrderedDict[str, _Call] = OrderedDict()  # in start order, for expiry
        self._legs: dict[str, str] = {}  # other leg Uniqueid -> call id
        self._finished: OrderedDict[str, CallRecord] = OrderedDict()
        # Hang-ups of channels unknown here, since the last resync: a list asked for at a login can still show
        # a call whose Hangup arrived before the list did; that call is started and finished at once.
        self._gone: OrderedDict[str, tuple[dt.datetime, int | None]] = OrderedDict()
        self._now: dt.datetime | None = None
        self._last_sweep: dt.datetime | None = None
        self.skipped = 0  # malformed events
        self._handlers: dict[str, Callable[[Mapping[str, str], dt.datetime], list[Output]]] = {
            "newchannel": self._on_newchannel,
            "userevent": self._on_userevent,
            "queuecallerjoin": self._on_join,
            "queuecallerabandon": self._on_abandon,
            "queuecallerleave": self._on_leave,
            "agentconnect": self._on_agent_connect,
            "agentcomplete": self._on_agent_complete,
            "dialbegin": self._on_dial_begin,
            "dialend": self._on_dial_end,
            "blindtransfer": self._on_blind_transfer,
            "attendedtransfer": self._on_attended_transfer,
            "confbridgejoin": self._on_conference_join,
            "bridgeleave": self._on_leg_end,
            "mixmonitorstart": self._on_recording_start,
            "hangup": self._on_hangup,
            "cdr": self._on_cdr,
        }

    # ------------------------------------------------------------------ API

    def key(self, uniqueid: str) -> str:
        """The call id of one of this node's Asterisk uniqueids (the one place records are keyed)."""
        return call_key(self.node, uniqueid)

    @property
    def active(self) -> int:
        """Calls in progress."""
        return len(self._calls)

    def feed(self, message: Mapping[str, str], at: dt.datetime | None = None) -> list[Output]:
        """Apply one AMI event received at ``at`` (UTC; default: the event's Timestamp, else the last time seen)."""
        name = _get(message, "Event").lower()
        handler = self._handlers.get(name)
        if handler is None:
            return []  # VarSet, Newexten, ... carry nothing the record needs
        when = self._time(message, at)
        try:
            out = handler(message, when)
        except _Malformed as exc:
            self.skipped += 1
            log.warning(
                "records: skipped malformed %s event (%s): %s",
                name,
                mask_numbers(str(exc)),
                mask_numbers(_excerpt(message)),
            )
            return []
        if self._last_sweep is None or when - self._last_sweep >= dt.timedelta(minutes=1):
            self._last_sweep = when
            out.extend(self.expire(when))
        return out

    def expire(self, now: dt.datetime) -> list[Output]:
        """Finish calls that started more than ``max_age`` ago (their hang-up was lost) and any beyond ``max_calls``."""
        out: list[Output] = []
        while self._calls:
            call_id, call = next(iter(self._calls.items()))
            if now - call.record.started <= self.max_age and len(self._calls) <= self.max_calls:
                break
            log.warning(
                "records: call %s had no hang-up %s after it started; finished now", call_id, now - call.record.started
            )
            out.extend(self._finish(call, call.seen, cause=None))
        return out

    def snapshot(self) -> list[CallRecord]:
        """Copies of the records of calls in progress (outcome ``active``), oldest first."""
        return [dataclasses.replace(c.record, transfers=list(c.record.transfers)) for c in self._calls.values()]

    def open_calls(self) -> dict[str, dict[str, Any]]:
        """Everything known of the calls in progress, JSON-ready, by call id: a checkpoint a restarted process
        hands to :meth:`restore`, so it finishes or follows them with their route instead of losing them."""
        return {call_id: _call_to_dict(call) for call_id, call in self._calls.items()}

    def restore(self, items: Iterable[Mapping[str, Any]]) -> int:
        """Take back calls in progress from :meth:`open_calls` of an earlier process; the next :meth:`resync`
        finishes those whose channel is gone. A call known already, or unreadable, is skipped. Returns how many."""
        taken = 0
        for item in items:
            try:
                call = _call_from_dict(item)
            except (KeyError, TypeError, ValueError) as exc:
                log.warning("records: a checkpointed call is unreadable (%s); skipped", type(exc).__name__)
                continue
            # Keyed for this node whatever the checkpoint says (one written before nodes were named is bare).
            call_id = self.key(split_key(call.record.call_id)[1])
            call.record.call_id, call.record.node = call_id, self.node
            if call_id in self._calls:
                continue
            self._calls[call_id] = call
            for leg in call.legs:
                self._legs[leg] = call_id
            taken += 1
        return taken

    def resync(
        self, channels: Iterable[Mapping[str, str]], at: dt.datetime, seen_before: dt.datetime | None = None
    ) -> list[Output]:
        """Reconcile with CoreShowChannel items read after an AMI reconnect.

        Calls whose caller channel no longer exists hung up while we were away:
        they are finished now (the end time is when we found out, the hang-up
        cause unknown; unanswered ones count as failed). Caller channels we did
        not know about are started, backdated by their Duration. With
        ``seen_before`` (when CoreShowChannels was sent), a call with an event
        at or after it is kept: it began or moved after the list was taken.
        """
        items = list(channels)
        alive = {self.key(_get(item, "Uniqueid")) for item in items}
        out: list[Output] = []
        for call_id, call in list(self._calls.items()):
            if call_id not in alive and (seen_before is None or call.seen < seen_before):
                log.info("records: call %s ended while AMI was disconnected", call_id)
                out.extend(self._finish(call, at, cause=None))
        for item in items:
            uid, linked = _get(item, "Uniqueid"), _get(item, "Linkedid")
            if not uid or self.key(uid) in self._calls or uid in self._legs or _is_placeholder(item):
                continue
            if linked and linked != uid:
                if self.key(linked) in self._calls:
                    self._link(uid, self._calls[self.key(linked)])
                continue
            age = _hms(_get(item, "Duration")) or 0.0
            out.extend(self._start(item, at - dt.timedelta(seconds=age)))
            if uid in self._gone:  # listed, but its Hangup came before the list
                ended, cause = self._gone[uid]
                call = self._calls[self.key(uid)]
                out.extend(self._finish(call, max(ended, call.record.started), cause=cause))
        self._gone.clear()
        self._now = at
        return out

    def ended_per_cdr(self, cdr: CallRecord) -> tuple[str, list[Output]]:
        """Asterisk's CDR says this call ended (``cdr``: its record as the CDR gives it, records/cdr.py).

        ``"open"``: the call is in progress here, so its Hangup was lost: finished at the CDR's end.
        ``"corrected"``: finished here without a Hangup (at a resync or expiry, when we found out): its end
        time (and talk) replaced by the CDR's, the record given again. ``"known"``: finished here, nothing to
        do. ``"unknown"``: never seen on AMI; the caller stores ``cdr`` itself, unless already stored."""
        assert cdr.ended is not None
        call_id = self.key(cdr.call_id)
        call = self._calls.get(call_id)
        if call is not None:
            return "open", self._finish(call, cdr.ended, cause=None)
        done = self._finished.get(call_id)
        if done is None:
            return "unknown", []
        if done.hangup_cause is not None or done.ended is None or abs(done.ended - cdr.ended) < _SAME_TIME:
            return "known", []
        done.ended = cdr.ended
        if cdr.talk is not None:
            done.talk = cdr.talk
        return "corrected", [dataclasses.replace(done, transfers=list(done.transfers))]

    # ------------------------------------------------------------- handlers

    def _on_newchannel(self, m: Mapping[str, str], at: dt.datetime) -> list[Output]:
        uid = _required(m, "Uniqueid")
        if _is_placeholder(m):
            return []
        linked = _get(m, "Linkedid") or uid
        if linked != uid:
            if self.key(linked) in self._calls:
                self._link(uid, self._calls[self.key(linked)])
            return []
        if self.key(uid) in self._calls:
            return []
        return self._start(m, at)

    def _start(self, m: Mapping[str, str], at: dt.datetime) -> list[Output]:
        call_id = self.key(_required(m, "Uniqueid"))
        record = CallRecord(
            call_id=call_id,
            region=self.region,
            node=self.node,
            started=at,
            caller=self.caller_storage.protect(_get(m, "CallerIDNum")),
            dialled=_get(m, "Exten") if _get(m, "Exten") not in ("", "s") else "",
        )
        self._calls[call_id] = _Call(record, seen=at)
        return [self._event("started", record, at)]

    def _on_userevent(self, m: Mapping[str, str], at: dt.datetime) -> list[Output]:
        kind = _get(m, "UserEvent")
        if kind not in (EVENT_ROUTE, EVENT_OVERFLOW, EVENT_RATING, EVENT_TRANSFER, EVENT_HANDOVER, EVENT_RECORDING):
            return []
        uid = _required(m, "CallId")
        # HOTLINE_CALL_ID is the Uniqueid of the leg that ran the routing: behind a Local channel that is
        # the ;2 leg, tied to the call (the ;1 leg's Uniqueid) by its Linkedid.
        call_id = self.key(uid)
        call_id = call_id if call_id in self._calls else self._legs.get(uid, call_id)
        if kind == EVENT_RATING:
            return self._rating(call_id, m, at)
        if kind == EVENT_TRANSFER:
            return self._agent_transfer(call_id, m, at)
        call = self._calls.get(call_id)
        if call is None:
            call = self._adopt(call_id, at)
        call.seen = at
        rec = call.record
        if kind == EVENT_RECORDING:
            call.recordings[_required(m, "Leg")] = _required(m, "File")
            return []
        if kind == EVENT_OVERFLOW:
            rec.overflowed = True
            rec.queue = _get(m, "To") or rec.queue
            return []
        if kind == EVENT_HANDOVER:
            call.handed_over = True
            return self._transferred(call, HANDOVER_TARGET, at)
        if call.handed_over and _get(m, "Action") == FALLBACK_ACTION:
            return []  # the general queue the hand-over goes to, not a controller that failed
        if _get(m, "Action") == FALLBACK_ACTION and call.queues_joined and rec.action not in ("", FALLBACK_ACTION):
            # A decided call that timed out of its queue with no overflow queue: the dialplan's fallback
            # queues it again (hotline-queue -> hotline-fallback). The controller's decision stands; the
            # call moved on as an overflow does (the next QueueCallerJoin names the queue).
            rec.overflowed = True
            return []
        rec.dialled = _get(m, "Dialled") or rec.dialled
        rec.form = _get(m, "Form")
        rec.action = _get(m, "Action")
        rec.target = _get(m, "Target")
        rec.origin = _get(m, "Origin")
        rec.mode = _get(m, "Mode")
        rec.phase = _get(m, "Phase")
        rec.centre = _get(m, "Centre")
        rec.city = _get(m, "City")
        rec.expert = _get(m, "Expert")
        rec.caller_tag = _get(m, "CallerTag") or rec.caller_tag  # a fallback's event has none: keep the first
        rec.fallback = rec.action == FALLBACK_ACTION
        return [self._event("routed", rec, at)]

    def _agent_transfer(self, call_id: str, m: Mapping[str, str], at: dt.datetime) -> list[Output]:
        """An agent's one-key transfer (HotlineTransfer from hotline-xfer): its audit row and event.

        A blind one also ends the agent's talk and names the target in the call record, as a
        BlindTransfer event does; the caller's dial to the target that follows is not counted again.
        """
        try:
            mode = TransferMode(_get(m, "Mode"))
        except ValueError:
            raise _Malformed(f"transfer mode {_get(m, 'Mode')!r} is not a transfer mode") from None
        channel = _required(m, "Channel")
        status = _get(m, "Result").upper()
        step = _get(m, "Step") or "ChannelRedirect"
        transfer = TransferRecord(
            call_id=call_id,
            at=at,
            channel=channel,
            target=_required(m, "Target"),
            mode=mode,
            requested_by="agent:" + _agent_of(channel),  # whose key: PJSIP/8001-… -> agent:8001
            result="ok" if status == "SUCCESS" else "failed",
            reason="" if status == "SUCCESS" else f"{step}: {status or 'no status'}",
            transfer_id=uuid.uuid4().hex,
        )
        out: list[Output] = [transfer, transfer.event(self.region)]
        call = self._calls.get(call_id)
        if call is not None and mode is TransferMode.BLIND and transfer.result == "ok":
            call.transfer_dial_due = True
            out = [*self._transferred(call, transfer.target, at), *out]
        return out

    def _rating(self, call_id: str, m: Mapping[str, str], at: dt.datetime) -> list[Output]:
        raw = _get(m, "Rating")
        if raw not in ("1", "2", "3"):
            raise _Malformed(f"rating {raw!r} is not 1, 2 or 3")
        call = self._calls.get(call_id)
        if call is not None:
            call.record.rating = int(raw)
            call.seen = at
            return [self._event("rated", call.record, at)]
        done = self._finished.get(call_id)
        if done is None:
            raise _Malformed(f"rating for unknown call {call_id}")
        done.rating = int(raw)
        return [self._event("rated", done, at), dataclasses.replace(done, transfers=list(done.transfers))]

    def _on_join(self, m: Mapping[str, str], at: dt.datetime) -> list[Output]:
        call = self._call_of(m)
        if call is None:
            return []
        call.queues_joined += 1
        if call.queues_joined > 1 and call.answered is None:
            call.record.overflowed = True  # the dialplan moved it on (overflow) even if no HotlineOverflow came
        call.record.queue = _required(m, "Queue")
        call.joined = at
        call.in_queue = True
        if call.first_joined is None:
            call.first_joined = at
        return [self._event("queued", call.record, at)]

    def _on_leave(self, m: Mapping[str, str], at: dt.datetime) -> list[Output]:
        call = self._call_of(m)
        if call is not None and self.key(_get(m, "Uniqueid")) == call.record.call_id:
            call.in_queue = False
        return []

    def _on_abandon(self, m: Mapping[str, str], at: dt.datetime) -> list[Output]:
        call = self._call_of(m)
        if call is None:
            return []
        call.abandoned = True
        call.record.wait = _duration(m, "HoldTime")
        if call.record.wait is None and call.joined is not None:
            call.record.wait = (at - call.joined).total_seconds()
        call.record.wait = _every_queue(call, at, call.record.wait)
        return []

    def _on_agent_connect(self, m: Mapping[str, str], at: dt.datetime) -> list[Output]:
        call = self._call_of(m)
        if call is None:
            return []
        call.in_queue = False  # connected: out of the queue (QueueCallerLeave may come first or not at all)
        return self._answered(call, m, at, agent=_get(m, "MemberName") or _get(m, "Interface"))

    def _answered(self, call: _Call, m: Mapping[str, str], at: dt.datetime, agent: str) -> list[Output]:
        rec = call.record
        first = call.answered is None
        if first:
            call.answered = at
        rec.agent = agent or rec.agent
        hold = _duration(m, "HoldTime")
        if hold is not None:
            rec.wait = hold
        elif call.joined is not None and rec.wait is None:
            rec.wait = (at - call.joined).total_seconds()
        rec.wait = _every_queue(call, call.answered or at, rec.wait)
        leg = _get(m, "DestUniqueid")
        if leg:
            call.agent_legs.add(leg)
            self._link(leg, call)
        return [self._event("answered", rec, at)] if first else []

    def _on_recording_start(self, m: Mapping[str, str], at: dt.datetime) -> list[Output]:
        """Asterisk began recording a channel (app_queue's MixMonitor once an agent answered): the file named
        for that channel by HotlineRecording becomes the call's recording (the first one: a leg moved to a
        target's queue records a second file, which the call record does not list)."""
        call = self._call_of(m)
        if call is None:
            return []
        path = call.recordings.pop(_required(m, "Uniqueid"), "")
        if path and not call.record.recording_path:
            call.record.recording_path = path
            call.record.recording_file = path.rsplit("/", 1)[-1]
        return []

    def _on_agent_complete(self, m: Mapping[str, str], at: dt.datetime) -> list[Output]:
        # The caller hung up first (Reason: caller): Asterisk sends AgentComplete without the caller's
        # channel fields. The member leg names the call; if the call already ended, its hang-up gave the talk.
        call = self._call_of(m) if _get(m, "Uniqueid") else self._find(m, "DestUniqueid", "DestLinkedid")
        if call is None:
            return []
        if call.record.talk is None:
            call.record.talk = _duration(m, "TalkTime")
        return []

    def _on_dial_begin(self, m: Mapping[str, str], at: dt.datetime) -> list[Output]:
        call = self._call_of(m)
        if call is None:
            return []
        leg = _get(m, "DestUniqueid")
        if leg:
            self._link(leg, call)
        code = _onekey_code(_get(m, "Channel"))
        if code:
            # The consultation call of an attended transfer, or a three-way target: not a transfer until
            # AttendedTransfer or the target's ConfbridgeJoin says so (an aborted consultation is none).
            call.consulting, call.consulting_channel = code, _get(m, "Channel")
            return []
        if self.key(_get(m, "Uniqueid")) != call.record.call_id or call.in_queue:
            return []  # a queue ringing its members, or a member's Local leg ringing its phone
        if call.answered is not None and call.record.action != "emergency":
            # The caller's own channel dialling out after an agent answered: it was redirected to a
            # transfer target. Another leg's dial (a queue member's Local;2 ringing its phone late,
            # after a fellow member answered) is no transfer.
            if call.transfer_dial_due:  # the dial of a BlindTransfer / AttendedTransfer already counted
                call.transfer_dial_due = False
                return []
            target = _get(m, "DestExten") or _get(m, "DialString")
            return self._transferred(call, target, at)
        return []

    def _on_dial_end(self, m: Mapping[str, str], at: dt.datetime) -> list[Output]:
        call = self._call_of(m)
        if call is None:
            return []
        if self.key(_get(m, "Uniqueid")) != call.record.call_id or call.in_queue:
            # A member answering its Local leg, or the queue's ring of a member: the queue answers the
            # caller only with AgentConnect (a member may answer as the caller times out of the queue).
            return []
        status = _get(m, "DialStatus").upper()
        if call.answered is not None and call.record.transfers:
            return []  # the transfer target answering is not a second answer of the call
        call.dial_status = status
        if status == "ANSWER":
            return self._answered(call, m, at, agent=_seat(_get(m, "DestChannel")))
        return []

    def _on_blind_transfer(self, m: Mapping[str, str], at: dt.datetime) -> list[Output]:
        if _get(m, "Result").lower() != "success":
            return []
        call = self._find(m, "TransfereeUniqueid", "TransfereeLinkedid", "TransfererUniqueid", "TransfererLinkedid")
        if call is None:
            return []
        call.transfer_dial_due = True
        return self._transferred(call, _get(m, "Extension"), at)

    def _on_attended_transfer(self, m: Mapping[str, str], at: dt.datetime) -> list[Output]:
        if _get(m, "Result").lower() != "success":
            return []
        call = self._find(
            m, "OrigTransfererLinkedid", "OrigTransfererUniqueid", "TransfereeUniqueid", "TransferTargetUniqueid"
        )
        if call is None:
            return []
        # The target: the one-key code of the consultation channel (Asterisk omits TransferTarget* when the
        # transferer is a Local channel), else what the event names.
        consultation = _get(m, "TransferTargetChannel") if _onekey_code(_get(m, "TransferTargetChannel")) else ""
        consultation = consultation or call.consulting_channel
        target = (
            _onekey_code(consultation)
            or _get(m, "SecondTransfererExten")
            or _get(m, "TransferTargetCallerIDNum")
            or _get(m, "Extension")
        )
        call.consulting, call.consulting_channel = "", ""
        call.transfer_dial_due = True
        out = self._transferred(call, target, at)
        if consultation and not _by_command(consultation):
            # The agent's own *2 (the CLI and MQTT consult through hotline-onekey-cmd and audit themselves).
            channel = _get(m, "OrigTransfererChannel")
            transfer = TransferRecord(
                call_id=call.record.call_id,
                at=at,
                channel=channel,
                target=target,
                mode=TransferMode.ATTENDED,
                requested_by="agent:" + _agent_of(channel),
                result="ok",
                reason="",
                transfer_id=uuid.uuid4().hex,
            )
            out += [transfer, transfer.event(self.region)]
        return out

    def _on_conference_join(self, m: Mapping[str, str], at: dt.datetime) -> list[Output]:
        """A three-way target joining the call's conference (``hotline-<call id>``): the call is transferred.

        The target's leg is the ``Local/<code>@hotline-onekey`` channel the CLI, an MQTT command or the
        agent's ``*3`` key originated into the conference; caller and agent joining are not transfers.
        """
        conference = _get(m, "Conference")
        channel = _get(m, "Channel")
        if not conference.startswith(CONFERENCE_PREFIX):
            return []
        code = _onekey_code(channel)
        if not code:
            return []
        uid = conference.removeprefix(CONFERENCE_PREFIX)
        call = self._calls.get(self.key(uid)) or self._calls.get(self._legs.get(uid, ""))
        leg = _get(m, "Uniqueid")
        if call is None or leg in call.conference_joins:
            return []
        call.conference_joins.add(leg)
        self._link(leg, call)
        return self._transferred(call, code, at)

    def _transferred(self, call: _Call, target: str, at: dt.datetime) -> list[Output]:
        call.seen = at
        call.record.transfers.append(target or "unknown")
        self._end_talk(call, at)
        return [self._event("transferred", call.record, at)]

    def _end_talk(self, call: _Call, at: dt.datetime) -> None:
        if call.answered is not None and call.record.talk is None:
            call.record.talk = max(0.0, (at - call.answered).total_seconds())

    def _on_leg_end(self, m: Mapping[str, str], at: dt.datetime) -> list[Output]:
        uid = _required(m, "Uniqueid")
        call_id = self._legs.get(uid)
        call = self._calls.get(call_id) if call_id else None
        if call is not None and uid in call.agent_legs:
            self._end_talk(call, at)  # the agent left: talk ends here even if the caller stays (Redirect)
        return []

    def _on_hangup(self, m: Mapping[str, str], at: dt.datetime) -> list[Output]:
        uid = _required(m, "Uniqueid")
        call = self._calls.get(self.key(uid))
        cause = _get(m, "Cause")
        if call is None:
            if uid not in self._legs:
                self._gone[uid] = (at, int(cause) if cause.isdigit() else None)
                while len(self._gone) > _GONE_KEPT:
                    self._gone.popitem(last=False)
            out = self._on_leg_end(m, at)
            self._legs.pop(uid, None)
            return out
        return self._finish(call, at, cause=int(cause) if cause.isdigit() else None)

    def _on_cdr(self, m: Mapping[str, str], at: dt.datetime) -> list[Output]:
        done = self._finished.get(self.key(_get(m, "UniqueID")))
        if done is None or done.dialled:
            return []
        done.dialled = _get(m, "Destination")
        return [dataclasses.replace(done, transfers=list(done.transfers))] if done.dialled else []

    # -------------------------------------------------------------- helpers

    def _finish(self, call: _Call, at: dt.datetime, cause: int | None) -> list[Output]:
        rec = call.record
        self._calls.pop(rec.call_id, None)
        for leg in call.legs:
            self._legs.pop(leg, None)
        self._end_talk(call, at)
        rec.ended = at
        rec.hangup_cause = cause
        rec.outcome = outcome_of(call)
        self._finished[rec.call_id] = rec
        while len(self._finished) > self.keep_finished:
            self._finished.popitem(last=False)
        return [self._event("ended", rec, at), dataclasses.replace(rec, transfers=list(rec.transfers))]

    def _link(self, leg: str, call: _Call) -> None:
        self._legs[leg] = call.record.call_id
        call.legs.add(leg)

    def _adopt(self, call_id: str, at: dt.datetime) -> _Call:
        """A call we never saw start (Newchannel lost in a reconnect): begin its record now."""
        call = _Call(CallRecord(call_id=call_id, region=self.region, started=at, node=self.node), seen=at)
        self._calls[call_id] = call
        return call

    def _call_of(self, m: Mapping[str, str]) -> _Call | None:
        uid = _required(m, "Uniqueid")
        call = (
            self._calls.get(self.key(uid))
            or self._calls.get(self._legs.get(uid, ""))
            or self._calls.get(self.key(_get(m, "Linkedid")))
        )
        if call is not None:
            call.seen = self._now or call.seen
        return call

    def _find(self, m: Mapping[str, str], *keys: str) -> _Call | None:
        for key in keys:
            uid = _get(m, key)
            call = self._calls.get(self.key(uid)) or self._calls.get(self._legs.get(uid, ""))
            if call is not None:
                return call
        return None

    def _event(self, kind: str, record: CallRecord, at: dt.datetime) -> Event:
        return Event(f"calls/{kind}", self.region, at, record.to_dict())

    def _time(self, m: Mapping[str, str], at: dt.datetime | None) -> dt.datetime:
        if at is None:
            at = event_time(m) or self._now
            if at is None:
                raise ValueError("RecordBuilder.feed needs 'at' until an event carries a Timestamp")
        self._now = at
        return at


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _from_iso(value: str | None) -> dt.datetime | None:
    return None if value is None else dt.datetime.fromisoformat(value)


_RECORD_FIELDS = tuple(f.name for f in dataclasses.fields(CallRecord))


def _call_to_dict(call: _Call) -> dict[str, Any]:
    # By hand, not dataclasses.asdict (a deep copy, ~10x slower): the checkpoint converts every call in progress.
    rec = call.record
    record = {name: getattr(rec, name) for name in _RECORD_FIELDS}
    record["started"], record["ended"] = rec.started.isoformat(), _iso(rec.ended)
    record["outcome"], record["transfers"] = str(rec.outcome), list(rec.transfers)
    return {
        "record": record,
        "seen": call.seen.isoformat(),
        "joined": _iso(call.joined),
        "queues_joined": call.queues_joined,
        "abandoned": call.abandoned,
        "answered": _iso(call.answered),
        "agent_legs": sorted(call.agent_legs),
        "legs": sorted(call.legs),
        "dial_status": call.dial_status,
        "transfer_dial_due": call.transfer_dial_due,
        "recordings": dict(call.recordings),
    }


def _call_from_dict(data: Mapping[str, Any]) -> _Call:
    seen = _from_iso(data["seen"])
    if seen is None:
        raise ValueError("no 'seen'")
    return _Call(
        record=CallRecord.from_dict(data["record"]),
        seen=seen,
        joined=_from_iso(data.get("joined")),
        queues_joined=int(data.get("queues_joined", 0)),
        abandoned=bool(data.get("abandoned", False)),
        answered=_from_iso(data.get("answered")),
        agent_legs=set(data.get("agent_legs", ())),
        legs=set(data.get("legs", ())),
        dial_status=str(data.get("dial_status", "")),
        transfer_dial_due=bool(data.get("transfer_dial_due", False)),
        recordings={str(k): str(v) for k, v in dict(data.get("recordings") or {}).items()},
    )


class _Malformed(Exception):
    """An event the builder cannot use; logged and skipped."""


def _get(m: Mapping[str, str], key: str) -> str:
    value = m.get(key)
    return "" if value is None else str(value).strip()


def _required(m: Mapping[str, str], key: str) -> str:
    value = _get(m, key)
    if not value:
        raise _Malformed(f"no {key}")
    return value


def _excerpt(m: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={m.get(k)}" for k in list(m)[:8])[:300]
