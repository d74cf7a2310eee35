"""The merger what-if and the staffing CLI, on the shipped Guangxi merger list."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from hotline_cti.cli.main import main
from hotline_cti.config.checked import load_checked
from hotline_cti.config.errors import ConfigError
from hotline_cti.config.yamlsource import read_yaml
from hotline_cti.staffing.merger import Stage, merger_stages
from hotline_cti.staffing.seats import seats_needed
from hotline_cti.staffing.traffic import GroupLoad, Targets, traffic_from_tree
from tests.paths import REPO

ROOT = REPO
GUANGXI = str(ROOT / "merger_config" / "guangxi.yaml")
SHIPPED_TRAFFIC = ROOT / "merger_config" / "traffic" / "guangxi.yaml"

SMALL = """\
targets: {service_level: 0.8, within_s: 20, answered: 0.95}
defaults: {aht_s: 240, patience_s: 120}
main: {calls_per_hour: 600}
lines:
  "12328": {calls_per_hour: 250, aht_s: 180, professional: 0.08}   # parallel, cut over 2021-11-30
  "12300": {calls_per_hour: 60, aht_s: 120}                         # merge, 2021-08-31
  "12366": {calls_per_hour: 100, professional: 0.5}                 # sub-centre tax, 2021-07-31
  "12348": {calls_per_hour: 40}                                     # parallel, seats stay with the department
  "110": {calls_per_hour: 1000}                                     # emergency: brings none
"""


def stages_for(tmp_path: Path, text: str) -> list[Stage]:
    path = tmp_path / "traffic.yaml"
    path.write_text(text, encoding="utf-8")
    tree = read_yaml(path)
    return merger_stages(load_checked(GUANGXI).model, traffic_from_tree(tree), tree)


def loads(stage: Stage) -> dict[tuple[str, str], GroupLoad]:
    return {(g.kind, g.name): g.need.load for g in stage.groups}


def test_each_cut_over_moves_its_lines(tmp_path: Path) -> None:
    stages = stages_for(tmp_path, SMALL)
    assert [s.date for s in stages] == [None, dt.date(2021, 7, 31), dt.date(2021, 8, 31), dt.date(2021, 11, 30)]
    before, subcentres, merged, parallel = (loads(s) for s in stages)
    assert set(before) == {("queue", "general"), ("own", "12328"), ("own", "12300"), ("own", "12366"), ("own", "12348")}
    assert before[("queue", "general")].calls_per_hour == 600
    # 2021-07-31: the tax sub-centre keeps the professional half, 12345 answers the rest
    assert stages[1].cut_over == ["12366"]
    assert subcentres[("subcentre", "tax")].calls_per_hour == 50
    assert subcentres[("queue", "general")].calls_per_hour == 650
    # 2021-08-31: 12300 merged into the main queue; handle time is the call-weighted mean
    general = merged[("queue", "general")]
    assert general.calls_per_hour == 710
    assert general.aht_s == pytest.approx((650 * 240 + 60 * 120) / 710)
    assert ("own", "12300") not in merged
    # 2021-11-30: 12328 into its skill queue, 8% to its expert seats; 12348 stays with the department
    assert parallel[("queue", "l12328")].calls_per_hour == pytest.approx(230)
    assert parallel[("expert", "e12328")].calls_per_hour == pytest.approx(20)
    assert parallel[("department", "sft-12348")].calls_per_hour == 40
    assert not any(kind == "own" for kind, _ in parallel)
    assert all("110" not in name for s in stages for _, name in loads(s))


def test_group_seats_are_the_erlang_figures_of_the_pooled_load(tmp_path: Path) -> None:
    last = stages_for(tmp_path, SMALL)[-1]
    targets = Targets(service_level=0.8, within_s=20, answered=0.95)
    for g in last.groups:
        assert g.need == seats_needed(g.need.load, targets)
        assert g.need.seats == max(g.need.for_service_level, g.need.for_answered)
    assert last.seats == sum(g.need.seats for g in last.groups)


def test_unknown_line_is_named_with_its_place(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        stages_for(tmp_path, 'main: {calls_per_hour: 10}\nlines:\n  "12999": {calls_per_hour: 5}\n')
    (problem,) = err.value.problems
    assert problem.path == "lines.12999" and problem.place is not None and problem.place.line == 3


def test_bad_values_are_placed(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        stages_for(tmp_path, 'main: {calls_per_hour: 10}\nlines:\n  "12328": {calls_per_hour: -5, professional: 2}\n')
    paths = {(p.path, p.place.line if p.place else None) for p in err.value.problems}
    assert paths == {("lines.12328.calls_per_hour", 3), ("lines.12328.professional", 3)}


def test_shipped_example_after_the_last_cut_over(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["staffing", "merger", "--config", GUANGXI, "--traffic", str(SHIPPED_TRAFFIC), "--format", "json"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    last = data["stages"][-1]
    kinds = {g["kind"] for g in last["groups"]}
    assert kinds == {"queue", "expert", "subcentre", "department"}  # nobody left on a line's own seats
    experts = {g["name"] for g in last["groups"] if g["kind"] == "expert"}
    assert experts == {"e12315", "e12316", "e12320", "e12328", "e12329", "e12333"}
    for g in last["groups"]:
        assert g["service_level"] >= 0.8 and g["answered"] >= 0.95
    assert [s["from"] for s in data["stages"]] == [None, "2021-07-31", "2021-08-31", "2021-11-30"]


def test_queues_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["staffing", "--traffic", str(SHIPPED_TRAFFIC)]) == 0
    out = capsys.readouterr().out
    row = next(line.split() for line in out.splitlines() if line.startswith("general"))
    load = GroupLoad(3430, 240, 180)
    need = seats_needed(load, Targets())
    assert row[:7] == ["general", "3430", "240", "180", "228.7", str(need.for_service_level), str(need.for_answered)]
    assert "total seats:" in out


def test_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["staffing"]) == 2
    assert "argument --traffic" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("queues:\n  general: {calls_per_hour: lots}\n", encoding="utf-8")
    assert main(["staffing", "--traffic", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:2:" in err and "queues.general.calls_per_hour" in err
