"""Holidays on a real Asterisk 22, routed by ``hotline-cti serve`` put on a date with ``--clock-start``.

A 各自接听 line (12348, its department on weekday hours) on a public holiday: the closed prompt, then the
line's 12345 queue. The same call on a make-up working day (a Saturday, 调休上班): the department is dialled.
What a call reached is what Asterisk reports on AMI.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hotline_cti.config.compile import compile_config
from hotline_cti.config.loader import load_config
from hotline_cti.core.model import Action, Call
from hotline_cti.core.routing import decide
from hotline_cti.core.table import RoutingTable
from hotline_cti.dialplan.options import RenderOptions
from hotline_cti.dialplan.render import render_all, write_all
from simulators.asterisk import Ami, AsteriskInstance, Event, free_port, silent_prompts, start_asterisk
from simulators.asterisk_load import Serve
from tests.asterisk.test_asterisk_calls import HARNESS, _endpoint, _trunks, busy_trunk
from tests.paths import REPO

GUANGXI = REPO / "merger_config" / "guangxi.yaml"
HOLIDAY_YAML = """\
extends: guangxi.yaml
departments:
  - {id: sft-12348, service_hours: "mon-fri 08:30-17:30"}
holidays:
  - {date: 2026-10-01, until: 2026-10-07, name: 国庆节}
  - {date: 2026-10-10, name: 国庆节调休上班, workday: true, hours_of: fri}
"""
HOLIDAY = "2026-10-01T10:00:00+08:00"  # a Thursday, a public holiday
MAKE_UP_DAY = "2026-10-10T10:00:00+08:00"  # a Saturday, a make-up working day


@dataclass
class HolidayRig:
    pbx: AsteriskInstance
    ami: Ami
    config: Path
    work: Path
    port: int
    table: RoutingTable

    @contextlib.contextmanager
    def serving_at(self, clock_start: str) -> Iterator[None]:
        """serve (routing only) on ``self.port`` with its clock started at ``clock_start``."""
        serve = Serve(
            self.config,
            self.port,
            self.pbx.ami_port,
            self.work / "records.db",
            self.work,
            clock_start=clock_start,
            with_ami=False,
        )
        serve.start()
        try:
            yield
        finally:
            serve.stop()

    def call(self, number: str) -> str:
        call_id = f"hol{uuid.uuid4().hex[:12]}"
        self.ami.originate(
            f"Local/{number}@hotline-inbound",
            channel_id=call_id,
            other_channel_id=f"{call_id}-2",
            context="rig-caller",
            exten="listen",
        )
        return f"{call_id}-2"

    def wait(self, leg: str, event: str, timeout: float = 15.0) -> Event:
        return self.ami.wait_for(lambda e: e.get("Uniqueid") == leg and e.get("Event") == event, timeout)

    def apps(self, leg: str) -> list[tuple[str, str, str]]:
        return [
            (e["Context"], e["Application"], e["AppData"])
            for e in self.ami.channel_events(leg)
            if e["Event"] == "Newexten"
        ]


@pytest.fixture(scope="module")
def rig(asterisk_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HolidayRig]:
    work = tmp_path_factory.mktemp("holidays")
    shutil.copy(GUANGXI, work / "guangxi.yaml")
    config = work / "holidays.yaml"
    config.write_text(HOLIDAY_YAML, encoding="utf-8")
    cfg = load_config(config).model
    out = work / "generated"
    out.mkdir()
    port = free_port()
    write_all(render_all(cfg, RenderOptions(controllers=(f"127.0.0.1:{port}",))), out)
    sounds = silent_prompts(cfg)
    with contextlib.ExitStack() as stack:
        trunk_port = stack.enter_context(busy_trunk(work))
        pjsip = "".join(_endpoint(trunk, f"sip:127.0.0.1:{trunk_port}") for trunk in _trunks(config, out))
        pbx = start_asterisk(
            asterisk_root, name="holidays", generated_dir=out, extra_extensions=HARNESS, pjsip=pjsip, sounds=sounds
        )
        stack.callback(pbx.stop, keep_dir=bool(os.environ.get("HOTLINE_RIG_KEEP")))
        ami = pbx.ami()
        stack.callback(ami.close)
        yield HolidayRig(pbx, ami, config, work, port, compile_config(cfg))


@pytest.fixture(autouse=True)
def _clean_calls(rig: HolidayRig) -> Iterator[None]:
    yield
    rig.pbx.cli("channel request hangup all")


def test_a_departments_line_on_a_public_holiday_gets_the_closed_prompt_and_12345(rig: HolidayRig) -> None:
    expected = decide(Call("12348"), rig.table, dt.datetime.fromisoformat(HOLIDAY))
    assert expected.action is Action.QUEUE and expected.prompts == ("closed",)
    with rig.serving_at(HOLIDAY):
        leg = rig.call("12348")
        join = rig.wait(leg, "QueueCallerJoin")
    assert join["Queue"] == expected.target == "gx-l12348"
    apps = rig.apps(leg)
    assert ("hotline-dispatch", "Playback", "hotline/closed") in apps
    assert not [a for a in apps if a[1] == "Dial"]


def test_the_same_call_on_a_make_up_working_day_rings_the_department(rig: HolidayRig) -> None:
    expected = decide(Call("12348"), rig.table, dt.datetime.fromisoformat(MAKE_UP_DAY))
    assert expected.action is Action.DEPARTMENT and expected.dial == "PJSIP/12348@pstn"
    with rig.serving_at(MAKE_UP_DAY):
        leg = rig.call("12348")
        begin = rig.wait(leg, "DialBegin")
    assert f"{begin['DestChannel'].split('/')[0]}/{begin['DialString']}" == expected.dial
    assert not [a for a in rig.apps(leg) if a[2] == "hotline/closed"]
