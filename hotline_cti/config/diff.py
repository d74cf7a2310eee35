"""How routing changes between two configs, or two dates: one line per number whose decision differs."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hotline_cti.config.calendar import effect_of
from hotline_cti.config.checked import Checked, dialled_numbers
from hotline_cti.config.schema import CallerRule, Holiday, Hotline, MergerConfig
from hotline_cti.core.hours import DAYS
from hotline_cti.core.model import Call, Decision
from hotline_cti.core.numbers import line_label
from hotline_cti.core.routing import decide
from hotline_cti.core.table import MAIN_NUMBER
from hotline_cti.text_output import cell_text

# Decision fields left out of `config diff`: the reason is prose that changes with
# any other field, and skills are derived from origin/expert.
DIFF_SKIP = ("reason", "skills")


def _decisions(checked: Checked, when: dt.datetime) -> dict[str, tuple[Hotline | None, Decision]]:
    numbers: dict[str, Hotline | None] = {MAIN_NUMBER: None, **dialled_numbers(checked.model)}
    return {n: (line, decide(Call(dialled=n), checked.table, when)) for n, line in numbers.items()}


def _label(number: str, line: Hotline | None) -> str:
    if line is None:
        return number
    alias = "" if number.rpartition("-")[2] == line.number else f" (alias of {line.number})"
    return f"{line_label(number, line.name)}{alias}"


def decision_changes(old: Decision, new: Decision) -> list[tuple[str, Any, Any]]:
    """(field, old, new) for every decision field that differs, reason and skills aside."""
    a, b = old.to_dict(), new.to_dict()
    return [(k, a[k], b[k]) for k in a if k not in DIFF_SKIP and a[k] != b[k]]


def routing_diff(old: Checked, new: Checked, at1: dt.datetime, at2: dt.datetime) -> tuple[list[str], str]:
    """One line per number whose routing changes from ``old`` at ``at1`` to ``new`` at ``at2``, and the summary line."""
    before, after = _decisions(old, at1), _decisions(new, at2)
    out: list[str] = []
    changed = 0
    for number in sorted(before.keys() - after.keys()):
        line, decision = before[number]
        mode = decision.mode.value
        out.append(f"removed: {_label(number, line)}: was {mode}, now the 12345 general queue as an unknown number")
    for number in sorted(after.keys() - before.keys()):
        line, decision = after[number]
        mode, action, target = decision.mode.value, decision.action.value, cell_text(decision.target)
        out.append(f"added:   {_label(number, line)}: {mode}, {action} {target}")
    for number in sorted(before.keys() & after.keys()):
        (line, a), (new_line, b) = before[number], after[number]
        changes = decision_changes(a, b)
        if not changes:
            continue
        changed += 1
        out.append(f"changed: {_label(number, new_line or line)}")
        for field, x, y in changes:
            out.append(f"    {field}: {cell_text(x)} -> {cell_text(y)}")
        out.append(f"    now: {b.reason}")
    removed, added = len(before.keys() - after.keys()), len(after.keys() - before.keys())
    same = len(before.keys() & after.keys()) - changed
    summary = f"diff: {changed} changed, {added} added, {removed} removed, {same} unchanged"
    calendar = holiday_changes(old.model, new.model)
    out += calendar
    rules = caller_rule_changes(old.model, new.model)
    out += rules
    if rules:
        gone = sum(1 for text in rules if text.startswith("caller rule removed"))
        summary += f"; caller rules: {len(rules) - gone} added, {gone} removed"
    if calendar:
        gone = sum(1 for text in calendar if text.startswith("holiday removed"))
        summary += f"; holidays: {len(calendar) - gone} added, {gone} removed"
    return out, summary


def holiday_days_kind(entry: Holiday) -> tuple[str, str]:
    """``2026-10-01..2026-10-07`` (or one date) and ``closed`` / ``workday (fri hours)``."""
    effect = effect_of(entry)
    return effect.days, (f"workday ({DAYS[effect.hours_of]} hours)" if entry.workday else "closed")


def holiday_text(entry: Holiday) -> str:
    """One calendar entry in a line: days, name, what it does, to whom, its prompts."""
    days, kind = holiday_days_kind(entry)
    whom = ", ".join(entry.departments) if entry.departments else "region"
    extra = "".join(f", {field} {getattr(entry, field)}" for field in ("prompt", "message") if getattr(entry, field))
    return f"{days} {entry.name}: {kind}, {whom}{extra}"


def caller_rule_changes(old: MergerConfig, new: MergerConfig) -> list[str]:
    """``caller rule removed: ...`` / ``added: ...`` for rules (and the repeat tag) only one file has."""

    def texts(model: MergerConfig) -> list[str]:
        rules = [": ".join(rule_text(r)) for r in model.callers.rules]
        repeat = model.callers.repeat
        return rules + ([f"repeat tag {repeat.tag} within {repeat.within_hours} h"] if repeat else [])

    before, after = texts(old), texts(new)
    gone = [f"caller rule removed: {text}" for text in before if text not in after]
    return gone + [f"caller rule added:   {text}" for text in after if text not in before]


def holiday_changes(old: MergerConfig, new: MergerConfig) -> list[str]:
    """``holiday removed: ...`` / ``holiday added: ...`` for calendar entries only one file has (a changed one is both)."""
    before = [holiday_text(h) for h in old.holidays]
    after = [holiday_text(h) for h in new.holidays]
    gone = [f"holiday removed: {text}" for text in before if text not in after]
    return gone + [f"holiday added:   {text}" for text in after if text not in before]


def rule_text(rule: CallerRule) -> tuple[str, str]:
    """A caller rule as (id, ``more than 5 calls in 60 min -> priority -1, tag 频繁``)."""
    when = f"on list {rule.list}" if rule.list else f"more than {rule.more_than} calls in {rule.within_minutes} min"
    action = rule.action
    done = [
        f"{name} {value}"
        for name in ("prompt", "queue", "priority", "tag")
        if (value := getattr(action, name)) is not None
    ]
    return rule.id, f"{when} -> {', '.join(done)}"
