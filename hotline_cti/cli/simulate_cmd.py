"""``hotline-cti simulate SCENARIO``: replay a day (or some hours) of calls through the simulated PBX.

See docs/simulator.md. Exit codes: 0 done, 1 invalid scenario, merger file or
trace, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from hotline_cti.adapters.ami.client import ENV_SECRET, ENV_USER
from hotline_cti.cli.config_cmd import print_problems
from hotline_cti.config.checked import Checked, load_checked
from hotline_cti.config.errors import ConfigError
from hotline_cti.dialplan import names
from hotline_cti.dialplan.options import RenderOptions
from hotline_cti.dialplan.render import render_all
from hotline_cti.serve.options import address_type as _address  # the same HOST:PORT parsing as serve's flags
from hotline_cti.text_output import key_values, table, to_json

if TYPE_CHECKING:  # the simulators are imported when a simulation runs, never by the runtime's commands
    from simulators.ami_server import AmiServer
    from simulators.pbx import Arrival, Pbx, Summary
    from simulators.scenario import Scenario

WAIT_AMI_SECONDS = 30.0  # --wait-ami: longest wait for the AMI clients before the first call


def _hours(text: str) -> tuple[int, int]:
    from simulators.scenario import parse_hours

    try:
        hours = parse_hours(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    start = hours[0]
    if hours != list(range(start, start + len(hours))):
        raise argparse.ArgumentTypeError(f"hours {text!r} must not wrap past midnight")
    return start, start + len(hours)


def _speed(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value <= 1_000_000:
        raise argparse.ArgumentTypeError(f"speed {text!r} must be a number > 0 (1 = wall clock)")
    return value


def _date(text: str) -> dt.date:
    """A calendar day, YYYY-MM-DD (years 1900-2999: a typo does not simulate year 9999)."""
    try:
        day = dt.date.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"date {text!r} must look like 2021-12-14") from None
    if not 1900 <= day.year <= 2999:
        raise argparse.ArgumentTypeError(f"date {text!r}: year out of range 1900-2999")
    return day


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``simulate`` command."""
    p = sub.add_parser("simulate", help="replay a scenario's calls through the simulated PBX and print a summary")
    p.add_argument("scenario", metavar="SCENARIO", type=Path, help="scenario YAML, e.g. simulators/scenarios/*.yaml")
    p.add_argument("--config", type=Path, help="merger YAML (default: the scenario's 'config')")
    p.add_argument("--hours", type=_hours, default=(0, 24), metavar="H-H", help="local hours to run, e.g. 9-10")
    p.add_argument(
        "--date", type=_date, metavar="YYYY-MM-DD", help="the day simulated, instead of the scenario's 'date'"
    )
    pace = p.add_mutually_exclusive_group()
    pace.add_argument("--speed", type=_speed, metavar="N", help="real time scaled N times (1 = wall clock)")
    pace.add_argument("--virtual", action="store_true", help="virtual time, as fast as possible (the default)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the load generator and the PBX, default 0")
    trace = p.add_mutually_exclusive_group()
    trace.add_argument("--record", type=Path, metavar="TRACE", help="write the generated arrivals as JSON lines")
    trace.add_argument("--replay", type=Path, metavar="TRACE", help="replay arrivals from a trace instead")
    p.add_argument(
        "--ami-listen",
        type=_address(5038),
        metavar="HOST:PORT",
        help=f"serve the PBX's AMI events here (login from {ENV_USER}/{ENV_SECRET})",
    )
    p.add_argument(
        "--wait-ami",
        type=int,
        default=0,
        metavar="N",
        help="with --ami-listen: hold the first call until N AMI clients have logged in (at most 30 s)",
    )
    p.add_argument("--agi", type=_address(4573), metavar="HOST:PORT", help="route over FastAGI to this controller")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run)


def _hour_filter(arrivals: list[Arrival], hours: tuple[int, int], tz: ZoneInfo) -> list[Arrival]:
    if hours == (0, 24):
        return arrivals
    return [a for a in arrivals if hours[0] <= dt.datetime.fromtimestamp(a.at, tz).hour < hours[1]]


def run(args: argparse.Namespace) -> int:
    """Load, generate or replay, simulate, print."""
    from simulators.scenario import generate as generate_arrivals
    from simulators.scenario import load_scenario
    from simulators.trace import TraceError, read_trace, write_trace

    try:
        scenario, config_path = load_scenario(args.scenario)
    except ConfigError as exc:
        print_problems(exc, str(args.scenario), sys.stderr)
        return 1
    if args.date is not None:
        scenario = scenario.model_copy(update={"date": args.date})
    config = str(args.config or config_path)
    try:
        checked = load_checked(config)
    except ConfigError as exc:
        print_problems(exc, config, sys.stderr)
        return 1
    tz = checked.table.timezone
    if args.replay:
        try:
            _, arrivals = read_trace(args.replay)
        except TraceError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        arrivals = _hour_filter(arrivals, args.hours, tz)
    else:
        arrivals = generate_arrivals(scenario, tz, seed=args.seed, hours=args.hours)
    if args.record:
        write_trace(args.record, arrivals, scenario=scenario.name, seed=args.seed, hours=list(args.hours))
    env_user, env_secret = os.environ.get(ENV_USER), os.environ.get(ENV_SECRET)
    if args.wait_ami and not args.ami_listen:
        print("error: --wait-ami needs --ami-listen", file=sys.stderr)
        return 2
    if args.ami_listen and not (env_user and env_secret):
        print(f"error: --ami-listen needs {ENV_USER} and {ENV_SECRET} in the environment", file=sys.stderr)
        return 2
    wall = time.perf_counter()
    summary = asyncio.run(_simulate(args, scenario, checked, arrivals, env_user or "", env_secret or ""))
    wall = time.perf_counter() - wall
    _print(summary, len(arrivals), wall, args)
    return 0


async def _simulate(
    args: argparse.Namespace, scenario: Scenario, checked: Checked, arrivals: list[Arrival], user: str, secret: str
) -> Summary:
    from simulators.ami_server import AmiServer
    from simulators.pbx import Pbx
    from simulators.pbx.mirror import AmiMirror
    from simulators.pbx.realtime import run_live
    from simulators.pbx.routing import AgiRouter, CoreRouter, agi_runner
    from simulators.scenario import queue_setups

    table, model = checked.table, checked.model
    server: AmiServer | None = None
    if args.ami_listen:
        server = AmiServer(username=user, secret=secret)
        await server.start(*args.ami_listen)
        if args.wait_ami > 0:
            await _wait_for_logins(server, args.wait_ami, WAIT_AMI_SECONDS)
    try:
        setups = queue_setups(scenario, model)
        pbx = Pbx(
            CoreRouter(table),
            setups,
            scenario.settings(),
            tz=table.timezone,
            sink=AmiMirror(server, setups) if server else None,
            seed=args.seed,
            handover_queue=lambda arrival: names.queue_name(
                table.centre_by_city.get(arrival.city or "", table.default_centre), "general"
            ),
        )
        agi = None
        if args.agi:
            host, port = args.agi
            conf = render_all(model, RenderOptions(controllers=(f"{host}:{port}",)))["extensions.conf"]
            agi = AgiRouter(agi_runner(conf), fallback_queue=f"{table.default_centre}-general")
        if args.speed is None and agi is None and server is None:
            return pbx.run(arrivals)  # the fast path: no loop round trips
        return await run_live(pbx, arrivals, speed=args.speed, agi=agi, progress=_progress, progress_every=2.0)
    finally:
        if server is not None:
            with contextlib.suppress(Exception):
                await asyncio.sleep(0.2)  # let the last events reach the clients
                await server.stop()


async def _wait_for_logins(server: AmiServer, count: int, timeout: float) -> None:
    """Hold the run until ``count`` clients logged in with events on, so none of them misses the first calls."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while server.fully_booted_sent < count:
        if loop.time() >= deadline:
            print(
                f"warning: only {server.fully_booted_sent} of {count} AMI clients logged in; starting", file=sys.stderr
            )
            return
        await asyncio.sleep(0.05)


def _progress(pbx: Pbx) -> None:
    """One line on stderr while a real-time run goes on."""
    at = dt.datetime.fromtimestamp(pbx.now, pbx.tz).strftime("%H:%M:%S")
    s = pbx.summary
    print(
        f"simulated {at}  calls {s.arrivals}  in progress {pbx.active_calls}  answered {s.answered}"
        f"  abandoned {s.abandoned}",
        file=sys.stderr,
        flush=True,
    )


def _print(summary: Summary, count: int, wall: float, args: argparse.Namespace) -> None:
    data = summary.to_dict()
    data["wall_seconds"] = round(wall, 3)
    if args.json:
        print(to_json(data))
        return
    print(
        key_values(
            [
                ("calls", count),
                ("answered", summary.answered),
                ("abandoned", summary.abandoned),
                ("dialled out", summary.dialled),
                ("announced", summary.announced),
                ("unfinished", summary.unfinished),
                ("overflowed", summary.overflowed),
                ("transferred", summary.transferred),
                ("handed over", summary.handed_over),
                ("mean wait (s)", f"{summary.mean_wait:.1f}"),
                ("answered in SL", f"{summary.service_level:.1%}"),
                ("ratings 1/2/3", "/".join(str(summary.ratings.get(k, 0)) for k in (1, 2, 3))),
                ("AMI events", summary.events),
                ("simulated", f"{summary.virtual_seconds / 3600:.1f} h in {wall:.2f} s wall"),
            ]
        )
    )
    busiest = sorted(summary.queues.items(), key=lambda kv: -kv[1].offered)[:10]
    print()
    print(
        table(
            ["queue", "offered", "answered", "abandoned", "overflow out", "mean wait (s)"],
            [
                (
                    name,
                    q.offered,
                    q.answered,
                    q.abandoned,
                    q.overflowed_out,
                    f"{q.wait_total / q.answered:.1f}" if q.answered else None,
                )
                for name, q in busiest
            ],
        )
    )
