"""Checks of the ``callers`` section (repeat and nuisance callers) that pydantic cannot do field by field."""

from __future__ import annotations

from typing import Any

from hotline_cti.config.errors import Problem
from hotline_cti.config.schema import MergerConfig
from hotline_cti.config.yamlsource import place_of


def check_callers(model: MergerConfig, tree: Any, prompt_ids: frozenset[str] | None = None) -> list[Problem]:
    """Every problem of ``model.callers``; ``tree`` gives their places."""
    problems: list[Problem] = []

    def bad(loc: tuple[int | str, ...], message: str) -> None:
        path = "callers" + "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in loc)
        problems.append(Problem(place_of(tree, ("callers", *loc)), path, message))

    queues = {q.id for q in model.queues}
    seen: dict[str, int] = {}
    for i, rule in enumerate(model.callers.rules):
        where = ("rules", i)
        if rule.id in seen:
            bad((*where, "id"), f"duplicate rule id {rule.id!r} (first is rules[{seen[rule.id]}])")
        seen.setdefault(rule.id, i)
        counted = rule.more_than is not None or rule.within_minutes is not None
        if counted and rule.list is not None:
            bad(where, f"rule {rule.id!r}: give 'more_than' + 'within_minutes' or a 'list', not both")
        elif counted and (rule.more_than is None or rule.within_minutes is None):
            bad(where, f"rule {rule.id!r}: 'more_than' needs 'within_minutes' and the other way round")
        elif not counted and rule.list is None:
            bad(where, f"rule {rule.id!r}: needs 'more_than' + 'within_minutes' (calls in a period) or a 'list'")
        action = rule.action
        if action.prompt is None and action.priority is None and action.queue is None and action.tag is None:
            bad((*where, "action"), f"rule {rule.id!r}: the action does nothing: give prompt, priority, queue or tag")
        if action.queue is not None and action.queue not in queues:
            bad((*where, "action", "queue"), f"rule {rule.id!r}: unknown queue {action.queue!r}")
        if action.prompt is not None and prompt_ids is not None and action.prompt not in prompt_ids:
            bad(
                (*where, "action", "prompt"),
                f"rule {rule.id!r}: prompt {action.prompt!r} is not in the catalogue "
                "(ivr_prompts/catalogue.yaml or this file's 'prompts')",
            )
    return problems
