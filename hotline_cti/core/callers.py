"""Repeat and nuisance callers (第二十九条: 无正当理由反复拨打、长时间占用热线资源): the rules, compiled, and
what a matched rule or a repeat call does to a decision.

Pure: whether a number is listed, how often it called and when it last called a line are facts the
routing service keeps (``hotline_cti.callers``) and passes in. Emergency, guidance and retired
decisions are never changed: a nuisance caller still reaches 110.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from hotline_cti.core.model import Action, Decision

UNTOUCHED = (Action.EMERGENCY, Action.GUIDANCE, Action.RETIRED)


@dataclass(frozen=True, slots=True)
class CallerRulePlan:
    """One rule: more than ``more_than`` calls in ``window`` seconds, or a number on ``list``."""

    id: str
    more_than: int | None
    window: float | None  # seconds
    list: str | None
    prompt: str | None
    priority: int | None
    queue: str | None
    tag: str | None


@dataclass(frozen=True, slots=True)
class CallerPolicy:
    """The compiled ``callers`` section."""

    rules: tuple[CallerRulePlan, ...]
    repeat_window: float | None  # seconds; None: no repeat tag
    repeat_tag: str
    max_numbers: int  # numbers the sliding window keeps at most
    longest_window: float  # the longest period any count looks back
    most_calls: int  # the largest count a rule needs: each number keeps this many call times

    @property
    def lists(self) -> frozenset[str]:
        """The list names the rules read."""
        return frozenset(r.list for r in self.rules if r.list)

    def match(self, listed: frozenset[str], recent: tuple[float, ...], ts: float) -> CallerRulePlan | None:
        """The first rule a caller meets: on one of ``listed``, or more calls than allowed among ``recent``
        (epoch seconds of their calls, this one included, oldest first)."""
        for rule in self.rules:
            if rule.list is not None:
                if rule.list in listed:
                    return rule
            elif rule.more_than is not None and rule.window is not None:
                since = ts - rule.window
                if sum(1 for t in recent if t > since) > rule.more_than:
                    return rule
        return None


def screened(
    decision: Decision, rule: CallerRulePlan | None, *, first: bool, queue_names: tuple[str, str | None] | None
) -> Decision:
    """``decision`` as ``rule`` changes it.

    ``first``: the call's first decision (the prompt is played once, not again after the 12345 menu).
    ``queue_names``: the Asterisk queue and overflow of the rule's queue at the decision's centre.
    """
    if rule is None or decision.action in UNTOUCHED:
        return decision
    changes: dict[str, object] = {}
    if rule.prompt and first:
        changes["prompts"] = (rule.prompt, *decision.prompts)
    if rule.priority is not None:
        changes["priority"] = rule.priority
    if rule.queue and queue_names is not None and decision.action is Action.QUEUE and not decision.menu:
        changes["target"], changes["overflow"] = queue_names
        changes["expert_queue"] = None  # the rule's queue replaces expert seats too
    if not changes:
        return decision
    return replace(decision, **changes, reason=f"{decision.reason}; caller rule {rule.id}")  # type: ignore[arg-type]


def caller_tag(rule: CallerRulePlan | None, repeat: bool, policy: CallerPolicy, decision: Decision) -> str:
    """The tag the agent sees (``重复``, a rule's tag), '' for none; never on untouched decisions."""
    if decision.action in UNTOUCHED:
        return ""
    tags = [rule.tag] if rule is not None and rule.tag else []
    if repeat and policy.repeat_tag:
        tags.append(policy.repeat_tag)
    return "/".join(tags)
