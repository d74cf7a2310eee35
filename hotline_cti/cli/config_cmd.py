"""``hotline-cti config validate|show|diff`` and ``hotline-cti route``: the engineers' tools for merger files.

All of them read a merger file with :func:`hotline_cti.config.loader.load_config`
(so they report the same ``file:line:col`` problems as the FastAGI server) and
route with the pure core (:func:`compile_config` + :func:`decide`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

from hotline_cti.config.checked import Checked, load_checked, localise
from hotline_cti.config.compile import transition_window
from hotline_cti.config.diff import holiday_days_kind, routing_diff, rule_text
from hotline_cti.config.errors import ConfigError, Problem
from hotline_cti.config.schema import Holiday, Hotline, MergerConfig
from hotline_cti.core.model import Call, Decision, Mode
from hotline_cti.core.numbers import NumberError, line_label, parse_dialled
from hotline_cti.core.routing import decide
from hotline_cti.dialplan.members import skill_changes
from hotline_cti.privacy import mask_number
from hotline_cti.text_output import key_values, table, to_json

# The modes a merger file may give a line, in the order the work plans list them.
LINE_MODES = tuple(m for m in Mode if m not in (Mode.MAIN, Mode.UNKNOWN))


# ---------------------------------------------------------------- shared helpers


def format_problem(problem: Problem, path: str) -> str:
    """``file:line:col: path: message``, with the file named as the user gave it."""
    given = str(Path(path).resolve())
    place = problem.place
    if place is None:
        text = str(problem)
        return text if text.startswith((path, given)) else f"{path}: {text}"
    file = path if place.file == given else place.file  # a file it extends keeps its own name
    what = f"{problem.path}: " if problem.path else ""
    return f"{file}:{place.line}:{place.column}: {what}{problem.message}"


def print_problems(exc: ConfigError, path: str, out: TextIO) -> None:
    """Every problem of one file, one per line."""
    for problem in exc.problems:
        print(format_problem(problem, path), file=out)


def parse_datetime(text: str) -> dt.datetime:
    """argparse type for ``--at``: ISO 8601, with or without an offset (naive = the config's timezone)."""
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 date-time, e.g. 2021-09-01T10:00 or 2021-09-01T10:00+08:00"
        ) from None


def parse_number(text: str) -> str:
    """argparse type for a dialled number: 12345, 0771-12345, +86 771 12345."""
    try:
        parse_dialled(text)
    except NumberError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def parse_caller(text: str) -> str:
    """argparse type for ``--caller``; the error never repeats the number (personal data)."""
    try:
        parse_dialled(text)
    except NumberError:
        raise argparse.ArgumentTypeError(
            f"{mask_number(text)} is not a telephone number (digits, optionally +86/0086 and separators)"
        ) from None
    return text


def parse_digit(text: str) -> str:
    """argparse type for ``--ivr``: one key of the phone pad."""
    if len(text) != 1 or text not in "0123456789*#":
        raise argparse.ArgumentTypeError(f"{text!r} is not one key of the phone pad (0-9, * or #)")
    return text


def parse_topic(text: str) -> str:
    """argparse type for ``--topic``: the short code of a line, e.g. 12315."""
    if not text.isdigit() or not text.isascii():
        raise argparse.ArgumentTypeError(f"{text!r} is not a line number (digits only, e.g. 12315)")
    return text


def usage_error(args: argparse.Namespace, message: str) -> int:
    """Report a bad argument found after parsing (it needed the config) the way argparse does: exit 2."""
    prog = getattr(args, "prog", "hotline-cti")
    print(f"{prog}: error: {message}", file=sys.stderr)
    return 2


def find_city(model: MergerConfig, text: str) -> str | None:
    """The city id for an id or a Chinese name (桂林 or 桂林市); None when unknown."""
    for city in model.cities:
        if text in (city.id, city.name) or text.removesuffix("市") == city.name.removesuffix("市"):
            return city.id
    return None


def window_text(line: Hotline, model: MergerConfig) -> str | None:
    """The transition window as ``start..end`` (end exclusive), or None."""
    window = transition_window(line, model.defaults.transition_months)
    return f"{window[0]}..{window[1]}" if window else None


def handled_by(line: Hotline) -> str:
    """Who answers the line, in a few words: seats, queue, expert group, sub-centre, department."""
    parts: list[str] = []
    if line.seats is not None:
        parts.append(f"seats {line.seats.value}")
    if line.subcentre:
        parts.append(f"sub-centre {line.subcentre}")
    if line.department:
        parts.append(f"dept {line.department}")
    if line.queue:
        parts.append(f"queue {line.queue}")
    if line.expert:
        parts.append(f"expert {line.expert}")
    if line.mode is Mode.TRANSFER:
        parts.append(
            "own seats" + (f" ({', '.join(m.value for m in line.transfer_modes)})" if line.transfer_modes else "")
        )
    if line.channel:
        parts.append(f"-> {line.channel}")
    if not parts and line.mode is Mode.MERGE:
        parts.append("queue general")
    return ", ".join(parts) or "-"


def mode_counts(model: MergerConfig) -> str:
    """``merge 14, parallel 14, ... (33 lines)``: lines per mode."""
    counts = {m: sum(1 for line in model.hotlines if line.mode is m) for m in LINE_MODES}
    text = ", ".join(f"{m.value} {n}" for m, n in counts.items() if n)
    return f"{text} ({len(model.hotlines)} lines)"


# ---------------------------------------------------------------- config validate


def cmd_validate(args: argparse.Namespace) -> int:
    """Validate every file; report all problems of all files."""
    failed = False
    for path in args.files:
        try:
            checked = load_checked(path)
        except ConfigError as exc:
            failed = True
            print_problems(exc, path, sys.stdout)
            continue
        print(f"ok: {path} ({len(checked.model.hotlines)} lines)")
    return 1 if failed else 0


# ---------------------------------------------------------------- route


def decision_pairs(
    decision: Decision, name: str | None, when: dt.datetime, caller: str | None
) -> list[tuple[str, object]]:
    """The human form of a decision as (key, value) pairs, most useful first."""
    d = decision
    expert = f"{d.expert} (queue {d.expert_queue})" if d.expert else None
    overflow = f"{d.overflow} after {d.overflow_after} s" if d.overflow else None
    return [
        ("number", line_label(d.number, name) if name else d.number),
        ("dialled as", d.form),
        ("at", when.isoformat(timespec="minutes")),
        ("caller", mask_number(caller) if caller else None),
        ("mode", d.mode.value),
        ("phase", d.phase.value),
        ("action", d.action.value),
        ("target", d.target),
        ("dial", d.dial),
        ("centre", d.centre),
        ("city", d.city),
        ("prompts", d.prompts),
        ("expert", expert),
        ("escalation", d.escalation),
        ("overflow", overflow),
        ("priority", d.priority),
        ("menu", d.menu),
        ("hangup", d.hangup),
        ("skills", d.skills),
    ]


def cmd_route(args: argparse.Namespace) -> int:
    """Explain how one dialled number is routed."""
    try:
        checked = load_checked(args.config)
    except ConfigError as exc:
        print_problems(exc, args.config, sys.stderr)
        return 1
    model, compiled = checked.model, checked.table
    city = None
    if args.city is not None:
        city = find_city(model, args.city)
        if city is None:
            valid = ", ".join(f"{c.id} ({c.name})" for c in model.cities) or "none: the config has no cities"
            return usage_error(args, f"argument --city: unknown city {args.city!r}; valid: {valid}")
    when = localise(args.at, compiled.timezone)
    call = Call(dialled=args.number, caller=args.caller, city=city, ivr_choice=args.ivr, topic=args.topic)
    decision = decide(call, compiled, when)
    plan = compiled.lines.get(decision.number)
    name = plan.name if plan else None
    if args.json:
        data: dict[str, Any] = decision.to_dict()
        data.update(
            name=name,
            dialled=args.number,
            at=when.isoformat(timespec="seconds"),
            caller=mask_number(args.caller) if args.caller else None,
            config=args.config,
        )
        print(to_json(data))
        return 0
    print(key_values(decision_pairs(decision, name, when, args.caller)))
    print(f"reason: {decision.reason}")
    for warning in decision.warnings:
        print(f"warning: {warning}")
    return 0


# ---------------------------------------------------------------- config diff


def cmd_diff(args: argparse.Namespace) -> int:
    """Every number whose routing changes between two configs (or two dates)."""
    loaded: list[Checked] = []
    for path in (args.old, args.new):
        try:
            loaded.append(load_checked(path))
        except ConfigError as exc:
            print_problems(exc, path, sys.stderr)
    if len(loaded) < 2:
        return 1
    old, new = loaded
    at1 = localise(args.at, old.table.timezone)
    at2 = localise(args.at2, new.table.timezone) if args.at2 is not None else at1
    print(f"old: {args.old} at {at1.isoformat(timespec='minutes')}")
    print(f"new: {args.new} at {at2.isoformat(timespec='minutes')}")
    lines, summary = routing_diff(old, new, at1, at2)
    for line in lines:
        print(line)
    print(summary)
    skills = skill_changes(old.model, new.model)  # agents and skills (issue 18): only when something changed
    for line in skills:
        print(line)
    if skills:
        print(f"skills: {sum(1 for s in skills if not s.startswith(' '))} change(s)")
    return 0


# ---------------------------------------------------------------- config show


def show_config(checked: Checked, out: TextIO) -> None:
    """Region header, then one table per mode, then the counts per mode."""
    model = checked.model
    region = model.region
    print(f"{checked.path}: {region.name} ({region.id}, {region.level.value}), timezone {region.timezone}", file=out)
    cities = ", ".join(f"{c.id} {c.name} {c.area_code}" for c in model.cities) or "-"
    print(f"cities: {cities}", file=out)
    print(
        f"centres: {', '.join(c.id for c in model.centres)}; queues: {', '.join(q.id for q in model.queues)}", file=out
    )
    for mode in LINE_MODES:
        lines = [line for line in model.hotlines if line.mode is mode]
        if not lines:
            continue
        print(f"\n{mode.value} ({len(lines)})", file=out)
        rows: Iterable[list[object]] = (
            [
                " ".join([line.number, *(f"+{a}" for a in line.aliases)]),
                line.name,
                line.unit,
                handled_by(line),
                line.cutover,
                window_text(line, model),
            ]
            for line in lines
        )
        print(table(["number", "name", "unit", "handled by", "cut-over", "window"], rows), file=out)
    if model.holidays:
        print(f"\nholidays ({len(model.holidays)})", file=out)
        rows = (holiday_row(entry) for entry in model.holidays)
        print(table(["days", "name", "kind", "applies to", "prompt", "12345 message"], rows), file=out)
    callers = model.callers
    if callers.rules or callers.repeat:
        repeat = f"tag {callers.repeat.tag} within {callers.repeat.within_hours} h" if callers.repeat else "off"
        print(f"\ncallers: repeat {repeat}; window of {callers.max_numbers} numbers", file=out)
        if callers.rules:
            rows = (list(rule_text(r)) for r in callers.rules)
            print(table(["rule", "when -> action"], rows), file=out)
    print(f"\ncounts: {mode_counts(model)}", file=out)


def holiday_row(entry: Holiday) -> list[object]:
    """A row of the holidays table of ``config show``."""
    days, kind = holiday_days_kind(entry)
    whom = ", ".join(entry.departments) if entry.departments else "region (departments with weekly hours)"
    return [days, entry.name, kind, whom, entry.prompt, entry.message]


def cmd_show(args: argparse.Namespace) -> int:
    """Print the lines of a config grouped by mode."""
    try:
        checked = load_checked(args.file)
    except ConfigError as exc:
        print_problems(exc, args.file, sys.stderr)
        return 1
    show_config(checked, sys.stdout)
    return 0


# ---------------------------------------------------------------- registration


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``config`` (validate, show, diff) and ``route``."""
    config = sub.add_parser(
        "config",
        help="check, show and compare merger files",
        description="Check, show and compare merger files (merger_config/*.yaml). See docs/merger-config.md.",
    )
    csub = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")

    p = csub.add_parser(
        "validate",
        help="check merger files; list every problem as file:line:col",
        description="Validate merger files. Exit 0 and print 'ok: FILE (N lines)' for each good file; "
        "exit 1 listing every problem of every file as 'file:line:col: path: message'.",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="merger file(s) to check")
    p.set_defaults(func=cmd_validate, prog=p.prog)

    p = csub.add_parser(
        "show",
        help="the lines of a merger file by mode, as tables",
        description="Print the lines of a merger file grouped by mode: number (+aliases), name, unit, "
        "who answers, cut-over date and transition window; then the count of lines per mode.",
    )
    p.add_argument("file", metavar="FILE", help="merger file")
    p.set_defaults(func=cmd_show, prog=p.prog)

    p = csub.add_parser(
        "diff",
        help="numbers whose routing changes between two configs (or two dates)",
        description="Route every number (and alias) of both files, plus 12345, and print each one whose "
        "decision changes (field: old -> new), and the numbers added or removed. Run before a cut-over. "
        "OLD is routed at --at, NEW at --at2 (default: --at); give the same file twice with two "
        "dates to see what a date changes. Exit 0; exit 1 if a file is invalid.",
    )
    p.add_argument("old", metavar="OLD", help="the config in service now")
    p.add_argument("new", metavar="NEW", help="the config about to replace it")
    p.add_argument(
        "--at",
        type=parse_datetime,
        metavar="DATETIME",
        help="ISO 8601 time to route OLD at; no offset = the config's timezone (default: now)",
    )
    p.add_argument(
        "--at2",
        type=parse_datetime,
        metavar="DATETIME",
        help="ISO 8601 time to route NEW at (default: the same as --at)",
    )
    p.set_defaults(func=cmd_diff, prog=p.prog)

    p = sub.add_parser(
        "route",
        help="explain how a dialled number is routed",
        description="Route one call with the pure core and explain the decision: mode, phase, action, "
        "target, prompts, expert seats, overflow, and the reason.",
    )
    p.add_argument(
        "number",
        type=parse_number,
        metavar="NUMBER",
        help="the dialled number: 12315, 0773-12345, +86 773 12345, 0771-2666110",
    )
    p.add_argument("--config", required=True, metavar="FILE", help="merger file")
    p.add_argument(
        "--city", metavar="CITY", help="the city the trunk names: its id or Chinese name (e.g. guilin or 桂林)"
    )
    p.add_argument(
        "--at",
        type=parse_datetime,
        metavar="DATETIME",
        help="ISO 8601 time of the call; no offset = the config's timezone (default: now)",
    )
    p.add_argument(
        "--caller",
        type=parse_caller,
        metavar="NUMBER",
        help="the caller's number (its area code can name the city); shown masked",
    )
    p.add_argument("--ivr", type=parse_digit, metavar="DIGIT", help="the key pressed in the 12345 main menu")
    p.add_argument(
        "--topic",
        type=parse_topic,
        metavar="NUMBER",
        help="with --ivr 3: the line whose expert seats the caller wants, e.g. 12315",
    )
    p.add_argument(
        "--json", action="store_true", help="print one JSON object (Decision.to_dict() plus name, at, caller)"
    )
    p.set_defaults(func=cmd_route, prog=p.prog)
