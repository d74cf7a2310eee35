"""How routing changes between two configs, or two dates: one line per number whose decision differs."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hotline_cti.config.checked import Checked, dialled_numbers
from hotline_cti.config.schema import Hotline
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
    return out, f"diff: {changed} changed, {added} added, {removed} removed, {same} unchanged"
