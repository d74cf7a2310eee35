"""Diversion before the wait (分流): a queue's live state turns a queue decision elsewhere.

Pure: the routing service passes the queue's :class:`QueueState` (kept from AMI events by the
events service, see docs/queues.md); nothing here reads a socket, a file or the clock. A queue's
rules are tried in their order and the first that holds is taken; with no state known (the
events service down, the snapshot stale) no rule holds and the caller joins the queue as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum

from hotline_cti.core.model import Action, Decision


class DivertWhen(StrEnum):
    """The queue condition a rule tests."""

    NO_AGENTS = "no_agents"  # no member logged in and unpaused
    ALL_BUSY = "all_busy"  # members available, none free
    WAIT_OVER = "wait_over"  # the expected wait (app_queue's holdtime) over ``over`` seconds
    CALLERS_PER_AGENT_OVER = "callers_per_agent_over"  # (waiting + this caller) / available agents over ``over``
    FULL = "full"  # as many callers waiting as the queue's maxlen


class DivertTo(StrEnum):
    """Where a diverted caller goes."""

    OVERFLOW = "overflow"  # another queue (the rule's target, else the queue's overflow)
    SUBCENTRE = "subcentre"  # a sub-centre's seats (设分中心); unanswered there, back to this queue
    RELEASE = "release"  # a prompt, then the call is released
    CALLBACK = "callback"  # a callback is offered before the caller joins (they keep their place if they decline)


# Conditions that need a number (``over``); the others must not have one.
NEEDS_OVER = frozenset({DivertWhen.WAIT_OVER, DivertWhen.CALLERS_PER_AGENT_OVER})


@dataclass(frozen=True, slots=True)
class QueueState:
    """One Asterisk queue as the events service last saw it (a compact snapshot).

    ``holdtime`` is app_queue's own figure: the exponential average (3/4 old, 1/4 new) of the
    waits of the calls its agents answered, in seconds; 0 until the first answer.
    """

    members: int  # logged in (device not unavailable or invalid)
    available: int  # logged in and not paused
    free: int  # available and not in a call or ringing
    waiting: int  # callers in the queue now
    holdtime: int


@dataclass(frozen=True, slots=True)
class DiversionRule:
    """One compiled rule of one Asterisk queue."""

    when: DivertWhen
    over: int
    to: DivertTo
    queue: str | None  # OVERFLOW: the Asterisk queue taken instead
    sites: tuple[tuple[str | None, str, str], ...]  # SUBCENTRE: (city or None for all, target id, dial)
    prompts: tuple[str, ...]
    maxlen: int  # FULL: the queue's maxlen


def holds(rule: DiversionRule, state: QueueState) -> bool:
    """Whether ``rule``'s condition is true of ``state``."""
    when = rule.when
    if when is DivertWhen.NO_AGENTS:
        return state.available == 0
    if when is DivertWhen.ALL_BUSY:
        return state.available > 0 and state.free == 0
    if when is DivertWhen.WAIT_OVER:
        return state.holdtime > rule.over
    if when is DivertWhen.CALLERS_PER_AGENT_OVER:
        # this caller counts: 1 waiting + this caller over 1 agent is 2 per agent
        return state.waiting + 1 > rule.over * state.available
    return rule.maxlen > 0 and state.waiting >= rule.maxlen


DIVERTED_LIMIT = 65536  # memo entries: decisions are memoised, so diverted ones repeat too


def divert(
    decision: Decision,
    rules: tuple[DiversionRule, ...],
    state: QueueState,
    memo: dict[tuple[int, int], tuple[Decision, Decision]],
) -> Decision:
    """``decision`` as the first rule that holds turns it, or unchanged.

    ``memo`` keeps each (decision, rule) outcome, so a diversion costs a dict look-up after the first:
    it holds the decision itself, so its id cannot be reused while the entry lives.
    """
    for index, rule in enumerate(rules):
        if not holds(rule, state):
            continue
        key = (id(decision), index)
        hit = memo.get(key)
        if hit is not None and hit[0] is decision:
            return hit[1]
        diverted = _turned(decision, rule)
        if diverted is None:
            continue  # e.g. a per-city sub-centre with no site for this caller's city
        if len(memo) >= DIVERTED_LIMIT:
            memo.clear()
        if DIVERTED_LIMIT:  # 0: keep nothing (tests/conftest.py --no-caches)
            memo[key] = (decision, diverted)
        return diverted
    return decision


def divert_live(
    decision: Decision,
    diversions: Mapping[str, tuple[DiversionRule, ...]],
    memo: dict[tuple[int, int], tuple[Decision, Decision]],
    states: Mapping[str, QueueState],
) -> Decision:
    """The call path's entry: ``decision`` diverted by its queue's rules and live state, if any apply.

    Only a queue decision past the 12345 menu is diverted (the menu comes first; its choice is decided again).
    """
    if decision.action is not Action.QUEUE or decision.menu or decision.target is None:
        return decision
    rules = diversions.get(decision.target)
    if rules is None:
        return decision
    state = states.get(decision.target)
    if state is None:
        return decision
    return divert(decision, rules, state, memo)


def _turned(d: Decision, rule: DiversionRule) -> Decision | None:
    why = f"diverted from {d.target}: {_condition(rule)}"
    if rule.to is DivertTo.RELEASE:
        return replace(
            d,
            action=Action.RELEASE,
            target=None,
            dial=None,
            prompts=(*d.prompts, *rule.prompts),
            overflow=None,
            overflow_after=0,
            hangup=True,
            reason=f"{d.reason}; {why}, prompt and release",
            diverted=rule.when.value,
        )
    if rule.to is DivertTo.CALLBACK:
        return replace(
            d,
            prompts=(*d.prompts, *rule.prompts),
            reason=f"{d.reason}; {why}, a callback offered first",
            diverted=rule.when.value,
            offer_callback=True,
        )
    if rule.to is DivertTo.OVERFLOW:
        if rule.queue is None or rule.queue == d.target:
            return None
        return replace(
            d,
            target=rule.queue,
            prompts=(*d.prompts, *rule.prompts),
            overflow=None,
            overflow_after=0,
            reason=f"{d.reason}; {why}, to queue {rule.queue}",
            diverted=rule.when.value,
        )
    site = next((s for s in rule.sites if s[0] is None or s[0] == d.city), None)
    if site is None:
        return None
    return replace(
        d,
        action=Action.SUBCENTRE,
        target=site[1],
        dial=site[2],
        prompts=(*d.prompts, *rule.prompts),
        overflow=d.target,  # unanswered there: back to the queue it was diverted from
        reason=f"{d.reason}; {why}, to sub-centre {site[1]}",
        diverted=rule.when.value,
    )


def _condition(rule: DiversionRule) -> str:
    if rule.when is DivertWhen.WAIT_OVER:
        return f"expected wait over {rule.over} s"
    if rule.when is DivertWhen.CALLERS_PER_AGENT_OVER:
        return f"over {rule.over} callers per agent"
    if rule.when is DivertWhen.FULL:
        return f"queue full ({rule.maxlen} waiting)"
    return "no agent logged in" if rule.when is DivertWhen.NO_AGENTS else "all agents busy"
