"""Scenario YAML: the shipped busy days load and fit their merger files; bad input is named by file:line."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from hotline_cti.cli.main import main
from hotline_cti.config.checked import load_checked
from hotline_cti.config.errors import ConfigError
from simulators.scenario import check_against, generate, load_scenario, parse_hours, queue_setups
from tests.paths import REPO

ROOT = REPO
SCENARIOS = sorted((ROOT / "simulators" / "scenarios").glob("*.yaml"))
TZ = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_shipped_scenarios_fit_their_merger_files(path: Path) -> None:
    scenario, config = load_scenario(path)
    checked = load_checked(str(config))
    assert check_against(scenario, checked.model, str(path)) == []
    setups = queue_setups(scenario, checked.model)
    general = setups(f"{checked.table.default_centre}-general")
    assert general.strategy == "leastrecent" and general.ring_timeout == 15
    arrivals = generate(scenario, TZ, seed=1)
    # a day's count is Poisson around calls_per_day
    assert abs(len(arrivals) - scenario.calls_per_day) < 4 * scenario.calls_per_day**0.5
    hours = [dt.datetime.fromtimestamp(a.at, TZ).hour for a in arrivals]
    assert hours.count(10) > 5 * hours.count(3)  # the morning peak, the night trough
    assert {a.dialled for a in arrivals} == set(scenario.lines)
    main_calls = [a for a in arrivals if a.dialled == "12345"]
    assert all(a.ivr in scenario.ivr for a in main_calls)
    assert all(a.topic in scenario.expert_topics for a in main_calls if a.ivr == "3")


def test_shares_shape_the_arrivals() -> None:
    scenario, _ = load_scenario(ROOT / "simulators" / "scenarios" / "guangxi-busy-day.yaml")
    arrivals = generate(scenario, TZ, seed=2, hours=(9, 12))
    share = sum(a.dialled == "12345" for a in arrivals) / len(arrivals)
    assert share == pytest.approx(scenario.lines["12345"] / sum(scenario.lines.values()), abs=0.02)
    rated = sum(a.rating is not None for a in arrivals) / len(arrivals)
    assert rated == pytest.approx(scenario.ratings.share, abs=0.03)
    mean_service = sum(a.service for a in arrivals) / len(arrivals)
    assert mean_service == pytest.approx(scenario.service.mean, rel=0.05)
    assert all(dt.datetime.fromtimestamp(a.at, TZ).hour in (9, 10, 11) for a in arrivals)


def test_hours() -> None:
    assert parse_hours("8-10") == [8, 9]
    assert parse_hours("22-2") == [22, 23, 0, 1]
    assert len(parse_hours("0-24")) == 24
    for bad in ("8", "8-8", "a-b", "25-3"):
        with pytest.raises(ValueError, match="hours"):
            parse_hours(bad)


BAD = """\
name: bad
config: ../merger.yaml
date: 2022-06-07
calls_per_day: -5
hourly_profile: [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]
lines: {"12345": 1}
patience: {dist: gamma, mean: 10}
staffing:
  - {queues: "*", shifts: [{hours: "9-x", agents: 3}]}
colour: blue
"""


def test_every_problem_is_named_by_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_scenario(path)
    text = str(info.value)
    assert f"{path}:4:" in text and "calls_per_day" in text
    assert f"{path}:7:" in text and "patience.dist" in text
    assert f"{path}:9:" in text and "hours '9-x'" in text
    assert f"{path}:10:" in text and "unknown key 'colour'" in text


def test_cli_reports_a_bad_scenario_and_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD, encoding="utf-8")
    assert main(["simulate", str(path)]) == 1
    assert f"{path}:4:" in capsys.readouterr().err
    good = str(ROOT / "simulators" / "scenarios" / "yuncheng-busy-day.yaml")
    for args in (["--hours", "22-2"], ["--speed", "0"], ["--speed", "2", "--virtual"]):
        with pytest.raises(SystemExit) as exited:
            main(["simulate", good, *args])
        assert exited.value.code == 2


def test_cli_runs_an_hour_in_virtual_time(capsys: pytest.CaptureFixture[str]) -> None:
    good = str(ROOT / "simulators" / "scenarios" / "yuncheng-busy-day.yaml")
    assert main(["simulate", good, "--hours", "9-10", "--seed", "4", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["arrivals"] > 200 and data["unfinished"] == 0
    assert data["answered"] + data["abandoned"] + data["dialled"] + data["announced"] == data["arrivals"]
    assert main(["simulate", good, "--hours", "9-10", "--seed", "4"]) == 0
    out = capsys.readouterr().out
    assert "answered in SL:" in out and "yc-general" in out
