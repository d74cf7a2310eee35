"""The AGI scripts, written sans-IO: generators that yield command lines and receive replies.

The FastAGI server and a classic AGI driver run the same generators, so the
route, menu and survey logic exists once. Every script sets ``HOTLINE_DECIDED``
last: the dialplan branches on it, not on AGISTATUS.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Generator

from hotline_cti import channel_vars as cv
from hotline_cti.adapters.agi.protocol import AgiReply, quote_arg
from hotline_cti.core.model import Call, Decision
from hotline_cti.core.routing import EXPERT_DIGIT, decide
from hotline_cti.core.table import RoutingTable

Script = Generator[str, AgiReply, None]
RatingSink = Callable[[str, int, dt.datetime], None]
RATINGS = {"1": "满意", "2": "基本满意", "3": "不满意"}
MENU_TRIES = 3


def set_var(name: str, value: str) -> str:
    """A SET VARIABLE command line."""
    return f"SET VARIABLE {name} {quote_arg(value)}"


def sound(prompt_id: str) -> str:
    """The sound name Asterisk plays for a prompt id."""
    return f"{cv.SOUND_DIR}/{prompt_id}"


def call_from_env(env: dict[str, str]) -> Call:
    """Call facts from the AGI environment: AGI(agi://host/route,${EXTEN},${HOTLINE_CITY})."""
    dialled = env.get("agi_arg_1") or env.get("agi_extension", "")
    city = env.get("agi_arg_2") or None
    caller = env.get("agi_callerid")
    return Call(dialled, caller=None if caller in (None, "", "unknown") else caller, city=city)


def decision_variables(d: Decision) -> list[tuple[str, str]]:
    """The channel variables the dialplan needs to finish the call from ``d`` alone."""
    return [
        (cv.ACTION, d.action.value),
        (cv.TARGET, d.target or ""),
        (cv.DIAL, d.dial or ""),
        (cv.PROMPTS, "&".join(sound(p) for p in d.prompts)),
        (cv.ORIGIN, d.origin or ""),
        (cv.EXPERT, d.expert or ""),
        (cv.EXPERT_QUEUE, d.expert_queue or ""),
        (cv.ESCALATION, d.escalation or ""),
        (cv.OVERFLOW, d.overflow or ""),
        (cv.OVERFLOW_AFTER, str(d.overflow_after)),
        (cv.PRIORITY, str(d.priority)),
        (cv.FORM, d.form),
        (cv.MODE, d.mode.value),
        (cv.PHASE, d.phase.value),
        (cv.CENTRE, d.centre or ""),
        (cv.CITY, d.city or ""),
        (cv.HANGUP, "1" if d.hangup else ""),
        (cv.MENU, "1" if d.menu else ""),
    ]


def _apply(d: Decision) -> Script:
    for name, value in decision_variables(d):
        yield set_var(name, value)
    for prompt in d.prompts:
        yield f'STREAM FILE {sound(prompt)} ""'
    yield set_var(cv.DECIDED, cv.DECIDED_VALUE)


def route_script(
    env: dict[str, str], table: RoutingTable, now: dt.datetime, decider: Callable[..., Decision]
) -> Script:
    """``agi://host/route``: decide, set the variables, play the prompts, set the sentinel last."""
    yield from _apply(decider(call_from_env(env), table, now))


def ivr_script(env: dict[str, str], table: RoutingTable, now: dt.datetime, decider: Callable[..., Decision]) -> Script:
    """``agi://host/ivr``: the 12345 menu (1 consultation, 2 complaint, 3 expert topic, 0 agent)."""
    yield f'STREAM FILE {sound("emergency-hint")} ""'
    choice: str | None = None
    topic: str | None = None
    for _ in range(MENU_TRIES):
        reply = yield f"GET DATA {sound('menu-main')} 5000 1"
        digits = reply.result if reply.code == 200 and reply.result.isdigit() else ""
        if digits in ("0", "1", "2"):
            choice = digits
            break
        if digits == EXPERT_DIGIT:
            reply = yield f"GET DATA {sound('menu-topic')} 8000 6"
            choice, topic = EXPERT_DIGIT, reply.result if reply.result.isdigit() else None
            break
        if reply.code != 200 or reply.result == "-1":
            break  # caller gone or prompt missing: stop asking
        yield f'STREAM FILE {sound("invalid-choice")} ""'
    base = call_from_env(env)
    call = Call(base.dialled, caller=base.caller, city=base.city, ivr_choice=choice or "0", topic=topic)
    yield set_var(cv.IVR_CHOICE, choice or "")
    yield from _apply(decider(call, table, now))


def survey_script(env: dict[str, str], record: RatingSink, now: dt.datetime) -> Script:
    """``agi://host/survey``: post-call rating 1 满意 / 2 基本满意 / 3 不满意, recorded with the call id."""
    call_id = env.get("agi_arg_1") or env.get("agi_uniqueid", "")
    reply = yield f"GET DATA {sound('survey-ask')} 6000 1"
    if reply.code == 200 and reply.result in RATINGS:
        record(call_id, int(reply.result), now)
        yield set_var(cv.RATING, reply.result)
        yield f'STREAM FILE {sound("survey-thanks")} ""'
    yield set_var(cv.DECIDED, cv.DECIDED_VALUE)


SCRIPTS = ("route", "ivr", "survey")


def select_script(
    name: str, env: dict[str, str], table: RoutingTable, now: dt.datetime, record: RatingSink
) -> Script | None:
    """The script called ``name`` (``route``, ``ivr`` or ``survey``) for a session; None if unknown."""
    if name == "route":
        return route_script(env, table, now, decide)
    if name == "ivr":
        return ivr_script(env, table, now, decide)
    if name == "survey":
        return survey_script(env, record, now)
    return None
