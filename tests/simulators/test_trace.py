"""Trace record and replay: the same arrivals come back, in virtual and in scaled real time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hotline_cti.cli.main import main
from hotline_cti.config.checked import load_checked
from simulators.pbx import Pbx
from simulators.pbx.realtime import run_live
from simulators.pbx.routing import CoreRouter
from simulators.scenario import generate, load_scenario, queue_setups
from simulators.trace import TraceError, read_trace, write_trace
from tests.paths import REPO

ROOT = REPO
YUNCHENG = ROOT / "simulators" / "scenarios" / "yuncheng-busy-day.yaml"


async def test_record_then_replay_gives_the_same_arrivals_and_run(tmp_path: Path) -> None:
    scenario, config = load_scenario(YUNCHENG)
    checked = load_checked(str(config))
    arrivals = generate(scenario, checked.table.timezone, seed=11, hours=(8, 10))
    path = tmp_path / "t.jsonl"
    assert write_trace(path, arrivals, scenario=scenario.name, seed=11) == len(arrivals)
    header, replayed = read_trace(path)
    assert header == {"trace": 1, "scenario": "yuncheng-busy-day", "seed": 11}
    assert replayed == arrivals

    def pbx() -> Pbx:
        return Pbx(CoreRouter(checked.table), queue_setups(scenario, checked.model), scenario.settings(), seed=3)

    virtual = pbx().run(arrivals).to_dict()
    assert pbx().run(replayed).to_dict() == virtual
    # 1000x: two hours of calls (and their tails) in a few seconds of wall clock, same figures
    short = replayed[:12]
    assert (await run_live(pbx(), short, speed=1000.0)).to_dict() == pbx().run(short).to_dict()


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (['{"trace": 1}', "not json"], ":2: not JSON"),
        (['{"nope": 1}'], ":1: not a trace file"),
        (['{"trace": 1}', '{"at": 2, "dialled": "12345", "caller": "1", "x": 1}'], ":2: unknown field(s) x"),
        (['{"trace": 1}', '{"at": 2, "dialled": "12345"}'], ":2:"),
        (
            ['{"trace": 1}', '{"at": 5, "dialled": "1", "caller": "1"}', '{"at": 2, "dialled": "1", "caller": "1"}'],
            ":3: arrivals must be in time order",
        ),
        ([], ":1: the trace is empty"),
    ],
)
def test_a_bad_trace_names_file_and_line(tmp_path: Path, lines: list[str], message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(TraceError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_trace(path)


def test_cli_record_and_replay(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = tmp_path / "day.jsonl"
    base = ["simulate", str(YUNCHENG), "--hours", "10-11", "--seed", "8", "--json"]
    assert main([*base, "--record", str(trace)]) == 0
    recorded = json.loads(capsys.readouterr().out)
    assert main([*base, "--replay", str(trace)]) == 0
    replayed = json.loads(capsys.readouterr().out)
    recorded.pop("wall_seconds"), replayed.pop("wall_seconds")
    assert recorded == replayed
    trace.write_text('{"trace": 1}\n{"at": 1}\n', encoding="utf-8")
    assert main([*base, "--replay", str(trace)]) == 1
    assert f"{trace}:2:" in capsys.readouterr().err
