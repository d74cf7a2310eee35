"""Agents and skills in the YAML (issue 18): validation with file:line, the member plan, the generated
queuerules.conf, queues.conf and feature codes."""

from __future__ import annotations

from pathlib import Path

import pytest

from hotline_cti.cli.main import main
from hotline_cti.config.catalogue import known_prompt_ids, load_catalogue
from hotline_cti.config.errors import ConfigError
from hotline_cti.config.loader import load_config
from hotline_cti.dialplan.check import check_directory
from hotline_cti.dialplan.confparse import parse_extensions, parse_sections
from hotline_cti.dialplan.members import Membership, agent_from_interface, agent_plans, member_interface
from hotline_cti.dialplan.render import render_all, write_all
from tests.paths import DATA

AGENTS_YAML = DATA / "agents.yaml"
TEXT = AGENTS_YAML.read_text(encoding="utf-8")


def problems_of(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "cfg.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return [str(p) for p in info.value.problems]


def line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


def test_plan_puts_each_agent_in_its_skills_queues_and_widened_queues() -> None:
    plans = agent_plans(load_config(AGENTS_YAML).model)
    assert plans["agent1001"].memberships == (Membership("ag-l12315", 0),)
    # general at level 1 at home, Guilin's general at level 2 (city skill); both centres' 12315 queues
    # widen, so the general agent is there at 10 + its general level
    assert plans["agent1002"].memberships == (
        Membership("ag-general", 1),
        Membership("ag-l12315", 11, widened=True),
        Membership("guilin-general", 2),
        Membership("guilin-l12315", 12, widened=True),
    )
    assert [(m.queue, m.penalty) for m in plans["agent1003"].memberships] == [
        ("ag-expert-e12315", 0),
        ("ag-general", 0),
        ("ag-l12315", 10),
    ]
    assert plans["agent1002"].interface == "Local/agent1002@hotline-agents/n"
    assert plans["agent1002"].state_interface == "PJSIP/agent1002"
    assert agent_from_interface(member_interface("agent1002")) == "agent1002"
    assert agent_from_interface("PJSIP/agent1002") is None


def test_a_skill_already_held_is_not_widened_and_the_lowest_level_wins(tmp_path: Path) -> None:
    text = TEXT.replace(
        '      - {line: "12315", level: 0}',
        '      - {line: "12315", level: 4}\n      - {queue: l12315, level: 2}\n      - {queue: general, level: 3}',
    )
    path = tmp_path / "cfg.yaml"
    path.write_text(text, encoding="utf-8")
    plans = agent_plans(load_config(path).model)
    assert plans["agent1001"].memberships == (Membership("ag-general", 3), Membership("ag-l12315", 2))


def test_generated_files_widen_the_line_queue_only(tmp_path: Path) -> None:
    model = load_config(AGENTS_YAML).model
    files = render_all(model)
    rules = parse_sections(files["queuerules.conf"], "queuerules.conf")
    assert [(s.name, s.items) for s in rules if s.name != "general"] == [
        ("hotline-widen-6", [("penaltychange", "6,19")])
    ]
    queues = {s.name: dict(s.items) for s in parse_sections(files["queues.conf"], "queues.conf")}
    assert queues["ag-l12315"]["defaultrule"] == "hotline-widen-6"
    assert queues["guilin-l12315"]["defaultrule"] == "hotline-widen-6"
    assert "defaultrule" not in queues["ag-general"] and "defaultrule" not in queues["ag-expert-e12315"]
    contexts = parse_extensions(files["extensions.conf"])
    # every Queue() starts with the skilled agents only: the rule moves QUEUE_MAX_PENALTY only when it is set
    for ctx in ("hotline-queue", "hotline-fallback"):
        steps = contexts[ctx].extensions["s"]
        for i, step in enumerate(steps):
            if step.app == "Queue":
                assert (steps[i - 1].app, steps[i - 1].args) == ("Set", "QUEUE_MAX_PENALTY=9"), ctx
    out = tmp_path / "out"
    write_all(files, out)
    assert check_directory(out, set(known_prompt_ids(load_catalogue(), model))) == []


def test_feature_codes_log_in_with_the_plans_penalties(tmp_path: Path) -> None:
    files = render_all(load_config(AGENTS_YAML).model)
    contexts = parse_extensions(files["extensions.conf"])
    codes = contexts["hotline-agent-codes"].extensions
    assert sorted(codes) == ["*45", "*461", "*462", "*47"]
    assert ("Set", "HOTLINE_PAUSE_REASON=training") in [(s.app, s.args) for s in codes["*462"]]
    toggle = [(s.app, s.args) for s in contexts["hotline-agent-toggle"].extensions["agent1002"]]
    adds = [a for app, a in toggle if app == "AddQueueMember"]
    assert adds == [
        "ag-general,Local/agent1002@hotline-agents/n,1,,agent1002,PJSIP/agent1002",
        "ag-l12315,Local/agent1002@hotline-agents/n,11,,agent1002,PJSIP/agent1002",
        "guilin-general,Local/agent1002@hotline-agents/n,2,,agent1002,PJSIP/agent1002",
        "guilin-l12315,Local/agent1002@hotline-agents/n,12,,agent1002,PJSIP/agent1002",
    ]
    removes = [a for app, a in toggle if app == "RemoveQueueMember"]
    assert removes == [a.split(",")[0] + ",Local/agent1002@hotline-agents/n" for a in adds]
    assert "i" in contexts["hotline-agent-toggle"].extensions


@pytest.mark.parametrize(
    ("old", "new", "needle", "message"),
    [
        ('{line: "12315", level: 0}', '{line: "12399", level: 0}', "12399", "unknown line '12399'"),
        ("{queue: general, level: 1}", "{queue: genral, level: 1}", "genral", "unknown queue 'genral'"),
        ("{expert: e12315}", "{expert: e99}", "e99", "unknown expert group 'e99'"),
        (
            "{city: guilin, level: 2}",
            "{city: nanning, level: 2}",
            "nanning, level",
            "city 'nanning' has no 12345 centre",
        ),
        ("{city: guilin, level: 2}", "{city: wuhan, level: 2}", "wuhan", "unknown city 'wuhan'"),
        (
            "- id: agent1003",
            "- id: agent1001",
            "id: agent1001          # expert",
            "duplicate agent 'agent1001' (first at line",
        ),
        ("{queue: general, level: 1}", "{queue: general, level: 10}", "level: 10", "less than or equal to 9"),
        (
            "{queue: general, level: 1}",
            "{queue: general, line: '12315', level: 1}",
            "line: '12315'",
            "exactly one of queue, line, expert, city",
        ),
        ("- {queue: l12315, after: 6}", "- {queue: general, after: 6}", "after: 6", "cannot widen itself"),
        ("{code: 2, id: training", "{code: 1, id: training", "id: training", "duplicate pause reason code '1'"),
        ("- id: agent1003", "- id: agent-1003", "agent-1003", "not an agent id"),
    ],
)
def test_bad_agents_are_named_with_their_line(tmp_path: Path, old: str, new: str, needle: str, message: str) -> None:
    text = TEXT.replace(old, new, 1)
    assert text != TEXT
    out = problems_of(tmp_path, text)
    assert any(f"cfg.yaml:{line_of(text, needle)}:" in p and message in p for p in out), out


def test_a_line_without_its_own_queue_is_no_skill(tmp_path: Path) -> None:
    text = TEXT.replace("queue: l12315, expert: e12315}", "expert: e12315}")
    text = text.replace("    - {queue: l12315, after: 6}", "    - {expert: e12315, after: 6}")
    out = problems_of(tmp_path, text)
    at = line_of(text, '{line: "12315"')
    assert any(f":{at}:" in p and "has no queue of its own" in p for p in out), out


def test_config_diff_shows_skill_changes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    new = TEXT.replace("      - {city: guilin, level: 2}", "      - {city: guilin, level: 1}")
    new = new.replace("    - {queue: l12315, after: 6}", "    - {queue: l12315, after: 30}")
    new = new.replace(
        "  - id: agent1003          # expert seat and general agent\n    name: 王五",
        "  - id: agent1004\n    name: 赵六",
    )
    path = tmp_path / "new.yaml"
    path.write_text(new, encoding="utf-8")
    assert main(["config", "diff", str(AGENTS_YAML), str(path), "--at", "2026-12-01T10:00"]) == 0
    out = capsys.readouterr().out.splitlines()
    tail = out[out.index("diff: 0 changed, 0 added, 0 removed, 2 unchanged") + 1 :]
    assert tail == [
        "agent removed: agent1003 王五",
        "agent added:   agent1004 赵六: ag-expert-e12315 0, ag-general 0, ag-l12315 10",
        "agent changed: agent1002 李四",
        "    guilin-general: penalty 2 -> 1",
        "    guilin-l12315: penalty 12 -> 11",
        "widening: ag-l12315: after 6 s -> after 30 s",
        "widening: guilin-l12315: after 6 s -> after 30 s",
        "skills: 5 change(s)",
    ]
    # nothing about agents when they did not change
    assert main(["config", "diff", str(AGENTS_YAML), str(AGENTS_YAML), "--at", "2026-12-01T10:00"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "diff: 0 changed, 0 added, 0 removed, 2 unchanged"


def test_wrapup_per_queue_and_expert_group() -> None:
    files = render_all(load_config(AGENTS_YAML).model)
    queues = {s.name: dict(s.items) for s in parse_sections(files["queues.conf"], "queues.conf")}
    assert queues["ag-expert-e12315"]["wrapuptime"] == "30"
    assert queues["ag-general"]["wrapuptime"] == "5"


def test_the_static_checks_catch_a_rule_missing_from_queuerules(tmp_path: Path) -> None:
    model = load_config(AGENTS_YAML).model
    files = render_all(model)
    files["queuerules.conf"] = files["queuerules.conf"].replace("[hotline-widen-6]", "[hotline-widen-60]")
    write_all(files, tmp_path)
    problems = check_directory(tmp_path, set(known_prompt_ids(load_catalogue(), model)))
    assert problems == [
        "queues.conf [ag-l12315]: defaultrule=hotline-widen-6 is not a rule of queuerules.conf",
        "queues.conf [guilin-l12315]: defaultrule=hotline-widen-6 is not a rule of queuerules.conf",
    ]
    (tmp_path / "queuerules.conf").unlink()
    assert check_directory(tmp_path, set(known_prompt_ids(load_catalogue(), model)))[0].startswith("queuerules.conf:")
