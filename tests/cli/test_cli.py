"""The engineers' CLI: config validate/show/diff, route and demo, in-process and as the installed script."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hotline_cti.cli.main import main
from hotline_cti.privacy import mask_number
from hotline_cti.text_output import display_width, table

MINI = """\
region: {id: gx, name: 广西, level: province}
cities:
  - {id: nanning, name: 南宁, area_code: "0771"}
  - {id: guilin, name: 桂林, area_code: "0773"}
centres:
  - {id: gx, name: 自治区12345}
  - {id: guilin, name: 桂林12345, city: guilin}
queues:
  - {id: general, name: 综合}
  - {id: l12315, name: 12315, overflow: general}
expert_groups:
  - {id: e12315, name: 市场监管专家}
subcentres:
  - id: tobacco
    name: 烟草
    scope: city
    sites:
      - {city: nanning, dial: PJSIP/12313@nn}
      - {city: guilin, dial: PJSIP/12313@gl}
hotlines:
  - {number: 12300, name: 电信申诉, unit: 通信管理局, mode: merge, cutover: 2021-08-31, aliases: [12301]}
  - {number: 12315, name: 市场监管, unit: 市场监管, mode: parallel, queue: l12315, expert: e12315, cutover: 2021-11-30}
  - {number: 12313, name: 烟草, unit: 烟草局, mode: subcentre, subcentre: tobacco, cutover: 2021-07-31}
  - {number: 110, name: 报警, unit: 公安, mode: transfer}
"""

LINE_RE = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): (?P<path>[\w.\[\]]+): (?P<message>.+)$")


@pytest.fixture
def mini(tmp_path: Path) -> Path:
    path = tmp_path / "mini.yaml"
    path.write_text(MINI, encoding="utf-8")
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def route_json(capsys: pytest.CaptureFixture[str], config: Path, *argv: str) -> dict[str, object]:
    code, out, _ = run(capsys, "route", *argv, "--config", str(config), "--json")
    assert code == 0
    assert len(out.strip().splitlines()) == 1  # one JSON object, one line
    data: dict[str, object] = json.loads(out)
    return data


# ---------------------------------------------------------------- validate


def test_validate_ok(capsys: pytest.CaptureFixture[str], mini: Path) -> None:
    code, out, _ = run(capsys, "config", "validate", str(mini))
    assert code == 0
    assert out.strip() == f"ok: {mini} (4 lines)"


def test_validate_lists_every_problem_of_every_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, mini: Path
) -> None:
    # Schema problems (unknown key, bad date) in one file, a cross-reference problem in another.
    schema_bad = tmp_path / "schema_bad.yaml"
    schema_bad.write_text(
        MINI.replace("{id: general, name: 综合}", "{id: general, name: 综合, colour: red}").replace(
            "cutover: 2021-11-30", "cutover: 30/11/2021"
        ),
        encoding="utf-8",
    )
    dup = tmp_path / "dup.yaml"
    dup.write_text(MINI.replace("number: 12313,", "number: 12300,"), encoding="utf-8")
    code, out, _ = run(capsys, "config", "validate", str(schema_bad), str(mini), str(dup))
    assert code == 1
    lines = out.strip().splitlines()
    assert f"ok: {mini} (4 lines)" in lines
    problems = [LINE_RE.match(line) for line in lines if not line.startswith("ok: ")]
    assert all(problems), lines
    found = {(m["file"], m["line"], m["path"], m["message"].split(" (")[0]) for m in problems if m}
    assert (str(schema_bad), "9", "queues[0].colour", "unknown key 'colour'") in found
    assert any(f == str(schema_bad) and p == "hotlines[1].cutover" and "valid date" in msg for f, _, p, msg in found)
    assert (str(dup), "23", "hotlines[2].number", "duplicate number 12300") in found
    assert len(problems) == 3


def test_validate_impossible_date_and_missing_file_are_reported_not_raised(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = tmp_path / "feb30.yaml"
    bad.write_text(MINI.replace("2021-08-31", "2021-02-30"), encoding="utf-8")
    missing = tmp_path / "missing.yaml"
    code, out, _ = run(capsys, "config", "validate", str(bad), str(missing))
    assert code == 1
    lines = out.strip().splitlines()
    date_line = next(n for n, text in enumerate(MINI.splitlines(), 1) if "2021-08-31" in text)
    # The impossible date is named at its own line, and the merged line missing its cut-over follows.
    assert lines[0].startswith(f"{bad}:{date_line}:") and "'2021-02-30' is not a valid value" in lines[0]
    assert any("needs its 'cutover' date" in line for line in lines[1:-1])
    assert lines[-1].startswith(str(missing)) and "cannot read" in lines[-1]


# ---------------------------------------------------------------- route


def test_route_human_form_explains_and_masks_caller(capsys: pytest.CaptureFixture[str], mini: Path) -> None:
    code, out, _ = run(
        capsys, "route", "12300", "--config", str(mini), "--at", "2021-09-01T10:00", "--caller", "13812345678"
    )
    assert code == 0
    lines = out.splitlines()
    fields = dict(line.split(": ", 1) for line in lines if not line.startswith(("reason:", "warning:")))
    fields = {k.rstrip(": ").strip(): v.strip() for k, v in fields.items()}
    assert fields["mode"] == "merge"
    assert fields["phase"] == "transition"
    assert fields["action"] == "queue"
    assert fields["target"] == "gx-general"
    assert fields["prompts"] == "transition-12300"
    assert fields["caller"] == "138****5678"
    assert "13812345678" not in out
    # values start in one column
    assert len({len(line) - len(line.split(":", 1)[1].lstrip()) for line in lines[:-1]}) == 1
    assert lines[-1].startswith("reason: 12300 电信申诉: merged into 12345")


def test_route_json_keys_and_expert(capsys: pytest.CaptureFixture[str], mini: Path) -> None:
    data = route_json(capsys, mini, "12315", "--at", "2022-01-10T09:00", "--caller", "0773-2822222")
    for key in ("mode", "phase", "action", "target", "expert", "prompts", "reason"):
        assert key in data
    assert data["mode"] == "parallel"
    assert data["phase"] == "after"
    assert data["action"] == "queue"
    assert data["expert"] == "e12315"
    assert data["city"] == "guilin"  # from the caller's area code
    assert data["target"] == "guilin-l12315"
    assert data["caller"] == "077****2222"
    assert "2822222" not in json.dumps(data, ensure_ascii=False)
    assert data["at"] == "2022-01-10T09:00:00+08:00"


def test_route_json_expert_is_null_for_plain_line(capsys: pytest.CaptureFixture[str], mini: Path) -> None:
    data = route_json(capsys, mini, "12301", "--at", "2021-09-01T10:00")
    assert data["expert"] is None
    assert data["number"] == "12300"  # the alias routes as its line


@pytest.mark.parametrize("city", ["桂林", "guilin", "桂林市"])
def test_route_city_by_name_or_id(capsys: pytest.CaptureFixture[str], mini: Path, city: str) -> None:
    data = route_json(capsys, mini, "12313", "--city", city, "--at", "2021-09-01T10:00")
    assert data["city"] == "guilin"
    assert data["action"] == "subcentre"
    assert data["target"] == "tobacco@guilin"
    assert data["centre"] == "guilin"


def test_route_unknown_city_lists_valid_ones(capsys: pytest.CaptureFixture[str], mini: Path) -> None:
    code, out, err = run(capsys, "route", "12313", "--config", str(mini), "--city", "柳州")
    assert code == 2
    assert out == ""
    assert "unknown city '柳州'" in err
    assert "nanning (南宁)" in err and "guilin (桂林)" in err


def test_route_at_without_offset_is_the_config_timezone(capsys: pytest.CaptureFixture[str], mini: Path) -> None:
    # Cut-over is midnight 2021-08-31 in Asia/Shanghai.
    local = route_json(capsys, mini, "12300", "--at", "2021-08-30T23:30")
    assert local["phase"] == "before"
    assert local["at"] == "2021-08-30T23:30:00+08:00"
    utc = route_json(capsys, mini, "12300", "--at", "2021-08-30T23:30+00:00")  # 07:30 on the 31st in Shanghai
    assert utc["phase"] == "transition"
    assert utc["at"] == "2021-08-30T23:30:00+00:00"


def test_route_main_menu_expert_topic(capsys: pytest.CaptureFixture[str], mini: Path) -> None:
    data = route_json(capsys, mini, "12345", "--ivr", "3", "--topic", "12315")
    assert data["mode"] == "main"
    assert data["expert"] == "e12315"
    assert data["target"] == "gx-expert-e12315"


def test_route_invalid_config_exits_1(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(MINI.replace("mode: transfer", "mode: transferr"), encoding="utf-8")
    code, out, err = run(capsys, "route", "110", "--config", str(bad))
    assert code == 1
    assert out == ""
    assert re.search(rf"^{re.escape(str(bad))}:24:\d+: hotlines\[3\]\.mode: ", err, re.M)


# ---------------------------------------------------------------- diff


def test_diff_two_configs(capsys: pytest.CaptureFixture[str], tmp_path: Path, mini: Path) -> None:
    new = tmp_path / "new.yaml"
    new.write_text(
        MINI.replace("cutover: 2021-08-31, aliases: [12301]", "cutover: 2021-10-01").replace(
            "  - {number: 110,",
            "  - {number: 12399, name: 新线, unit: 某局, mode: merge, cutover: 2021-10-01}\n  - {number: 110,",
        ),
        encoding="utf-8",
    )
    code, out, _ = run(capsys, "config", "diff", str(mini), str(new), "--at", "2021-09-15T10:00")
    assert code == 0
    assert "removed: 12301 电信申诉 (alias of 12300)" in out
    assert "added:   12399 新线: merge, department dept-12399" in out
    block = out.split("changed: 12300 电信申诉\n", 1)[1]
    assert "    phase: transition -> before" in block
    assert "    action: queue -> department" in block
    assert "changed: 12315" not in out and "changed: 110" not in out
    assert out.strip().splitlines()[-1] == "diff: 1 changed, 1 added, 1 removed, 4 unchanged"


def test_diff_same_config_at_two_dates(capsys: pytest.CaptureFixture[str], mini: Path) -> None:
    code, out, _ = run(capsys, "config", "diff", str(mini), str(mini), "--at", "2021-08-01", "--at2", "2022-03-01")
    assert code == 0
    assert "changed: 12300 电信申诉\n    phase: before -> after\n    action: department -> retired" in out
    assert "changed: 12301 电信申诉 (alias of 12300)" in out
    assert "changed: 12315 市场监管" in out
    assert "changed: 110" not in out
    code, out, _ = run(capsys, "config", "diff", str(mini), str(mini), "--at", "2021-08-01")
    assert out.strip().splitlines()[-1] == "diff: 0 changed, 0 added, 0 removed, 6 unchanged"


def test_diff_invalid_config_exits_1(capsys: pytest.CaptureFixture[str], tmp_path: Path, mini: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(MINI.replace("level: province", "level: country"), encoding="utf-8")
    code, _, err = run(capsys, "config", "diff", str(mini), str(bad))
    assert code == 1
    assert f"{bad}:1:" in err and "region.level" in err


# ---------------------------------------------------------------- show


def test_show_groups_lines_by_mode(capsys: pytest.CaptureFixture[str], mini: Path) -> None:
    code, out, _ = run(capsys, "config", "show", str(mini))
    assert code == 0
    assert "merge (1)" in out and "parallel (1)" in out and "subcentre (1)" in out and "transfer (1)" in out
    assert "guidance (" not in out
    row = next(line for line in out.splitlines() if line.startswith("12300"))
    assert "+12301" in row and "电信申诉" in row and "2021-08-31..2022-02-28" in row
    assert "queue l12315, expert e12315" in out
    assert out.strip().splitlines()[-1] == "counts: merge 1, parallel 1, subcentre 1, transfer 1 (4 lines)"


# ---------------------------------------------------------------- demo


def test_demo_over_a_folder(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    folder = tmp_path / "merger_config"
    folder.mkdir()
    (folder / "a.yaml").write_text(MINI, encoding="utf-8")
    (folder / "b.yaml").write_text(MINI.replace(", aliases: [12301]", ""), encoding="utf-8")
    (folder / "notes.txt").write_text("not a config", encoding="utf-8")
    code, out, _ = run(capsys, "demo", "--check-only", str(folder))
    assert code == 0
    # a: 5 numbers, b: 4 numbers, each routed at 3 instants
    assert out.strip().splitlines()[-1] == "demo: 2 configs, 8 lines, 27 decisions, 0 errors"
    assert "merge      before      2      department 2" in out
    assert "merge      transition  2      queue 2" in out
    assert "merge      after       2      retired 2" in out
    assert "transfer   none        3      emergency 3" in out


def test_demo_reports_invalid_config(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "good.yaml").write_text(MINI, encoding="utf-8")
    (tmp_path / "bad.yaml").write_text(MINI.replace("name: 综合", "nmae: 综合"), encoding="utf-8")
    code, out, _ = run(capsys, "demo", "--check-only", str(tmp_path))
    assert code == 1
    assert f"{tmp_path / 'bad.yaml'}:9:" in out
    assert re.search(r"^demo: 1 configs \(1 invalid\), 4 lines, 15 decisions, [1-9]\d* errors$", out, re.M)


def test_demo_without_files_fails(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "demo", "--check-only", str(tmp_path))
    assert code == 1
    assert "no merger files" in err


# ---------------------------------------------------------------- bad arguments


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["route"],
        ["route", "12315"],
        ["route", "12a45", "--config", "MINI"],
        ["route", "12315", "--config", "MINI", "--at", "yesterday"],
        ["route", "12315", "--config", "MINI", "--ivr", "12"],
        ["route", "12345", "--config", "MINI", "--ivr", "3", "--topic", "abc"],
        ["config"],
        ["config", "validate"],
        ["config", "diff", "MINI"],
        ["config", "diff", "MINI", "MINI", "--at2", "2021-13-01"],
        ["nosuchcommand"],
    ],
)
def test_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str], mini: Path, argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([str(mini) if a == "MINI" else a for a in argv])
    assert exc.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_bad_caller_is_not_echoed(capsys: pytest.CaptureFixture[str], mini: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["route", "12315", "--config", str(mini), "--caller", "1381234567x"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "is not a telephone number" in err and "1381234567" not in err


# ---------------------------------------------------------------- helpers and the installed script


def test_mask_and_table_helpers() -> None:
    assert mask_number("13812345678") == "138****5678"
    assert mask_number("2666110") == "26****10"
    assert mask_number("110") == "***"
    text = table(["a", "b"], [["桂林", None], ["x", 3]])
    rows = text.splitlines()
    assert rows[2] == "桂林  -"
    assert display_width(rows[2].split("  ")[0]) == 4
    assert rows[3] == "x     3"


def test_installed_console_script(mini: Path) -> None:
    script = Path(sys.executable).parent / "hotline-cti"
    result = subprocess.run(
        [str(script), "route", "0773-12313", "--config", str(mini), "--at", "2021-09-01T10:00", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["target"] == "tobacco@guilin"
    assert data["form"] == "national"
