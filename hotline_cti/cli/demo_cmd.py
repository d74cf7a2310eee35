"""``hotline-cti demo``: the main job — check the merger files, then replay a busy hour end to end.

1. Every merger file is validated and every line and alias routed before, during and after its
   transition window (one line per file; ``--check-only`` prints the full tables and stops there).
   Any invalid file, or a configured number the core does not route as configured, stops the run (exit 1).
2. The controller (``hotline-cti serve``, SQLite in the output folder) and the simulated PBX
   (``hotline-cti simulate``, the scenario's busiest hour in scaled real time over FastAGI and AMI)
   run as child processes, with a live progress bar and queue table (see :mod:`hotline_cti.demo`),
   on a day inside the merger file's transition (:func:`hotline_cti.demo.day.transition_day`): the PBX
   replays that day (``--date``) and the controller routes at that day's time (``--clock-start``).
3. The KPI summary, the merger summary and the HTML report (with its merger section) come from the
   controller's database. See docs/demo.md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import signal
import sys
import time
from collections import Counter
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from hotline_cti.cli.config_cmd import mode_counts, print_problems
from hotline_cti.cli.simulate_cmd import _date, _hours, _speed  # the same --hours / --speed parsing as simulate
from hotline_cti.config.checked import Checked, dialled_numbers, load_checked
from hotline_cti.config.compile import transition_window
from hotline_cti.config.errors import ConfigError
from hotline_cti.config.schema import Hotline, MergerConfig
from hotline_cti.core.model import Call, Mode, Phase
from hotline_cti.core.routing import decide
from hotline_cti.demo.day import transition_day
from hotline_cti.demo.run import DemoError, DemoPlan, kpi_text, merger_text, run_demo, write_report
from hotline_cti.resources import shipped
from hotline_cti.text_output import table

if TYPE_CHECKING:
    from simulators.scenario import Scenario

DEFAULT_DIR = "merger_config"
DEFAULT_SCENARIO = "simulators/scenarios/guangxi-busy-day.yaml"
DEFAULT_SPEED = 60.0
DEFAULT_OUT = "demo-out"
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


def _shipped(relative: str) -> str:
    """``relative`` in the working directory, else the checkout's, else the one shipped in the package."""
    if Path(relative).exists():
        return relative
    return str(shipped(relative))


def _default_paths() -> list[str]:
    """merger_config/ in the working directory, else the checkout's, else the packaged examples."""
    return [_shipped(DEFAULT_DIR)]


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


def check_files(paths: list[str], *, full: bool) -> tuple[int, int, int, list[str]]:
    """Validate and route every file: (configs valid, lines, decisions, errors).

    ``full`` prints each file's lines per mode and its table of actions; otherwise one line per file.
    """
    configs = lines = decisions = 0
    errors: list[str] = []
    for path in paths:
        try:
            checked = load_checked(path)
        except ConfigError as exc:
            print(f"== {path}: INVALID ({len(exc.problems)} problems)" if full else f"INVALID {path}:")
            print_problems(exc, path, sys.stdout)
            errors += [f"{path}: invalid"] * len(exc.problems)
            if full:
                print()
            continue
        configs += 1
        model = checked.model
        tally, n, errs = route_config(checked)
        lines += len(model.hotlines)
        decisions += n
        errors += errs
        numbers = len(dialled_numbers(model))
        if full:
            print(f"== {path}: {model.region.name} ({model.region.id})")
            print(f"lines: {mode_counts(model)}")
            print(f"routed {numbers} numbers before, during and after their windows: {n} decisions")
            print(table(["mode", "phase", "calls", "actions"], summary_rows(tally)))
        else:
            status = "ok" if not errs else "FAILED"
            print(
                f"{status}: {path}: {model.region.name} ({model.region.id}), {len(model.hotlines)} lines, "
                f"{numbers} numbers routed before/during/after their windows, {len(errs)} errors"
            )
        for error in errs:
            print(f"error: {error}")
        if full:
            print()
    return configs, lines, decisions, errors


def busiest_hours(scenario: Scenario) -> tuple[int, int]:
    """The hour of day with the most calls in the scenario's profile, as (start, end)."""
    profile = scenario.hourly_profile
    hour = max(range(len(profile)), key=lambda h: (profile[h], -h))
    return hour, hour + 1


def cmd_demo(args: argparse.Namespace) -> int:
    """Check the merger files; unless ``--check-only``, replay the busy hour and report. Exit 1 on any error."""
    paths = merger_files(args.paths or _default_paths())
    if not paths:
        print(f"demo: no merger files (*.yaml) in {', '.join(args.paths or _default_paths())}", file=sys.stderr)
        return 1
    began = time.perf_counter()
    if not args.check_only:
        print(f"1/3 checking {len(paths)} merger files")
    configs, lines, decisions, errors = check_files(paths, full=args.check_only)
    invalid = len(paths) - configs
    extra = f" ({invalid} invalid)" if invalid else ""
    print(f"demo: {configs} configs{extra}, {lines} lines, {decisions} decisions, {len(errors)} errors")
    if errors or args.check_only:
        return 1 if errors else 0
    return _replay(args, began)


def _plan(args: argparse.Namespace) -> DemoPlan | None:
    from simulators.scenario import generate, load_scenario  # the simulators load only for the simulated day

    scenario_path = Path(args.scenario or _shipped(DEFAULT_SCENARIO))
    try:
        scenario, config = load_scenario(scenario_path)
        checked = load_checked(str(config))
    except ConfigError as exc:
        print_problems(exc, str(scenario_path), sys.stdout)
        return None
    hours = args.hours or busiest_hours(scenario)
    day = args.date or transition_day(checked.model) or scenario.date
    scenario = scenario.model_copy(update={"date": day})
    expected = len(generate(scenario, checked.table.timezone, seed=args.seed, hours=hours))
    return DemoPlan(
        scenario=scenario_path,
        config=Path(config),
        routing=checked.table,
        model=checked.model,
        day=day,
        hours=hours,
        speed=args.speed,
        seed=args.seed,
        out=args.out,
        expected_calls=expected,
        mqtt=args.mqtt,
    )


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # SIGTERM ends the run as Ctrl-C does: every child is stopped on the way out


def _replay(args: argparse.Namespace, began: float) -> int:
    plan = _plan(args)
    if plan is None:
        return 1
    print(
        f"\n2/3 replaying {plan.scenario.name} on {plan.day} ({plan.day:%a}), hours {plan.hours[0]}-{plan.hours[1]}"
        f" at {plan.speed:g}x"
    )
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        result = asyncio.run(run_demo(plan, sys.stdout))
    except DemoError as exc:
        print(f"demo: error: {exc}")
        return 1
    except KeyboardInterrupt:
        print("demo: interrupted; controller and PBX stopped")
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    calls = int(result.simulated.get("arrivals", 0))
    print(f"\n3/3 KPIs from the controller's database ({plan.database})")
    print("\n".join(kpi_text(result.records)))
    print("\n".join(["", *merger_text(plan, result.records)]))
    report = write_report(plan, result.records)
    print(f"\nrecords: {len(result.records)} in the database for {calls} calls simulated")
    print(f"report: {report}")
    print(f"demo: done in {time.perf_counter() - began:.0f} s (replay {result.wall_seconds:.0f} s)")
    if len(result.records) != calls:
        print(f"demo: error: {calls - len(result.records)} calls have no record (see {plan.out / 'serve.log'})")
        return 1
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``demo``."""
    p = sub.add_parser(
        "demo",
        help="the main job: check the merger files, replay a busy hour mid-merger through the controller, "
        "KPIs, merger view and report",
        description="Validate every merger file (default: merger_config/) and route its numbers; then start the "
        "controller (hotline-cti serve, SQLite in --out) and the simulated PBX replaying the scenario's busiest "
        "hour, on a day inside the merger file's transition, over FastAGI and AMI, show a live queue table, and "
        "end with the KPI summary, the merger summary and an HTML report with its merger section. "
        "Exit 1 if a file is invalid, a number is not routed as configured, or a step fails.",
    )
    p.add_argument("paths", nargs="*", metavar="PATH", help="merger files or folders (default: merger_config/)")
    p.add_argument("--check-only", action="store_true", help="only check the merger files, with full tables")
    p.add_argument("--scenario", type=Path, metavar="FILE", help=f"scenario YAML (default {DEFAULT_SCENARIO})")
    p.add_argument(
        "--date",
        type=_date,
        metavar="YYYY-MM-DD",
        help="the day replayed and routed at (default: inside the merger file's transition, see docs/demo.md)",
    )
    p.add_argument("--hours", type=_hours, metavar="H-H", help="local hours to replay (default: the busiest hour)")
    p.add_argument("--speed", type=_speed, default=DEFAULT_SPEED, metavar="N", help="times real time (default 60)")
    p.add_argument("--seed", type=int, default=0, help="seed of the load generator and the PBX (default 0)")
    p.add_argument(
        "--out", type=Path, default=Path(DEFAULT_OUT), metavar="DIR", help="output folder (default demo-out/)"
    )
    p.add_argument("--mqtt", action="store_true", help="also run a throwaway mosquitto and publish events to it")
    p.set_defaults(func=cmd_demo, prog=p.prog)
