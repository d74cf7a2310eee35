"""Callback (回呼) contexts: the offer while waiting, the placeholder that keeps the caller's place, the call back.

A caller waiting in a callback queue presses the key (queues.conf ``context=hotline-callback``: app_queue
leaves the queue there and sets QUEUEPOSITION). The number (theirs, or one typed in) is read back; on
"1" a placeholder is originated at once, by Asterisk itself (so it works with the controller down):
``Local/<call id>@hotline-callback-hold`` joins the same queue at the caller's position and priority.
When an agent takes it, the agent first hears who it is (Queue's gosub on the member's channel), then
the placeholder's other half dials the caller and bridges them. Every step is a HotlineCallback
UserEvent (Step: offered, accepted, answered, dialled, unqueued); the events service stores them and
places the retries (docs/queues.md).
"""

from __future__ import annotations

from hotline_cti import channel_vars as cv
from hotline_cti.config.schema import MergerConfig
from hotline_cti.dialplan import names
from hotline_cti.dialplan.extensions import AGENT_SETUP, MEMBER_AFTER, _context, _Ext, equals, is_set, user_event, v

NUMBER_DIGITS = 20
NUMBER_WAIT = 10  # seconds for a typed number
CONFIRM_WAIT = 6
REJOIN = f"{names.CTX_QUEUE},rejoin,1"  # back to the caller's place (hotline-queue)


def callback_queues(cfg: MergerConfig) -> frozenset[str]:
    """Asterisk names of the queues whose waiting callers may ask for a callback (none without ``callback:``)."""
    if cfg.callback is None:
        return frozenset()
    ids = set(cfg.callback.queues) if cfg.callback.queues is not None else {q.id for q in cfg.queues}
    return frozenset(names.queue_name(c.id, q) for c in cfg.centres for q in ids)


def callback_dial(cfg: MergerConfig) -> str:
    """The dial string of a callback, ``${HOTLINE_CB_NUMBER}`` in place of ``{number}``."""
    assert cfg.callback is not None
    template = cfg.callback.dial or f"PJSIP/{{number}}@{cfg.region.trunk}"
    return template.replace("{number}", v(cv.CB_NUMBER))


def _event(step: str, *fields: tuple[str, str]) -> str:
    return user_event(cv.EVENT_CALLBACK, [("CallId", v(cv.CB_ID)), ("Step", step), *fields])


def placeholder_variables() -> tuple[str, ...]:
    """The variables a placeholder's legs need, in the order the Originate passes them."""
    return (cv.CB_ID, cv.CB_NUMBER, cv.CB_QUEUE, cv.CB_POSITION, cv.CB_PRIO, cv.CB_ATTEMPT)


def render_callback(cfg: MergerConfig) -> str:
    """The callback contexts of extensions.conf ('' when the file has no ``callback:``)."""
    policy = cfg.callback
    if policy is None:
        return ""
    parts: list[str] = []
    digits_ok = f'$[${{LEN({v(cv.CB_NUMBER)})}} >= 5 & ${{REGEX("^[0-9]+$" {v(cv.CB_NUMBER)})}}]'

    offer = _Ext("offer").add(f"Set({cv.CB_POSITION}=)")  # a diversion's offer: not in the queue yet
    offer.add(f"Set({cv.IN_QUEUE}={v(cv.TARGET)})").add(f"Set({cv.JOINED}={v('EPOCH')})")
    offer.add(f"Goto({policy.key},ask)")
    # app_queue set QUEUENAME (setqueuevar=yes) and QUEUEPOSITION as the key took the caller out: right for
    # every Queue() of the dialplan (decided, overflow, fallback, a transfer target's).
    key = _Ext(policy.key).add(f"Set({cv.IN_QUEUE}={v('QUEUENAME')})")
    key.add(f"Set({cv.CB_POSITION}={v('QUEUEPOSITION')})")
    key.add(f"Set({cv.CB_ID}={v(cv.CALL_ID)})", "ask")
    key.add(f"Set({cv.CB_NUMBER}={v('CALLERID(num)')})")
    key.add(_event("offered", ("Queue", v(cv.IN_QUEUE))))
    key.add(f"GotoIf({digits_ok}?confirm:other)")
    key.add(f"Playback({cv.sound('callback-number')})", "confirm")
    key.add(f"SayDigits({v(cv.CB_NUMBER)})")
    key.add(f"Read({cv.CB_KEY},{cv.sound('callback-confirm')},1,,1,{CONFIRM_WAIT})")
    key.add(f"GotoIf({equals(cv.CB_KEY, '1')}?accept)")
    key.add(f"GotoIf({equals(cv.CB_KEY, '2')}?other)")
    key.add(f"Goto({REJOIN})")  # 0, no key or any other: back to their place
    key.add(f"Read({cv.CB_NUMBER},{cv.sound('callback-enter')},{NUMBER_DIGITS},,1,{NUMBER_WAIT})", "other")
    key.add(f"GotoIf({digits_ok}?confirm)")
    key.add(f"Goto({REJOIN})")
    key.add(f'ExecIf($["{v("QUEUE_PRIO")}" = ""]?Set(QUEUE_PRIO=0))', "accept")
    key.add(
        _event(
            "accepted",
            ("Queue", v(cv.IN_QUEUE)),
            ("Number", v(cv.CB_NUMBER)),
            ("Position", v(cv.CB_POSITION)),
            ("Joined", v(cv.JOINED)),
            ("Priority", v("QUEUE_PRIO")),
        )
    )
    pairs = {
        cv.CB_ID: v(cv.CB_ID),
        cv.CB_NUMBER: v(cv.CB_NUMBER),
        cv.CB_QUEUE: v(cv.IN_QUEUE),
        cv.CB_POSITION: v(cv.CB_POSITION),
        cv.CB_PRIO: v("QUEUE_PRIO"),
        cv.CB_ATTEMPT: "1",
    }
    variables = "^".join(f"{name}={pairs[name]}" for name in placeholder_variables())
    # 'a': asynchronous, the caller is told and released at once; the placeholder waits up to give_up_after.
    key.add(
        f"Originate(Local/{v(cv.CB_ID)}@{names.CTX_CB_HOLD},exten,{names.CTX_CB_DIAL},s,1,"
        f"{policy.give_up_after},av({variables}))"
    )
    key.add(f"Playback({cv.sound('callback-accepted')})").add("Hangup()")
    parts.append(
        _context(
            names.CTX_CALLBACK,
            f"callback offer: key {policy.key} while waiting (queues.conf context=), or a diversion's offer",
            [offer, key],
        )
    )

    # The placeholder's ;2 leg: in the queue at the caller's place; the agent's leg inherits the '__' variables.
    # Any call id (Asterisk's 1700000000.7, or a channel id an originator chose); a literal "h" beats the pattern.
    hold = _Ext("_[0-9A-Za-z]!").add(f"Set(__{cv.CB_ID}={v(cv.CB_ID)})").add(f"Set(__{cv.CB_NUMBER}={v(cv.CB_NUMBER)})")
    hold.add(f"Set(CALLERID(num)={v(cv.CB_NUMBER)})").add("Set(CALLERID(name)=callback)")
    hold.add(f"Set(QUEUE_PRIO={v(cv.CB_PRIO)})")
    hold.add(f"Queue({v(cv.CB_QUEUE)},t{MEMBER_AFTER}{AGENT_SETUP},,,,,{names.CTX_CB_WHISPER},,{v(cv.CB_POSITION)})")
    hold.add(f"GotoIf({is_set('MEMBERINTERFACE')}?done)")  # an agent took it: the dial leg reports the rest
    hold.add(_event("unqueued", ("Status", v("QUEUESTATUS"))))  # out of the queue without an agent
    hold.add("Hangup()", "done")
    ended = _Ext("h").add("NoOp(callback placeholder ended)").add("Hangup()")
    parts.append(_context(names.CTX_CB_HOLD, "a callback's place in its queue (Local ;2 leg)", [hold, ended]))

    whisper = _Ext("s").add(_event("answered", ("Agent", v("CHANNEL"))))
    whisper.add(f"Set(CHANNEL(language)={names.LANGUAGE})")
    whisper.add(f"Playback({cv.sound('callback-agent')})").add(f"SayDigits({v(cv.CB_NUMBER)})").add("Return()")
    parts.append(
        _context(names.CTX_CB_WHISPER, "the agent hears who is called back before the call is placed", [whisper])
    )

    dial = _Ext("s").add(f"Set(CHANNEL(hangup_handler_push)={names.CTX_CB_DIAL},report,1)")
    dial.add(f"Dial({callback_dial(cfg)},{policy.ring},g)")
    dial.add(f"GotoIf({equals('DIALSTATUS', 'ANSWER')}?done)")
    dial.add(f"Playback({cv.sound('callback-failed')})")  # heard by the agent: not reached this time
    dial.add("Hangup()", "done")
    report = _Ext("report").add(
        _event("dialled", ("Attempt", v(cv.CB_ATTEMPT)), ("Result", v("DIALSTATUS")), ("Talk", v("ANSWEREDTIME")))
    )
    report.add("Return()")
    parts.append(
        _context(names.CTX_CB_DIAL, "the agent took the placeholder: call the caller (Local ;1 leg)", [dial, report])
    )
    return "\n".join(parts)
