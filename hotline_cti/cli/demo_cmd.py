"""``hotline-cti demo``: validate the shipped merger files and route every number at three instants.

The project's main job until the simulator replay replaces it: for each
merger file it shows the lines per mode, routes every line and alias before,
during and after its transition window (dates taken from the config) and
tallies the actions per mode and phase. Any configured number that the core
does not recognise, or any exception, counts as an error.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections import Counter
from pathlib import Path

from hotline_cti.cli.config_cmd import Checked, dialled_numbers, load_checked, mode_counts, print_problems
from hotline_cti.cli.output import table
from hotline_cti.config.errors import ConfigError
from hotline_cti.config.schema import Hotline, MergerConfig
from hotline_cti.core.model import Call, Mode, Phase
from hotline_cti.core.routing import decide
from hotline_cti.core.table import transition_window

DEFAULT_DIR = "merger_config"
# Calls are placed mid-morning so that departments with office hours are open on weekdays.
CALL_TIME = dt.time(10, 0)
PHASE_ORDER = {p: i for i, p in enumerate(Phase)}
MODE_ORDER = {m: i for i, m in enumerate(Mode)}


def merger_files(paths: list[str]) -> list[str]:
    """The YAML files named, with directories expanded to their *.yaml / *.yml files (sorted)."""
    out: list[str] = []
    for text in paths:
        path = Path(text)
        if path.is_dir():
            out += sorted(str(p) for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
        else:
            out.append(text)
    return out


def _default_paths() -> list[str]:
    """merger_config/ in the working directory, else the one next to the package (editable install)."""
    here = Path(DEFAULT_DIR)
    if here.is_dir():
        return [DEFAULT_DIR]
    repo = Path(__file__).resolve().parents[2] / DEFAULT_DIR
    return [str(repo)]


def line_instants(line: Hotline, model: MergerConfig, fallback: tuple[dt.date, dt.date, dt.date]) -> list[dt.date]:
    """Three days to route ``line`` on: before, during and after its window.

    A line with only a cut-over date uses the day before and the cut-over day;
    a line with no date (12345-side lines, emergency, guidance) uses the
    config-wide ``fallback`` days.
    """
    window = transition_window(line, model.defaults.transition_months)
    if window is not None:
        start, end = window
        return [start - dt.timedelta(days=1), start, max(end, start + dt.timedelta(days=1))]
    if line.cutover is not None:
        day = line.cutover
        return [day - dt.timedelta(days=1), day, day + dt.timedelta(days=1)]
    return list(fallback)


def config_instants(model: MergerConfig) -> tuple[dt.date, dt.date, dt.date]:
    """Before the first cut-over, between, and after the last window of the config."""
    days: list[dt.date] = []
    for line in model.hotlines:
        window = transition_window(line, model.defaults.transition_months)
        if window:
            days += window
        elif line.cutover:
            days.append(line.cutover)
    if not days:
        today = dt.date.today()
        return today, today, today
    first, last = min(days), max(days)
    return first - dt.timedelta(days=1), first + (last - first) / 2, last + dt.timedelta(days=1)


def route_config(checked: Checked) -> tuple[Counter[tuple[Mode, Phase, str]], int, list[str]]:
    """Route every number of the config at its three instants.

    Returns the tally of (mode, phase, action), the number of decisions and
    the errors (a configured number routed as unknown, or a crash).
    """
    model, compiled = checked.model, checked.table
    fallback = config_instants(model)
    tally: Counter[tuple[Mode, Phase, str]] = Counter()
    errors: list[str] = []
    decisions = 0
    for number, line in dialled_numbers(model).items():
        for day in line_instants(line, model, fallback):
            when = dt.datetime.combine(day, CALL_TIME, tzinfo=compiled.timezone)
            decisions += 1
            try:
                decision = decide(Call(dialled=number), compiled, when)
            except Exception as exc:
                errors.append(f"{checked.path}: {number} at {when.isoformat()}: {type(exc).__name__}: {exc}")
                continue
            if decision.mode is not line.mode:
                errors.append(
                    f"{checked.path}: {number} at {when.isoformat()}: routed as {decision.mode.value}, "
                    f"configured as {line.mode.value} ({decision.reason})"
                )
            tally[(decision.mode, decision.phase, decision.action.value)] += 1
    return tally, decisions, errors


def summary_rows(tally: Counter[tuple[Mode, Phase, str]]) -> list[list[object]]:
    """One row per (mode, phase): decisions and the actions taken, most frequent first."""
    groups: dict[tuple[Mode, Phase], Counter[str]] = {}
    for (mode, phase, action), n in tally.items():
        groups.setdefault((mode, phase), Counter())[action] += n
    rows: list[list[object]] = []
    for mode, phase in sorted(groups, key=lambda k: (MODE_ORDER[k[0]], PHASE_ORDER[k[1]])):
        actions = groups[(mode, phase)]
        text = ", ".join(f"{a} {n}" for a, n in sorted(actions.items(), key=lambda x: (-x[1], x[0])))
        rows.append([mode.value, phase.value, sum(actions.values()), text])
    return rows


def cmd_demo(args: argparse.Namespace) -> int:
    """Validate, show and route every merger file; exit 1 if any is invalid or any routing failed."""
    paths = merger_files(args.paths or _default_paths())
    if not paths:
        print(f"demo: no merger files (*.yaml) in {', '.join(args.paths or _default_paths())}", file=sys.stderr)
        return 1
    configs = lines = decisions = 0
    errors: list[str] = []
    for path in paths:
        try:
            checked = load_checked(path)
        except ConfigError as exc:
            print(f"== {path}: INVALID ({len(exc.problems)} problems)")
            print_problems(exc, path, sys.stdout)
            errors += [f"{path}: invalid"] * len(exc.problems)
            print()
            continue
        configs += 1
        model = checked.model
        print(f"== {path}: {model.region.name} ({model.region.id})")
        print(f"lines: {mode_counts(model)}")
        tally, n, errs = route_config(checked)
        lines += len(model.hotlines)
        decisions += n
        errors += errs
        print(f"routed {len(dialled_numbers(model))} numbers before, during and after their windows: {n} decisions")
        print(table(["mode", "phase", "calls", "actions"], summary_rows(tally)))
        for error in errs:
            print(f"error: {error}")
        print()
    invalid = len(paths) - configs
    extra = f" ({invalid} invalid)" if invalid else ""
    print(f"demo: {configs} configs{extra}, {lines} lines, {decisions} decisions, {len(errors)} errors")
    return 1 if errors else 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``demo``."""
    p = sub.add_parser(
        "demo",
        help="validate the merger files and route every number before/during/after its window",
        description="The main job for now: for every merger file (default: merger_config/), validate it, "
        "count its lines per mode, route every line and alias the day before its window, on its first day and "
        "after it ends (at 10:00 local time), and print the actions per mode and phase. "
        "Exit 1 if a file is invalid or a number is not routed as configured.",
    )
    p.add_argument("paths", nargs="*", metavar="PATH", help="merger files or folders (default: merger_config/)")
    p.set_defaults(func=cmd_demo, prog=p.prog)
