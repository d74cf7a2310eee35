"""The merger file's repeat and nuisance caller rules, compiled into the core's caller policy (core/callers.py)."""

from __future__ import annotations

from hotline_cti.config.schema import MergerConfig
from hotline_cti.core.callers import CallerPolicy, CallerRulePlan


def compile_callers(cfg: MergerConfig) -> CallerPolicy | None:
    """The policy of ``cfg``, or None when the file has neither rules nor a repeat tag."""
    section = cfg.callers
    if not section.rules and section.repeat is None:
        return None
    rules = tuple(
        CallerRulePlan(
            r.id,
            r.more_than,
            r.within_minutes * 60.0 if r.within_minutes else None,
            r.list,
            r.action.prompt,
            r.action.priority,
            r.action.queue,
            r.action.tag,
        )
        for r in section.rules
    )
    repeat = section.repeat.within_hours * 3600.0 if section.repeat else None
    windows = [r.window for r in rules if r.window] + ([repeat] if repeat else [])
    return CallerPolicy(
        rules=rules,
        repeat_window=repeat,
        repeat_tag=section.repeat.tag if section.repeat else "",
        max_numbers=section.max_numbers,
        longest_window=max(windows, default=0.0),
        most_calls=max((r.more_than + 1 for r in rules if r.more_than), default=1),
    )
