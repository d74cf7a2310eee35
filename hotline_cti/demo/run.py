"""Run the demo: controller and simulated PBX as child processes, the live view, then KPIs and the report.

``hotline-cti serve`` (FastAGI + AMI records into SQLite, MQTT when asked) and ``hotline-cti simulate``
(the scenario's busiest hour in scaled real time, routing every call over FastAGI to that controller and
serving its AMI events) run as children in their own process groups, both on the plan's day (the PBX's
``--date``, the controller's ``--clock-start``); an AMI client of the demo's feeds the live view. When the
PBX is done, the controller is stopped (it flushes its records), and the KPI and merger summaries and the
HTML report are computed from the controller's database.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import secrets
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from subprocess import Popen
from typing import Any, TextIO

from hotline_cti.adapters.ami.client import ENV_SECRET, ENV_USER, AmiClient, AmiError, AmiSettings
from hotline_cti.config.schema import MergerConfig
from hotline_cti.core.table import RoutingTable
from hotline_cti.demo.children import Children, free_port
from hotline_cti.demo.live import LiveView, Screen
from hotline_cti.demo.summary import retired_by_number, summary_lines
from hotline_cti.kpi.accumulator import compute_kpis
from hotline_cti.records.model import CallRecord
from hotline_cti.reports.merger import merger_figures
from hotline_cti.reports.merger import summary_lines as merger_summary
from hotline_cti.reports.render import render_report
from hotline_cti.storage.store import Store

HOST = "127.0.0.1"
CONNECT_SECONDS = 30.0  # how long the children may take to start listening
TTY_REFRESH = 0.5
PLAIN_REFRESH = 5.0
DEMO_USER = "demo"


class DemoError(Exception):
    """A step of the demo failed; the message says which and where its log is."""


@dataclass(frozen=True)
class DemoPlan:
    """What to run: scenario, its merger file, local hours, speed, seed, output folder, MQTT on or off."""

    scenario: Path
    config: Path
    routing: RoutingTable
    model: MergerConfig
    day: dt.date  # the day replayed (simulate --date) and routed at (serve --clock-start)
    hours: tuple[int, int]
    speed: float
    seed: int
    out: Path
    expected_calls: int
    mqtt: bool = False

    @property
    def database(self) -> Path:
        """The controller's SQLite file."""
        return self.out / "hotline-cti.db"

    @property
    def report(self) -> Path:
        """The HTML report."""
        return self.out / "report.html"

    @property
    def clock_start(self) -> dt.datetime:
        """The controller's routing clock at start: the replayed day at its first hour, local time."""
        return dt.datetime.combine(self.day, dt.time(self.hours[0]), tzinfo=self.routing.timezone)


@dataclass
class DemoResult:
    """What a run produced: the simulator's summary, the stored records and the wall time."""

    simulated: dict[str, Any]
    records: list[CallRecord]
    wall_seconds: float


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "hotline_cti.cli.main", *args]


def _log_to(path: Path) -> None:
    """The demo's own log (its AMI client's reconnects when the PBX ends) goes to a file, not over the live view."""
    handler = logging.FileHandler(path, mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def _fresh_database(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            Path(f"{path}{suffix}").unlink()


def _tail(path: Path, lines: int = 15) -> str:
    if not path.exists():
        return ""
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


@contextlib.contextmanager
def _broker(on: bool, out: TextIO) -> Iterator[tuple[str, int] | None]:
    """A throwaway mosquitto when asked and installed; None otherwise."""
    if not on:
        yield None
        return
    from simulators.mosquitto import MOSQUITTO, running_broker  # a test broker, as the simulators start it

    if not Path(MOSQUITTO).exists():
        print(f"mqtt: {MOSQUITTO} not installed (apt-get install mosquitto); running without MQTT", file=out)
        yield None
        return
    with contextlib.ExitStack() as stack:
        try:
            broker = stack.enter_context(running_broker(install=False))
        except RuntimeError as exc:  # mosquitto exited or did not listen: its log is in the message
            raise DemoError(f"mqtt: {exc}") from None
        print(f"mqtt: mosquitto on {broker.host}:{broker.port}", file=out)
        yield broker.host, broker.port


async def _connect(settings: AmiSettings, sim: Popen[bytes], view: LiveView) -> AmiClient:
    """The demo's own AMI client feeding ``view``, retried until the simulated PBX listens."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + CONNECT_SECONDS
    while True:
        client = AmiClient(settings)
        client.on("*", view.on_event)  # before the login: the PBX starts its calls as soon as we are in
        try:
            await client.connect()
            return client
        except (AmiError, OSError) as exc:
            await client.close()
            if sim.poll() is not None or loop.time() > deadline:
                raise DemoError(f"could not reach the simulated PBX's AMI: {exc}") from None
            await asyncio.sleep(0.2)


async def run_demo(plan: DemoPlan, out: TextIO) -> DemoResult:
    """Start everything, show the live view, stop everything; returns the summary and the stored records."""
    plan.out.mkdir(parents=True, exist_ok=True)
    _fresh_database(plan.database)
    url = f"sqlite+aiosqlite:///{plan.database.resolve()}"
    agi_port, ami_port = free_port(), free_port()
    secret = secrets.token_urlsafe(16)  # this run only; the children get it through their environment
    env = {**os.environ, ENV_USER: DEMO_USER, ENV_SECRET: secret}
    sim_log, serve_log, sim_json = plan.out / "simulate.log", plan.out / "serve.log", plan.out / "simulate.json"
    for log in (sim_log, serve_log):
        log.write_bytes(b"")
    _log_to(plan.out / "demo.log")
    started = time.perf_counter()
    with Children() as children, _broker(plan.mqtt, out) as broker:
        sim = children.start(
            _cli(
                "simulate", str(plan.scenario), "--config", str(plan.config),
                "--hours", f"{plan.hours[0]}-{plan.hours[1]}", "--speed", f"{plan.speed:g}", "--seed", str(plan.seed),
                "--date", plan.day.isoformat(),
                "--ami-listen", f"{HOST}:{ami_port}", "--wait-ami", "2", "--agi", f"{HOST}:{agi_port}", "--json",
            ),
            log=sim_log, env=env, stdout=sim_json,
        )  # fmt: skip
        serve_args = ["serve", "--config", str(plan.config), "--listen", f"{HOST}:{agi_port}", "--database", url]
        serve_args += ["--ami", f"{HOST}:{ami_port}", "--clock-start", plan.clock_start.isoformat()]
        if broker is not None:
            serve_args += ["--mqtt", f"{broker[0]}:{broker[1]}"]
        serve = children.start(_cli(*serve_args), log=serve_log, env=env)
        print(
            f"controller: hotline-cti serve (pid {serve.pid}) FastAGI {HOST}:{agi_port}, database {plan.database}"
            f"\npbx:        hotline-cti simulate (pid {sim.pid}) AMI {HOST}:{ami_port}, hours {plan.hours[0]}-"
            f"{plan.hours[1]} at {plan.speed:g}x, {plan.expected_calls} calls\n"
            f"clock:      both route and record {plan.day} ({plan.day:%A}) from {plan.clock_start:%H:%M}\n",
            file=out,
            flush=True,
        )
        view = LiveView(plan.routing, plan.expected_calls)
        client = await _connect(AmiSettings(host=HOST, port=ami_port, username=DEMO_USER, secret=secret), sim, view)
        try:
            await _watch(view, sim, serve, out, serve_log)
        finally:
            await client.close()
        if sim.returncode != 0:
            raise DemoError(f"the simulated PBX exited with {sim.returncode}; {sim_log}:\n{_tail(sim_log)}")
        code = children.stop(serve)  # SIGTERM: the controller flushes its last records, then exits
        if code != 0:
            raise DemoError(f"the controller exited with {code}; {serve_log}:\n{_tail(serve_log)}")
    wall = time.perf_counter() - started
    try:
        simulated = json.loads(sim_json.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise DemoError(f"{sim_json}: not the simulator's JSON summary ({exc})") from None
    store = await Store.open(url)
    try:
        records = await store.calls_between()
    finally:
        await store.close()
    return DemoResult(simulated, records, wall)


async def _watch(view: LiveView, sim: Popen[bytes], serve: Popen[bytes], out: TextIO, serve_log: Path) -> None:
    """Refresh the live view until the simulated PBX exits; fail if the controller dies first."""
    tty = out.isatty()
    screen = Screen(out) if tty else None
    every = TTY_REFRESH if tty else PLAIN_REFRESH
    last = 0.0
    loop = asyncio.get_running_loop()
    while sim.poll() is None:
        if serve.poll() is not None:
            raise DemoError(f"the controller exited with {serve.returncode}; {serve_log}:\n{_tail(serve_log)}")
        if loop.time() - last >= every:
            last = loop.time()
            if screen is not None:
                screen.draw(view.lines())
            elif view.events:
                print(view.plain_line(), file=out, flush=True)
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.3)  # the last events reach our client
    if screen is not None:
        screen.draw(view.lines())
    else:
        print(view.plain_line(), file=out, flush=True)


def write_report(plan: DemoPlan, records: list[CallRecord]) -> Path:
    """The HTML report with charts of the run's records, ending with the merger view."""
    page = render_report(records, "html", region=plan.routing.region, merger=plan.model)
    plan.report.write_text(page, encoding="utf-8")
    return plan.report


def kpi_text(records: list[CallRecord]) -> list[str]:
    """The KPI summary of the stored records."""
    return summary_lines(compute_kpis(records), retired_by_number(records))


def merger_text(plan: DemoPlan, records: list[CallRecord]) -> list[str]:
    """The merger lines of the summary: the day against each window, transition, old numbers, hand-overs."""
    figures = merger_figures(records, plan.model, plan.routing.timezone)
    return list(merger_summary(figures, plan.model.region.name))
