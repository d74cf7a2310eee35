"""Cross checks of the ``agents`` and ``agent_settings`` sections (issue 18), each problem with its place."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hotline_cti.config.errors import Problem
from hotline_cti.config.schema import MergerConfig, Skill
from hotline_cti.config.yamlsource import place_of

SKILL_KINDS = ("queue", "line", "expert", "city")


def _path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for step in loc:
        path += f"[{step}]" if isinstance(step, int) else (f".{step}" if path else step)
    return path


def skill_kind(skill: Skill) -> tuple[str, str]:
    """``(kind, value)`` of a skill that names exactly one thing (checked by :func:`check_agents`)."""
    for kind in SKILL_KINDS:
        value = getattr(skill, kind)
        if value is not None:
            return kind, str(value)
    raise ValueError("a skill names one of queue, line, expert or city")


def check_agents(model: MergerConfig, tree: Any) -> list[Problem]:
    """Unknown queue / line / expert group / city / centre, duplicate agents, skills naming two things,
    duplicate pause reason codes, widened queues that cannot widen."""
    problems: list[Problem] = []

    def bad(loc: tuple[int | str, ...], message: str) -> None:
        problems.append(Problem(place_of(tree, loc), _path(loc), message))

    queues = {q.id for q in model.queues}
    experts = {e.id for e in model.expert_groups}
    cities = {c.id for c in model.cities}
    centre_cities = {c.city for c in model.centres if c.city is not None}
    centres = {c.id for c in model.centres}
    lines = {line.number: line for line in model.hotlines}
    seen: dict[str, int] = {}
    for i, agent in enumerate(model.agents):
        if agent.id in seen:
            first = place_of(tree, ("agents", seen[agent.id], "id"))
            at = f" (first at line {first.line})" if first else ""
            bad(("agents", i, "id"), f"duplicate agent {agent.id!r}{at}")
        else:
            seen[agent.id] = i
        if agent.centre is not None and agent.centre not in centres:
            bad(("agents", i, "centre"), f"unknown centre {agent.centre!r}")
        for j, skill in enumerate(agent.skills):
            named = [k for k in SKILL_KINDS if getattr(skill, k) is not None]
            loc: tuple[int | str, ...] = ("agents", i, "skills", j)
            if len(named) != 1:
                bad(
                    loc,
                    f"a skill names exactly one of {', '.join(SKILL_KINDS)} (this one: {', '.join(named) or 'none'})",
                )
                continue
            kind, value = named[0], str(getattr(skill, named[0]))
            _check_skill(kind, value, loc, bad, queues, experts, cities, centre_cities, lines)
    settings = model.agent_settings
    codes: dict[str, int] = {}
    ids: dict[str, int] = {}
    for i, reason in enumerate(settings.pause_reasons):
        if reason.code in codes:
            bad(("agent_settings", "pause_reasons", i, "code"), f"duplicate pause reason code {reason.code!r}")
        codes.setdefault(reason.code, i)
        if reason.id in ids:
            bad(("agent_settings", "pause_reasons", i, "id"), f"duplicate pause reason {reason.id!r}")
        ids.setdefault(reason.id, i)
    widened: set[tuple[str, str]] = set()
    for i, w in enumerate(settings.widen):
        loc = ("agent_settings", "widen", i)
        named = [k for k in ("queue", "expert") if getattr(w, k) is not None]
        if len(named) != 1:
            bad(loc, "a widened queue names exactly one of queue or expert")
            continue
        kind = named[0]
        value = str(getattr(w, kind))
        if kind == "queue" and value not in queues:
            bad((*loc, "queue"), f"unknown queue {value!r}")
        elif kind == "queue" and value == "general":
            bad((*loc, "queue"), "the general queue is where widening leads: it cannot widen itself")
        elif kind == "expert" and value not in experts:
            bad((*loc, "expert"), f"unknown expert group {value!r}")
        if (kind, value) in widened:
            bad((*loc, kind), f"{kind} {value!r} is widened twice")
        widened.add((kind, value))
    return problems


def _check_skill(
    kind: str,
    value: str,
    loc: tuple[int | str, ...],
    bad: Callable[[tuple[int | str, ...], str], None],
    queues: set[str],
    experts: set[str],
    cities: set[str],
    centre_cities: set[str],
    lines: dict[str, Any],
) -> None:
    if kind == "queue" and value not in queues:
        bad((*loc, "queue"), f"unknown queue {value!r}")
    elif kind == "expert" and value not in experts:
        bad((*loc, "expert"), f"unknown expert group {value!r}")
    elif kind == "city":
        if value not in cities:
            bad((*loc, "city"), f"unknown city {value!r}")
        elif value not in centre_cities:
            bad((*loc, "city"), f"city {value!r} has no 12345 centre of its own")
    elif kind == "line":
        line = lines.get(value)
        if line is None:
            bad((*loc, "line"), f"unknown line {value!r}")
        elif line.queue is None:
            bad((*loc, "line"), f"line {value} has no queue of its own (give the agent its 'queue' or 'expert')")
