"""The routing core: merger config + call facts + time → a :class:`Decision`.

No I/O and no clock of its own: the caller passes ``now``. Decisions for a
known line depend only on (line, phase, city, form, open/closed), so they are
built once and then served from the table's :class:`~hotline_cti.core.memo.DecisionCache`,
which the caller owns and passes in.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

from hotline_cti.core.calendar import DayEffect
from hotline_cti.core.memo import DecisionCache
from hotline_cti.core.model import (
    Action,
    AfterTransition,
    Call,
    Decision,
    Instant,
    Mode,
    Phase,
    Scope,
    Seats,
    epoch_seconds,
)
from hotline_cti.core.naming import expert_queue_name, queue_name
from hotline_cti.core.numbers import NumberError, line_label, mobile_digits, parse_dialled
from hotline_cti.core.table import MAIN_NUMBER, MOBILE_PREFIX_DIGITS, LinePlan, RoutingTable, Target

# The 12345 main menu: digit -> queue id (3 = expert seat for a topic, see decide_main).
MENU_QUEUES = {"1": "general", "2": "complaint", "0": "general"}
EXPERT_DIGIT = "3"
NO_KEY_DIGIT = "0"  # the caller let the menu run out: decided as 0, a human agent


def phase_of(line: LinePlan, ts: float) -> Phase:
    """Where ``ts`` (epoch seconds) falls against the line's cut-over and window."""
    if line.cutover is None and line.window_start is None:
        return Phase.NONE
    start = line.window_start if line.window_start is not None else line.cutover
    if line.cutover is not None and ts < line.cutover and (start is None or ts < start):
        return Phase.BEFORE
    if line.window_end is not None and start is not None and start <= ts < line.window_end:
        return Phase.TRANSITION
    if line.window_start is not None and ts < line.window_start:
        return Phase.BEFORE
    return Phase.AFTER


def resolve_city(
    table: RoutingTable, call: Call, dialled_area: str | None, line_area: str | None = None
) -> tuple[str | None, str | None, str | None]:
    """The caller's city id, why it stays unknown, and where it came from.

    Order: the trunk's city (call.city) > the dialled area code (0773-12345 is
    Guilin's 12345) > for a landline line, ``line_area``, the line's own area
    code (0772-3587066 is Liuzhou's line whoever dials it) > the caller's
    landline area code > the caller's mobile prefix. An area code several
    cities share names none of them; a mobile of one of those cities settles it.
    """
    if call.city is not None:
        if call.city in table.city_names:
            return call.city, None, "the trunk"
        return None, f"city {call.city!r} is not in the config", None
    shared: tuple[str, ...] = ()
    note: str | None = None
    for source in ("dialled", "line's", "caller's"):
        # the caller's number is parsed only when neither the dialled number nor the line names an area
        if source == "dialled":
            area = dialled_area
        elif source == "line's":
            area = line_area
        else:
            area = _caller_area(call.caller)
        if area is None:
            continue
        city = table.city_by_area.get(area)
        if city is not None:
            return city, None, f"the {source} area code {area}"
        shared = table.shared_areas.get(area, ())
        if shared:
            names = "、".join(table.city_names[c] for c in shared)
            note = f"{source} area code {area} is shared by {names}; the trunk must name the city"
            break
    if table.mobile_city and call.caller:
        mobile = mobile_digits(call.caller)
        city = table.mobile_city.get(mobile[:MOBILE_PREFIX_DIGITS]) if mobile else None
        if city is not None and (not shared or city in shared):
            return city, None, "the caller's mobile number"
    return None, note, None


def _caller_area(caller: str | None) -> str | None:
    if not caller or (caller.isdigit() and caller[0] != "0"):  # a mobile or local number names no area
        return None
    try:
        parsed = parse_dialled(caller)
    except NumberError:
        return None
    return parsed.area_code


def _queue(table: RoutingTable, centre: str, queue_id: str) -> tuple[str, str | None, int]:
    """Asterisk queue name, overflow queue name and max wait for ``queue_id`` at ``centre``."""
    plan = table.queues.get(queue_id) or table.queues["general"]
    overflow = plan.overflow or (table.overflow_target if table.overflow_target != plan.id else None)
    return (
        queue_name(centre, plan.id),
        queue_name(centre, overflow) if overflow else None,
        plan.max_wait,
    )


def queue_names(table: RoutingTable, centre: str, queue_id: str) -> tuple[str, str | None]:
    """The Asterisk queue and overflow queue names of ``queue_id`` at ``centre`` (caller rules use it)."""
    name, overflow, _ = _queue(table, centre, queue_id)
    return name, overflow


def decide(call: Call, table: RoutingTable, now: Instant, cache: DecisionCache | None = None) -> Decision:
    """Route one call. Deterministic: the same call, table and time give the same decision.

    ``now``: an aware datetime, or POSIX seconds (the FastAGI path's clock). Unknown or malformed numbers go to the
    12345 general queue with a warning: a call is never dropped for want of
    config. With ``cache`` (made for ``table``) a decision made before is served
    again, the same object; without it every call is decided afresh.
    """
    if cache is not None and cache.table is not table:
        raise ValueError("decide(): the decision cache was made for another routing table")
    ts = epoch_seconds(now)
    parsed = cache.parsed.get(call.dialled) if cache is not None else None
    if parsed is None:
        try:
            parsed = parse_dialled(call.dialled)
        except NumberError as exc:
            return _unknown(table, call, call.dialled, "unknown", None, f"dialled {exc}")
        if cache is not None and len(cache.parsed) < cache.parsed_limit:  # bounded: callers may dial anything
            cache.parsed[call.dialled] = parsed
    local, area = parsed.local, parsed.area_code
    if local == MAIN_NUMBER:
        city, note, source = resolve_city(table, call, area)
        message = None
        if table.main_calendar is not None and call.ivr_choice is None:
            message = table.main_calendar.at(ts)
        main_key = (MAIN_NUMBER, city, note, source, parsed.form, call.ivr_choice, call.topic, message)
        if cache is not None:
            hit = cache.decisions.get(main_key)
            if hit is not None:
                return hit
        decision = _with_city_source(table, _main(table, call, parsed.form.value, city, note, message), source)
        if cache is not None and len(cache.decisions) < cache.decisions_limit:  # menu input is caller-controlled
            cache.decisions[main_key] = decision
        return decision
    line = table.short.get(local)
    if line is None:
        if area is not None:
            line = table.landline.get((area, local))
        else:
            line = table.landline_local.get(local)
            if line is None:
                caller_area = _caller_area(call.caller)
                if caller_area is not None:
                    line = table.landline.get((caller_area, local))
    if line is None:
        return _unknown(table, call, local, parsed.form.value, area, f"{call.dialled} is not in the merger list")
    phase = phase_of(line, ts)
    city, city_note, source = resolve_city(table, call, area, line.landline_area)
    open_now = True
    day: DayEffect | None = None
    dept = line.department
    if dept is not None:
        if dept.calendar is not None:
            day = dept.calendar.at(ts)
        if day is None:
            if not dept.hours.always:
                open_now = dept.hours.is_open(dt.datetime.fromtimestamp(ts, table.timezone))
        elif day.closed:
            open_now = False
        elif not dept.hours.always:
            open_now = dept.hours.is_open_as(dt.datetime.fromtimestamp(ts, table.timezone), day.hours_of)
    key = (line.number, phase, city, parsed.form, open_now, city_note, source, day)
    if cache is not None:
        cached = cache.decisions.get(key)
        if cached is not None:
            return cached
    decision = _with_city_source(
        table, _line_decision(table, line, phase, city, city_note, parsed.form.value, open_now, day), source
    )
    if cache is not None and len(cache.decisions) < cache.decisions_limit:
        cache.decisions[key] = decision
    return decision


def _base(
    table: RoutingTable,
    *,
    number: str,
    form: str,
    mode: Mode,
    phase: Phase,
    action: Action,
    centre: str | None,
    city: str | None,
    reason: str,
    queue_id: str | None = None,
    target: Target | None = None,
    prompts: tuple[str, ...] = (),
    origin: str | None = None,
    expert: str | None = None,
    escalation: str | None = None,
    priority: int = 0,
    overflow_queue: str | None = None,
    menu: bool = False,
    hangup: bool = False,
    warnings: tuple[str, ...] = (),
) -> Decision:
    """Assemble a decision; a queue id is turned into the centre's Asterisk queue names."""
    overflow: str | None = None
    overflow_after = 0
    target_name: str | None = None
    dial: str | None = None
    if queue_id is not None and centre is not None:
        target_name, overflow, overflow_after = _queue(table, centre, queue_id)
    elif target is not None:
        target_name, dial = target.id, target.dial
        if overflow_queue is not None and centre is not None:
            overflow, _, overflow_after = _queue(table, centre, overflow_queue)
    expert_queue = expert_queue_name(centre, expert) if expert and centre else None
    return Decision(
        number=number,
        form=form,
        mode=mode,
        phase=phase,
        action=action,
        target=target_name,
        dial=dial,
        centre=centre,
        city=city,
        prompts=prompts,
        origin=origin,
        expert=expert,
        expert_queue=expert_queue,
        escalation=escalation,
        priority=priority,
        overflow=overflow,
        overflow_after=overflow_after,
        menu=menu,
        hangup=hangup,
        reason=reason,
        warnings=warnings,
    )


def _centre(table: RoutingTable, city: str | None) -> str:
    if city is None:
        return table.default_centre
    return table.centre_by_city.get(city, table.default_centre)


def _main(
    table: RoutingTable, call: Call, form: str, city: str | None, note: str | None, message: DayEffect | None = None
) -> Decision:
    centre = _centre(table, city)
    warnings = (note,) if note else ()
    choice = call.ivr_choice
    if choice is None:
        prompts: tuple[str, ...] = (table.welcome_prompt,)
        said = ""
        if message is not None and message.message is not None:
            # 12345 stays 7×24 on holidays; the day's exception message comes before the welcome.
            prompts = (message.message, *prompts)
            said = f"{message.days} {message.name} message, "
        return _base(
            table,
            number=MAIN_NUMBER,
            form=form,
            mode=Mode.MAIN,
            phase=Phase.NONE,
            action=Action.QUEUE,
            centre=centre,
            city=city,
            queue_id="general",
            prompts=prompts,
            menu=True,
            reason=f"12345 at {centre}: {said}main menu, then the general queue",
            warnings=warnings,
        )
    if choice == EXPERT_DIGIT and call.topic:
        line = table.short.get(call.topic)
        if line is not None:
            decision = _base(
                table,
                number=MAIN_NUMBER,
                form=form,
                mode=Mode.MAIN,
                phase=Phase.NONE,
                action=Action.QUEUE,
                centre=centre,
                city=city,
                queue_id=line.queue,
                origin=line.number,
                expert=line.expert,
                reason=f"12345 menu {choice}: topic {line_label(line.number, line.name)}"
                + (f", expert seats {line.expert}" if line.expert else ", no expert seats: its skill queue"),
                warnings=warnings,
            )
            if decision.expert_queue is None:
                return decision
            # Expert seats first; the line's skill queue is the overflow.
            return replace(decision, target=decision.expert_queue, overflow=decision.target)
        warnings = (*warnings, f"topic {call.topic} is not a configured line")
    queue_id = MENU_QUEUES.get(choice, "general")
    if choice not in MENU_QUEUES and choice != EXPERT_DIGIT:
        warnings = (*warnings, f"menu choice {choice!r} is not on the menu")
    if queue_id not in table.queues:
        queue_id = "general"
    return _base(
        table,
        number=MAIN_NUMBER,
        form=form,
        mode=Mode.MAIN,
        phase=Phase.NONE,
        action=Action.QUEUE,
        centre=centre,
        city=city,
        queue_id=queue_id,
        reason=f"12345 menu {choice}: queue {queue_id} at {centre}",
        warnings=warnings,
    )


def _with_city_source(table: RoutingTable, decision: Decision, source: str | None) -> Decision:
    """The decision with its reason saying where the caller's city came from."""
    if decision.city is None or source is None:
        return decision
    return replace(decision, reason=f"{decision.reason}; caller's city {table.city_names[decision.city]} from {source}")


def _unknown(table: RoutingTable, call: Call, number: str, form: str, area: str | None, why: str) -> Decision:
    city, note, source = resolve_city(table, call, area)
    centre = _centre(table, city)
    warnings = (why,) + ((note,) if note else ())
    decision = _base(
        table,
        number=number,
        form=form,
        mode=Mode.UNKNOWN,
        phase=Phase.NONE,
        action=Action.QUEUE,
        centre=centre,
        city=city,
        queue_id="general",
        reason=f"warning: {why}; sent to the 12345 general queue at {centre}",
        warnings=warnings,
    )
    return _with_city_source(table, decision, source)


def _line_decision(
    table: RoutingTable,
    line: LinePlan,
    phase: Phase,
    city: str | None,
    city_note: str | None,
    form: str,
    open_now: bool,
    day: DayEffect | None = None,
) -> Decision:
    centre = _centre(table, city)
    warnings = (city_note,) if city_note else ()
    label = line_label(line.number, line.name)
    common: dict[str, Any] = dict(
        number=line.number, form=form, mode=line.mode, phase=phase, city=city, warnings=warnings
    )
    before = (line.prompts["before"],) if "before" in line.prompts else ()

    if line.mode is Mode.TRANSFER:
        assert line.emergency is not None
        return _base(
            table,
            **common,
            action=Action.EMERGENCY,
            centre=None,
            target=line.emergency,
            reason=f"{label}: emergency line, connected to its own seats (never a 12345 queue)",
        )
    if line.mode is Mode.GUIDANCE:
        return _base(
            table,
            **common,
            action=Action.GUIDANCE,
            centre=None,
            prompts=(line.prompts["guidance"],),
            hangup=True,
            reason=f"{label}: outside the merger; the caller is told where to turn, then hang up",
        )
    if phase is Phase.BEFORE and line.mode in (Mode.MERGE, Mode.PARALLEL) and line.department is not None:
        return _department(
            table, line, common, centre, open_now, before, f"{label}: before cut-over, the department as before", day
        )
    if line.mode is Mode.MERGE:
        if phase is Phase.AFTER:
            retired = (line.prompts["retired"],)
            if line.after_transition is AfterTransition.HANGUP:
                return _base(
                    table,
                    **common,
                    action=Action.RETIRED,
                    centre=None,
                    prompts=retired,
                    hangup=True,
                    reason=f"{label}: retired after its transition window; retired prompt, then hang up",
                )
            return _base(
                table,
                **common,
                action=Action.QUEUE,
                centre=centre,
                queue_id=line.queue,
                prompts=retired,
                origin=line.number,
                priority=line.priority,
                reason=f"{label}: retired after its transition window; retired prompt, still put through to 12345 at {centre}",
            )
        prompts = (line.prompts["transition"],) if phase is Phase.TRANSITION else ()
        return _base(
            table,
            **common,
            action=Action.QUEUE,
            centre=centre,
            queue_id=line.queue,
            prompts=prompts,
            origin=line.number,
            priority=line.priority,
            reason=f"{label}: merged into 12345; transition prompt, then queue {line.queue} at {centre} tagged with the old line",
        )
    transition = (line.prompts["transition"],) if phase is Phase.TRANSITION and "transition" in line.prompts else ()
    if line.mode is Mode.PARALLEL:
        if line.seats is Seats.DEPARTMENT:
            return _department(
                table,
                line,
                common,
                centre,
                open_now,
                transition,
                f"{label}: keeps its own seats (各自接听); 12345 takes the overflow",
                day,
            )
        escalation = line.department.dial if line.department and not line.department.id.startswith("dept-") else None
        return _base(
            table,
            **common,
            action=Action.QUEUE,
            centre=centre,
            queue_id=line.queue,
            prompts=transition,
            origin=line.number,
            expert=line.expert,
            escalation=escalation,
            priority=line.priority,
            reason=f"{label}: parallel line, 12345 skill queue {line.queue} at {centre}"
            + (f" with expert seats {line.expert}" if line.expert else ""),
        )
    if line.mode is Mode.SUBCENTRE:
        if line.subcentre_scope is Scope.PROVINCE:
            region_centre = table.default_centre
            return _base(
                table,
                **common,
                action=Action.SUBCENTRE,
                centre=region_centre,
                target=line.subcentre_all,
                overflow_queue="general",
                origin=line.number,
                prompts=transition,
                reason=f"{label}: region-wide sub-centre {line.subcentre_id}; 12345 at {region_centre} takes the overflow",
            )
        site = line.subcentre_sites.get(city) if city else None
        if site is None or city is None:
            return _base(
                table,
                **common,
                action=Action.QUEUE,
                centre=centre,
                queue_id=line.queue,
                origin=line.number,
                prompts=transition,
                escalation=None,
                reason=f"{label}: per-city sub-centre but the caller's city is unknown; 12345 at {centre} answers and transfers",
            )
        return _base(
            table,
            **common,
            action=Action.SUBCENTRE,
            centre=centre,
            target=site,
            overflow_queue="general",
            origin=line.number,
            prompts=transition,
            reason=f"{label}: {table.city_names[city]} sub-centre {site.id}; 12345 at {centre} takes the overflow",
        )
    # Mode.LINKED: the utility answers, 12345 stands beside it.
    return _department(
        table,
        line,
        common,
        centre,
        open_now,
        transition,
        f"{label}: utility line (对接联通) answered by its own seats, 12345 in parallel",
        day,
    )


def _department(
    table: RoutingTable,
    line: LinePlan,
    common: dict[str, Any],
    centre: str,
    open_now: bool,
    prompts: tuple[str, ...],
    reason: str,
    day: DayEffect | None = None,
) -> Decision:
    dept = line.department
    assert dept is not None
    if day is not None and not day.closed:
        reason = f"{reason}; {day.describe()}"
    if not open_now:
        # Closed for the day (holiday, closure) or for the hour: the same handling, one prompt differs.
        closed_day = day if day is not None and day.closed else None
        why = f"closed {closed_day.days} ({closed_day.name})" if closed_day else "outside its service hours"
        return _base(
            table,
            **common,
            action=Action.QUEUE,
            centre=centre,
            queue_id=line.queue,
            prompts=(*prompts, (closed_day.prompt if closed_day and closed_day.prompt else "closed")),
            origin=line.number,
            priority=line.priority,
            reason=f"{reason}; {why}, so 12345 at {centre} answers",
        )
    return _base(
        table,
        **common,
        action=Action.DEPARTMENT,
        centre=centre,
        target=dept,
        prompts=prompts,
        overflow_queue=line.queue,
        origin=line.number,
        priority=line.priority,
        reason=reason,
    )
