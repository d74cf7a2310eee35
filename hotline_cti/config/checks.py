"""Cross-reference checks that pydantic cannot do field by field.

Each check adds a :class:`Problem` with the place of the offending value, so
an engineer sees every mistake of a file in one run.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hotline_cti.config.agent_checks import check_agents
from hotline_cti.config.caller_checks import check_callers
from hotline_cti.config.errors import Problem
from hotline_cti.config.holiday_checks import check_holidays
from hotline_cti.config.schema import Hotline, MergerConfig
from hotline_cti.config.yamlsource import place_of
from hotline_cti.core.model import Mode, Scope
from hotline_cti.core.prompts import line_prompt_ids


def _dupes(items: Iterable[tuple[int, str]], what: str, list_name: str, key: str, tree: Any) -> list[Problem]:
    seen: dict[str, int] = {}
    out = []
    for i, value in items:
        if value in seen:
            first = place_of(tree, (list_name, seen[value], key))
            where = f" (first at line {first.line})" if first else ""
            out.append(
                Problem(
                    place_of(tree, (list_name, i, key)), f"{list_name}[{i}].{key}", f"duplicate {what} {value!r}{where}"
                )
            )
        else:
            seen[value] = i
    return out


def check_references(model: MergerConfig, tree: Any, prompt_ids: frozenset[str] | None = None) -> list[Problem]:
    """Every cross-reference problem of ``model``; ``tree`` gives their places.

    ``prompt_ids`` is the set of prompts the catalogue can play; when given,
    every prompt a route would play must be in it.
    """
    problems: list[Problem] = []

    def bad(loc: tuple[int | str, ...], message: str) -> None:
        path = ""
        for step in loc:
            path += f"[{step}]" if isinstance(step, int) else (f".{step}" if path else step)
        problems.append(Problem(place_of(tree, loc), path, message))

    id_lists: dict[str, list[str]] = {
        "cities": [x.id for x in model.cities],
        "centres": [x.id for x in model.centres],
        "queues": [x.id for x in model.queues],
        "expert_groups": [x.id for x in model.expert_groups],
        "subcentres": [x.id for x in model.subcentres],
        "departments": [x.id for x in model.departments],
    }
    for name, ids in id_lists.items():
        problems += _dupes(enumerate(ids), "id", name, "id", tree)

    cities = {c.id for c in model.cities}
    queues = {q.id for q in model.queues}
    experts = {e.id for e in model.expert_groups}
    subcentres = {s.id: s for s in model.subcentres}
    departments = {d.id for d in model.departments}
    emergency = set(model.emergency_numbers)

    if "general" not in queues:
        bad(("queues",), "a queue with id 'general' is required: it takes every call nothing else claims")
    if not any(c.city is None for c in model.centres):
        bad(("centres",), "one centre must have no city: the region-level 12345 that takes calls of unknown city")
    if sum(1 for c in model.centres if c.city is None) > 1:
        bad(("centres",), "only one centre may be the region-level centre (no city)")
    for i, c in enumerate(model.centres):
        if c.city is not None and c.city not in cities:
            bad(("centres", i, "city"), f"unknown city {c.city!r}")
    for i, q in enumerate(model.queues):
        if q.overflow is not None and q.overflow not in queues:
            bad(("queues", i, "overflow"), f"unknown queue {q.overflow!r}")
        if q.overflow == q.id:
            bad(("queues", i, "overflow"), "a queue cannot overflow into itself")
    if model.overflow.target not in queues:
        bad(("overflow", "target"), f"unknown queue {model.overflow.target!r}")
    for i, s in enumerate(model.subcentres):
        if s.scope is Scope.PROVINCE and not s.dial:
            bad(("subcentres", i), f"region-wide sub-centre {s.id!r} needs a 'dial' target")
        if s.scope is Scope.CITY:
            if s.dial:
                bad(
                    ("subcentres", i, "dial"),
                    "a per-city sub-centre dials per site: put 'dial' under each of its 'sites'",
                )
            covered = set()
            for j, site in enumerate(s.sites):
                if site.city not in cities:
                    bad(("subcentres", i, "sites", j, "city"), f"unknown city {site.city!r}")
                if site.city in covered:
                    bad(("subcentres", i, "sites", j, "city"), f"city {site.city!r} has two sites")
                covered.add(site.city)
            missing = [c.id for c in model.cities if c.id not in covered]
            if missing:
                bad(
                    ("subcentres", i, "sites"),
                    f"per-city sub-centre {s.id!r} has no site for city {', '.join(missing)}",
                )
        elif s.sites:
            bad(("subcentres", i, "sites"), "sites are for per-city sub-centres (scope: city)")

    for i_name, known in (("queues", queues), ("expert_groups", experts)):
        for key in getattr(model.recording, i_name):
            if key not in known:
                bad(("recording", i_name, key), f"unknown {i_name[:-1].replace('_', ' ')} {key!r}")

    # Numbers: each line and alias once, across the whole list.
    owner: dict[str, tuple[int, str]] = {}
    for i, line in enumerate(model.hotlines):
        numbered: list[tuple[tuple[int | str, ...], str]] = [((i, "number"), line.number)]
        numbered += [((i, "aliases", j), a) for j, a in enumerate(line.aliases)]
        for loc, number in numbered:
            if number == "12345":
                bad(("hotlines", *loc), "12345 is the main line itself and cannot be listed as a hotline")
            elif number in owner:
                first_i, first_no = owner[number]
                first = place_of(tree, ("hotlines", first_i, "number"))
                at_line = f" line {first.line}" if first else ""
                bad(("hotlines", *loc), f"duplicate number {number} (already used by {first_no} at{at_line})")
            else:
                owner[number] = (i, line.number)

    for i, line in enumerate(model.hotlines):
        problems += _check_line(i, line, model, tree, cities, queues, experts, subcentres, departments, emergency)
        if prompt_ids is not None:
            for field, prompt in line_prompt_ids(line, model.defaults).items():
                if prompt not in prompt_ids:
                    # An explicit prompt is blamed where it is written; a default one on the line itself.
                    explicit = getattr(line.prompts, field) is not None
                    where: tuple[int | str, ...] = ("hotlines", i, "prompts", field) if explicit else ("hotlines", i)
                    bad(
                        where,
                        f"prompt {prompt!r} is not in the catalogue (ivr_prompts/catalogue.yaml or this file's 'prompts')",
                    )
    if prompt_ids is not None and model.defaults.welcome_prompt not in prompt_ids:
        bad(("defaults", "welcome_prompt"), f"prompt {model.defaults.welcome_prompt!r} is not in the catalogue")
    problems += check_agents(model, tree)
    problems += check_holidays(model, tree, prompt_ids)
    problems += check_callers(model, tree, prompt_ids)
    return problems


def _check_line(
    i: int,
    line: Hotline,
    model: MergerConfig,
    tree: Any,
    cities: set[str],
    queues: set[str],
    experts: set[str],
    subcentres: dict[str, Any],
    departments: set[str],
    emergency: set[str],
) -> list[Problem]:
    problems: list[Problem] = []

    def bad(field: tuple[int | str, ...], message: str) -> None:
        path = f"hotlines[{i}]" + "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in field)
        problems.append(Problem(place_of(tree, ("hotlines", i, *field)), path, f"{line.number} {line.name}: {message}"))

    if line.number in emergency and line.mode is not Mode.TRANSFER:
        bad(("mode",), f"{line.number} is an emergency number and must use mode 'transfer', not {line.mode.value!r}")
    if line.mode is Mode.TRANSFER and line.number not in emergency:
        bad(("mode",), "mode 'transfer' is for emergency lines; add the number to 'emergency_numbers' if it is one")
    if line.queue is not None and line.queue not in queues:
        bad(("queue",), f"unknown queue {line.queue!r}")
    if line.expert is not None and line.expert not in experts:
        bad(("expert",), f"unknown expert group {line.expert!r}")
    if line.department is not None and line.department not in departments:
        bad(("department",), f"unknown department {line.department!r}")
    if line.city is not None and line.city not in cities:
        bad(("city",), f"unknown city {line.city!r}")
    if line.subcentre is not None and line.subcentre not in subcentres:
        bad(("subcentre",), f"unknown sub-centre {line.subcentre!r}")
    if line.mode is Mode.SUBCENTRE and line.subcentre is None:
        bad(("mode",), "mode 'subcentre' needs a 'subcentre' reference")
    if line.mode is not Mode.SUBCENTRE and line.subcentre is not None:
        bad(("subcentre",), "only lines with mode 'subcentre' name a sub-centre")
    if line.mode is Mode.MERGE and line.cutover is None:
        bad(("mode",), "a merged line needs its 'cutover' date")
    if (
        line.seats is not None
        and line.seats.value == "department"
        and line.mode is Mode.PARALLEL
        and line.department is None
    ):
        bad(("seats",), "a line that keeps its seats (各自接听) needs a 'department' to ring")
    if line.mode is Mode.LINKED and line.department is None and line.dial is None:
        bad(("mode",), "a linked utility line needs a 'department' (its own seats) to ring")
    if line.transfer_modes and line.mode is not Mode.TRANSFER:
        bad(("transfer_modes",), "transfer_modes are for emergency lines (mode 'transfer')")
    if line.handover_to_12345 and line.mode is not Mode.TRANSFER:
        bad(("handover_to_12345",), "only emergency lines hand calls over to 12345")
    if line.mode is Mode.GUIDANCE and line.cutover is not None:
        bad(("cutover",), "guidance lines are outside the merger and have no cut-over date")
    window = line.transition
    if window is not None:
        if window.start and window.end and window.end < window.start:
            bad(("transition", "end"), f"the transition window ends ({window.end}) before it starts ({window.start})")
        if window.end is not None and window.months is not None:
            bad(("transition",), "give the window's 'end' or its length in 'months', not both")
        if line.cutover is None and window.start is None:
            bad(("transition",), "a transition window needs the line's 'cutover' date or its own 'start'")
        if window.end and line.cutover and window.start is None and window.end < line.cutover:
            bad(
                ("transition", "end"), f"the transition window ends ({window.end}) before the cut-over ({line.cutover})"
            )
    if line.city is None and len(line.number) > 6 and len(model.cities) > 1:
        bad(("city",), "a local landline number needs the 'city' whose area code it belongs to")
    return problems
